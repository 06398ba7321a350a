"""``tonic_train`` by unit (issue #11): is the candidate's *own unit* firing regularly in its chain?

A chain is a run of discharges each within ``train_gap_ms`` of the last. Tonic firing at
1.2-4 Hz makes long regular chains; so do the twitches of a few units recurring irregularly
in a storm (at 120 per minute the chain rarely breaks), and a short stretch of a storm's mixed
intervals, all under ``train_gap_ms`` by construction, reads regular by chance (a truncated
exponential has a CV near 0.6; with three or four intervals one in four or five reads under
0.4). The rule before issue #11 took the chain's discharges of the candidate's *size* and their
interval CV; this one takes the discharges of the candidate's *unit* — similar size and, when
both stand out of the noise, a similar shape (correlation ``train_unit_correlation`` over
±``unit_lag_ms``: loose, because a real unit firing on among others changes shape as their
potentials overlap it; at 0.8 the voluntary firing of a real recording split into 'units' too
small to be regular) — within ``unit_window_s`` of it, and asks their intervals for regularity: tonic and low-level
firing is regular (ISI CV ≈ 0.1-0.3), a fasciculating unit is Poisson-like (CV ≈ 1) at any rate.
Chosen by ``DetectorConfig.train_by_unit``.
"""

from __future__ import annotations

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.potentials import FloatArray, IntArray, shape_similarity


def regular_intervals(peaks_n: IntArray, min_intervals: int, cv_max: float,
                      max_mean_n: float = np.inf) -> bool:
    """Do the discharge times ``peaks_n`` (samples, any order) make at least
    ``min_intervals`` intervals whose coefficient of variation (ddof 1) is at most ``cv_max``
    and whose mean is at most ``max_mean_n`` samples?"""
    isi = np.diff(np.sort(np.asarray(peaks_n, dtype=np.int64))).astype(float)
    if len(isi) < max(min_intervals, 2) or isi.mean() <= 0 or isi.mean() > max_mean_n:
        return False
    return float(isi.std(ddof=1)) / float(isi.mean()) <= cv_max


def unit_train_members(peaks_n: IntArray, p2p_uv: FloatArray, shapes: list[FloatArray | None],
                       clear: np.ndarray, cand_rows: IntArray, window_n: int, lag_n: int,
                       fs_hz: float, cfg: DetectorConfig) -> np.ndarray:
    """Which candidates of a closed chain belong to a unit firing regularly (``tonic_train``)?

    ``peaks_n`` (sorted), ``p2p_uv``, ``shapes`` and ``clear`` (does the entry stand out of
    the noise enough to compare shapes, bool) describe every chain entry, shape (n,); entries
    without a shape (rejected trains) match by size. ``cand_rows`` are the rows of the
    candidates. A candidate's unit is the entries within ``window_n`` samples of it of a size
    within ``train_amplitude_ratio`` and, where both are clear, a shape correlating at
    ``train_unit_correlation`` or more; it is tonic when those entries (itself included) make at
    least ``train_min_groups - 1`` intervals with CV at most ``train_cv_max``.
    Returns bool, shape (len(cand_rows),).
    """
    peaks_n = np.asarray(peaks_n, dtype=np.int64)
    p2p_uv = np.asarray(p2p_uv, dtype=float)
    out = np.zeros(len(cand_rows), dtype=bool)
    need = cfg.train_min_groups - 1
    if len(peaks_n) < cfg.train_min_groups or not np.isfinite(cfg.train_cv_max):
        return out
    r = cfg.train_amplitude_ratio
    max_mean_n = fs_hz / cfg.train_min_rate_hz if cfg.train_min_rate_hz > 0 else np.inf
    for k, row in enumerate(np.asarray(cand_rows, dtype=np.int64).tolist()):
        lo, hi = np.searchsorted(peaks_n, [peaks_n[row] - window_n, peaks_n[row] + window_n + 1])
        a = p2p_uv[row]
        near = np.arange(lo, hi)
        near = near[(p2p_uv[near] >= a / r) & (p2p_uv[near] <= a * r)]
        if len(near) < need + 1:
            continue
        s = shapes[row]
        if s is not None and clear[row]:
            keep = [j for j in near.tolist() if j == row or shapes[j] is None or not clear[j]
                    or shape_similarity(s, shapes[j], lag_n) >= cfg.train_unit_correlation]
            near = np.array(keep, dtype=np.int64)
        out[k] = regular_intervals(peaks_n[near], need, cfg.train_cv_max, max_mean_n)
    return out
