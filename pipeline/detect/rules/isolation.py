"""Rules on neighbouring potentials: after-waves, isolation and doublets, tonic trains.

Sleutjes 2016 defines a fasciculation by one unit's inter-discharge intervals; a single
surface channel cannot sort units, so "the same unit" is approximated by size (within
``unit_amplitude_ratio``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.potentials import (
    FloatArray,
    IntArray,
    at_least_similar,
    shape_similarity,
    shape_similarity_pairs,
)


def after_wave(gap_n: int, p2p_uv: float, prev_p2p_uv: float, doublet_n: int,
               cfg: DetectorConfig) -> bool:
    """A second wave under ``doublet_min_ratio`` of the previous potential's size within
    ``doublet_ms`` is that potential's after-wave (filter ringing), not a discharge."""
    return gap_n <= doublet_n and p2p_uv < cfg.doublet_min_ratio * prev_p2p_uv


def tonic_train_members(chain_p2p_uv: FloatArray | list[float], cand_p2p_uv: FloatArray | list[float],
                        cfg: DetectorConfig, chain_peaks: np.ndarray | list[int] | None = None) -> np.ndarray:
    """``tonic_train``: which candidates of a closed chain (``train_min_groups`` or more
    discharges, each within ``train_gap_ms`` of the last) are of the chain's size (within
    ``train_amplitude_ratio`` of its median) when that size's discharges fire regularly
    (interval CV at most ``train_cv_max``; ``chain_peaks`` are the chain's peak indices):
    one unit firing on at 1.2-4 Hz, which escapes the 250 ms isolation rule. Twitches of a
    few units recurring irregularly in a storm also chain up, but their intervals are
    Poisson-like (CV ≈ 1). Shape (len(cand_p2p_uv),), bool."""
    none = np.zeros(len(cand_p2p_uv), dtype=bool)
    if len(chain_p2p_uv) < cfg.train_min_groups:  # most chains: one discharge, no array work
        return none
    cand = np.asarray(cand_p2p_uv, dtype=float)
    chain_p2p_uv = np.asarray(chain_p2p_uv, dtype=float)
    med = float(np.median(chain_p2p_uv))
    r = cfg.train_amplitude_ratio
    if chain_peaks is not None and np.isfinite(cfg.train_cv_max):
        of_size = (chain_p2p_uv >= med / r) & (chain_p2p_uv <= med * r)
        isi = np.diff(np.sort(np.asarray(chain_peaks)[of_size]).astype(float))
        if len(isi) < cfg.train_min_groups - 1 or isi.mean() <= 0:
            return none
        if float(isi.std(ddof=1)) / float(isi.mean()) > cfg.train_cv_max:
            return none
    return (cand >= med / r) & (cand <= med * r)


def same_shape_or_unsure(a: Any, b: Any, lag_n: int, cfg: DetectorConfig) -> bool:
    """For the isolation rule: may two potentials of similar size be the same unit?

    Yes unless both stand out of the noise (p2p at least 2·``isolation_shape_min_snr`` σ)
    and their shapes differ (correlation under ``unit_correlation``): in a storm, two
    units of one size fire within 250 ms of each other; near the threshold noise blurs shapes
    too much to tell units apart, and the rule stays with size alone there. ``a`` and ``b``
    carry ``shape``, ``p2p_uv`` and ``sigma_uv``."""
    if a.shape is None or b.shape is None:
        return True
    clear = 2.0 * cfg.isolation_shape_min_snr
    if min(a.p2p_uv / a.sigma_uv if a.sigma_uv > 0 else np.inf,
           b.p2p_uv / b.sigma_uv if b.sigma_uv > 0 else np.inf) < clear:
        return True
    return shape_similarity(a.shape, b.shape, lag_n) >= cfg.unit_correlation


def same_shape_or_unsure_pairs(shapes: list[FloatArray | None], p2p_uv: FloatArray,
                               sigma_uv: FloatArray, i: IntArray, j: IntArray, lag_n: int,
                               cfg: DetectorConfig) -> np.ndarray:
    """:func:`same_shape_or_unsure` for the pairs (``i[k]``, ``j[k]``) of a burst's potentials
    at once (exactly the same answers): ``shapes`` holds each potential's waveform,
    ``p2p_uv`` and ``sigma_uv`` its size and noise σ (shape (n,) each). The shapes of the
    pairs that stand out of the noise are compared in one array computation. Shape (len(i),),
    bool."""
    n = len(shapes)
    p2p, sigma = np.asarray(p2p_uv, dtype=float), np.asarray(sigma_uv, dtype=float)
    pos = sigma > 0
    snr = np.where(pos, p2p / np.where(pos, sigma, 1.0), np.inf)
    # min(a, b) as Python takes it: b only when b < a (NaN never replaces, never is replaced)
    least = np.where(snr[j] < snr[i], snr[j], snr[i])
    width = np.array([-1 if s is None else len(s) for s in shapes], dtype=np.int64)
    out = (width[i] < 0) | (width[j] < 0) | (least < 2.0 * cfg.isolation_shape_min_snr)
    ask = np.flatnonzero(~out)
    if len(ask) == 0:
        return out
    w = int(width.max())
    full = (width[i[ask]] == w) & (width[j[ask]] == w)  # the common case: whole windows
    if (width == w).all():
        stack = np.array(shapes)
    else:
        stack = np.zeros((n, w))
        for k in np.flatnonzero(width == w).tolist():
            stack[k] = shapes[k]
    a, b = i[ask[full]], j[ask[full]]
    out[ask[full]] = at_least_similar(
        shape_similarity_pairs(stack[a], stack[b], lag_n), cfg.unit_correlation,
        lambda k: shape_similarity(stack[a[k]], stack[b[k]], lag_n))
    for k in ask[~full].tolist():  # a window cut by the buffer's edge: one by one
        out[k] = shape_similarity(shapes[i[k]], shapes[j[k]], lag_n) >= cfg.unit_correlation
    return out
