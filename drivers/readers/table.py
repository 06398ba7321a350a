"""Shared engine for tabular recordings (CSV and Parquet, docs/contracts.md §1).

Columns: ``time_s``, ``emg_uv``, ``acc_x_g``, ``acc_y_g``, ``acc_z_g``; either stream may be
absent. When both streams share a table at different rates, each row carries one stream's
values and leaves the other's cells empty. A row belongs to a stream when that stream's cells
are filled; an empty (or NaN) cell is not a sample.

Per stream the engine

1. infers the sample rate from the median interval of the first few thousand timestamps
   (rounded with :func:`~toetwitch.drivers.readers.base.round_rate`) and checks it with ``check_rate``;
2. finds gaps (the sample grid jumps by a whole period or more, judged from the timing
   phase of the neighbouring samples so that timestamp jitter up to a third of a period is
   not a gap; without jitter, an interval longer than 1.5 periods: :class:`Assembler`) and
   inserts NaN samples so that later samples keep their true time (NaN = lost, see
   docs/architecture.md);
3. measures timing jitter: the RMS deviation of the regular intervals from the nominal period.

The input arrives as an iterator of DataFrame batches so Parquet files can be streamed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.base import (
    Chunk,
    RecordingInfo,
    RecordingSource,
    n_chunks_for,
    rechunk,
    round_rate,
    warn,
)
from toetwitch.drivers.recording import MIN_FS_ACC_HZ, MIN_FS_EMG_HZ, check_rate

log = logging.getLogger("toetwitch")

COL_TIME = "time_s"
COL_EMG = "emg_uv"
COLS_ACC = ("acc_x_g", "acc_y_g", "acc_z_g")
COLUMNS = (COL_TIME, COL_EMG, *COLS_ACC)

#: Intervals used to estimate a stream's rate (enough for a stable median, cheap to read).
RATE_WINDOW = 2000
#: Without jitter, an interval longer than this many sample periods is a gap (the rule the
#: Assembler's phase method reduces to).
GAP_FACTOR = 1.5
#: At most this many gaps are listed one by one in ``meta["gaps"]``.
MAX_GAPS_LISTED = 1000

#: Yields (batch, index of the batch's first data row, 0-based).
BatchFactory = Callable[[], Iterable[tuple[pd.DataFrame, int]]]
#: Turns a 0-based data-row index into "line 12" / "row 11".
Locator = Callable[[int], str]


@dataclass(frozen=True)
class Layout:
    """Which streams a table's header provides."""

    has_emg: bool
    has_acc: bool
    ignored: tuple[str, ...] = ()


def check_header(columns: Iterable[str], path: object, where: str) -> Layout:
    """Check the column names; raise :class:`RecordingError` naming what is missing."""
    cols = [str(c).strip() for c in columns]
    if COL_TIME not in cols:
        raise RecordingError(
            f"missing column 'time_s' (found: {', '.join(cols) or 'none'}); expected "
            f"{', '.join(COLUMNS)}",
            path,
            where,
        )
    acc_present = [c for c in COLS_ACC if c in cols]
    if acc_present and len(acc_present) < 3:
        missing = [c for c in COLS_ACC if c not in cols]
        raise RecordingError(
            f"partial accelerometer: column(s) {', '.join(acc_present)} present but "
            f"{', '.join(missing)} missing; give all three axes or none",
            path,
            where,
        )
    has_emg = COL_EMG in cols
    has_acc = len(acc_present) == 3
    if not (has_emg or has_acc):
        raise RecordingError(
            "no data columns: need 'emg_uv' and/or 'acc_x_g', 'acc_y_g', 'acc_z_g' "
            f"(found: {', '.join(cols)})",
            path,
            where,
        )
    ignored = tuple(c for c in cols if c not in COLUMNS)
    return Layout(has_emg, has_acc, ignored)


def _numeric(df: Any, col: str, row0: int, path: object, locate: Locator) -> np.ndarray:
    """Column ``col`` as float64; a non-numeric cell raises naming its line and column."""
    s = df[col]
    if isinstance(s, np.ndarray):
        if s.dtype.kind in "fiu":  # numbers already (Parquet): no pandas on the way
            return s.astype(np.float64, copy=False)
        s = pd.Series(s)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(s, errors="coerce")
    text = s.astype("string").str.strip()
    bad = num.isna().to_numpy() & s.notna().to_numpy() & (text.fillna("") != "").to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RecordingError(
            f"non-numeric value {str(s.iloc[i])!r} in column '{col}'", path, locate(row0 + i)
        )
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass
class Parsed:
    """One batch split into streams. ``*_rows`` are 0-based data-row indices (for messages)."""

    emg_t: np.ndarray
    emg_v: np.ndarray
    emg_rows: np.ndarray
    acc_t: np.ndarray
    acc_v: np.ndarray
    acc_rows: np.ndarray
    first_t: float | None
    last_t: float | None


def parse_batch(
    df: Any,
    row0: int,
    layout: Layout,
    prev_t: float | None,
    path: object,
    locate: Locator,
) -> Parsed:
    """Validate one batch and split it into EMG and accelerometer samples.

    ``df``: a DataFrame, or a mapping of column name to a numpy array (one per column, equal
    lengths), as the Parquet reader gives to skip building a DataFrame per batch."""
    df = {str(c).strip(): v for c, v in df.items()}
    # 1-D masks per column, selections before stacking: axis reductions over an (n, 3) array
    # and whole-batch copies cost more than the reading itself
    t = _numeric(df, COL_TIME, row0, path, locate)
    n = len(t)
    emg = _numeric(df, COL_EMG, row0, path, locate) if layout.has_emg else None
    emg_ok = np.zeros(n, bool) if emg is None else ~np.isnan(emg)
    axes = [_numeric(df, c, row0, path, locate) for c in COLS_ACC] if layout.has_acc else None
    if axes is not None:
        nan = [np.isnan(x) for x in axes]
        none_nan = ~(nan[0] | nan[1] | nan[2])
        all_nan = nan[0] & nan[1] & nan[2]
        partial = ~none_nan & ~all_nan
        if partial.any():
            i = int(np.flatnonzero(partial)[0])
            empty = [c for c, m in zip(COLS_ACC, nan, strict=True) if m[i]]
            raise RecordingError(
                f"accelerometer row incomplete: {', '.join(empty)} empty while other axes are filled",
                path,
                locate(row0 + i),
            )
        acc_ok = none_nan
    else:
        acc_ok = np.zeros(n, bool)
    has_t = ~np.isnan(t)
    all_t = bool(has_t.all())
    if not all_t:
        orphan = ~has_t & (emg_ok | acc_ok)
        if orphan.any():
            i = int(np.flatnonzero(orphan)[0])
            raise RecordingError("row has values but no 'time_s'", path, locate(row0 + i))
    inf = np.isinf(t)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise RecordingError(f"'time_s' is {t[i]!r}, not a finite number", path, locate(row0 + i))
    # Rows with a time but no values (e.g. lost samples written as empty cells) carry no
    # sample; the gap filler re-creates them as NaN from the timestamps.
    idx = None if all_t else np.flatnonzero(has_t)
    tt = t if idx is None else t[idx]
    if len(tt):
        back = np.empty(len(tt), bool)
        back[0] = prev_t is not None and tt[0] < prev_t
        np.less(tt[1:], tt[:-1], out=back[1:])
        if back.any():
            j = int(np.flatnonzero(back)[0])
            before = prev_t if j == 0 else tt[j - 1]
            raise RecordingError(
                f"time goes backwards: time_s {tt[j]:.9g} after {before:.9g}",
                path,
                locate(row0 + (j if idx is None else int(idx[j]))),
            )
    emg_rows = np.flatnonzero(emg_ok)
    acc_rows = np.flatnonzero(acc_ok)
    return Parsed(
        emg_t=t[emg_rows],
        emg_v=emg[emg_rows] if emg is not None else np.empty(0),
        emg_rows=emg_rows + row0,
        acc_t=t[acc_rows],
        acc_v=(np.column_stack([x[acc_rows] for x in axes]) if axes is not None
               else np.empty((0, 3))),
        acc_rows=acc_rows + row0,
        first_t=float(tt[0]) if len(tt) else None,
        last_t=float(tt[-1]) if len(tt) else None,
    )


#: Samples on each side of a sample whose timing phase sets its place (the window is 2·this+1).
GRID_HALF_WINDOW = 16
#: Timestamp jitter tolerated (in sample periods, either way) without taking it for a gap.
MAX_JITTER = 1.0 / 3.0


def _phase(s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Circular mean of ``s mod 1`` over ``s[lo[i]:hi[i]]`` for each i, in (-0.5, 0.5].

    Cumulative sums of the unit vectors: O(n) for any window."""
    ang = 2 * np.pi * s
    c = np.concatenate([[0.0], np.cumsum(np.cos(ang))])
    si = np.concatenate([[0.0], np.cumsum(np.sin(ang))])
    return np.arctan2(si[hi] - si[lo], c[hi] - c[lo]) / (2 * np.pi)


@dataclass
class Assembler:
    """Places one stream's timed samples on a regular grid, NaN-filling gaps.

    ``feed`` may be called batch after batch; state carries over between calls; the last
    :data:`GRID_HALF_WINDOW` samples wait for the next batch (their place looks ahead), so
    :meth:`flush` must be called after the last batch.

    Host-stamped timestamps jitter, so one interval cannot tell a gap from a late sample.
    Instead each sample's place comes from the *timing phase* of its neighbours: a sample's
    offset ``s = t·fs − count`` (time in periods minus its count, as if none were missing) is
    ``gaps so far + phase + jitter``. Gaps are whole periods, so they do not change
    ``s mod 1``: the circular mean of ``s mod 1`` over the ``2·GRID_HALF_WINDOW + 1``
    samples around it is the phase, whatever gaps lie there, and the gaps before the sample
    are ``round(s − phase)`` — exact while the jitter stays under half a period (up to
    :data:`MAX_JITTER` with margin for the estimate). The phase is unwrapped along the
    stream, so slow clock drift (a rate within 0.1 % of the nominal one) moves it without
    ever making a gap. Without jitter this is "an interval longer than 1.5 periods is a gap".
    """

    stream: str
    fs_hz: float
    t0: float
    path: object
    locate: Locator
    last_t: float | None = None
    n_out: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    n_gaps: int = 0
    missing: int = 0
    dev_sq: float = 0.0
    n_regular: int = 0
    _seen: int = 0  # samples placed
    _hist: np.ndarray = field(default_factory=lambda: np.empty(0))  # offsets of the last placed
    _pend_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    _pend_v: np.ndarray | None = None
    _pend_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _t_first: float | None = None
    _phase_last: float | None = None  # unwrapped phase of the last placed sample
    _g_last: int = 0  # gaps (missing samples) before the last placed sample

    def feed(self, t: np.ndarray, v: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Return the grid samples for new samples ``t`` (s), ``v`` ((k,) or (k, 3)),
        holding the last few back until the next batch or :meth:`flush`."""
        if self._pend_v is None:
            self._pend_v = v[:0]
        if len(t) == 0:
            return self._pend_v[:0]
        t = np.concatenate([self._pend_t, t])
        v = np.concatenate([self._pend_v, v])
        rows = np.concatenate([self._pend_rows, rows])
        keep = min(GRID_HALF_WINDOW, len(t))
        out = self._place(t, v, rows, len(t) - keep)
        cut = len(t) - keep
        self._pend_t, self._pend_v, self._pend_rows = t[cut:], v[cut:], rows[cut:]
        return out

    def flush(self) -> np.ndarray | None:
        """Place the samples held back; None when nothing was ever fed."""
        if self._pend_v is None:
            return None
        t, v, rows = self._pend_t, self._pend_v, self._pend_rows
        self._pend_t, self._pend_v, self._pend_rows = t[:0], v[:0], rows[:0]
        return self._place(t, v, rows, len(t))

    def _place(self, t: np.ndarray, v: np.ndarray, rows: np.ndarray, n_place: int) -> np.ndarray:
        """Put the first ``n_place`` of ``t``/``v`` on the grid (all of ``t`` is context)."""
        if n_place <= 0:
            return v[:0]
        fs = self.fs_hz
        if self._t_first is None:
            self._t_first = float(t[0])
        # offset (periods) of every sample, counting as if none were missing
        offset = (t - self._t_first) * fs - (self._seen + np.arange(len(t)))
        lead = 0
        if self.last_t is None:
            # A stream that starts after the table's first time is padded at the front so
            # both streams share time zero.
            lead = max(0, int(np.floor((t[0] - self.t0) * fs + 0.5)))
            d = np.diff(t)
            drows = rows[1:]
            first = 1  # index in t of the sample that ends interval d[0]
        else:
            d = np.diff(np.concatenate([[self.last_t], t]))
            drows = rows
            first = 0
        if (d <= 0).any():
            j = int(np.flatnonzero(d <= 0)[0])
            raise RecordingError(
                f"two {self.stream} samples at the same time_s ({t[j + first]:.9g})",
                self.path,
                self.locate(int(drows[j])),
            )
        n_int = n_place - first  # intervals ending at a sample placed now
        d, drows = d[:n_int], drows[:n_int]
        h = GRID_HALF_WINDOW
        ctx = np.concatenate([self._hist, offset])
        g0 = self._g_last
        if self.last_t is not None and not (np.diff(ctx[len(self._hist) - 1:]) > 1 - 2 * MAX_JITTER - 1e-9).any():
            # no interval long enough to hide even one missing sample (the usual case): all
            # steps are 1; only the phase is carried on
            steps = np.ones(n_int, dtype=np.int64)
            g = np.array([g0])
            last = len(self._hist) + n_place - 1
            tail = ctx[max(last - 2 * h, 0): last + 1]  # only the last window's phase is needed
            w = float(_phase(tail, np.array([0]), np.array([len(tail)]))[0])
            ph = np.array([w + np.floor(ctx[last] - g0 - w + 0.5)])
        else:
            # timing phase around each sample to place (history and held-back samples as context)
            k = np.arange(n_place) + len(self._hist)
            ph = _phase(ctx, np.maximum(k - h, 0), np.minimum(k + h + 1, len(ctx)))
            ref = self._phase_last if self._phase_last is not None else float(ph[0])
            ph = np.unwrap(np.concatenate([[ref], ph]), period=1.0)[1:]
            g = np.floor(offset[:n_place] - ph + 0.5).astype(np.int64)
            # never backwards: a sample rounded early cannot take an earlier sample's place
            g = np.maximum.accumulate(np.concatenate([[g0 if self.last_t is not None else g[0]], g]))
            steps = (1 + np.diff(g))[-n_int:] if n_int else np.empty(0, np.int64)
        gap = steps > 1
        reg = d[~gap]
        self.dev_sq += float(np.sum((reg - 1.0 / fs) ** 2))
        self.n_regular += int(reg.size)
        for j in np.flatnonzero(gap):
            self.n_gaps += 1
            miss = int(steps[j] - 1)
            self.missing += miss
            if len(self.gaps) < MAX_GAPS_LISTED:
                before = self.last_t if (self.last_t is not None and j == 0) else float(t[j + first - 1])
                self.gaps.append(
                    {
                        "stream": self.stream,
                        "start_s": round(before - self.t0 + 1.0 / fs, 9),
                        "missing_samples": miss,
                        "missing_s": round(miss / fs, 9),
                        "where": self.locate(int(drows[j])),
                    }
                )
        if self.last_t is None:
            pos = np.concatenate([[0], np.cumsum(steps)])
        else:
            pos = np.cumsum(steps) - 1
        pos = pos + lead
        out = np.full((int(pos[-1]) + 1, *v.shape[1:]), np.nan)
        out[pos] = v[:n_place]
        self._hist = np.concatenate([self._hist, offset[:n_place]])[-h:]
        self._phase_last = float(ph[-1])
        self._g_last = int(g[-1])
        self.last_t = float(t[n_place - 1])
        self._seen += n_place
        self.n_out += len(out)
        return out

    @property
    def jitter_ms(self) -> float:
        """RMS deviation of the regular intervals from 1/fs, in milliseconds."""
        return float(np.sqrt(self.dev_sq / self.n_regular) * 1e3) if self.n_regular else 0.0


@dataclass
class Scan:
    """Result of a full pass over a table."""

    fs_emg_hz: float | None
    fs_acc_hz: float | None
    t0: float
    n_emg: int = 0
    n_acc: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    emg_uv: np.ndarray | None = None
    acc_g: np.ndarray | None = None


class TableEngine:
    """Reads a table given as batches; used by the CSV and Parquet readers."""

    def __init__(
        self, path: object, fmt: str, layout: Layout, batches: BatchFactory, locate: Locator
    ):
        self.path = path
        self.fmt = fmt
        self.layout = layout
        self.batches = batches
        self.locate = locate

    def fraction_read(self) -> float | None:
        """Share of the rows parsed by the latest pass (None when the total is unknown)."""
        total = getattr(self, "total_rows", None)
        return None if not total else min(self.rows_read / total, 1.0)

    def _parsed(self) -> Iterator[Parsed]:
        prev_t: float | None = None
        self.rows_read = 0
        for df, row0 in self.batches():
            p = parse_batch(df, row0, self.layout, prev_t, self.path, self.locate)
            self.rows_read = row0 + len(p.emg_rows) + len(p.acc_rows)  # a lower bound: progress only
            if p.last_t is not None:
                prev_t = p.last_t
            yield p

    def estimate(self) -> tuple[float | None, float | None, float]:
        """Infer both rates and the table's first time from its first rows."""
        emg_t: list[np.ndarray] = []
        acc_t: list[np.ndarray] = []
        ne = na = 0
        t0: float | None = None
        for p in self._parsed():
            if t0 is None and p.first_t is not None:
                t0 = p.first_t
            emg_t.append(p.emg_t)
            acc_t.append(p.acc_t)
            ne += len(p.emg_t)
            na += len(p.acc_t)
            if (not self.layout.has_emg or ne > RATE_WINDOW) and (
                not self.layout.has_acc or na > RATE_WINDOW
            ):
                break
        if ne == 0 and na == 0:
            raise RecordingError("empty recording: no samples after the header", self.path)
        fs_emg = self._rate(np.concatenate(emg_t), "EMG", MIN_FS_EMG_HZ) if ne else None
        fs_acc = self._rate(np.concatenate(acc_t), "accelerometer", MIN_FS_ACC_HZ) if na else None
        assert t0 is not None
        return fs_emg, fs_acc, t0

    def _rate(self, t: np.ndarray, stream: str, minimum: float) -> float:
        if len(t) < 2:
            raise RecordingError(
                f"only one {stream} sample: cannot infer the {stream} sample rate", self.path
            )
        d = np.diff(t[: RATE_WINDOW + 1])
        d = d[d > 0]
        if not len(d):
            raise RecordingError(f"{stream} timestamps do not increase", self.path)
        # The median interval is robust to gaps but noisy under jitter (±0.4 % with ±0.3 ms at
        # 1 kHz). Placing the samples on its grid (the Assembler's gap rule, which tolerates
        # jitter) counts the sample periods between the first and the last time exactly, and
        # that count over the elapsed time is the rate.
        med = float(np.median(d))
        tw = t[: RATE_WINDOW + 1]
        tw = tw[np.concatenate([[True], np.diff(tw) > 0])]
        grid = Assembler(stream, 1.0 / med, float(tw[0]), self.path, self.locate)
        grid.feed(tw, np.zeros(len(tw)), np.arange(len(tw)))
        grid.flush()
        span = float(tw[-1] - tw[0])
        fs = round_rate((grid.n_out - 1) / span) if span > 0 else 1.0 / med
        check_rate(fs, minimum, stream, self.path)
        return fs

    def pieces(
        self, fs_emg: float | None, fs_acc: float | None, t0: float
    ) -> tuple[
        Iterator[tuple[np.ndarray | None, np.ndarray | None]], Assembler | None, Assembler | None
    ]:
        """Assembled (NaN-filled) pieces of both streams, batch by batch, and the assemblers."""
        ae = Assembler("EMG", fs_emg, t0, self.path, self.locate) if fs_emg else None
        aa = Assembler("accelerometer", fs_acc, t0, self.path, self.locate) if fs_acc else None

        def gen() -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
            for p in self._parsed():
                yield (
                    ae.feed(p.emg_t, p.emg_v, p.emg_rows) if ae else None,
                    aa.feed(p.acc_t, p.acc_v, p.acc_rows) if aa else None,
                )
            # the last samples of each stream wait for look-ahead that never comes
            yield (ae.flush() if ae else None, aa.flush() if aa else None)

        return gen(), ae, aa

    def scan(self, keep: bool) -> Scan:
        """One full pass: rates, sample counts after gap filling, gaps, jitter (and data if keep)."""
        fs_emg, fs_acc, t0 = self.estimate()
        it, ae, aa = self.pieces(fs_emg, fs_acc, t0)
        emg: list[np.ndarray] = []
        acc: list[np.ndarray] = []
        for e, a in it:
            if keep and e is not None:
                emg.append(e)
            if keep and a is not None:
                acc.append(a)
        scan = self.summarise(fs_emg, fs_acc, t0, ae, aa)
        if keep:
            scan.emg_uv = np.concatenate(emg) if ae else None
            scan.acc_g = np.concatenate(acc).reshape(-1, 3) if aa else None
        return scan

    def summarise(self, fs_emg: float | None, fs_acc: float | None, t0: float,
                  ae: Assembler | None, aa: Assembler | None) -> Scan:
        """After a full pass: counts, gaps and jitter from the assemblers (warns about gaps)."""
        gaps: list[dict[str, Any]] = []
        jitter: dict[str, float] = {}
        for asm, key in ((ae, "emg"), (aa, "acc")):
            if asm is None:
                continue
            gaps.extend(asm.gaps)
            jitter[key] = round(asm.jitter_ms, 6)
            if asm.n_gaps:
                warn(
                    f"{self.path}: {asm.n_gaps} gap(s) in the {asm.stream} stream "
                    f"({asm.missing / asm.fs_hz:.3g} s in all, first at "
                    f"{asm.gaps[0]['where']}) filled with NaN so later samples keep their time"
                )
            if asm.jitter_ms > 0.1e3 / asm.fs_hz:
                log.info(
                    "%s: %s timestamps jitter by %.3g ms RMS (sample period %.3g ms)",
                    self.path,
                    asm.stream,
                    asm.jitter_ms,
                    1e3 / asm.fs_hz,
                )
        meta: dict[str, Any] = {
            "format": self.fmt,
            "jitter_ms": jitter,
            "gaps": gaps,
            "n_gaps": (ae.n_gaps if ae else 0) + (aa.n_gaps if aa else 0),
            "time_origin_s": t0,
        }
        if self.layout.ignored:
            meta["ignored_columns"] = list(self.layout.ignored)
        return Scan(
            fs_emg_hz=fs_emg,
            fs_acc_hz=fs_acc,
            t0=t0,
            n_emg=ae.n_out if ae else 0,
            n_acc=aa.n_out if aa else 0,
            meta=meta,
        )


class TableSource(RecordingSource):
    """A tabular recording (CSV or Parquet) read batch by batch, never whole.

    By default opening makes one pass over the batches to infer the rates, count the samples and
    find the gaps (and to validate every row, so a bad file fails here, naming the row);
    :meth:`iter_chunks` makes a second pass that yields the chunks. Memory stays flat with the
    length of the recording.

    With ``one_pass=True`` (what ``toetwitch analyse`` uses) opening reads only the first rows
    (rates and time origin) and :meth:`iter_chunks` parses the table once, yielding the chunks
    as it goes; :attr:`header` has the rates, :attr:`info` is complete once the chunks have been
    read (read before that, it makes the counting pass first). A bad row then fails while
    reading, with the same message.
    """

    def __init__(self, engine: TableEngine, name: str, extra_meta: dict[str, Any] | None = None,
                 *, one_pass: bool = False):
        self._engine = engine
        self._name = name
        self._extra = dict(extra_meta or {})
        self._info: RecordingInfo | None = None
        self._rates: tuple[float | None, float | None, float] | None = None
        if one_pass:
            self._rates = engine.estimate()
        else:
            self._set_info(engine.scan(keep=False))

    def _set_info(self, scan: Scan) -> None:
        self._scan = scan
        durations = [
            n / fs for n, fs in ((scan.n_emg, scan.fs_emg_hz), (scan.n_acc, scan.fs_acc_hz)) if fs
        ]
        self._info = RecordingInfo(
            name=self._name,
            fs_emg_hz=scan.fs_emg_hz,
            fs_acc_hz=scan.fs_acc_hz,
            n_emg=scan.n_emg,
            n_acc=scan.n_acc,
            duration_s=max(durations),
            start_time=self._start_time(),
            meta={"path": str(self._engine.path), **scan.meta, **self._extra},
        )

    @property
    def info(self) -> RecordingInfo:  # type: ignore[override]
        if self._info is None:
            self._set_info(self._engine.scan(keep=False))
        assert self._info is not None
        return self._info

    @property
    def header(self) -> RecordingInfo:
        """What is known before the samples are read: for a one-pass source the rates and the
        name, with sample counts 0 and ``duration_s`` NaN until :meth:`iter_chunks` has run."""
        if self._info is not None or self._rates is None:
            return self.info
        fs_emg, fs_acc, _ = self._rates
        return RecordingInfo(name=self._name, fs_emg_hz=fs_emg, fs_acc_hz=fs_acc, n_emg=0,
                             n_acc=0, duration_s=float("nan"), start_time=self._start_time(),
                             meta={"path": str(self._engine.path), "format": self._engine.fmt,
                                   **self._extra})

    def _start_time(self) -> str | None:
        """The recording's start (ISO-8601) when the table tells it; plain tables do not."""
        return None

    def fraction_read(self) -> float | None:
        """Share of the table's rows parsed so far by a one-pass read (None when unknown)."""
        return self._engine.fraction_read()

    def iter_chunks(self, chunk_s: float = 60.0) -> Iterator[Chunk]:
        if self._info is None and self._rates is not None:
            yield from self._one_pass(chunk_s)
            return
        s = self._scan
        pieces, _, _ = self._engine.pieces(s.fs_emg_hz, s.fs_acc_hz, s.t0)
        yield from rechunk(pieces, self.info, chunk_s)

    def _one_pass(self, chunk_s: float) -> Iterator[Chunk]:
        assert self._rates is not None
        fs_emg, fs_acc, t0 = self._rates
        pieces, ae, aa = self._engine.pieces(fs_emg, fs_acc, t0)
        yield from rechunk_open(pieces, fs_emg, fs_acc, chunk_s)
        self._set_info(self._engine.summarise(fs_emg, fs_acc, t0, ae, aa))


def rechunk_open(
    pieces: Iterable[tuple[np.ndarray | None, np.ndarray | None]],
    fs_emg_hz: float | None,
    fs_acc_hz: float | None,
    chunk_s: float,
) -> Iterator[Chunk]:
    """:func:`~toetwitch.drivers.readers.base.rechunk` when the streams' lengths are known only at the end:
    the same chunks (``k * chunk_s`` boundaries, the last one up to the end of each stream).

    A chunk is handed out once both streams have reached the start of the chunk after it, so
    it cannot be the last (which takes everything left); the rest follow at the end."""
    rates = (fs_emg_hz, fs_acc_hz)
    n_chunks_for(1.0, chunk_s)  # validates chunk_s
    bufs: list[list[np.ndarray]] = [[], []]
    have = [0, 0]
    used = [0, 0]

    def bound(s: int, k: int) -> int:
        return int(math.floor(k * chunk_s * rates[s] + 0.5))  # as base.chunk_bounds

    def take(k: int, ends: list[int]) -> Chunk:
        out: list[np.ndarray | None] = [None, None]
        for s in (0, 1):
            if not rates[s]:
                continue
            n = max(ends[s] - used[s], 0)
            cat = np.concatenate(bufs[s]) if bufs[s] else np.empty((0,) if s == 0 else (0, 3))
            out[s], rest = cat[:n], cat[n:]
            bufs[s] = [rest] if len(rest) else []
            used[s] += n
        return Chunk(emg_uv=out[0], acc_g=out[1], start_s=k * chunk_s)

    k = 0
    for piece in pieces:
        for s in (0, 1):
            if piece[s] is not None and len(piece[s]):
                bufs[s].append(piece[s])
                have[s] += len(piece[s])
        while all(not rates[s] or have[s] >= bound(s, k + 2) for s in (0, 1)):
            yield take(k, [bound(s, k + 1) if rates[s] else 0 for s in (0, 1)])
            k += 1
    duration = max(have[s] / rates[s] for s in (0, 1) if rates[s])
    k_total = n_chunks_for(duration, chunk_s)
    while k < k_total:
        last = k == k_total - 1
        yield take(k, [(have[s] if last else min(have[s], bound(s, k + 1))) if rates[s] else 0
                       for s in (0, 1)])
        k += 1
