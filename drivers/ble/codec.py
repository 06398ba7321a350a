"""Packets of profile v1: encoding, decoding, exact loss accounting and clock mapping.

Packet layout (little-endian, docs/protocol.md)::

    0  u8   version << 4 | flags
    1  u8   stream_id            (0x7F = status packet)
    2  u16  seq                  +1 per notification across all streams, wraps
    4  u32  sample_index         per-stream index of the first sample, wraps
    8  u32  t_first              device clock ticks at the first sample, wraps
    12 ...  samples              frame-major (s0c0 s0c1 ... s1c0 ...), format from Info

The :class:`Decoder` turns packets into per-stream sample blocks in physical units, with lost
samples written as NaN so that sample ``i`` of a stream always sits at index ``i`` of the
output (the detector sees the gap; nothing shifts in time). It counts lost and duplicated
packets (from ``seq``) and lost and duplicated samples (from ``sample_index``) exactly.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.ble.profile_v1 import (
    PROTOCOL_VERSION,
    STATUS_END,
    STATUS_END_MORE,
    STREAM_STATUS,
    DeviceInfo,
    StreamInfo,
)
from toetwitch.drivers.errors import RecordingError

logger = logging.getLogger("toetwitch")

HEADER = struct.Struct("<BBHII")
HEADER_SIZE = HEADER.size  # 12
#: ATT notification overhead: opcode (1) + handle (2).
ATT_OVERHEAD = 3

FLAG_COMPRESSED = 0x01  # reserved for v2
FLAG_CLIPPED = 0x02  # a sample of this packet was clipped to the format's range
FLAG_CLOCK_SYNCED = 0x04  # device clock was set by the host
FLAG_DISCONTINUITY = 0x08  # first packet of a new session (after START new / reboot)

_SEQ_MOD = 1 << 16
_IDX_MOD = 1 << 32
_INT_MISSING = {"i16": -(1 << 15), "i24": -(1 << 23)}  # the most negative code = "no sample"


@dataclass(frozen=True)
class Packet:
    """One decoded notification header plus its raw sample bytes."""

    version: int
    flags: int
    stream_id: int
    seq: int
    sample_index: int
    t_first: int
    payload: bytes


def max_samples_per_packet(mtu: int, stream: StreamInfo) -> int:
    """Samples of ``stream`` that fill one notification at ATT ``mtu`` (never split)."""
    n = (mtu - ATT_OVERHEAD - HEADER_SIZE) // stream.bytes_per_frame
    if n < 1:
        raise ValueError(f"MTU {mtu} is too small for one {stream.kind} sample")
    return n


def encode_packet(
    stream_id: int, seq: int, sample_index: int, t_first: int, payload: bytes, flags: int = 0
) -> bytes:
    """Header + payload. Counters are taken modulo their field width."""
    head = HEADER.pack(
        (PROTOCOL_VERSION << 4) | (flags & 0x0F),
        stream_id,
        seq % _SEQ_MOD,
        sample_index % _IDX_MOD,
        t_first % _IDX_MOD,
    )
    return head + payload


def parse_packet(data: bytes | bytearray) -> Packet:
    """Split a notification into header fields and payload; :class:`RecordingError` if bad."""
    if len(data) < HEADER_SIZE:
        raise RecordingError(f"packet of {len(data)} bytes is shorter than the 12-byte header")
    vf, sid, seq, idx, t = HEADER.unpack_from(data)
    version = vf >> 4
    if version != PROTOCOL_VERSION:
        raise RecordingError(f"packet has profile version {version}, expected {PROTOCOL_VERSION}")
    return Packet(version, vf & 0x0F, sid, seq, idx, t, bytes(data[HEADER_SIZE:]))


def scale_divisor(scale: float) -> int | None:
    """``N`` when ``scale`` is ``1/N`` for a whole ``N`` (0.1, 0.01, 1e-5 ...), else None.

    Decoding then computes ``raw / N``, the correctly rounded decimal value (``73 / 100`` is
    the double nearest 0.73; ``73 * 0.01`` is not always), so decimal-quantised recordings
    (CSV files written with fixed decimals) travel bit-exactly.
    """
    if not 0 < scale < 1:
        return None
    n = round(1.0 / scale)
    return n if abs(1.0 / scale - n) <= 1e-9 * n else None


def encode_samples(values: NDArray[Any], stream: StreamInfo) -> tuple[bytes, bool]:
    """Samples in physical units, shape (k, channels) -> (payload bytes, clipped?).

    NaN becomes the format's "no sample" code for integer formats (decoded back to NaN).
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1, stream.channels)
    fmt = stream.sample_format
    if fmt == "f32":
        return (x / stream.scale).astype("<f4").tobytes(), False
    if fmt == "f64":
        return (x / stream.scale).astype("<f8").tobytes(), False
    missing = _INT_MISSING[fmt]
    nan = np.isnan(x)
    div = scale_divisor(stream.scale)
    x0 = np.where(nan, 0.0, x)
    q = np.round(x0 * div if div else x0 / stream.scale)
    clipped = bool(np.any(q < missing + 1) or np.any(q > -missing - 1))
    q = np.clip(q, missing + 1, -missing - 1).astype(np.int32)
    q[nan] = missing
    if fmt == "i16":
        return q.astype("<i2").tobytes(), clipped
    u = q.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]  # little-endian low 3 bytes
    return np.ascontiguousarray(u).tobytes(), clipped


def decode_samples(payload: bytes, stream: StreamInfo) -> NDArray[np.float64]:
    """Payload bytes -> float64 samples in physical units, shape (k, channels)."""
    bpf = stream.bytes_per_frame
    if len(payload) % bpf:
        raise RecordingError(
            f"{stream.kind} packet payload of {len(payload)} bytes is not a whole number of "
            f"{bpf}-byte samples"
        )
    fmt = stream.sample_format
    if fmt in ("f32", "f64"):
        raw = np.frombuffer(payload, dtype="<f4" if fmt == "f32" else "<f8").astype(np.float64)
        out = raw if stream.scale == 1.0 else raw * stream.scale
        return out.reshape(-1, stream.channels)
    if fmt == "i16":
        ints = np.frombuffer(payload, dtype="<i2").astype(np.int32)
    else:
        b = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
    div = scale_divisor(stream.scale)
    out = ints / div if div else ints * stream.scale
    out[ints == _INT_MISSING[fmt]] = np.nan
    return out.reshape(-1, stream.channels)


def status_end_payload(next_index: dict[int, int], more: bool = False) -> bytes:
    """Payload of an END status packet: ``[code, n, (stream_id u8, next_index u32) * n]``,
    code 0x01 (END) or 0x02 (END_MORE: another END packet follows)."""
    body = bytes([STATUS_END_MORE if more else STATUS_END, len(next_index)])
    for sid, idx in next_index.items():
        body += struct.pack("<BI", sid, idx % _IDX_MOD)
    return body


def status_end_payloads(next_index: dict[int, int], mtu: int) -> list[bytes]:
    """END payloads split so that each packet fits ATT ``mtu`` (one stream per 5 bytes)."""
    per = max(1, (mtu - ATT_OVERHEAD - HEADER_SIZE - 2) // 5)
    items = list(next_index.items())
    parts = [dict(items[k : k + per]) for k in range(0, len(items), per)] or [{}]
    return [status_end_payload(p, more=k < len(parts) - 1) for k, p in enumerate(parts)]


def _parse_end(payload: bytes) -> dict[int, int]:
    n = payload[1] if len(payload) > 1 else 0
    if len(payload) != 2 + 5 * n:
        raise RecordingError("END status packet has a bad length")
    return {
        sid: idx for sid, idx in (struct.unpack_from("<BI", payload, 2 + 5 * i) for i in range(n))
    }


def next_packet(
    streams: Iterable[StreamInfo],
    next_index: Mapping[int, int],
    arrays: Mapping[int, NDArray[Any]],
    mtu: int,
) -> tuple[StreamInfo, int, int, float] | None:
    """The next data packet a sensor sends: ``(stream, first index, n samples, time in s its
    last sample is taken)``, or None once every stream is sent.

    Packets fill ``mtu`` and go out in the order their last sample is taken; a tie goes to
    the stream that comes first in ``streams``. ``next_index`` and ``arrays`` are keyed by
    stream id (next sample to send; all samples, (k, channels)).
    """
    best = None
    for st in streams:
        i, total = next_index[st.stream_id], len(arrays[st.stream_id])
        if i >= total:
            continue
        n = min(max_samples_per_packet(mtu, st), total - i)
        ready = (i + n) / st.fs_hz
        if best is None or ready < best[3]:
            best = (st, i, n, ready)
    return best


def encode_data_packet(
    stream: StreamInfo, seq: int, first_index: int, t_first: int, values: NDArray[Any],
    first: bool = False,
) -> bytes:
    """A data packet of ``values`` (physical units), flagged CLIPPED if a value was clipped
    and DISCONTINUITY if it is the ``first`` packet of a session."""
    payload, clipped = encode_samples(values, stream)
    flags = (FLAG_CLIPPED if clipped else 0) | (FLAG_DISCONTINUITY if first else 0)
    return encode_packet(stream.stream_id, seq, first_index, t_first, payload, flags)


def packetize(
    info: DeviceInfo, arrays: dict[int, NDArray[Any]], mtu: int = 247
) -> Iterator[tuple[int, int, int, bytes]]:
    """Cut whole streams into profile-v1 packets as a sensor would send them.

    ``arrays`` maps stream id -> samples (k, channels) in physical units. Packets fill
    ``mtu``, go out in the order their last sample is taken, share one ``seq``, and an END
    status packet closes the session. Yields ``(stream_id, first_index, n_samples, bytes)``
    (``n_samples`` 0 for status packets). Pure: for tests, benches and offline tools.
    """
    by_id = info.by_id()
    streams = [by_id[sid] for sid, x in arrays.items() if len(x)]
    nxt = {sid: 0 for sid in arrays}
    seq = 0
    while (best := next_packet(streams, nxt, arrays, mtu)) is not None:
        st, i, n, _ = best
        ticks = round(i / st.fs_hz * info.clock_hz)
        data = encode_data_packet(st, seq, i, ticks, arrays[st.stream_id][i : i + n], seq == 0)
        yield st.stream_id, i, n, data
        nxt[st.stream_id] = i + n
        seq += 1
    for payload in status_end_payloads(nxt, mtu):
        yield STREAM_STATUS, 0, 0, encode_packet(STREAM_STATUS, seq, 0, 0, payload)
        seq += 1


@dataclass(frozen=True)
class Block:
    """Newly decoded samples of one stream: ``values`` (k, channels) in physical units,
    NaN for lost samples, starting at stream sample ``start_index``."""

    kind: str
    stream_id: int
    start_index: int
    values: NDArray[np.float64]


@dataclass(frozen=True)
class PacketStats:
    """Link accounting. ``loss_fraction`` = lost / (received + lost) packets.

    ``loss_measurable`` is False for a protocol that carries neither a counter nor a device
    clock (MetaWear streaming): the loss is then unknown, not zero, and the summary says so
    (``lost``, ``samples_lost`` and ``loss_fraction`` are null there).
    """

    received: int
    lost: int
    duplicated: int
    samples_received: int
    samples_lost: int
    samples_duplicated: int
    samples_lost_by_stream: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    discontinuities: int = 0
    drift_ppm: float | None = None
    loss_measurable: bool = True
    #: samples a clockless device did not take while its link was down, sized from the host
    #: clock (NaN in the stream, not in ``samples_lost``)
    samples_gap_estimated: int = 0

    @property
    def loss_fraction(self) -> float:
        total = self.received + self.lost
        return self.lost / total if total else 0.0

    def as_summary(self) -> dict[str, Any]:
        """The ``packets`` block of summary.json (architecture.md) plus extra detail."""
        known = self.loss_measurable
        return {
            "received": self.received,
            "lost": self.lost if known else None,
            "duplicated": self.duplicated,
            "samples_lost": self.samples_lost if known else None,
            "loss_fraction": round(self.loss_fraction, 6) if known else None,
            "loss_measurable": known,
            "samples_received": self.samples_received,
            "samples_duplicated": self.samples_duplicated,
            "samples_lost_by_stream": dict(self.samples_lost_by_stream) if known else {},
            "malformed": self.malformed,
            "discontinuities": self.discontinuities,
            "clock_drift_ppm": None if self.drift_ppm is None else round(self.drift_ppm, 2),
            **({"samples_gap_estimated": self.samples_gap_estimated}
               if self.samples_gap_estimated else {}),
        }

    def link_text(self) -> str:
        """``99.5 % (3 lost)``, or ``loss unmeasurable`` (the live status line)."""
        if not self.loss_measurable:
            return "loss unmeasurable"
        return f"{100 * (1 - self.loss_fraction):.1f} % ({self.lost} lost)"


class ClockMap:
    """Device clock -> host clock, ``host_s = a + b * device_s``, from packet arrivals.

    Each data packet gives a pair (device time of its last sample, host arrival time). The
    slope ``b`` is an ordinary least-squares fit over all pairs (running sums, O(1) memory);
    the offset is then lowered to the smallest residual of the recent pairs, because arrival
    is the sample time plus a variable delay that is never negative (lower envelope).
    """

    def __init__(self, window: int = 256):
        self._n = 0
        self._d0 = self._h0 = 0.0
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._recent: deque[tuple[float, float]] = deque(maxlen=window)

    def add(self, device_s: float, host_s: float) -> None:
        if self._n == 0:
            self._d0, self._h0 = device_s, host_s
        x, y = device_s - self._d0, host_s - self._h0  # centred: keeps float64 precision
        self._n += 1
        self._sx += x
        self._sy += y
        self._sxx += x * x
        self._sxy += x * y
        self._recent.append((x, y))

    @property
    def n_pairs(self) -> int:
        return self._n

    def _fit(self) -> tuple[float, float]:
        n = self._n
        var = self._sxx - self._sx * self._sx / n if n else 0.0
        if n < 2 or var <= 1e-12:
            slope = 1.0
        else:
            slope = (self._sxy - self._sx * self._sy / n) / var
        offset = min((y - slope * x for x, y in self._recent), default=0.0)
        return offset, slope

    @property
    def slope(self) -> float:
        """Host seconds per device second (1 until two pairs; below 1 for a replay faster
        than real time)."""
        return self._fit()[1]

    #: Beyond this the "drift" is not a crystal error but a replay faster than real time.
    PLAUSIBLE_PPM = 5000.0

    @property
    def drift_ppm(self) -> float | None:
        """Device clock rate error in ppm (positive = device clock slow); None until 2 s of
        data, or when implausible (an emulator streaming faster than real time)."""
        if self._n < 2 or not self._recent or self._recent[-1][0] < 2.0:
            return None
        ppm = (self._fit()[1] - 1.0) * 1e6
        return ppm if abs(ppm) <= self.PLAUSIBLE_PPM else None

    def to_host(self, device_s: float) -> float:
        """Host time (s, same clock as the arrival times given) of a device time (s)."""
        if self._n == 0:
            raise ValueError("no clock pairs yet")
        offset, slope = self._fit()
        return self._h0 + offset + slope * (device_s - self._d0)


class _StreamState:
    __slots__ = ("info", "base", "next_index", "received", "lost", "duplicated")

    def __init__(self, info: StreamInfo):
        self.info = info
        self.base = 0  # output index of device index 0 (moves on a discontinuity)
        self.next_index = 0  # unwrapped device index of the next expected sample
        self.received = 0
        self.lost = 0
        self.duplicated = 0

    def place(self, raw_index: int) -> int:
        """Unwrapped index of a packet's first sample, relative to what is expected."""
        d = (raw_index - self.next_index) % _IDX_MOD
        return self.next_index + d if d < _IDX_MOD // 2 else self.next_index - (_IDX_MOD - d)


class Decoder:
    """Stateful packet decoder for one session of one device.

    The session starts at ``seq`` 0 and ``sample_index`` 0 of every stream (START new): a
    first packet with a higher index means the samples before it were lost.

    Parameters
    ----------
    info : DeviceInfo
        The device's Info characteristic.
    """

    def __init__(self, info: DeviceInfo):
        self.info = info
        self._streams = {s.stream_id: _StreamState(s) for s in info.streams}
        self._next_seq = 0  # unwrapped seq expected next
        self.received = 0
        self.lost = 0
        self.duplicated = 0
        self.malformed = 0
        self.discontinuities = 0
        self.ended = False
        self.clock = ClockMap()
        self._t_last: int | None = None  # unwrapped device ticks of the latest t_first
        self._t_raw = 0
        self.origin_device_s: float | None = None  # device time of sample 0
        self._session_t0: int | None = None  # t_first of the session's first packet

    # -- accounting -----------------------------------------------------------------------
    def _accept_seq(self, seq: int) -> bool:
        d = (seq - self._next_seq) % _SEQ_MOD
        if d >= _SEQ_MOD // 2:  # behind what we expect: already seen (duplicate or late)
            self.duplicated += 1
            return False
        self.lost += d
        self.received += 1
        self._next_seq += d + 1
        return True

    def _device_s(self, t_first: int) -> float:
        if self._t_last is None:
            self._t_last = t_first
        else:
            d = (t_first - self._t_raw) % _IDX_MOD
            self._t_last += d if d < _IDX_MOD // 2 else d - _IDX_MOD
        self._t_raw = t_first
        return self._t_last / self.info.clock_hz

    # -- decoding -------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray, host_time_s: float | None = None) -> list[Block]:
        """Decode one notification; return the new sample blocks (possibly empty).

        ``host_time_s`` is the arrival time on the host clock (for :attr:`clock`).
        Malformed packets are counted in :attr:`malformed` and skipped, never raised.
        """
        try:
            pkt = parse_packet(data)
        except RecordingError as exc:
            self._malformed(str(exc))
            return []
        if pkt.flags & FLAG_DISCONTINUITY:
            if self._session_t0 is None:
                self._session_t0 = pkt.t_first
            elif pkt.t_first != self._session_t0:  # not a copy of the session's first packet
                self._session_t0 = pkt.t_first
                return self._restart(pkt, host_time_s)
        if pkt.stream_id == STREAM_STATUS:
            if not self._accept_seq(pkt.seq):
                return []
            return self._status(pkt)
        state = self._streams.get(pkt.stream_id)
        if state is None:
            self._malformed(f"packet for unknown stream id {pkt.stream_id}")
            return []
        try:
            values = decode_samples(pkt.payload, state.info)
        except RecordingError as exc:
            self._malformed(str(exc))
            return []
        if not self._accept_seq(pkt.seq):
            return []
        fs = state.info.fs_hz
        t_dev = self._device_s(pkt.t_first)
        start = state.place(pkt.sample_index)
        if self.origin_device_s is None:
            self.origin_device_s = t_dev - start / fs
        if host_time_s is not None and len(values):
            self.clock.add(t_dev + (len(values) - 1) / fs, host_time_s)
        return self._place(state, start, values)

    def _place(self, state: _StreamState, start: int, values: NDArray[np.float64]) -> list[Block]:
        if start < state.next_index:  # overlap with samples already delivered
            overlap = min(state.next_index - start, len(values))
            state.duplicated += overlap
            values = values[overlap:]
            start += overlap
        if not len(values):
            return []
        gap = start - state.next_index
        if gap:
            state.lost += gap
            nan = np.full((gap, state.info.channels), np.nan)
            values = np.concatenate([nan, values])
        block = Block(state.info.kind, state.info.stream_id, state.base + state.next_index, values)
        state.received += len(values) - gap
        state.next_index += len(values)
        return [block]

    def _status(self, pkt: Packet) -> list[Block]:
        if not pkt.payload or pkt.payload[0] not in (STATUS_END, STATUS_END_MORE):
            return []  # other status codes (battery, lead-off) are informational in v1
        try:
            ends = _parse_end(pkt.payload)
        except RecordingError as exc:
            self._malformed(str(exc))
            return []
        blocks = []
        for sid, raw in ends.items():
            state = self._streams.get(sid)
            if state is None:
                continue
            end = state.place(raw)
            if end > state.next_index:  # trailing samples lost: fill to the announced end
                gap = end - state.next_index
                state.lost += gap
                nan = np.full((gap, state.info.channels), np.nan)
                blocks.append(Block(state.info.kind, sid, state.base + state.next_index, nan))
                state.next_index = end
        self.ended = pkt.payload[0] == STATUS_END
        return blocks

    def _restart(self, pkt: Packet, host_time_s: float | None) -> list[Block]:
        """The device began a new session (reboot, or START new from another host).

        Its counters restart at 0: the new samples are appended right after what was
        delivered (the length of the break is unknown), and the discontinuity is counted so
        that the summary can say so.
        """
        self.discontinuities += 1
        logger.warning("the sensor restarted its stream (discontinuity %d)", self.discontinuities)
        self._next_seq = pkt.seq  # the restart packet is the next one, not a loss
        self._t_last = None
        for st in self._streams.values():
            st.base += st.next_index
            st.next_index = 0
        cleared = encode_packet(pkt.stream_id, pkt.seq, pkt.sample_index, pkt.t_first,
                                pkt.payload, pkt.flags & ~FLAG_DISCONTINUITY)
        return self.feed(cleared, host_time_s)

    def link_event(self, event: Mapping[str, Any], host_time_s: float | None = None) -> None:
        """Link events change nothing in v1: a resumed session carries on counting."""

    def _malformed(self, why: str) -> None:
        self.malformed += 1
        if self.malformed <= 3:
            logger.warning("skipped a malformed packet: %s", why)

    # -- results --------------------------------------------------------------------------
    @property
    def stats(self) -> PacketStats:
        by_stream = {st.info.kind: st.lost for st in self._streams.values()}
        return PacketStats(
            received=self.received,
            lost=self.lost,
            duplicated=self.duplicated,
            samples_received=sum(st.received for st in self._streams.values()),
            samples_lost=sum(by_stream.values()),
            samples_duplicated=sum(st.duplicated for st in self._streams.values()),
            samples_lost_by_stream=by_stream,
            malformed=self.malformed,
            discontinuities=self.discontinuities,
            drift_ppm=self.clock.drift_ppm,
        )

    def samples_seen(self, kind: str) -> int:
        """Samples delivered so far (received + NaN-filled) of the stream of ``kind``."""
        return sum(st.base + st.next_index for st in self._streams.values() if st.info.kind == kind)
