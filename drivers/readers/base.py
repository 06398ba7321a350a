"""Types shared by all readers: :class:`RecordingInfo`, :class:`Chunk`, :class:`RecordingSource`.

A *source* is an opened recording file that can be read in time-aligned chunks, so that a
24-hour EDF or Parquet file never has to be in memory at once. ``read_recording`` is the
concatenation of all chunks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.recording import Recording


class ReaderWarning(RuntimeWarning):
    """A recording was read, but something in it needed repair (gap filled, last line dropped)."""


def warn(message: str) -> None:
    """Emit a :class:`ReaderWarning` attributed to the caller of the reader."""
    warnings.warn(message, ReaderWarning, stacklevel=3)


@dataclass(frozen=True)
class RecordingInfo:
    """What is known about a recording before reading its samples.

    ``n_emg`` / ``n_acc`` count samples *after* gaps were filled with NaN, so
    ``n_emg / fs_emg_hz`` is the true length of the EMG stream in seconds.
    """

    name: str
    fs_emg_hz: float | None
    fs_acc_hz: float | None
    n_emg: int
    n_acc: int
    duration_s: float
    start_time: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def streams(self) -> str:
        """``"emg"``, ``"acc"`` or ``"emg+acc"``."""
        parts = [s for s, fs in (("emg", self.fs_emg_hz), ("acc", self.fs_acc_hz)) if fs]
        return "+".join(parts)


@dataclass(frozen=True, eq=False)
class Chunk:
    """Consecutive samples of both streams covering the same span of time.

    Attributes
    ----------
    emg_uv : ndarray, shape (k,), or None
        EMG in µV; None when the recording has no EMG stream (may be empty, never None,
        when the stream exists but has ended).
    acc_g : ndarray, shape (j, 3), or None
        Acceleration in g; None when the recording has no accelerometer.
    start_s : float
        Time of the chunk's first sample from the recording start, in seconds.
    """

    emg_uv: NDArray[np.floating[Any]] | None
    acc_g: NDArray[np.floating[Any]] | None
    start_s: float = 0.0


def chunk_bounds(n: int, fs_hz: float, chunk_s: float, n_chunks: int) -> list[int]:
    """Sample indices where each of ``n_chunks`` chunks of ``chunk_s`` seconds starts.

    Returns ``n_chunks + 1`` non-decreasing indices, the first 0 and the last ``n``, so the
    slices between them are consecutive and complete. Both streams use the same times
    (``k * chunk_s``) so chunk ``k`` of each stream covers the same span.
    """
    bounds = [min(n, int(math.floor(k * chunk_s * fs_hz + 0.5))) for k in range(n_chunks)]
    bounds.append(n)
    return bounds


def n_chunks_for(duration_s: float, chunk_s: float) -> int:
    """How many chunks of ``chunk_s`` seconds cover ``duration_s`` (at least 1)."""
    if not (chunk_s > 0 and math.isfinite(chunk_s)):
        raise ValueError(f"chunk_s must be a positive number of seconds, got {chunk_s!r}")
    return max(1, math.ceil(duration_s / chunk_s - 1e-9))


class RecordingSource:
    """An opened recording readable in chunks. Use as a context manager or call :meth:`close`.

    Subclasses set :attr:`info` and implement :meth:`iter_chunks`.
    """

    info: RecordingInfo

    @property
    def header(self) -> RecordingInfo:
        """What is known before the samples are read (rates, name, start time). The same as
        :attr:`info` except for sources that learn their length while reading (one-pass tables:
        counts 0 and ``duration_s`` NaN until :meth:`iter_chunks` has run)."""
        return self.info

    def iter_chunks(self, chunk_s: float = 60.0) -> Iterator[Chunk]:
        """Yield consecutive :class:`Chunk` objects of ``chunk_s`` seconds (the last may be shorter)."""
        raise NotImplementedError

    def read(self) -> Recording:
        """Read the whole recording into memory (the concatenation of all chunks)."""
        emg: list[np.ndarray] = []
        acc: list[np.ndarray] = []
        for ch in self.iter_chunks(max(self.info.duration_s, 1.0)):
            if ch.emg_uv is not None:
                emg.append(ch.emg_uv)
            if ch.acc_g is not None:
                acc.append(ch.acc_g)
        return self._recording(
            np.concatenate(emg) if self.info.fs_emg_hz else None,
            np.concatenate(acc) if self.info.fs_acc_hz else None,
        )

    def _recording(self, emg_uv: np.ndarray | None, acc_g: np.ndarray | None) -> Recording:
        i = self.info
        return Recording(
            emg_uv=emg_uv,
            fs_emg_hz=i.fs_emg_hz if emg_uv is not None else None,
            acc_g=acc_g,
            fs_acc_hz=i.fs_acc_hz if acc_g is not None else None,
            name=i.name,
            start_time=i.start_time,
            meta=dict(i.meta),
        )

    def close(self) -> None:
        """Release the file (no-op for in-memory sources)."""

    def __enter__(self) -> RecordingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArraySource(RecordingSource):
    """A :class:`RecordingSource` over a :class:`Recording` already in memory.

    Handy for tests and for feeding arrays to code written against sources.
    """

    def __init__(self, rec: Recording):
        self.recording = rec
        self.info = RecordingInfo(
            name=rec.name,
            fs_emg_hz=rec.fs_emg_hz,
            fs_acc_hz=rec.fs_acc_hz,
            n_emg=0 if rec.emg_uv is None else len(rec.emg_uv),
            n_acc=0 if rec.acc_g is None else len(rec.acc_g),
            duration_s=rec.duration_s,
            start_time=rec.start_time,
            meta=dict(rec.meta),
        )

    def iter_chunks(self, chunk_s: float = 60.0) -> Iterator[Chunk]:
        rec, info = self.recording, self.info
        k_total = n_chunks_for(info.duration_s, chunk_s)
        eb = chunk_bounds(info.n_emg, info.fs_emg_hz or 1.0, chunk_s, k_total)
        ab = chunk_bounds(info.n_acc, info.fs_acc_hz or 1.0, chunk_s, k_total)
        for k in range(k_total):
            yield Chunk(
                emg_uv=None if rec.emg_uv is None else rec.emg_uv[eb[k] : eb[k + 1]],
                acc_g=None if rec.acc_g is None else rec.acc_g[ab[k] : ab[k + 1]],
                start_s=k * chunk_s,
            )

    def read(self) -> Recording:
        return self.recording


def round_rate(fs_hz: float) -> float:
    """Round an estimated sample rate to the nominal one it most likely is.

    Timestamps written with limited decimals or by a clock with drift give e.g. 999.97 Hz for
    a 1 kHz stream: rates within 0.1 % of a whole number become that number; others keep
    six significant digits.
    """
    if not math.isfinite(fs_hz) or fs_hz <= 0:
        return fs_hz
    whole = round(fs_hz)
    if whole > 0 and abs(fs_hz - whole) <= 1e-3 * fs_hz:
        return float(whole)
    return float(f"{fs_hz:.6g}")


def not_found(path: object) -> RecordingError:
    """The error for a path that does not exist or is not a file."""
    return RecordingError("no such file", path)


def rechunk(
    pieces: Iterable[tuple[np.ndarray | None, np.ndarray | None]],
    info: RecordingInfo,
    chunk_s: float,
) -> Iterator[Chunk]:
    """Regroup arbitrary pieces of both streams into time-aligned chunks of ``chunk_s`` s."""
    k_total = n_chunks_for(info.duration_s, chunk_s)
    bounds = [
        chunk_bounds(info.n_emg, info.fs_emg_hz, chunk_s, k_total) if info.fs_emg_hz else None,
        chunk_bounds(info.n_acc, info.fs_acc_hz, chunk_s, k_total) if info.fs_acc_hz else None,
    ]
    bufs: list[list[np.ndarray]] = [[], []]
    have = [0, 0]  # samples received so far per stream
    used = [0, 0]  # samples already emitted per stream

    def ready(k: int) -> bool:
        return all(b is None or have[s] >= b[k + 1] for s, b in enumerate(bounds))

    def take(k: int) -> Chunk:
        out: list[np.ndarray | None] = [None, None]
        for s, b in enumerate(bounds):
            if b is None:
                continue
            n = b[k + 1] - b[k]
            cat = np.concatenate(bufs[s]) if bufs[s] else np.empty((0,) if s == 0 else (0, 3))
            part, rest = cat[:n], cat[n:]
            bufs[s] = [rest] if len(rest) else []
            used[s] += n
            out[s] = part
        return Chunk(emg_uv=out[0], acc_g=out[1], start_s=k * chunk_s)

    k = 0
    for piece in pieces:
        for s in (0, 1):
            if piece[s] is not None and len(piece[s]):
                bufs[s].append(piece[s])
                have[s] += len(piece[s])
        while k < k_total and ready(k):
            yield take(k)
            k += 1
    while k < k_total:
        yield take(k)
        k += 1
