"""Profile ``bitalino``: the BITalino (r)evolution BLE board (PLUX).

The board's MCU speaks a one-byte command protocol over a UART that a BT121 radio bridges to
GATT (public firmware ``firmware-bitalino-revolution`` and ``firmware-BT121``):

* service ``c566488a-0882-4e1b-a6d0-0b717e652234``; **Commands**
  ``4051eb11-…`` (host → MCU; only a *write with response* is forwarded to the MCU) and
  **Frames** ``40fdba6b-…`` (notify; MCU → host). The notifications are a byte pipe: a
  notification boundary is not a frame boundary, so the decoder keeps a byte buffer.
* commands: ``0x07`` version (reply ``BITalino_v5.2\\n``), ``0x0B`` state (16/17 bytes),
  ``code << 6 | 0x03`` sampling rate (code 3 = 1000 Hz), ``mask << 2 | 0x01`` start live
  (bit 0 of the mask = A1 … bit 5 = A6), ``0x00`` stop (``0xFF`` also stops and is ignored
  when idle, so it is a safe "stop if running").
* live frames of 3/4/6/7/8/8 bytes for 1–6 active channels: the first four active channels
  are 10-bit, the 5th and 6th 6-bit; a 4-bit sequence number and a CRC-4 (x⁴+x+1) close
  each frame (:func:`encode_frame`, :func:`decode_frames`).
* when the radio link drops, the bridge writes ``0xFF`` to the MCU: acquisition stops, and
  after a reconnect the host must set the rate and start again (a new acquisition whose
  sequence restarts at 0). There is no device clock: time is frame index / rate; the
  frames not acquired while the link was down are sized from the host's arrival clock.

Samples become physical units with PLUX's transfer functions (:func:`emg_uv`,
:func:`acc_g`): ``EMG = (ADC / 2^n − 1/2) · VCC / G``, VCC 3.3 V, G 1009 (one 10-bit step
≈ 3.19 µV, range ±1.64 mV); ``ACC = 2 (ADC − Cmin) / (Cmax − Cmin) − 1`` g with Cmin 400 and
Cmax 608 at 10 bit unless the user's calibration says otherwise.

Which port holds which sensor is the user's choice (:func:`parse_channel_map`,
``--channels A1=emg,A3=acc_x,A4=acc_y,A5=acc_z``, the default :data:`DEFAULT_CHANNELS`).
With fewer than three accelerometer axes mapped (the board kit's one axis on A5), the axes
that are missing are sent to the detector as 0 g: movement *along* the wired axis is seen,
movement across it is not, and the accelerometer-only twitch rules get one third of the
picture.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.ble.codec import Block, ClockMap, PacketStats
from toetwitch.drivers.ble.profile_v1 import DeviceInfo, StreamInfo
from toetwitch.drivers.ble.profiles import DeviceProfile
from toetwitch.drivers.errors import RecordingError

logger = logging.getLogger("toetwitch")

NAME = "bitalino"
SERVICE_UUID = "c566488a-0882-4e1b-a6d0-0b717e652234"
COMMANDS_UUID = "4051eb11-bf0a-4c74-8730-a48f4193fcea"
FRAMES_UUID = "40fdba6b-672e-47c4-808a-e529adff3633"

CMD_VERSION = 0x07
CMD_STATE = 0x0B
CMD_STOP = 0x00
CMD_STOP_IF_LIVE = 0xFF  # stops live mode; ignored when idle (what the radio sends on disconnect)
RATES_HZ = (1.0, 10.0, 100.0, 1000.0)

PORTS = ("A1", "A2", "A3", "A4", "A5", "A6")
#: ``other``: acquired (and kept in the packet log) but not analysed, e.g. a second sensor.
STREAM_NAMES = ("emg", "acc_x", "acc_y", "acc_z", "other")
#: The default channel map (``monitor --device bitalino`` without ``--channels``): the board
#: kit's own wiring (firmware ``pins.h``: A1 EMG, A2 ECG, A3 EDA, A4 EEG, A5 ACC, A6 LUX), i.e.
#: the EMG sensor on A1 and the one accelerometer axis on A5 (taken as z). Three axes on
#: separate ports: ``--channels A1=emg,A3=acc_x,A4=acc_y,A5=acc_z`` (four active channels
#: keep all of them at 10 bit).
DEFAULT_CHANNELS: dict[str, str] = {"A1": "emg", "A5": "acc_z"}
THREE_AXES: dict[str, str] = {"A1": "emg", "A3": "acc_x", "A4": "acc_y", "A5": "acc_z"}

#: PLUX transfer-function defaults (biosignalsnotebooks ``raw_to_phy``, device bitalino_rev).
VCC_V = 3.3
EMG_GAIN = 1009.0
ACC_CMIN_10BIT = 400.0
ACC_CMAX_10BIT = 608.0

_CRC_TABLE = (0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2)
_CRC_NP = np.array(_CRC_TABLE, dtype=np.uint8)
_FRAME_SIZES = {1: 3, 2: 4, 3: 6, 4: 7, 5: 8, 6: 8}


# -- commands ------------------------------------------------------------------------------
def rate_command(fs_hz: float) -> bytes:
    """Set the sampling rate (idle mode only): ``code << 6 | 0x03``, 1/10/100/1000 Hz."""
    if fs_hz not in RATES_HZ:
        raise ValueError(f"BITalino rates are 1, 10, 100 or 1000 Hz, not {fs_hz:g}")
    return bytes([RATES_HZ.index(fs_hz) << 6 | 0x03])


def channel_mask(ports: list[str] | tuple[str, ...]) -> int:
    """Bit 0 = A1 … bit 5 = A6."""
    return sum(1 << PORTS.index(p) for p in ports)


def start_command(mask: int) -> bytes:
    """Start live acquisition of the channels in ``mask``: ``mask << 2 | 0x01``."""
    if not 0 < mask < 64:
        raise ValueError("the channel mask must select 1 to 6 of A1..A6")
    return bytes([mask << 2 | 0x01])


def stop_command() -> bytes:
    return bytes([CMD_STOP])


# -- frames --------------------------------------------------------------------------------
def frame_size(n_channels: int) -> int:
    """Bytes of one live frame with ``n_channels`` (1..6) active: 3, 4, 6, 7, 8, 8."""
    try:
        return _FRAME_SIZES[n_channels]
    except KeyError:
        raise ValueError(f"a BITalino frame has 1 to 6 channels, not {n_channels}") from None


def slot_bits(n_channels: int) -> list[int]:
    """ADC resolution of each active channel, in ascending port order: the first four
    active channels are 10-bit, the 5th and 6th carry the top 6 bits."""
    return [10 if k < 4 else 6 for k in range(n_channels)]


def crc4(frame: bytes | bytearray) -> int:
    """CRC-4 (x⁴+x+1, MSB first, init 0) of a frame, over every bit with the CRC nibble
    counted as zero: the firmware's nibble-table algorithm."""
    crc = 0
    for b in frame[:-1]:
        crc = _CRC_TABLE[crc] ^ (b >> 4)
        crc = _CRC_TABLE[crc] ^ (b & 0x0F)
    crc = _CRC_TABLE[crc] ^ (frame[-1] >> 4)
    return _CRC_TABLE[crc]


def encode_frame(values: list[int] | tuple[int, ...], seq: int,
                 digital: tuple[int, int, int, int] = (0, 0, 0, 0)) -> bytes:
    """One live frame, as the firmware sends it.

    ``values`` are the active channels in ascending port order, at their slot's resolution
    (10-bit for the first four, 6-bit values 0..63 for the 5th and 6th); ``digital`` is
    (I1, I2, O1, O2); ``seq`` is taken modulo 16.
    """
    n = len(values)
    size = frame_size(n)
    ch = list(values) + [0] * (6 - n)
    for v, bits in zip(ch, [10, 10, 10, 10, 6, 6], strict=True):
        if not 0 <= v < 1 << bits:
            raise ValueError(f"channel value {v} does not fit {bits} bits")
    b = [0] * 9  # b[m] = byte m from the end (b[1] = the last byte)
    i1, i2, o1, o2 = digital
    b[2] = (i1 << 7 | i2 << 6 | o1 << 5 | o2 << 4) | (ch[0] >> 6) & 0x0F
    b[3] = (ch[0] & 0x3F) << 2 | (ch[1] >> 8) & 0x03
    b[4] = ch[1] & 0xFF
    b[5] = ch[2] >> 2
    b[6] = (ch[2] & 0x03) << 6 | (ch[3] >> 4) & 0x3F
    b[7] = (ch[3] & 0x0F) << 4 | (ch[4] >> 2) & 0x0F
    b[8] = (ch[4] & 0x03) << 6 | ch[5] & 0x3F
    b[1] = (seq & 0x0F) << 4
    wire = [b[m] for m in range(8, 0, -1)][8 - size:]
    frame = bytearray(wire)
    frame[-1] |= crc4(frame)
    return bytes(frame)


def decode_frames(frames: NDArray[np.uint8], n_channels: int
                  ) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32], NDArray[np.bool_]]:
    """Decode whole frames, shape (k, frame_size): ``(values (k, n), seq (k,),
    digital (k, 4) I1 I2 O1 O2, crc_ok (k,))``. Vectorised: a second of 1 kHz data is one call."""
    f = np.asarray(frames, dtype=np.uint8)
    k, size = f.shape
    if size != frame_size(n_channels):
        raise ValueError(f"{n_channels}-channel frames are {frame_size(n_channels)} bytes, not {size}")
    crc = np.zeros(k, dtype=np.uint8)
    for j in range(size - 1):
        crc = _CRC_NP[crc] ^ (f[:, j] >> 4)
        crc = _CRC_NP[crc] ^ (f[:, j] & 0x0F)
    crc = _CRC_NP[_CRC_NP[crc] ^ (f[:, -1] >> 4)]
    ok = crc == (f[:, -1] & 0x0F)
    b = np.zeros((k, 9), dtype=np.int32)  # b[:, m] = byte m from the end
    for m in range(1, size + 1):
        b[:, m] = f[:, size - m]
    ch = np.stack([
        (b[:, 2] & 0x0F) << 6 | b[:, 3] >> 2,
        (b[:, 3] & 0x03) << 8 | b[:, 4],
        b[:, 5] << 2 | b[:, 6] >> 6,
        (b[:, 6] & 0x3F) << 4 | b[:, 7] >> 4,
        (b[:, 7] & 0x0F) << 2 | b[:, 8] >> 6,
        b[:, 8] & 0x3F,
    ], axis=1)[:, :n_channels]
    digital = np.stack([(b[:, 2] >> s) & 1 for s in (7, 6, 5, 4)], axis=1)
    return ch.astype(np.int32), (b[:, 1] >> 4).astype(np.int32), digital.astype(np.int32), ok


# -- replies -------------------------------------------------------------------------------
def parse_version(reply: bytes) -> str:
    """``b"...BITalino_v5.2\\n"`` -> ``"5.2"``; ``ValueError`` if there is no version line."""
    k = reply.find(b"BITalino")
    end = reply.find(b"\n", k)
    if k < 0 or end < 0:
        raise ValueError("no 'BITalino…\\n' version line in the reply")
    text = reply[k:end].decode("ascii", "replace").strip()
    return text.split("_v", 1)[1] if "_v" in text else text


def version_reply(version: str = "5.2") -> bytes:
    return f"BITalino_v{version}\n".encode()


def state_reply(analog: tuple[int, ...], battery: int, threshold: int = 0, pwm: int | None = 0,
                digital: tuple[int, int, int, int] = (0, 0, 0, 0)) -> bytes:
    """The state record: A1..A6 and ABAT as u16 LE, the battery threshold, the PWM value (v5.2
    only; ``pwm=None`` for earlier firmware), and I1 I2 O1 O2 + CRC-4 in the last byte."""
    body = b"".join(int(v).to_bytes(2, "little") for v in (*analog, battery))
    body += bytes([threshold]) + (b"" if pwm is None else bytes([pwm]))
    i1, i2, o1, o2 = digital
    frame = bytearray(body + bytes([i1 << 7 | i2 << 6 | o1 << 5 | o2 << 4]))
    frame[-1] |= crc4(frame)
    return bytes(frame)


def parse_state(reply: bytes) -> dict[str, Any]:
    """Parse a 16- or 17-byte state record; ``ValueError`` on a bad length or CRC."""
    if len(reply) not in (16, 17) or crc4(reply) != reply[-1] & 0x0F:
        raise ValueError("not a BITalino state record (length or CRC)")
    vals = [int.from_bytes(reply[2 * i : 2 * i + 2], "little") for i in range(7)]
    last = reply[-1]
    return {"analog": vals[:6], "battery_raw": vals[6], "battery_threshold": reply[14],
            "pwm": reply[15] if len(reply) == 17 else None,
            "digital": [(last >> s) & 1 for s in (7, 6, 5, 4)]}


# -- transfer functions ---------------------------------------------------------------------
def emg_uv(adc: NDArray[Any], bits: int, vcc_v: float = VCC_V, gain: float = EMG_GAIN
           ) -> NDArray[np.float64]:
    """PLUX EMG transfer function, ADC -> µV: ``(ADC / 2^bits − 1/2) · VCC / G · 1e6``."""
    return (np.asarray(adc, dtype=np.float64) / (1 << bits) - 0.5) * vcc_v / gain * 1e6


def emg_adc(uv: NDArray[Any], bits: int, vcc_v: float = VCC_V, gain: float = EMG_GAIN
            ) -> NDArray[np.int32]:
    """Inverse of :func:`emg_uv`, rounded and clipped to the ADC range (the emulator's)."""
    x = (np.asarray(uv, dtype=np.float64) * 1e-6 * gain / vcc_v + 0.5) * (1 << bits)
    return np.clip(np.round(np.nan_to_num(x, nan=(1 << bits) / 2)), 0, (1 << bits) - 1).astype(np.int32)


def acc_g(adc: NDArray[Any], bits: int, cmin: float = ACC_CMIN_10BIT, cmax: float = ACC_CMAX_10BIT
          ) -> NDArray[np.float64]:
    """PLUX ACC transfer function, ADC -> g: ``2 (ADC − Cmin) / (Cmax − Cmin) − 1``, with
    Cmin/Cmax given at 10 bit and scaled by ``2^(bits − 10)``."""
    s = 2.0 ** (bits - 10)
    return 2.0 * (np.asarray(adc, dtype=np.float64) - cmin * s) / ((cmax - cmin) * s) - 1.0


def acc_adc(g: NDArray[Any], bits: int, cmin: float = ACC_CMIN_10BIT, cmax: float = ACC_CMAX_10BIT
            ) -> NDArray[np.int32]:
    """Inverse of :func:`acc_g`, rounded and clipped to the ADC range."""
    s = 2.0 ** (bits - 10)
    x = (np.nan_to_num(np.asarray(g, dtype=np.float64)) + 1.0) / 2.0 * (cmax - cmin) * s + cmin * s
    return np.clip(np.round(x), 0, (1 << bits) - 1).astype(np.int32)


# -- settings ------------------------------------------------------------------------------
def parse_channel_map(text: str | None, ports: tuple[str, ...] = PORTS) -> dict[str, str]:
    """``"A1=emg,A3=acc_x"`` -> ``{"A1": "emg", "A3": "acc_x"}``; ``ValueError`` says what is
    wrong. ``None`` or ``""`` gives :data:`DEFAULT_CHANNELS`."""
    if not text:
        return dict(DEFAULT_CHANNELS)
    out: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        port, sep, stream = item.partition("=")
        port, stream = port.strip().upper(), stream.strip().lower()
        if not sep or not port or not stream:
            raise ValueError(f"--channels item {item!r} is not PORT=STREAM (e.g. A1=emg)")
        if port not in ports:
            raise ValueError(f"--channels: unknown port {port!r}; a BITalino has {', '.join(ports)}")
        if stream not in STREAM_NAMES:
            raise ValueError(f"--channels: unknown stream {stream!r}; use {', '.join(STREAM_NAMES)}")
        if port in out:
            raise ValueError(f"--channels names port {port} twice")
        if stream != "other" and stream in out.values():
            raise ValueError(f"--channels maps {stream} to two ports")
        out[port] = stream
    if not out:
        raise ValueError("--channels names no channel")
    return dict(sorted(out.items(), key=lambda kv: PORTS.index(kv[0])))


@dataclass(frozen=True)
class BitalinoSettings:
    """What the host tells a BITalino and how it converts what comes back.

    Parameters
    ----------
    channels : dict
        Port (``"A1"``..``"A6"``) -> stream (``emg``, ``acc_x``, ``acc_y``, ``acc_z``).
        Ports not named are not acquired.
    fs_hz : float
        Sampling rate; toetwitch needs 1000 Hz for EMG (the board's highest).
    vcc_v, emg_gain : float
        EMG transfer function (PLUX: 3.3 V, gain 1009).
    acc_cmin, acc_cmax : dict
        Per-axis raw values at −1 g and +1 g, at 10 bit (PLUX default 400 / 608). Measure
        them by turning the sensor slowly through 360° about each axis.
    command_gap_s : float
        Pause before each command: PLUX's own APIs wait 100–250 ms for the MCU.
    reply_timeout_s : float
        How long to wait for the version and state replies.
    """

    channels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    fs_hz: float = 1000.0
    vcc_v: float = VCC_V
    emg_gain: float = EMG_GAIN
    acc_cmin: dict[str, float] = field(default_factory=dict)
    acc_cmax: dict[str, float] = field(default_factory=dict)
    command_gap_s: float = 0.15
    reply_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        chans = dict(sorted(self.channels.items(), key=lambda kv: PORTS.index(kv[0])))
        object.__setattr__(self, "channels", chans)
        bits = dict(zip(chans, slot_bits(len(chans)), strict=True))
        for port, stream in chans.items():
            if stream == "emg" and bits[port] < 10:
                raise ValueError(
                    f"the EMG on {port} would be sampled at 6 bit (≈51 µV steps) because it is "
                    f"the 5th or 6th active channel; put it on an earlier port or acquire "
                    f"fewer channels")
        if self.fs_hz not in RATES_HZ:
            raise ValueError(f"BITalino rates are 1, 10, 100 or 1000 Hz, not {self.fs_hz:g}")

    @property
    def ports(self) -> list[str]:
        return list(self.channels)

    @property
    def mask(self) -> int:
        return channel_mask(self.ports)

    @property
    def bits(self) -> dict[str, int]:
        return dict(zip(self.channels, slot_bits(len(self.channels)), strict=True))

    def port_of(self, stream: str) -> str | None:
        return next((p for p, s in self.channels.items() if s == stream), None)

    def cmin(self, axis: str) -> float:
        return float(self.acc_cmin.get(axis, ACC_CMIN_10BIT))

    def cmax(self, axis: str) -> float:
        return float(self.acc_cmax.get(axis, ACC_CMAX_10BIT))

    @property
    def acc_axes(self) -> list[str]:
        return [s for s in ("acc_x", "acc_y", "acc_z") if s in self.channels.values()]

    def to_physical(self, raw: NDArray[np.int32]) -> dict[str, NDArray[np.float64]]:
        """Raw frame values (k, n active channels) -> ``{"emg": (k, 1), "acc": (k, 3)}``
        (axes not wired are 0 g)."""
        out: dict[str, NDArray[np.float64]] = {}
        bits = self.bits
        cols = {s: (i, bits[p]) for i, (p, s) in enumerate(self.channels.items())}
        if "emg" in cols:
            i, b = cols["emg"]
            out["emg"] = emg_uv(raw[:, i], b, self.vcc_v, self.emg_gain)[:, None]
        if self.acc_axes:
            acc = np.zeros((len(raw), 3))
            for j, axis in enumerate(("acc_x", "acc_y", "acc_z")):
                if axis in cols:
                    i, b = cols[axis]
                    acc[:, j] = acc_g(raw[:, i], b, self.cmin(axis), self.cmax(axis))
            out["acc"] = acc
        return out

    def describe(self, **device: Any) -> bytes:
        """The session description (first frame of the packet log): everything a decoder
        needs, so replay converts exactly as the live session did."""
        doc = {
            "profile": NAME,
            "fs_hz": self.fs_hz,
            "channels": self.channels,
            "resolution_bits": self.bits,
            "vcc_v": self.vcc_v,
            "emg_gain": self.emg_gain,
            "acc_cmin": {a: self.cmin(a) for a in self.acc_axes},
            "acc_cmax": {a: self.cmax(a) for a in self.acc_axes},
            **device,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_description(cls, data: bytes, where: str = "device info") -> tuple[BitalinoSettings, dict[str, Any]]:
        """Settings and device facts (version, state) from :meth:`describe`'s bytes."""
        try:
            doc = json.loads(bytes(data).decode())
            settings = cls(
                channels={str(k): str(v) for k, v in doc["channels"].items()},
                fs_hz=float(doc["fs_hz"]),
                vcc_v=float(doc.get("vcc_v", VCC_V)),
                emg_gain=float(doc.get("emg_gain", EMG_GAIN)),
                acc_cmin={k: float(v) for k, v in doc.get("acc_cmin", {}).items()},
                acc_cmax={k: float(v) for k, v in doc.get("acc_cmax", {}).items()},
            )
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError,
                AttributeError) as exc:
            raise RecordingError(f"the BITalino session description is unreadable ({exc})",
                                 where=where) from None
        known = {"profile", "fs_hz", "channels", "resolution_bits", "vcc_v", "emg_gain",
                 "acc_cmin", "acc_cmax"}
        return settings, {k: v for k, v in doc.items() if k not in known}


def device_info(settings: BitalinoSettings, facts: Mapping[str, Any] | None = None) -> DeviceInfo:
    """The streams the decoder delivers: EMG (id 1, 1 channel) and/or acceleration (id 0,
    3 channels) at the board's rate; the device clock is the frame counter."""
    streams = []
    if settings.port_of("emg"):
        streams.append(StreamInfo(1, "emg", 1, settings.fs_hz, "f64", 1.0))
    if settings.acc_axes:
        streams.append(StreamInfo(0, "acc", 3, settings.fs_hz, "f64", 1.0))
    if not streams:
        raise RecordingError("the BITalino channel map names neither emg nor an accelerometer axis")
    facts = dict(facts or {})
    return DeviceInfo(streams=tuple(streams), clock_hz=settings.fs_hz, boot_id=0,
                      firmware=str(facts.get("version", "")), model="BITalino (r)evolution",
                      protocol=0, extra=facts)


# -- decoder -------------------------------------------------------------------------------
class BitalinoDecoder:
    """Byte stream of BITalino frames -> sample blocks, with loss accounting.

    Notifications are appended to a byte buffer and cut into frames of the configured size.
    A frame is taken when its CRC-4 passes and its sequence number is the next one; a jump
    in the sequence (lost frames) or a CRC failure must be confirmed by the following frame
    (CRC and consecutive sequence) before the decoder re-locks, sliding one byte at a time,
    because a 4-bit CRC passes random bytes 1 time in 16. Lost frames are NaN, so frame *i*
    lands at index *i*. Within one connection the sequence counts gaps modulo 16: a run of 16
    or more lost frames (the MCU's UART buffer overflowing) is undercounted by a multiple of
    16. Across a reconnect (:meth:`link_event`) the board starts a new acquisition, and the
    frames it did not take meanwhile are sized from the host arrival clock (to within the
    arrival jitter, a few ms).

    ``stats`` counts *frames* as packets (the unit that carries a sequence number).
    """

    def __init__(self, settings: BitalinoSettings, facts: Mapping[str, Any] | None = None):
        self.settings = settings
        self.info = device_info(settings, facts)
        self.n = len(settings.channels)
        self.size = frame_size(self.n)
        self._buf = bytearray()
        self._seams: list[int] = []  # buffer offsets where one notification ended, unverified
        self._locked = True  # acquisition starts aligned, at sequence 0
        self._next_seq = 0
        self.next_index = 0  # frames delivered (received + NaN-filled)
        self.received = 0
        self.lost = 0
        self.malformed = 0  # bytes skipped while re-locking
        self.resyncs = 0
        self.ended = False
        self.clock = ClockMap()
        self.origin_device_s: float | None = 0.0
        self.restarts = 0
        self._restarted = False  # a reconnect happened; the next frames begin a new acquisition
        self._last_arrival: float | None = None

    # -- helpers ----------------------------------------------------------------------------
    def link_event(self, event: Mapping[str, Any], host_time_s: float | None = None) -> None:
        """A link event from the session or its log. After a reconnect (``connected`` with
        ``resume``) the board runs a new acquisition: its sequence restarts at 0, the bytes
        of a frame cut by the drop are garbage, and the frames it did not acquire while the
        link was down are sized from the host clock when the next frames arrive."""
        if event.get("event") == "connected" and event.get("resume"):
            self._buf.clear()
            self._seams.clear()
            self._locked = True
            self._next_seq = 0
            self._restarted = True

    def _restart_gap(self, n_first: int, host_time_s: float | None) -> int:
        """Frames not acquired between the last frame before a reconnect and the first
        ``n_first`` frames after it: host time elapsed between their arrivals, in device
        frames (through the fitted clock ratio, so a faster-than-real-time replay scales)."""
        if host_time_s is None or self._last_arrival is None:
            return 0
        c = self.clock
        slope = c._fit()[1] if c.n_pairs >= 2 else 1.0
        if not slope > 0:
            slope = 1.0
        frames = round((host_time_s - self._last_arrival) / slope * self.settings.fs_hz)
        return max(0, frames - n_first)

    def _note_arrival(self, last_index: int, host_time_s: float | None) -> None:
        if host_time_s is None:
            return
        self._last_arrival = host_time_s
        self.clock.add(last_index / self.settings.fs_hz, host_time_s)

    def _frames(self, start: int, count: int) -> NDArray[np.uint8]:
        raw = np.frombuffer(bytes(self._buf[start : start + count * self.size]), dtype=np.uint8)
        return raw.reshape(count, self.size)

    # -- decoding ---------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray, host_time_s: float | None = None) -> list[Block]:
        """Decode one notification; return the new sample blocks (possibly empty)."""
        if self._buf:
            self._seams.append(len(self._buf))
        self._buf.extend(data)
        runs: list[tuple[int, NDArray[np.int32]]] = []  # (lost frames before, raw values)
        pos = 0
        size = self.size
        while len(self._buf) - pos >= size:
            if self._locked:
                k = (len(self._buf) - pos) // size
                vals, seq, _dig, ok = decode_frames(self._frames(pos, k), self.n)
                expect = (self._next_seq + np.arange(k)) % 16
                good = ok & (seq == expect)
                m = k if good.all() else int(np.argmin(good))
                # A frame across a notification seam may be spliced from the bytes around a
                # lost notification: its CRC and sequence both pass 1 time in 256. Take it
                # only once the frame after it agrees (1 in 65536 then).
                wait = suspect = False
                seam = next((x - pos for x in self._seams if 0 < x - pos < m * size
                             and (x - pos) % size), None)
                if seam is not None:
                    js = seam // size
                    if js + 1 >= k:
                        m, wait = js, True
                    elif not good[js + 1]:
                        m, suspect = js, True
                if m:
                    self._take(vals[:m], int(seq[m - 1]), 0, runs)
                    pos += m * size
                    if not (wait or suspect):
                        continue
                if wait:
                    break
                if suspect:
                    self._locked = False
                    self.resyncs += 1
                    pos += 1
                    self.malformed += 1
                    continue
                # the frame at pos breaks the run: a sequence jump with a valid CRC is taken
                # if the next frame confirms it; anything else means re-locking
                if ok[0] and not self._straddles(pos):
                    if k < 2 and len(self._buf) - pos < 2 * size:
                        break  # wait for the confirming frame
                    if ok[1] and (seq[1] - seq[0]) % 16 == 1:
                        gap = (int(seq[0]) - self._next_seq) % 16
                        self._take(vals[:1], int(seq[0]), gap, runs)
                        pos += size
                        continue
                self._locked = False
                self.resyncs += 1
            # hunting: slide one byte at a time until two consecutive frames agree
            if len(self._buf) - pos < 2 * size:
                break
            pair = np.frombuffer(bytes(self._buf[pos : pos + 2 * size]), dtype=np.uint8)
            vals, seq, _dig, ok = decode_frames(pair.reshape(2, size), self.n)
            if ok.all() and (seq[1] - seq[0]) % 16 == 1 and not self._straddles(pos):
                self._locked = True
                gap = (int(seq[0]) - self._next_seq) % 16
                self._take(vals[:1], int(seq[0]), gap, runs)
                pos += size
            else:
                pos += 1
                self.malformed += 1
        del self._buf[:pos]
        self._seams = [x - pos for x in self._seams if x - pos > 0]
        if runs and self._restarted:
            self._restarted = False
            self.restarts += 1
            gap0, first = runs[0]
            n_new = sum(len(v) for _, v in runs)
            runs[0] = (gap0 + self._restart_gap(n_new, host_time_s), first)
        blocks = self._blocks(runs)
        if runs:
            self._note_arrival(self.next_index - 1, host_time_s)
        return blocks

    def _straddles(self, pos: int) -> bool:
        """Whether a frame at ``pos`` spans a notification seam. After a jump or a failure,
        such a frame may be the bytes before a lost notification spliced to the genuine tail
        (sequence number included) of a frame after it, which passes the CRC 1 time in 16
        and which the next frame would confirm: it is never taken."""
        return any(pos < x < pos + self.size for x in self._seams)

    def _take(self, vals: NDArray[np.int32], last_seq: int, gap: int,
              runs: list[tuple[int, NDArray[np.int32]]]) -> None:
        runs.append((gap, vals))
        self._next_seq = (last_seq + 1) % 16

    def _blocks(self, runs: list[tuple[int, NDArray[np.int32]]]) -> list[Block]:
        if not runs:
            return []
        parts: list[NDArray[np.float64]] = []
        start = self.next_index
        for gap, vals in runs:
            if gap:
                parts.append(np.full((gap, self.n), np.nan))
                self.lost += gap
            parts.append(vals.astype(np.float64))
            self.received += len(vals)
        raw = np.concatenate(parts)
        self.next_index += len(raw)
        nan = np.isnan(raw[:, 0])
        phys = self.settings.to_physical(np.nan_to_num(raw).astype(np.int32))
        blocks = []
        for st in self.info.streams:
            v = phys[st.kind]
            v[nan] = np.nan
            blocks.append(Block(st.kind, st.stream_id, start, v))
        return blocks

    # -- results ----------------------------------------------------------------------------
    @property
    def stats(self) -> PacketStats:
        by_stream = {st.kind: self.lost for st in self.info.streams}
        return PacketStats(
            received=self.received, lost=self.lost, duplicated=0,
            samples_received=self.received * len(self.info.streams),
            samples_lost=sum(by_stream.values()), samples_duplicated=0,
            samples_lost_by_stream=by_stream, malformed=self.malformed,
            discontinuities=0, drift_ppm=None,
        )

    def samples_seen(self, kind: str) -> int:
        return self.next_index if any(s.kind == kind for s in self.info.streams) else 0


def decoder_from_description(data: bytes, where: str = "device info") -> BitalinoDecoder:
    settings, facts = BitalinoSettings.from_description(data, where)
    return BitalinoDecoder(settings, facts)


def _info_from_description(data: bytes) -> DeviceInfo:
    settings, facts = BitalinoSettings.from_description(data)
    return device_info(settings, facts)


# -- the handshake -------------------------------------------------------------------------
async def open_session(client: Any, profile: DeviceProfile, deliver: Callable[[bytes], None],
                       first: bool) -> bytes | None:
    """Subscribe to Frames, stop any acquisition left running, read the version (and the
    state on firmware 2.0+), set the rate and start live mode with the channel mask.

    Every command is a write *with response*: the BT121 bridge forwards nothing else. After
    a reconnect the board is idle (its radio sent 0xFF when the link dropped), so the whole
    handshake runs again. Returns the session description on the first connection.
    """
    st: BitalinoSettings = profile.settings or BitalinoSettings()
    replies = bytearray()
    streaming = False
    got = asyncio.Event()

    def on_frames(_sender: Any, data: bytearray) -> None:
        if streaming:
            deliver(bytes(data))
        else:
            replies.extend(data)
            got.set()

    async def command(byte: int | bytes) -> None:
        if st.command_gap_s:
            await asyncio.sleep(st.command_gap_s)
        await client.write_gatt_char(COMMANDS_UUID, bytes([byte]) if isinstance(byte, int) else byte,
                                     response=True)

    async def reply(done: Callable[[bytes], bool]) -> bytes:
        async def wait() -> None:
            while not done(bytes(replies)):
                got.clear()
                await got.wait()

        await asyncio.wait_for(wait(), st.reply_timeout_s)
        return bytes(replies)

    await client.start_notify(FRAMES_UUID, on_frames)
    await command(CMD_STOP_IF_LIVE)  # a board left streaming by a host that died
    await asyncio.sleep(st.command_gap_s)
    replies.clear()
    await command(CMD_VERSION)
    try:
        version = parse_version(await reply(lambda b: b"BITalino" in b and b"\n" in b[b.find(b"BITalino"):]))
    except TimeoutError:
        raise TimeoutError("the BITalino did not answer the version command") from None
    facts: dict[str, Any] = {"version": version}
    try:
        major = float(version.split()[0])
    except ValueError:
        major = 0.0
    if major >= 4.2:  # "BITalino 2.0": the state command exists
        replies.clear()
        await command(CMD_STATE)
        try:
            raw = await reply(lambda b: len(b) >= (17 if major >= 5.2 else 16))
            facts["state"] = parse_state(raw[: 17 if major >= 5.2 else 16])
        except (TimeoutError, ValueError) as exc:
            logger.info("BITalino state not read: %s", exc)
    await command(rate_command(st.fs_hz))
    streaming = True
    await command(start_command(st.mask))
    return st.describe(**facts) if first else None


def configured(settings: BitalinoSettings) -> DeviceProfile:
    """The profile with the user's channel map and calibration."""
    import dataclasses

    return dataclasses.replace(PROFILE, settings=settings)


PROFILE = DeviceProfile(
    name=NAME,
    description="BITalino (r)evolution BLE board (PLUX): EMG and accelerometer sensors on "
                "analog ports A1-A6, user channel map (--channels)",
    service_uuid=SERVICE_UUID,
    info_uuid=None,
    control_uuid=COMMANDS_UUID,
    data_uuid=FRAMES_UUID,
    parse_info=_info_from_description,
    start=lambda resume: start_command(BitalinoSettings().mask),
    stop=stop_command,
    open_session=open_session,
    decoder_for=decoder_from_description,
    name_hint="bitalino",
    settings=BitalinoSettings(),
    streams="EMG (10-bit, ≈3.2 µV steps, ±1.64 mV) and accelerometer axes (one per analog "
            "port; the board kit has one axis on A5), as --channels maps them",
    rates="1000 Hz for every channel",
    detects="fasciculations and contractions (EMG); movement along the wired accelerometer "
            "axes (three axes: as the open profile; one axis: movement across it is missed)",
)
