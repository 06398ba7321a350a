"""The raw packet log (``.ttlog``): every notification a live session received, bit for bit.

Append-only, framed and checksummed, so a process killed at any instant (``kill -9``, power
loss after the last flush) leaves a file readable up to its last complete frame. Replaying
the log runs the same :class:`~toetwitch.drivers.ble.codec.Decoder` over the same packets in the same
order as the live session did, so it yields the same samples, NaN gaps included.

Layout (little-endian; docs/protocol.md)::

    file header (16 B):  magic b"TTLOG\\r\\n\\x1a" | u32 format version (1) | u32 CRC-32 of the 12 B before
    frame:               u16 sync 0x7EF7 | u8 type | u8 reserved (0) | u32 payload length
                         | u64 host time (ns since the Unix epoch) | payload | u32 CRC-32
                         (the CRC covers type .. payload, i.e. bytes 2 .. 16 + length)

Frame types: 1 device Info (raw bytes of the Info characteristic), 2 packet (raw bytes of one
notification), 3 event (UTF-8 JSON: session start, connect, disconnect, ...), 4 end (UTF-8
JSON written on a clean stop).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from toetwitch.drivers.ble.codec import Block
from toetwitch.drivers.ble.decoding import SessionDecoder
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.base import (
    Chunk,
    ReaderWarning,
    RecordingInfo,
    RecordingSource,
    rechunk,
)
from toetwitch.drivers.recording import Recording

logger = logging.getLogger("toetwitch")

MAGIC = b"TTLOG\r\n\x1a"
FORMAT_VERSION = 1
FILE_HEADER = struct.Struct("<8sII")  # 16 bytes
FRAME_HEAD = struct.Struct("<HBBIQ")  # 16 bytes
FRAME_CRC = struct.Struct("<I")
SYNC = 0x7EF7
MAX_PAYLOAD = 1 << 20  # a notification is <= 512 B; anything huge is corruption

FRAME_INFO = 1
FRAME_PACKET = 2
FRAME_EVENT = 3
FRAME_END = 4
FRAME_TYPES = {FRAME_INFO, FRAME_PACKET, FRAME_EVENT, FRAME_END}


def _file_header() -> bytes:
    head = MAGIC + struct.pack("<I", FORMAT_VERSION)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_frame(frame_type: int, payload: bytes, host_time_ns: int) -> bytes:
    """One frame (header, payload, CRC) as written to the log."""
    head = FRAME_HEAD.pack(SYNC, frame_type, 0, len(payload), host_time_ns)
    crc = zlib.crc32(payload, zlib.crc32(head[2:]))
    return head + payload + FRAME_CRC.pack(crc)


class PacketLogWriter:
    """Append frames to a new ``.ttlog`` file.

    Each frame is handed to the kernel with a single ``write`` call, so a killed process
    leaves at most one partial frame at the end; ``fsync`` runs every ``sync_every_s``
    seconds and on :meth:`close` to survive power loss too.

    Parameters
    ----------
    path : str or Path
        The log to create; an existing file is never overwritten.
    sync_every_s : float
        Seconds between ``fsync`` calls (0 = after every frame).
    """

    def __init__(self, path: str | Path, sync_every_s: float = 5.0):
        self.path = Path(path)
        try:
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644
            )
        except FileExistsError:
            raise RecordingError("the packet log already exists; choose another name", path) from None
        except OSError as exc:
            raise RecordingError(f"cannot create the packet log ({exc.strerror})", path) from None
        self._sync_every_s = sync_every_s
        self._last_sync = time.monotonic()
        self.frames = 0
        self.bytes_written = 0
        self._write(_file_header())

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError("the packet log is closed")
        view = memoryview(data)
        while view:  # a regular file takes it all at once; the loop is for the odd short write
            n = os.write(self._fd, view)
            view = view[n:]
        self.bytes_written += len(data)
        now = time.monotonic()
        if now - self._last_sync >= self._sync_every_s:
            os.fsync(self._fd)
            self._last_sync = now

    def write_frame(self, frame_type: int, payload: bytes, host_time_ns: int | None = None) -> None:
        """Append one frame; ``host_time_ns`` defaults to now (Unix epoch, ns)."""
        t = time.time_ns() if host_time_ns is None else host_time_ns
        self._write(encode_frame(frame_type, bytes(payload), t))
        self.frames += 1

    def write_info(self, info_bytes: bytes, host_time_ns: int | None = None) -> None:
        self.write_frame(FRAME_INFO, info_bytes, host_time_ns)

    def write_packet(self, data: bytes, host_time_ns: int | None = None) -> None:
        self.write_frame(FRAME_PACKET, data, host_time_ns)

    def write_event(self, event: dict[str, Any], host_time_ns: int | None = None) -> None:
        self.write_frame(FRAME_EVENT, json.dumps(event, default=str).encode(), host_time_ns)

    def close(self, end: dict[str, Any] | None = None) -> None:
        """Write the end frame (a clean stop) and close. Safe to call twice."""
        if self._fd is None:
            return
        try:
            if end is not None:
                self.write_frame(FRAME_END, json.dumps(end, default=str).encode())
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PacketLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Frame:
    """One frame read back: its type, host time (ns since the Unix epoch), payload, offset."""

    frame_type: int
    host_time_ns: int
    payload: bytes
    offset: int


@dataclass(frozen=True)
class Skip:
    """A damaged stretch that reading stepped over: ``nbytes`` bytes from byte ``offset``,
    where ``problem`` was found; reading resumed at ``offset + nbytes``."""

    offset: int
    nbytes: int
    problem: str


@dataclass(frozen=True)
class LogTail:
    """How reading ended: ``clean`` (an end frame), or where the readable part stops.

    ``skips`` lists damaged stretches in the middle of the log that were stepped over (the
    frames in them are lost; the frames after them are read)."""

    clean: bool
    frames: int
    valid_bytes: int
    file_bytes: int
    problem: str | None = None
    skips: tuple[Skip, ...] = ()


def _frame_at(fh: Any, offset: int) -> tuple[Frame | None, str | None]:
    """The frame starting at byte ``offset``, or ``(None, problem)``."""
    fh.seek(offset)
    fhead = fh.read(FRAME_HEAD.size)
    if not fhead:
        return None, None  # end of file
    if len(fhead) < FRAME_HEAD.size:
        return None, "incomplete frame header"
    sync, ftype, res, length, t_ns = FRAME_HEAD.unpack(fhead)
    if sync != SYNC or ftype not in FRAME_TYPES or res != 0 or length > MAX_PAYLOAD:
        return None, "bad frame header"
    body = fh.read(length + FRAME_CRC.size)
    if len(body) < length + FRAME_CRC.size:
        return None, "incomplete frame"
    payload = body[:length]
    (crc,) = FRAME_CRC.unpack_from(body, length)
    if zlib.crc32(payload, zlib.crc32(fhead[2:])) != crc:
        return None, "checksum mismatch"
    return Frame(ftype, t_ns, payload, offset), None


_SYNC_BYTES = struct.pack("<H", SYNC)
_SCAN_BLOCK = 1 << 16


def _resync(fh: Any, start: int, size: int) -> Frame | None:
    """The first valid frame (sync word, sane header, matching CRC-32) at or after byte
    ``start``, or None. A CRC-32 match by chance is a 1-in-4-billion event, so a frame that
    passes is a real one."""
    pos = start
    while pos < size:
        fh.seek(pos)
        block = fh.read(_SCAN_BLOCK + 1)  # one byte of overlap: a sync word across blocks
        k = block.find(_SYNC_BYTES)
        while k != -1 and k < _SCAN_BLOCK:
            frame, _ = _frame_at(fh, pos + k)
            if frame is not None:
                return frame
            k = block.find(_SYNC_BYTES, k + 1)
        pos += _SCAN_BLOCK
    return None


def iter_frames(path: str | Path, tail: list[LogTail] | None = None) -> Iterator[Frame]:
    """Yield the complete, checksum-valid frames of a log, in order.

    A damaged frame (a flipped byte, a torn write) costs only itself: reading resumes at the
    next valid frame (its sync word and CRC-32), and the stretch stepped over is listed in
    :attr:`LogTail.skips`. Damage with no valid frame after it is the end of the readable
    part (what a killed writer leaves). When ``tail`` is a list, a :class:`LogTail`
    describing the reading is appended to it.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally, generator
    except FileNotFoundError:
        raise RecordingError("no such file", path) from None
    try:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(FILE_HEADER.size)
        if len(head) < FILE_HEADER.size or not head.startswith(MAGIC):
            raise RecordingError("not a toetwitch packet log (bad magic bytes)", path, "byte 0")
        magic, version, crc = FILE_HEADER.unpack(head)
        if zlib.crc32(head[:12]) != crc:
            raise RecordingError("the packet log header is corrupt", path, "byte 0")
        if version != FORMAT_VERSION:
            raise RecordingError(
                f"packet log format version {version} is not supported (this toetwitch reads "
                f"version {FORMAT_VERSION})",
                path,
            )
        offset, n, clean, problem = FILE_HEADER.size, 0, False, None
        skips: list[Skip] = []
        while True:
            frame, why = _frame_at(fh, offset)
            if frame is None and why is not None:
                found = _resync(fh, offset + 1, size)
                if found is None:
                    problem = why
                    break
                skips.append(Skip(offset, found.offset - offset, why))
                frame = found
                offset = found.offset
            if frame is None:
                break
            yield frame
            n += 1
            offset += FRAME_HEAD.size + len(frame.payload) + FRAME_CRC.size
            if frame.frame_type == FRAME_END:
                clean = True
        if tail is not None:
            tail.append(LogTail(clean, n, offset, size, problem, tuple(skips)))
    finally:
        fh.close()


def start_time_of(decoder: SessionDecoder) -> str | None:
    """ISO-8601 local time of sample 0: the device's own (Info ``start_time``) if it sent one,
    else the device clock mapped to the host wall clock."""
    if "start_time" in decoder.info.extra:  # the device knows (an emulator replaying a file)
        st = decoder.info.extra["start_time"]
        return None if st is None else str(st)
    if decoder.origin_device_s is None or decoder.clock.n_pairs == 0:
        return None
    host_s = decoder.clock.to_host(decoder.origin_device_s)
    return datetime.fromtimestamp(host_s).astimezone().isoformat(timespec="milliseconds")


@dataclass
class _Walk:
    """What a walk through a log found besides samples."""

    decoder: SessionDecoder | None = None
    profile: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    tails: list[LogTail] = field(default_factory=list)


def _blocks(path: Path, walk: _Walk) -> Iterator[Block]:
    """Decode the log's frames in order, yielding sample blocks; fills ``walk`` as it goes."""
    for fr in iter_frames(path, walk.tails):
        if fr.frame_type == FRAME_INFO:
            if walk.decoder is None:
                from toetwitch.drivers.ble.profiles import profile_of_description

                where = f"{path}: device info frame at byte {fr.offset}"
                try:
                    prof = profile_of_description(fr.payload)
                except RecordingError as exc:
                    raise RecordingError(exc.what, path, f"byte {fr.offset}") from None
                walk.profile = prof.name
                walk.decoder = prof.new_decoder(fr.payload, where)
        elif fr.frame_type == FRAME_PACKET:
            if walk.decoder is None:
                raise RecordingError("a packet precedes the device info frame", path,
                                     f"byte {fr.offset}")
            yield from walk.decoder.feed(fr.payload, fr.host_time_ns / 1e9)
        elif fr.frame_type == FRAME_EVENT:
            event = _json(fr.payload)
            walk.events.append(event)
            if walk.decoder is not None:  # as the live session fed it
                walk.decoder.link_event(event, fr.host_time_ns / 1e9)
        else:
            walk.end = _json(fr.payload)
    if walk.decoder is None:
        raise RecordingError("the packet log holds no device info frame (nothing was recorded)", path)


def _json(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"event": "unreadable"}
    return doc if isinstance(doc, dict) else {"event": "unreadable"}


class PacketLogSource(RecordingSource):
    """A ``.ttlog`` as a :class:`toetwitch.drivers.readers.RecordingSource` (architecture.md).

    Opening walks the log once to count samples and collect the link statistics (only counts
    are kept); :meth:`iter_chunks` walks it again and yields time-aligned chunks, so a log
    longer than memory reads in bounded memory. ``info.meta["packets"]`` holds the link
    accounting (``received``, ``lost``, ``duplicated``, ``samples_lost``, ``loss_fraction``,
    ...) for the summary.
    """

    def __init__(self, path: str | Path):
        self.path = path = Path(path)
        walk = _Walk()
        for _ in _blocks(path, walk):
            pass
        tail = walk.tails[0] if walk.tails else None
        for sk in tail.skips if tail is not None else ():
            warnings.warn(
                f"{path}: damaged bytes at byte {sk.offset} ({sk.problem}): skipped "
                f"{sk.nbytes} bytes up to the next valid frame at byte {sk.offset + sk.nbytes}; "
                "the packets in them count as lost",
                ReaderWarning,
                stacklevel=3,
            )
        if tail is not None and tail.problem:
            warnings.warn(
                f"{path}: the log ends with an {tail.problem} at byte {tail.valid_bytes} of "
                f"{tail.file_bytes} (the recorder was stopped abruptly); read the "
                f"{tail.frames} complete frames before it",
                ReaderWarning,
                stacklevel=3,
            )
        dec = walk.decoder
        assert dec is not None
        info = dec.info
        emg_st, acc_st = info.stream("emg"), info.stream("acc")
        if acc_st is not None and acc_st.channels < 3:
            acc_st = None
        self._streams = {k: st for k, st in (("emg", emg_st), ("acc", acc_st)) if st is not None}
        n = {k: dec.samples_seen(k) for k in self._streams}
        if not any(n.values()):
            raise RecordingError("the packet log holds no samples", path)
        packets = dec.stats.as_summary()
        packets["disconnects"] = sum(1 for e in walk.events if e.get("event") == "disconnected")
        meta: dict[str, Any] = {
            "path": str(path),
            "format": "ttlog",
            "packets": packets,
            "device": {"model": info.model, "firmware": info.firmware, "boot_id": info.boot_id},
            "profile": walk.profile,
            "damaged": [{"byte": sk.offset, "skipped_bytes": sk.nbytes, "problem": sk.problem}
                        for sk in (tail.skips if tail is not None else ())],
            "session": next((e for e in walk.events if e.get("event") == "session"), {}),
            "events": walk.events,
            "clean_end": bool(tail and tail.clean),
            "end": walk.end,
        }
        self.info = RecordingInfo(
            name=path.name[: -len(path.suffix)] if path.suffix else path.name,
            fs_emg_hz=emg_st.fs_hz if emg_st else None,
            fs_acc_hz=acc_st.fs_hz if acc_st else None,
            n_emg=n.get("emg", 0),
            n_acc=n.get("acc", 0),
            duration_s=max(n[k] / st.fs_hz for k, st in self._streams.items()),
            start_time=start_time_of(dec),
            meta=meta,
        )

    def iter_chunks(self, chunk_s: float = 60.0) -> Iterator[Chunk]:
        def pieces() -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
            for block in _blocks(self.path, _Walk()):
                if block.kind in self._streams:
                    emg = block.kind == "emg"
                    yield (block.values[:, 0], None) if emg else (None, block.values[:, :3])

        yield from rechunk(pieces(), self.info, chunk_s)


def open_packet_log(path: str | Path) -> PacketLogSource:
    """Open a ``.ttlog`` as a :class:`toetwitch.drivers.readers.RecordingSource` (see
    :class:`PacketLogSource`); ``toetwitch.drivers.readers`` registers it for the ``.ttlog`` suffix."""
    return PacketLogSource(path)


def read_packet_log(path: str | Path) -> Recording:
    """The whole log as a :class:`toetwitch.drivers.Recording`."""
    return open_packet_log(path).read()
