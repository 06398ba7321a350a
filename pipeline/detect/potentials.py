"""Pure functions for the EMG and accelerometer steps: block noise, thresholds, peak clusters,
waveform features. Arrays in, arrays out; no state (state lives in :mod:`toetwitch.pipeline.detect.stream`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: median(|x|)/0.6745 is σ for Gaussian noise and barely moves with sparse spikes (Quiroga 2004).
MAD_TO_SIGMA = 1.0 / 0.6745


class Growing:
    """A 1-D array that grows by appending, with amortised doubling (no copy per append).

    Holds the per-block records of a whole recording: 24 h of 0.1 s blocks is 864,000
    values, and appending group by group must not copy them all each time.
    """

    def __init__(self, dtype: type | np.dtype = np.float64):
        self._data = np.empty(1024, dtype=dtype)
        self._n = 0

    def append(self, values: np.ndarray) -> None:
        k = len(values)
        if self._n + k > len(self._data):
            grown = np.empty(max(2 * len(self._data), self._n + k), dtype=self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n: self._n + k] = values
        self._n += k

    def view(self) -> np.ndarray:
        """The values so far (a view: valid until the next append)."""
        return self._data[: self._n]


def block_sigma(y: FloatArray, block_n: int) -> FloatArray:
    """Robust noise σ of each complete block: median(|y|)/0.6745. ``y`` length is k·block_n."""
    a = np.abs(y.reshape(-1, block_n))  # partitioned in place: no second copy, unlike np.median
    mid = block_n // 2
    if block_n % 2:
        a.partition(mid, axis=1)
        med = a[:, mid]
    else:
        lower, upper = kth_and_next(a, mid - 1)
        med = 0.5 * (lower + upper)
    return med * MAD_TO_SIGMA


def kth_and_next(a: FloatArray, k: int) -> tuple[FloatArray, FloatArray]:
    """The k-th and (k+1)-th smallest values of each row of the 2-D ``a`` (0-based), which is
    partitioned in place. One kth and a min: numpy's partition with two kths is several
    times slower."""
    a.partition(k, axis=1)
    return a[:, k], a[:, k + 1:].min(axis=1)


def block_rms(y: FloatArray, sub_n: int, subs_per_block: int, block_n: int) -> FloatArray:
    """RMS of each envelope sub-block (the first ``subs_per_block·sub_n`` samples of each block).

    Returns shape (n_blocks·subs_per_block,). Computed block-locally so chunking cannot change it.
    """
    blocks = y.reshape(-1, block_n)[:, : subs_per_block * sub_n]
    sq = blocks.reshape(-1, subs_per_block, sub_n) ** 2
    return np.sqrt(sq.mean(axis=2)).ravel()


def rolling_quantile(history: FloatArray, new: FloatArray, q: float, first_block: int,
                     window: int, every: int = 1) -> FloatArray:
    """Noise level for each new block: the ``q`` quantile of the ``window`` blocks before it.

    The level is updated once every ``every`` blocks: block b uses the window that ends just
    before ``(b // every) * every`` (once a second with 0.1 s blocks and ``every=10``), which
    divides the cost by ``every`` and, being tied to absolute block numbers, keeps chunking
    from changing anything.

    Parameters
    ----------
    history : ndarray, shape (window + every - 1,)
        The values of the blocks just before ``new[0]`` (NaN = no value: not seen yet, or a
        block excluded for gaps or clipping).
    new : ndarray, shape (k,)
        Values of the new blocks, numbered ``first_block ... first_block + k - 1``.

    Where a window holds no value at all (the very first second) the block's own value is used.
    """
    if len(new) == 0:
        return np.empty(0)
    base = first_block - len(history)  # block number of history[0]
    blocks = np.arange(first_block, first_block + len(new))
    anchors, which = np.unique((blocks // every) * every, return_inverse=True)
    allv = np.concatenate([history, new])
    starts = anchors - window - base  # row of allv where each anchor's window starts
    windows = np.lib.stride_tricks.sliding_window_view(allv, window)[starts]  # a copy
    # values per window from one running count (not a pass over every window's copy)
    finite = np.concatenate([[0], np.cumsum(np.isfinite(allv), dtype=np.int64)])
    counts = finite[starts + window] - finite[starts]
    levels = np.empty(len(anchors))
    full = counts == window
    all_full = bool(full.all())
    if full.any():  # the common case: a partial partition of complete windows
        pos = q * (window - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, window - 1)
        rows = windows if all_full else windows[full]  # (partitioned in place: no other use)
        if hi > lo:
            vlo, vhi = kth_and_next(rows, lo)
        else:  # a window of one block
            vlo = vhi = rows[:, lo]
        levels[full] = vlo + (vhi - vlo) * (pos - lo)
    some = ~full
    if not all_full:  # windows with gaps or at the start: sort the valid values
        c = counts[some]
        part = windows[some]
        srt = np.sort(np.where(np.isfinite(part), part, np.inf), axis=1)
        pos = q * np.maximum(c - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(c - 1, 0))
        rows = np.arange(len(c))
        vlo, vhi = srt[rows, lo], srt[rows, hi]
        with np.errstate(invalid="ignore"):
            levels[some] = np.where(c > 0, vlo + (vhi - vlo) * (pos - lo), np.nan)
    out = levels[which]
    return np.where(np.isnan(out) & (counts[which] == 0), new, out)


class RollingLevel:
    """Streaming form of :func:`rolling_quantile`: keeps the block history between calls.

    The level changes only once every ``every`` blocks, so a call whose new blocks all share
    the anchor of the last level computed gets that level back without recomputing it (a
    live push is one or two blocks; recomputing cost more than the rest of the push).
    """

    def __init__(self, q: float, window: int, every: int):
        self.q, self.window, self.every = q, window, every
        self.history = np.full(window + every - 1, np.nan)
        self.next_block = 0
        self._anchor, self._level = -1, np.nan

    def __call__(self, new: FloatArray) -> FloatArray:
        """Levels for the next ``len(new)`` blocks (NaN in ``new`` = block not usable)."""
        first, n, every = self.next_block, len(new), self.every
        allv = np.concatenate([self.history, new])
        if n and (first // every) * every == self._anchor == ((first + n - 1) // every) * every:
            out = np.full(n, self._level)
        else:
            out = rolling_quantile(self.history, new, self.q, first, self.window, every)
            if n:
                last = ((first + n - 1) // every) * every
                start = last - self.window - (first - len(self.history))
                has_values = bool(np.isfinite(allv[start: start + self.window]).any())
                self._anchor, self._level = (last, float(out[-1])) if has_values else (-1, np.nan)
        self.history = allv[-len(self.history):]
        self.next_block += n
        return out


def cluster_indices(idx: IntArray, merge_n: int) -> tuple[IntArray, IntArray]:
    """Group sorted sample indices into clusters whose gaps are <= ``merge_n``.

    Returns (starts, ends), inclusive indices of each cluster's first and last sample.
    """
    if len(idx) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    breaks = np.flatnonzero(np.diff(idx) > merge_n)
    starts = idx[np.concatenate([[0], breaks + 1])]
    ends = idx[np.concatenate([breaks, [len(idx) - 1]])]
    return starts.astype(np.int64), ends.astype(np.int64)


def carry_clusters(starts: IntArray, ends: IntArray, open_cluster: tuple[int, int] | None,
                   merge_n: int, n_done: int) -> tuple[IntArray, IntArray, tuple[int, int] | None]:
    """Join this group's clusters with the one left open by the previous group.

    Returns the closed clusters (starts, ends) and the cluster still open at the end: one
    whose last sample is within ``merge_n`` of ``n_done`` (more samples may extend it).
    """
    if open_cluster is not None:
        s0, e0 = open_cluster
        if len(starts) and starts[0] - e0 <= merge_n:
            starts = starts.copy()
            starts[0] = s0  # the carried cluster continues into this group
        else:
            starts = np.concatenate([[s0], starts]).astype(np.int64)
            ends = np.concatenate([[e0], ends]).astype(np.int64)
    still_open = None
    if len(starts) and ends[-1] + merge_n >= n_done:
        still_open = (int(starts[-1]), int(ends[-1]))
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends, still_open


def small_discharges(y: FloatArray, thr: FloatArray, low: FloatArray, block_n: int,
                     merge_n: int, abs_y: FloatArray | None = None) -> IntArray:
    """Sub-threshold discharges: clusters of samples with ``low < |y|`` whose peak stays at or
    under the detection threshold ``thr``.

    ``thr`` and ``low`` are per block (µV), ``y`` holds whole blocks. Clusters (gaps <=
    ``merge_n``) are cut at block edges, which keeps the answer independent of the chunking
    (a discharge across an edge may count twice; the rule using this counts many).
    Returns the index of each cluster's largest |y|, shape (k,), relative to ``y[0]``.
    ``abs_y``, when given, is ``np.abs(y)`` already computed by the caller.
    """
    ay = (np.abs(y) if abs_y is None else abs_y).reshape(-1, block_n)
    idx = np.flatnonzero(ay > low[:, None])
    if len(idx) == 0:
        return np.empty(0, np.int64)
    new_cluster = np.ones(len(idx), dtype=bool)
    new_cluster[1:] = (np.diff(idx) > merge_n) | (np.diff(idx // block_n) != 0)
    starts = np.flatnonzero(new_cluster)
    vals = ay.ravel()[idx]
    peak = np.maximum.reduceat(vals, starts)
    counts = np.diff(np.append(starts, len(idx)))
    at_max = np.flatnonzero(vals == np.repeat(peak, counts))
    _, first_max = np.unique(np.searchsorted(starts, at_max, side="right") - 1, return_index=True)
    peaks = idx[at_max[first_max]]
    return peaks[peak <= thr[peaks // block_n]].astype(np.int64)


def first_argmax(y: FloatArray, starts: IntArray, ends: IntArray, absolute: bool = False) -> IntArray:
    """Index of the largest value (of |y| if ``absolute``) in each segment
    ``y[starts[k]: ends[k] + 1]``, the first of equal ones as np.argmax, for sorted,
    non-overlapping, non-empty segments. Shape (len(starts),).

    One gather of the segments' samples instead of an argmax call per segment; segments
    holding a NaN are done with np.argmax itself (NaN is its maximum)."""
    if len(starts) == 0:
        return np.empty(0, np.int64)
    lengths = ends - starts + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    idx = np.arange(int(lengths.sum())) - np.repeat(offsets - starts, lengths)
    vals = np.abs(y[idx]) if absolute else y[idx]
    if not np.isfinite(vals).all():
        return np.array([s + int(np.argmax(np.abs(y[s: e + 1]) if absolute else y[s: e + 1]))
                         for s, e in zip(starts.tolist(), ends.tolist(), strict=True)], dtype=np.int64)
    peak = np.maximum.reduceat(vals, offsets)
    at_max = np.flatnonzero(vals == np.repeat(peak, lengths))
    seg = np.searchsorted(offsets, at_max, side="right") - 1
    first = at_max[np.concatenate([[True], seg[1:] != seg[:-1]])]  # first maximum of each
    return idx[first].astype(np.int64)


def windows_around(y: FloatArray, idx: IntArray, half_n: int) -> FloatArray:
    """``y`` over ±``half_n`` samples around each index, shape (len(idx), 2·half_n + 1);
    windows running past an end of ``y`` repeat its end sample (max/min as if cut there)."""
    cols = np.clip(idx[:, None] + np.arange(-half_n, half_n + 1), 0, len(y) - 1)
    return y[cols]


def potential_features(
    y: FloatArray, lf: FloatArray, peak: int, half_n: int, core_n: int
) -> tuple[float, float, int, float, float]:
    """Waveform features of one potential centred on ``peak`` (index into ``y``).

    Returns (peak_to_peak_uv, duration_samples, phases, lf_peak_to_peak_uv,
    core_energy_fraction): p2p over ±half_n; duration = extent where |y| exceeds 10 % of the
    peak (docs/evidence.md §S6.3); phases = number of baseline crossings inside that extent + 1;
    the 1-15 Hz deflection over the same window; and the largest share of the window's energy
    inside any ``2·core_n + 1`` samples — a motor-unit potential is a compact wave, a noise
    burst is not.
    """
    w = y[max(peak - half_n, 0): peak + half_n + 1]
    lw = lf[max(peak - half_n, 0): peak + half_n + 1]
    p2p = float(w.max() - w.min())
    lf_p2p = float(lw.max() - lw.min())
    e = np.concatenate([[0.0], np.cumsum(w * w)])
    total = float(e[-1])
    k = min(2 * core_n + 1, len(w))
    core_frac = float((e[k:] - e[:-k]).max() / total) if total > 0 else 1.0
    a = abs(y[peak])
    above = np.flatnonzero(np.abs(w) > 0.1 * a)
    if len(above) == 0:
        return p2p, 1.0, 1, lf_p2p, core_frac
    seg = w[above[0]: above[-1] + 1]
    big = seg[np.abs(seg) > 0.1 * a]
    phases = int(np.count_nonzero(np.diff(np.sign(big)) != 0)) + 1
    return p2p, float(above[-1] - above[0] + 1), phases, lf_p2p, core_frac


def potential_features_many(
    y: FloatArray, lf: FloatArray, peaks: IntArray, half_n: int, core_n: int
) -> tuple[FloatArray, FloatArray, IntArray, FloatArray, FloatArray]:
    """:func:`potential_features` for many peaks at once (same values, bit for bit).

    Peaks whose ±``half_n`` window fits inside ``y`` are done as one (m, 2·half_n+1) array;
    the few at the edges of the buffer go through the one-peak function. Returns arrays
    (peak_to_peak_uv, duration_samples, phases, lf_peak_to_peak_uv, core_energy_fraction),
    each of shape (len(peaks),).
    """
    m = len(peaks)
    p2p, dur, lf_p2p, core = (np.empty(m) for _ in range(4))
    phases = np.empty(m, dtype=np.int64)
    inside = (peaks >= half_n) & (peaks + half_n < len(y))
    for k in np.flatnonzero(~inside).tolist():
        p2p[k], dur[k], phases[k], lf_p2p[k], core[k] = potential_features(y, lf, int(peaks[k]), half_n, core_n)
    rows = np.flatnonzero(inside)
    if len(rows) == 0:
        return p2p, dur, phases, lf_p2p, core
    width = 2 * half_n + 1
    cols = peaks[rows, None] - half_n + np.arange(width)
    w, lw = y[cols], lf[cols]
    p2p[rows] = w.max(axis=1) - w.min(axis=1)
    lf_p2p[rows] = lw.max(axis=1) - lw.min(axis=1)
    e = np.zeros((len(rows), width + 1))
    np.cumsum(w * w, axis=1, out=e[:, 1:])
    total = e[:, -1]
    k = min(2 * core_n + 1, width)
    best = (e[:, k:] - e[:, :-k]).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        core[rows] = np.where(total > 0, best / np.where(total > 0, total, 1.0), 1.0)
    a = np.abs(w[:, half_n])
    above = np.abs(w) > 0.1 * a[:, None]
    any_above = above.any(axis=1)
    first = np.argmax(above, axis=1)
    last = width - 1 - np.argmax(above[:, ::-1], axis=1)
    dur[rows] = np.where(any_above, last - first + 1, 1).astype(float)
    # phases: sign changes between consecutive above-threshold samples, + 1
    idx = np.where(above, np.arange(width), -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    sgn = np.sign(w)
    prev = np.take_along_axis(sgn, np.maximum(idx[:, :-1], 0), axis=1)
    changes = above[:, 1:] & (idx[:, :-1] >= 0) & (sgn[:, 1:] != prev)
    phases[rows] = np.where(any_above, changes.sum(axis=1) + 1, 1)
    return p2p, dur, phases, lf_p2p, core


def same_unit_neighbours(peaks: IntArray, p2p_uv: FloatArray, window_n: int,
                         ratio: float, dense_max: int = 64,
                         alike: Callable[[IntArray, IntArray], NDArray[np.bool_]] | None = None
                         ) -> tuple[IntArray, IntArray]:
    """For each potential, how many others of a similar size lie within ``window_n`` samples.

    "Similar size" means peak-to-peak amplitudes within ``ratio`` of each other (one surface
    channel's stand-in for "the same motor unit"). ``peaks`` must be sorted. Only pairs inside
    the window are formed, so memory grows with the density of potentials, not with the
    square of a long burst's length.

    Returns (count, partner): shape (n,) each; ``partner[i]`` is the one such neighbour when
    ``count[i] == 1`` (otherwise -1). Up to ``dense_max`` potentials, all pairs are compared
    in one (n, n) array instead (fewer numpy calls: most bursts hold 2-10 potentials).
    ``alike(i, j)``, when given, must also hold for a pair of similar size (e.g. the same
    waveform shape): two units of one size are not one unit. It is asked once, for every
    pair of similar size at once: ``i`` and ``j`` are index arrays (``i < j``, shape (p,)),
    and it returns a bool array of shape (p,).
    """
    n = len(peaks)
    if n <= dense_max:
        a = p2p_uv
        same = ((np.abs(peaks[:, None] - peaks[None, :]) <= window_n)
                & (a[:, None] <= ratio * a[None, :]) & (a[None, :] <= ratio * a[:, None]))
        np.fill_diagonal(same, False)
        if alike is not None:
            i, j = np.nonzero(np.triu(same))
            if len(i):
                differ = ~alike(i, j)
                same[i[differ], j[differ]] = same[j[differ], i[differ]] = False
        count = same.sum(axis=1)
        partner = np.where(count == 1, same.argmax(axis=1), -1)
        return count.astype(np.int64), partner.astype(np.int64)
    hi = np.searchsorted(peaks, peaks + window_n, side="right")
    k = hi - np.arange(n) - 1  # later neighbours of each potential inside the window
    first = np.repeat(np.arange(n), k)
    second = first + np.arange(len(first)) - np.repeat(np.cumsum(k) - k, k) + 1
    a, b = p2p_uv[first], p2p_uv[second]
    same = (a <= ratio * b) & (b <= ratio * a)
    if alike is not None:
        k = np.flatnonzero(same)
        if len(k):
            same[k] = alike(first[k], second[k])
    first, second = first[same], second[same]
    count = np.bincount(first, minlength=n) + np.bincount(second, minlength=n)
    partner = np.full(n, -1, dtype=np.int64)
    partner[first] = second  # for count == 1 the one pair decides either way
    partner[second] = first
    return count.astype(np.int64), partner


def shape_similarity(a: FloatArray, b: FloatArray, max_lag: int) -> float:
    """Largest normalised cross-correlation of two waveforms over lags of ±``max_lag`` samples.

    1.0 = the same shape (any scale), negative = opposite polarity. Used to tell whether two
    potentials come from the same motor unit (Kleine 2012 and Jahanmiri-Nezhad 2014 sort
    units by template). The lag must cover a unit's phase spacing: a biphasic potential with
    phases of equal size is centred now on one phase, now on the other (3-6 ms apart).
    Normalised by the two whole windows' energies (template matching with zero padding): a
    shifted copy of a compact wave keeps nearly all its energy inside the window, and one
    np.correlate call per pair keeps this cheap (it runs for every candidate pair).
    """
    n = min(len(a), len(b))
    if n == 0:
        return -1.0
    a, b = a[:n], b[:n]
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    if den <= 0:
        return -1.0
    lag = min(max_lag, n - 1)
    return float(np.correlate(a, b, mode="full")[n - 1 - lag: n + lag].max()) / den


#: The vectorised similarities below agree with :func:`shape_similarity` to ~1e-14 (the
#: same sums of a few dozen products, added in another order; by Cauchy-Schwarz each is off
#: by at most a few dozen roundings of 1). One this close to a decision threshold is
#: recomputed with :func:`shape_similarity` (:func:`at_least_similar`), so that no decision
#: depends on the order of a sum: the vectorised rules decide exactly as the per-pair ones.
SIMILARITY_MARGIN = 1e-9


def lagged_copies(shapes: FloatArray, max_lag: int) -> FloatArray:
    """Every shift of each row of ``shapes`` (m, n) by -L..L samples, zeros shifted in, with
    L = min(max_lag, n - 1): shape (m, 2·L + 1, n).

    Row ``k`` of ``lagged_copies(a[None], L)[0]`` dotted with ``b`` is
    ``np.correlate(a, b, "full")[n - 1 - L + k]``: the correlation at lag k - L.
    """
    m, n = shapes.shape
    lag = max(min(max_lag, n - 1), 0)
    padded = np.zeros((m, n + 2 * lag))
    padded[:, lag: lag + n] = shapes
    return padded[:, _lag_index(n, lag)]


@functools.lru_cache(maxsize=16)
def _lag_index(n: int, lag: int) -> IntArray:
    """Column indices into a row padded with ``lag`` zeros each side: (2·lag + 1, n), row k
    starting at column k (one small gather beats sliding_window_view's per-call checks)."""
    out = np.arange(2 * lag + 1)[:, None] + np.arange(n)
    out.flags.writeable = False
    return out


def shape_similarity_many(a: FloatArray, shapes: FloatArray, max_lag: int) -> FloatArray:
    """:func:`shape_similarity` of ``a`` (n,) with every row of ``shapes`` (m, n), to about
    1e-14 (see :data:`SIMILARITY_MARGIN`): one (m, n) × (n, 2·lag+1) product instead of m
    np.correlate calls. Shape (m,)."""
    m, n = shapes.shape
    if m == 0 or n == 0:
        return np.full(m, -1.0)
    corr = shapes @ lagged_copies(a[None, :], max_lag)[0].T  # (m, 2·lag + 1)
    den = np.sqrt(float(np.dot(a, a)) * np.einsum("ij,ij->i", shapes, shapes))
    zero = den <= 0  # as shape_similarity: -1 for a silent waveform (a NaN stays NaN)
    return np.where(zero, -1.0, corr.max(axis=1) / np.where(zero, 1.0, den))


def shape_similarity_pairs(a: FloatArray, b: FloatArray, max_lag: int) -> FloatArray:
    """:func:`shape_similarity` of each row of ``a`` with the same row of ``b`` (both (p, n)),
    to about 1e-14 (see :data:`SIMILARITY_MARGIN`). Shape (p,)."""
    p, n = a.shape
    if p == 0 or n == 0:
        return np.full(p, -1.0)
    corr = np.matmul(lagged_copies(a, max_lag), b[:, :, None])[:, :, 0]  # (p, 2·lag + 1)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    zero = den <= 0  # as shape_similarity: -1 for a silent waveform (a NaN stays NaN)
    return np.where(zero, -1.0, corr.max(axis=1) / np.where(zero, 1.0, den))


def at_least_similar(sims: FloatArray, min_corr: float,
                     exact: Callable[[int], float]) -> NDArray[np.bool_]:
    """``exact(k) >= min_corr`` for every k, decided from the vectorised similarities ``sims``
    (shape (m,)) wherever they are clear of ``min_corr`` by more than
    :data:`SIMILARITY_MARGIN`; ``exact(k)`` (:func:`shape_similarity` of pair k) decides the
    rest, so the answer never depends on rounding. Shape (m,), bool."""
    if len(sims) <= 16:  # most candidates have a few: Python floats, same comparisons
        return np.array([v >= min_corr if abs(v - min_corr) > SIMILARITY_MARGIN else exact(k) >= min_corr
                         for k, v in enumerate(sims.tolist())], dtype=bool)
    out = sims >= min_corr
    for k in np.flatnonzero(np.abs(sims - min_corr) <= SIMILARITY_MARGIN).tolist():
        out[k] = exact(k) >= min_corr
    return out


def runs(mask: NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """Start and end (exclusive) of the True runs of a boolean array."""
    m = np.concatenate([[False], mask, [False]]).view(np.int8)
    d = np.diff(m)
    return np.flatnonzero(d == 1).astype(np.int64), np.flatnonzero(d == -1).astype(np.int64)


def has_run(mask: NDArray[np.bool_], need: int, start_before: int | None = None) -> bool:
    """Does ``mask`` hold ``need`` or more consecutive True values (in a run that starts
    before index ``start_before``, if given)?

    For the short envelope windows of the activity rules (10-30 values) a plain loop is
    several times faster than :func:`runs`' array calls, and it is called per potential.
    """
    n = 0
    for i, v in enumerate(mask.tolist()):
        if not v:
            n = 0
            continue
        n += 1
        if n >= need and (start_before is None or i - n + 1 < start_before):
            return True
    return False


def quantisation_step(x: FloatArray, block_n: int,
                      irrelevant_below: FloatArray | None = None) -> FloatArray:
    """Per block: the ADC step the samples were quantised with (µV), or 0 when they were not.

    The step is the smallest non-zero difference between consecutive samples, taken as a step
    only when every difference in the block is a whole multiple of it (to a millionth of the
    step): an ADC's codes differ by whole steps, resampled or filtered values do not. A block
    with no non-zero difference (constant) has no measurable step: 0. Block-local, so no
    chunking can change it. ``x`` holds whole blocks (NaN-free); returns shape (n_blocks,).

    ``irrelevant_below`` (per block, µV), when given, is the size under which a step would
    change nothing for the caller: a block whose first differences already hold a non-zero one
    that small (so its step, if it has one, is no larger) reports 0 without the whole-block
    check. Float or finely quantised signals then cost one small pass, not three full ones.
    """
    xb = x.reshape(-1, block_n)
    out = np.zeros(len(xb))
    if block_n < 2:
        return out
    rows = None
    if irrelevant_below is not None:
        m = min(block_n - 1, 8)
        head = np.abs(xb[:, 1:m + 1] - xb[:, :m])
        small = ((head > 0) & (head <= irrelevant_below[:, None])).any(axis=1)
        if small.all():
            return out
        rows = np.flatnonzero(~small)
        xb = xb[rows]
    d = np.abs(xb[:, 1:] - xb[:, :-1])
    step = np.where(d > 0, d, np.inf).min(axis=1)
    ok = np.isfinite(step)
    r = d / np.where(ok, step, 1.0)[:, None]
    r -= np.rint(r)
    whole = ok & (np.abs(r) <= 1e-6).all(axis=1)
    if rows is None:
        out[whole] = step[whole]
    else:
        out[rows[whole]] = step[whole]
    return out


def flat_runs_mask(x: FloatArray, block_n: int, flat_n: int,
                   baseline_alive: NDArray[np.bool_] | None = None,
                   clip_range_uv: float = np.inf) -> NDArray[np.bool_]:
    """Per block: does it hold a run of >= ``flat_n`` identical consecutive samples?

    Clipping at the ADC rails and a dead electrode both show as flat runs. Runs are cut at
    block edges (block-local keeps chunking from changing the answer).

    In the blocks where ``baseline_alive`` is True (a coarsely quantised signal whose noise is
    under a few ADC steps: its resting baseline sits on one code for tens of ms) a run counts
    only when it is clipping or a dead channel: it covers the whole block, or it sits at the
    block's highest or lowest value while the block spans at least ``clip_range_uv`` (a signal
    driven into a rail comes from far; a baseline run lies among its neighbours' codes).
    NaN samples (lost) never belong to a run. Returns shape (n_blocks,), bool.
    """
    n_blocks = len(x) // block_n
    same = x[1:] == x[:-1]
    same[block_n - 1:: block_n] = False  # never across a block edge
    if not same.any():  # no two equal samples in a row (an unquantised signal): no run at all
        return np.zeros(n_blocks, dtype=bool)
    starts, ends = runs(same)
    long_ = (ends - starts) >= flat_n - 1
    starts = starts[long_]
    block = starts // block_n
    if baseline_alive is not None and baseline_alive.any() and len(starts):
        xb = x[: n_blocks * block_n].reshape(n_blocks, block_n)
        finite = np.isfinite(xb)
        hi = np.where(finite, xb, -np.inf).max(axis=1)
        lo = np.where(finite, xb, np.inf).min(axis=1)
        level = x[starts]
        whole = (ends[long_] - starts) >= block_n - 1
        at_rail = ((level == hi[block]) | (level == lo[block])) & (hi[block] - lo[block] >= clip_range_uv)
        keep = ~baseline_alive[block] | whole | at_rail
        block = block[keep]
    out = np.zeros(n_blocks, dtype=bool)
    out[block] = True
    return out
