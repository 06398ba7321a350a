"""Low-level firing: a stream of small discharges under the threshold around a potential.

A fasciculation is a discharge on a silent baseline (a relaxed muscle; Sleutjes 2016, Mills
2010). On Gaussian noise a ``busy_k`` = 4.5 σ crossing comes once in ~150 s at 1 kHz, so five
in 2 s is never noise.
"""

from __future__ import annotations

import numpy as np

from toetwitch.pipeline.detect.potentials import IntArray
from toetwitch.pipeline.detect.rules.base import Rule


def count_near(peaks: IntArray, at: int, window_n: int, gap_n: int) -> int:
    """How many of the sorted sample indices ``peaks`` lie within ``window_n`` of ``at`` but
    more than ``gap_n`` away (a potential's own side waves are not neighbours)."""
    g = min(gap_n, window_n)  # those within the window less those within gap_n of ``at``
    lo, near_lo, near_hi, hi = np.searchsorted(
        peaks, [at - window_n, at - g, at + g + 1, at + window_n + 1]).tolist()
    return max(hi - lo - (near_hi - near_lo if g >= 0 else 0), 0)


def count_near_many(peaks: IntArray, at: IntArray, window_n: int, gap_n: int) -> IntArray:
    """:func:`count_near` for every index in ``at`` (shape (m,)) at once: one searchsorted
    of the four bounds of each. Shape (m,), int64."""
    g = min(gap_n, window_n)
    at = np.asarray(at, dtype=np.int64)
    lo, hi = np.searchsorted(peaks, at - window_n), np.searchsorted(peaks, at + window_n + 1)
    near = (np.searchsorted(peaks, at + g + 1) - np.searchsorted(peaks, at - g)) if g >= 0 else 0
    return np.maximum(hi - lo - near, 0).astype(np.int64)


def busy_blocks(counts: np.ndarray, half: int, min_count: int) -> np.ndarray:
    """Per block: do the ``2·half + 1`` blocks centred on it hold ``min_count`` or more
    sub-threshold discharges? ``counts`` is discharges per block, shape (n,); returns bool,
    shape (n,), for any n (0 included: a recording shorter than the window is fine).

    A running sum over a cumulative count (int64, one pass), not a convolution: for 24 h that
    is 864,000 blocks at the end of a long recording, and its length never depends on the
    window's.
    """
    n = len(counts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    c = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    return (c[hi] - c[lo]) >= min_count


LOW_LEVEL_FIRING = Rule(
    "low_level_firing", lambda path, f, frac: path.small_around(f.peak) >= path.cfg.busy_min_discharges,
    "busy_min_discharges or more sub-threshold discharges within busy_window_s", looks_ahead=True)


DENSE_FIRING = Rule(
    "dense_firing", lambda path, f, frac: path.discharges_around(f.peak) >= path.cfg.dense_min_discharges,
    "dense_min_discharges or more discharges of any unit, over or under the threshold, within "
    "busy_window_s: a muscle firing at several per second is not at rest", looks_ahead=True)
