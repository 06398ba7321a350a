"""Rules on neighbouring potentials: after-waves, isolation and doublets, tonic trains.

Sleutjes 2016 defines a fasciculation by one unit's inter-discharge intervals; a single
surface channel cannot sort units, so "the same unit" is approximated by size (within
``unit_amplitude_ratio``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.potentials import FloatArray, shape_similarity


def after_wave(gap_n: int, p2p_uv: float, prev_p2p_uv: float, doublet_n: int,
               cfg: DetectorConfig) -> bool:
    """A second wave under ``doublet_min_ratio`` of the previous potential's size within
    ``doublet_ms`` is that potential's after-wave (filter ringing), not a discharge."""
    return gap_n <= doublet_n and p2p_uv < cfg.doublet_min_ratio * prev_p2p_uv


def tonic_train_members(chain_p2p_uv: FloatArray, cand_p2p_uv: FloatArray,
                        cfg: DetectorConfig, chain_peaks: np.ndarray | None = None) -> np.ndarray:
    """``tonic_train``: which candidates of a closed chain (``train_min_groups`` or more
    discharges, each within ``train_gap_ms`` of the last) are of the chain's size (within
    ``train_amplitude_ratio`` of its median) when that size's discharges fire regularly
    (interval CV at most ``train_cv_max``; ``chain_peaks`` are the chain's peak indices):
    one unit firing on at 1.2-4 Hz, which escapes the 250 ms isolation rule. Twitches of a
    few units recurring irregularly in a storm also chain up, but their intervals are
    Poisson-like (CV ≈ 1). Shape (len(cand_p2p_uv),), bool."""
    cand = np.asarray(cand_p2p_uv, dtype=float)
    none = np.zeros(len(cand), dtype=bool)
    chain_p2p_uv = np.asarray(chain_p2p_uv, dtype=float)
    if len(chain_p2p_uv) < cfg.train_min_groups:
        return none
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
