"""Polar Measurement Data (PMD) protocol, accelerometer part: Polar H10 and Verity Sense.

Pure byte layouts (encoders for the emulated sensor, decoders for the host), no radio. Source:
Polar BLE SDK (``polarofficial/polar-ble-sdk``): ``BlePMDClient.kt``, ``PmdDataFrame.kt``,
``PmdSetting.kt``, ``PmdControlPointResponse.kt``, ``model/AccData.kt``,
``model/PmdTimeStampUtils.kt`` and the Polar Measurement Data specification.

* Control point (CP, read/write/indicate): reading it gives the feature bitmap; commands are
  ``[op][measurement type][settings TLV]``; replies arrive as indications
  ``[0xF0][op][type][status][more][params]``, continued in further indications while
  ``more`` is set.
* Data (notify): ``[type][u64 LE timestamp of the LAST sample, ns since 2000-01-01][frame
  type | 0x80 if delta-compressed][content]``. ACC samples are in mG.
* No sequence number: loss shows only as a timestamp step larger than the frame's samples
  span (:class:`PolarAccDecoder`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.ble.profiles.wearable import AccBlock, samples_lost_from_gap
from toetwitch.drivers.errors import RecordingError

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
#: The SDK requests an ATT MTU of at least this; smaller MTUs got no CP replies (SDK issue #287).
MIN_MTU = 232

# measurement types (PmdMeasurementType)
MEAS_ECG, MEAS_PPG, MEAS_ACC, MEAS_PPI = 0, 1, 2, 3
MEAS_GYRO, MEAS_MAG, MEAS_SDK_MODE = 5, 6, 9

# control-point opcodes
OP_GET_SETTINGS = 0x01
OP_START = 0x02
OP_STOP = 0x03
OP_GET_SDK_MODE_SETTINGS = 0x04
OP_GET_STATUS = 0x05
#: first byte of every CP reply
CP_RESPONSE = 0xF0
#: first byte of the unsolicited "online measurement stopped" indication
CP_ONLINE_MEASUREMENT_STOPPED = 0x01

STATUS_NAMES = {
    0: "success", 1: "invalid op code", 2: "invalid measurement type", 3: "not supported",
    4: "invalid length", 5: "invalid parameter", 6: "already in state", 7: "invalid resolution",
    8: "invalid sample rate", 9: "invalid range", 10: "invalid MTU",
    11: "invalid number of channels", 12: "invalid state", 13: "device in charger",
    14: "disk full",
}
STATUS_SUCCESS = 0
STATUS_INVALID_MTU = 10

# settings TLV: type -> struct format of one value (PmdSetting)
SETTING_SAMPLE_RATE = 0
SETTING_RESOLUTION = 1
SETTING_RANGE = 2
SETTING_RANGE_MILLIUNIT = 3
SETTING_CHANNELS = 4
SETTING_FACTOR = 5
_SETTING_FORMAT = {0: "<H", 1: "<H", 2: "<H", 3: "<I", 4: "<B", 5: "<f"}

#: feature bitmap (byte 1) bit per measurement type
_FEATURE_BITS_1 = {MEAS_ECG: 0x01, MEAS_PPG: 0x02, MEAS_ACC: 0x04, MEAS_PPI: 0x08,
                   MEAS_GYRO: 0x20, MEAS_MAG: 0x40}
_FEATURE_SDK_MODE = 0x02  # byte 2

#: data frame header: type, u64 timestamp, frame type
FRAME_HEADER = struct.Struct("<BQB")
COMPRESSED = 0x80
#: raw ACC frame types: bytes per value (int8, int16, int24)
RAW_ACC_BYTES = {0: 1, 1: 2, 2: 3}
#: Polar's epoch (2000-01-01T00:00:00Z) in Unix seconds.
POLAR_EPOCH_UNIX_S = 946_684_800.0

#: What each device offers for ACC (Polar BLE SDK README and SdkModeExplained: H10 25/50/100/200 Hz ±2/4/8 g;
#: Verity Sense 52 Hz, 26-416 Hz in SDK mode, ±2/4/8/16 g), 16-bit.
H10_ACC = {"sample_rate_hz": (25, 50, 100, 200), "range_g": (2, 4, 8), "resolution_bits": (16,)}
VERITY_ACC = {"sample_rate_hz": (26, 52, 104, 208, 416), "range_g": (2, 4, 8, 16),
              "resolution_bits": (16,)}


# --------------------------------------------------------------------------------------------
# feature read
# --------------------------------------------------------------------------------------------
def encode_features(types: frozenset[int] | set[int], sdk_mode: bool = False) -> bytes:
    """The CP read value: ``0x0F``, then the measurement-type bitmaps (H10: ``0f 05 00``)."""
    b1 = 0
    for t in types:
        b1 |= _FEATURE_BITS_1.get(t, 0)
    return bytes([0x0F, b1, _FEATURE_SDK_MODE if sdk_mode else 0])


def decode_features(value: bytes) -> tuple[frozenset[int], bool]:
    """Measurement types the device offers and whether it has SDK mode, from the CP read."""
    if len(value) < 2 or value[0] != 0x0F:
        raise RecordingError(f"Polar feature read {value.hex(' ')!r} does not start with 0x0F",
                             where="PMD control point")
    types = frozenset(t for t, bit in _FEATURE_BITS_1.items() if value[1] & bit)
    return types, len(value) > 2 and bool(value[2] & _FEATURE_SDK_MODE)


# --------------------------------------------------------------------------------------------
# settings and control-point commands
# --------------------------------------------------------------------------------------------
def encode_settings(settings: dict[int, tuple[float, ...]]) -> bytes:
    """Settings TLV ``[type][count][count × value]`` in ascending type order."""
    out = bytearray()
    for t in sorted(settings):
        vals = settings[t]
        out += bytes([t, len(vals)])
        for v in vals:
            out += struct.pack(_SETTING_FORMAT[t], v if t == SETTING_FACTOR else int(v))
    return bytes(out)


def decode_settings(params: bytes) -> dict[int, tuple[float, ...]]:
    """Parse a settings TLV; unknown types or a truncated value are a :class:`RecordingError`."""
    out: dict[int, tuple[float, ...]] = {}
    i = 0
    while i < len(params):
        if i + 2 > len(params):
            raise RecordingError(f"settings cut off at byte {i}", where="PMD settings")
        t, count = params[i], params[i + 1]
        fmt = _SETTING_FORMAT.get(t)
        if fmt is None:
            raise RecordingError(f"unknown setting type {t} at byte {i}", where="PMD settings")
        size = struct.calcsize(fmt)
        end = i + 2 + count * size
        if end > len(params):
            raise RecordingError(f"setting {t} needs {count} values, bytes end at {len(params)}",
                                 where="PMD settings")
        out[t] = tuple(struct.unpack_from(fmt, params, i + 2 + k * size)[0] for k in range(count))
        i = end
    return out


def get_settings_command(measurement: int = MEAS_ACC) -> bytes:
    """GET_MEASUREMENT_SETTINGS for ``measurement``."""
    return bytes([OP_GET_SETTINGS, measurement])


def start_command(sample_rate_hz: int, resolution_bits: int, range_g: int,
                  channels: int | None = None, measurement: int = MEAS_ACC) -> bytes:
    """REQUEST_MEASUREMENT_START for an online ACC stream (one value per setting; the SDK
    never sends FACTOR). H10 200 Hz/16 bit/±8 g = ``02 02 00 01 C8 00 01 01 10 00 02 01 08 00``."""
    s: dict[int, tuple[float, ...]] = {SETTING_SAMPLE_RATE: (sample_rate_hz,),
                                       SETTING_RESOLUTION: (resolution_bits,),
                                       SETTING_RANGE: (range_g,)}
    if channels is not None:
        s[SETTING_CHANNELS] = (channels,)
    return bytes([OP_START, measurement]) + encode_settings(s)


def stop_command(measurement: int = MEAS_ACC) -> bytes:
    """STOP for ``measurement`` (``03 02`` for ACC)."""
    return bytes([OP_STOP, measurement])


@dataclass(frozen=True)
class CpCommand:
    """A control-point write as the sensor sees it."""

    op: int
    measurement: int
    recording_type: int  # 0 online stream, 1 offline recording (bit 7 of the type byte)
    settings: dict[int, tuple[float, ...]] = field(default_factory=dict)


def decode_command(value: bytes) -> CpCommand:
    """Parse a CP write (what an emulated sensor receives)."""
    if len(value) < 2:
        raise RecordingError(f"PMD command {value.hex(' ')!r} is shorter than 2 bytes",
                             where="PMD control point")
    settings = decode_settings(value[2:]) if value[0] == OP_START else {}
    return CpCommand(value[0], value[1] & 0x7F, value[1] >> 7, settings)


# --------------------------------------------------------------------------------------------
# control-point replies
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpResponse:
    """A (reassembled) CP reply."""

    op: int
    measurement: int
    status: int
    params: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_SUCCESS

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"status {self.status}")

    def settings(self) -> dict[int, tuple[float, ...]]:
        return decode_settings(self.params)

    def factor(self) -> float:
        """Scale of compressed samples (FACTOR in a START reply); 1.0 when absent."""
        f = self.settings().get(SETTING_FACTOR) if self.params else None
        return float(f[0]) if f else 1.0


def encode_cp_response(op: int, measurement: int, status: int, params: bytes = b"",
                       max_value_len: int | None = None) -> list[bytes]:
    """Indications carrying one reply, split so none exceeds ``max_value_len`` bytes (ATT MTU
    − 3); every indication but the last has ``more`` = 1. Continuations repeat the 5-byte header."""
    head = 5
    room = len(params) if max_value_len is None else max_value_len - head
    if room <= 0 and params:
        raise ValueError(f"value length {max_value_len} leaves no room for reply parameters")
    chunks = [params[i: i + room] for i in range(0, len(params), room)] if params else [b""]
    return [bytes([CP_RESPONSE, op, measurement, status, int(k < len(chunks) - 1)]) + c
            for k, c in enumerate(chunks)]


class CpResponseAssembler:
    """Joins CP indications into replies: while ``more`` ≠ 0, the next indication's bytes from
    offset 5 continue the parameters."""

    def __init__(self) -> None:
        self._pending: CpResponse | None = None

    def push(self, value: bytes) -> CpResponse | None:
        """The reply once complete, else None. Unsolicited or malformed values raise."""
        if len(value) < 4 or value[0] != CP_RESPONSE:
            raise RecordingError(f"CP indication {value.hex(' ')!r} is not a reply",
                                 where="PMD control point")
        op, meas, status = value[1], value[2], value[3]
        more = len(value) > 4 and value[4] != 0
        params = value[5:]
        if self._pending is not None:
            params = self._pending.params + params
        resp = CpResponse(op, meas, status, bytes(params))
        if more:
            self._pending = resp
            return None
        self._pending = None
        return resp


def decode_measurement_stopped(value: bytes) -> tuple[int, ...] | None:
    """Types in an unsolicited ONLINE_MEASUREMENT_STOPPED indication, or None for other values."""
    if value and value[0] == CP_ONLINE_MEASUREMENT_STOPPED:
        return tuple(value[1:])
    return None


# --------------------------------------------------------------------------------------------
# data frames
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PmdFrame:
    """One data notification."""

    measurement: int
    timestamp_ns: int  # of the last sample, ns since 2000-01-01 on the device clock
    frame_type: int
    compressed: bool
    content: bytes


def parse_frame(value: bytes) -> PmdFrame:
    if len(value) < FRAME_HEADER.size:
        raise RecordingError(f"PMD frame of {len(value)} bytes is shorter than its "
                             f"{FRAME_HEADER.size}-byte header", where="PMD data")
    meas, ts, ft = FRAME_HEADER.unpack_from(value)
    return PmdFrame(meas & 0x3F, ts, ft & 0x7F, bool(ft & COMPRESSED), bytes(value[FRAME_HEADER.size:]))


def encode_frame(frame: PmdFrame) -> bytes:
    ft = frame.frame_type | (COMPRESSED if frame.compressed else 0)
    return FRAME_HEADER.pack(frame.measurement, frame.timestamp_ns, ft) + frame.content


def _signed(values: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    """Sign-extend ``bits``-wide two's-complement values."""
    sign = np.int64(1) << (bits - 1)
    return (values ^ sign) - sign


def decode_raw(content: bytes, bytes_per_value: int, channels: int = 3) -> NDArray[np.int64]:
    """Raw frame: signed LE values, channel-interleaved. Shape (n, channels)."""
    step = bytes_per_value * channels
    if len(content) % step:
        raise RecordingError(f"raw frame content of {len(content)} bytes is not a whole number "
                             f"of {step}-byte samples", where="PMD data")
    b = np.frombuffer(content, np.uint8).reshape(-1, bytes_per_value).astype(np.int64)
    v = (b << (8 * np.arange(bytes_per_value, dtype=np.int64))).sum(axis=1)
    return _signed(v, 8 * bytes_per_value).reshape(-1, channels)


def encode_raw(values: NDArray[np.int64], bytes_per_value: int) -> bytes:
    """Inverse of :func:`decode_raw`; values must fit the width."""
    v = np.asarray(values, np.int64).ravel()
    lim = 1 << (8 * bytes_per_value - 1)
    if len(v) and (v.min() < -lim or v.max() >= lim):
        raise ValueError(f"value out of the int{8 * bytes_per_value} range")
    u = v & ((1 << (8 * bytes_per_value)) - 1)
    b = (u[:, None] >> (8 * np.arange(bytes_per_value, dtype=np.int64))) & 0xFF
    return b.astype(np.uint8).tobytes()


def _bits_lsb_first(data: bytes, nbits: int) -> NDArray[np.uint8]:
    return np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[:nbits]


def decode_delta(content: bytes, channels: int, resolution_bits: int) -> NDArray[np.int64]:
    """Delta-compressed frame: a reference sample of ``channels`` × ⌈res/8⌉ signed LE bytes, then
    blocks ``[bit_width][count][⌈count·channels·bit_width/8⌉ bytes]`` of LSB-first bit-packed,
    channel-interleaved, sign-extended deltas; each sample = previous + delta. Shape (n, channels)."""
    rb = math.ceil(resolution_bits / 8)
    ref_len = channels * rb
    if len(content) < ref_len:
        raise RecordingError(f"delta frame of {len(content)} bytes is shorter than its "
                             f"{ref_len}-byte reference sample", where="PMD data")
    ref = _signed(decode_raw(content[:ref_len], rb, channels)[0] & ((1 << resolution_bits) - 1),
                  resolution_bits)
    deltas = []
    i = ref_len
    while i < len(content):
        if i + 2 > len(content):
            raise RecordingError(f"delta block header cut off at byte {i}", where="PMD data")
        width, count = content[i], content[i + 1]
        nbits = width * count * channels
        nbytes = math.ceil(nbits / 8)
        if width == 0 or i + 2 + nbytes > len(content):
            raise RecordingError(f"delta block at byte {i} (width {width}, {count} samples) does "
                                 f"not fit the {len(content)}-byte frame", where="PMD data")
        bits = _bits_lsb_first(content[i + 2: i + 2 + nbytes], nbits).reshape(-1, width)
        vals = (bits.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=1)
        deltas.append(_signed(vals, width).reshape(count, channels))
        i += 2 + nbytes
    d = np.concatenate([ref[None, :]] + deltas) if deltas else ref[None, :]
    return np.cumsum(d, axis=0)


def _width(d: NDArray[np.int64]) -> int:
    """Smallest two's-complement width holding every delta (at least 1 bit)."""
    hi = int(max(d.max(initial=0), -d.min(initial=0) - 1))
    return max(1, hi.bit_length() + 1)


def encode_delta(samples: NDArray[np.int64], resolution_bits: int, block_samples: int = 255) -> bytes:
    """Inverse of :func:`decode_delta`: reference sample, then blocks of up to ``block_samples``
    deltas, each block at the narrowest width that holds its deltas."""
    x = np.asarray(samples, np.int64)
    if x.ndim != 2 or not len(x):
        raise ValueError("samples must be a non-empty (n, channels) array")
    lim = 1 << (resolution_bits - 1)
    if x.min() < -lim or x.max() >= lim:
        raise ValueError(f"sample out of the {resolution_bits}-bit range")
    out = bytearray(encode_raw(x[0], math.ceil(resolution_bits / 8)))
    d = np.diff(x, axis=0)
    for a in range(0, len(d), block_samples):
        blk = d[a: a + block_samples]
        w = _width(blk)
        u = blk.ravel() & ((1 << w) - 1)
        bits = ((u[:, None] >> np.arange(w, dtype=np.int64)) & 1).astype(np.uint8).ravel()
        out += bytes([w, len(blk)]) + np.packbits(bits, bitorder="little").tobytes()
    return bytes(out)


def acc_frame_mg(frame: PmdFrame, factor: float = 1.0) -> NDArray[np.float64]:
    """ACC samples of one frame in mG, shape (n, 3) (``model/AccData.kt``): raw types 0/1/2 are
    int8/16/24 mG; compressed type 0 is 16-bit in g × FACTOR (→ ×1000 for mG); compressed type 1
    is 16-bit mG × FACTOR. Other types raise :class:`RecordingError`. Unlike the SDK, values are
    not truncated to whole mG."""
    if frame.measurement != MEAS_ACC:
        raise RecordingError(f"frame of measurement type {frame.measurement} is not ACC",
                             where="PMD data")
    if not frame.compressed:
        if frame.frame_type not in RAW_ACC_BYTES:
            raise RecordingError(f"raw ACC frame type {frame.frame_type} is not supported",
                                 where="PMD data")
        return decode_raw(frame.content, RAW_ACC_BYTES[frame.frame_type]).astype(np.float64)
    if frame.frame_type not in (0, 1):
        raise RecordingError(f"compressed ACC frame type {frame.frame_type} is not supported",
                             where="PMD data")
    v = decode_delta(frame.content, 3, 16).astype(np.float64)
    if frame.frame_type == 0:
        return v * factor * 1000.0
    return v * factor if factor != 1.0 else v


def sample_times_ns(timestamp_ns: int, n: int, fs_hz: float,
                    previous_ns: int | None) -> NDArray[np.float64]:
    """Sample times of a frame (``PmdTimeStampUtils``): for the first frame (``previous_ns`` None)
    step back from the last-sample stamp at 1/fs; for later frames spread the samples evenly
    after the previous frame's stamp, Δ = (this − previous)/n. The last time is the stamp."""
    if previous_ns is None:
        step = 1e9 / fs_hz
        return timestamp_ns - step * np.arange(n - 1, -1, -1, dtype=np.float64)
    step = (timestamp_ns - previous_ns) / n
    return previous_ns + step * np.arange(1, n + 1, dtype=np.float64)


class PolarAccDecoder:
    """ACC data notifications → :class:`AccBlock` s in g with device times and loss.

    ``fs_hz`` is the rate the START command asked for; ``factor`` the FACTOR of its reply.
    A frame whose stamp lies further after the previous one than its samples span (beyond the
    slack of :func:`samples_lost_from_gap`) follows lost frames: its times are then stepped back
    from its own stamp at the nominal rate, and the excess is counted in ``lost_samples``. A
    stamp that does not advance is a clock reset (``discontinuity``): no loss can be measured.
    """

    loss_measurable = True

    def __init__(self, fs_hz: float, factor: float = 1.0) -> None:
        if fs_hz <= 0:
            raise ValueError("fs_hz must be positive")
        self.fs_hz = float(fs_hz)
        self.factor = float(factor)
        self.previous_ns: int | None = None
        self.lost_samples = 0
        self.discontinuities = 0
        self.frames = 0

    def push(self, value: bytes) -> AccBlock:
        frame = parse_frame(value)
        mg = acc_frame_mg(frame, self.factor)
        n = len(mg)
        lost, disc = 0, False
        prev = self.previous_ns
        if prev is not None:
            if frame.timestamp_ns <= prev:
                disc, prev = True, None
            else:
                lost = samples_lost_from_gap((frame.timestamp_ns - prev) * self.fs_hz / 1e9, n)
                if lost:
                    prev = None
        t_ns = sample_times_ns(frame.timestamp_ns, n, self.fs_hz, prev) if n else np.empty(0)
        self.previous_ns = frame.timestamp_ns
        self.lost_samples += lost
        self.discontinuities += disc
        self.frames += 1
        return AccBlock(mg / 1000.0, t_ns / 1e9, lost, disc)


def _fitting_delta_samples(x: NDArray[np.int64], room: int) -> int:
    """Samples (reference + up to 255 deltas in one block) whose 16-bit delta frame fits ``room``."""
    if len(x) < 2:
        return len(x)
    d = np.abs(np.diff(x, axis=0))
    # width needed per delta: bit_length(|d|) + 1 covers both signs of that magnitude
    w = np.maximum.accumulate(np.floor(np.log2(np.maximum(d.max(axis=1), 1))).astype(int) + 2)
    k = np.arange(1, len(d) + 1)
    size = 6 + 2 + np.ceil(k * 3 * w / 8)
    fits = np.flatnonzero(size <= room)
    return int(fits[-1]) + 2 if len(fits) else 1


def encode_acc_frames(acc_mg: NDArray[np.int64], fs_hz: float, t0_ns: int,
                      max_value_len: int, compressed: bool = True, factor: float = 1.0,
                      samples_per_frame: int | None = None) -> list[tuple[int, bytes]]:
    """Cut whole-mG ACC samples into data notifications (what an emulated sensor sends).

    Sample ``i`` is at ``t0_ns + i/fs``; each frame carries the stamp of its last sample. Raw
    frames are type 1 (int16); compressed frames are type 1 with values ``acc_mg / factor``
    (exactly representable values are the caller's business). Returns (index of the frame's
    first sample, bytes) pairs, each at most ``max_value_len`` bytes.
    """
    x = np.asarray(acc_mg, np.int64).reshape(-1, 3)
    if compressed and factor != 1.0:
        x = np.round(x / factor).astype(np.int64)
    room = max_value_len - FRAME_HEADER.size
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(x):
        if samples_per_frame is not None:
            n = min(samples_per_frame, len(x) - i)
        elif not compressed:
            n = min(room // 6, len(x) - i)
        else:  # one delta block: the most samples whose block still fits
            n = _fitting_delta_samples(x[i: i + 256], room)
        if n < 1:
            raise ValueError(f"value length {max_value_len} leaves no room for one sample")
        content = encode_delta(x[i: i + n], 16) if compressed else encode_raw(x[i: i + n], 2)
        ts = t0_ns + round((i + n - 1) * 1e9 / fs_hz)
        out.append((i, encode_frame(PmdFrame(MEAS_ACC, ts, 1, compressed, content))))
        i += n
    return out
