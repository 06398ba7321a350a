"""The open toetwitch foot-sensor GATT profile, version 1 (docs/protocol.md).

One primary service with three characteristics:

* **Info** (read, long read, <= 512 B): UTF-8 JSON describing the device and its streams
  (:class:`DeviceInfo`), so the host hard-codes nothing about rates or scales.
* **Control point** (write with response): ``[opcode, params...]`` (:func:`start_command`,
  :func:`stop_command`, :func:`set_rate_command`). A bad command is refused with an ATT error.
* **Data** (notify): stream packets, see :mod:`toetwitch.drivers.ble.codec` for the 12-byte header.

This module is pure: byte layouts and their parsing, no radio.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from toetwitch.drivers.errors import RecordingError

PROTOCOL_VERSION = 1

#: 128-bit vendor base; the 3rd and 4th hex digits of the first group name the attribute.
_BASE = "7e7a{:04x}-3c1b-4d5e-9f60-8b2a1d0ce5f1"
SERVICE_UUID = _BASE.format(0x0001)
INFO_UUID = _BASE.format(0x0002)
CONTROL_UUID = _BASE.format(0x0003)
DATA_UUID = _BASE.format(0x0004)

#: Stream ids carried in the packet header.
STREAM_ACC = 0
STREAM_EMG = 1
STREAM_STATUS = 0x7F

#: Control-point opcodes.
OP_START = 0x01
OP_STOP = 0x02
OP_SET_RATE = 0x03

#: START modes: a new session restarts ``seq``/``sample_index`` at 0; resume continues them.
START_NEW = 0
START_RESUME = 1

#: Status packet codes (first payload byte of a stream-0x7F packet). END lists where each
#: stream ended; when the list does not fit one packet, all but the last say END_MORE.
STATUS_END = 0x01
STATUS_END_MORE = 0x02

#: Sample formats: name -> (bytes per sample, struct/numpy kind). ``f32``/``f64`` exist for
#: emulators and lossless replay of float recordings; firmware should send ``i16``/``i24``.
SAMPLE_FORMATS: dict[str, int] = {"i16": 2, "i24": 3, "f32": 4, "f64": 8}

#: Stream kinds the pipeline understands, and the unit their scale converts to.
KIND_UNITS = {"emg": "uV", "acc": "g"}

#: Advertising interval of the emulated sensor and the recommended one for firmware (ms).
ADVERTISING_INTERVAL_MS = 20.0


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the device.

    Parameters
    ----------
    stream_id : int
        Id in the packet header (0..0x7E).
    kind : str
        ``"emg"`` or ``"acc"``.
    channels : int
        Values per sample (1 for EMG, 3 for acceleration x, y, z).
    fs_hz : float
        Nominal sample rate in Hz.
    sample_format : str
        One of :data:`SAMPLE_FORMATS`.
    scale : float
        Physical units per LSB (µV for EMG, g for acceleration); 1.0 for float formats.
    """

    stream_id: int
    kind: str
    channels: int
    fs_hz: float
    sample_format: str = "i16"
    scale: float = 1.0

    @property
    def unit(self) -> str:
        return KIND_UNITS[self.kind]

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample of all channels."""
        return self.channels * SAMPLE_FORMATS[self.sample_format]


@dataclass(frozen=True)
class DeviceInfo:
    """Content of the Info characteristic.

    ``clock_hz`` is the tick rate of the device clock used in packet timestamps; ``boot_id``
    changes at every power-up so the host can tell a restarted device from a lost packet.
    ``extra`` keeps unknown keys (firmware may add its own).
    """

    streams: tuple[StreamInfo, ...]
    clock_hz: float = 1_000_000.0
    boot_id: int = 0
    firmware: str = ""
    model: str = ""
    protocol: int = PROTOCOL_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def stream(self, kind: str) -> StreamInfo | None:
        """The first stream of ``kind`` (``"emg"``/``"acc"``), or None."""
        return next((s for s in self.streams if s.kind == kind), None)

    def by_id(self) -> dict[int, StreamInfo]:
        return {s.stream_id: s for s in self.streams}


def encode_info(info: DeviceInfo) -> bytes:
    """Serialise :class:`DeviceInfo` to the Info characteristic's compact JSON."""
    doc: dict[str, Any] = dict(info.extra)
    doc.update(
        {
            "protocol": info.protocol,
            "model": info.model,
            "firmware": info.firmware,
            "boot_id": info.boot_id,
            "clock_hz": info.clock_hz,
            "streams": [
                {
                    "id": s.stream_id,
                    "kind": s.kind,
                    "channels": s.channels,
                    "fs_hz": s.fs_hz,
                    "format": s.sample_format,
                    "scale": s.scale,
                    "unit": s.unit,
                }
                for s in info.streams
            ],
        }
    )
    data = json.dumps(doc, separators=(",", ":")).encode()
    if len(data) > 512:
        raise ValueError(f"info is {len(data)} bytes; GATT values hold at most 512")
    return data


def decode_info(data: bytes | bytearray, where: str = "Info characteristic") -> DeviceInfo:
    """Parse the Info characteristic; :class:`RecordingError` names what is wrong."""
    try:
        doc = json.loads(bytes(data).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"device info is not UTF-8 JSON ({exc})", where=where) from None
    if not isinstance(doc, dict):
        raise RecordingError("device info must be a JSON object", where=where)
    protocol = doc.get("protocol")
    if protocol != PROTOCOL_VERSION:
        raise RecordingError(
            f"device speaks profile version {protocol!r}; this toetwitch reads version "
            f"{PROTOCOL_VERSION}",
            where=where,
        )
    streams = []
    for i, s in enumerate(doc.get("streams") or []):
        try:
            st = StreamInfo(
                stream_id=int(s["id"]),
                kind=str(s["kind"]),
                channels=int(s["channels"]),
                fs_hz=float(s["fs_hz"]),
                sample_format=str(s.get("format", "i16")),
                scale=float(s.get("scale", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f"stream {i} lacks or mangles {exc}", where=where) from None
        if st.kind not in KIND_UNITS:
            raise RecordingError(f"stream {i} has unknown kind {st.kind!r}", where=where)
        if st.sample_format not in SAMPLE_FORMATS:
            raise RecordingError(
                f"stream {i} has unknown sample format {st.sample_format!r}", where=where
            )
        if not 0 <= st.stream_id < STREAM_STATUS or st.channels < 1 or st.fs_hz <= 0:
            raise RecordingError(f"stream {i} has an invalid id, channel count or rate", where=where)
        streams.append(st)
    if not streams:
        raise RecordingError("device info lists no streams", where=where)
    known = {"protocol", "model", "firmware", "boot_id", "clock_hz", "streams"}
    return DeviceInfo(
        streams=tuple(streams),
        clock_hz=float(doc.get("clock_hz", 1_000_000.0)),
        boot_id=int(doc.get("boot_id", 0)),
        firmware=str(doc.get("firmware", "")),
        model=str(doc.get("model", "")),
        protocol=int(protocol),
        extra={k: v for k, v in doc.items() if k not in known},
    )


def start_command(stream_mask: int = 0xFF, mode: int = START_NEW) -> bytes:
    """START: ``[0x01, stream_mask, mode]``; bit *i* of the mask enables stream id *i*."""
    return bytes([OP_START, stream_mask & 0xFF, mode])


def stop_command() -> bytes:
    """STOP: ``[0x02]``. The device stops notifying but keeps its counters."""
    return bytes([OP_STOP])


def set_rate_command(stream_id: int, fs_hz: float) -> bytes:
    """SET_RATE: ``[0x03, stream_id, u32 LE rate in mHz]``; takes effect at the next START."""
    return struct.pack("<BBI", OP_SET_RATE, stream_id, round(fs_hz * 1000))


@dataclass(frozen=True)
class ControlCommand:
    """A parsed control-point write."""

    opcode: int
    stream_mask: int = 0xFF
    mode: int = START_NEW
    stream_id: int = 0
    fs_hz: float = 0.0


def parse_command(data: bytes | bytearray) -> ControlCommand:
    """Parse a control-point write (device side); ``ValueError`` for a malformed command."""
    data = bytes(data)
    if not data:
        raise ValueError("empty command")
    op = data[0]
    if op == OP_START:
        mask = data[1] if len(data) > 1 else 0xFF
        mode = data[2] if len(data) > 2 else START_NEW
        if mode not in (START_NEW, START_RESUME):
            raise ValueError(f"unknown START mode {mode}")
        return ControlCommand(OP_START, stream_mask=mask, mode=mode)
    if op == OP_STOP:
        return ControlCommand(OP_STOP)
    if op == OP_SET_RATE:
        if len(data) != 6:
            raise ValueError("SET_RATE takes 6 bytes")
        _, sid, mhz = struct.unpack("<BBI", data)
        return ControlCommand(OP_SET_RATE, stream_id=sid, fs_hz=mhz / 1000)
    raise ValueError(f"unknown opcode 0x{op:02x}")
