"""Rules on neighbouring potentials: after-waves, isolation and doublets, tonic trains.

Sleutjes 2016 defines a fasciculation by one unit's inter-discharge intervals; a single
surface channel cannot sort units, so "the same unit" is approximated by size (within
``unit_amplitude_ratio``).
"""

from __future__ import annotations

import numpy as np

from pipeline.config import DetectorConfig
from pipeline.potentials import FloatArray


def after_wave(gap_n: int, p2p_uv: float, prev_p2p_uv: float, doublet_n: int,
               cfg: DetectorConfig) -> bool:
    """A second wave under ``doublet_min_ratio`` of the previous potential's size within
    ``doublet_ms`` is that potential's after-wave (filter ringing), not a discharge."""
    return gap_n <= doublet_n and p2p_uv < cfg.doublet_min_ratio * prev_p2p_uv


def tonic_train_members(chain_p2p_uv: FloatArray, cand_p2p_uv: FloatArray,
                        cfg: DetectorConfig) -> np.ndarray:
    """``tonic_train``: which candidates of a closed chain (``train_min_groups`` or more
    discharges, each within ``train_gap_ms`` of the last) are of the chain's size (within
    ``train_amplitude_ratio`` of its median): one unit firing on at 1.2-4 Hz, which escapes
    the 250 ms isolation rule. Shape (len(cand_p2p_uv),), bool."""
    cand = np.asarray(cand_p2p_uv, dtype=float)
    if len(chain_p2p_uv) < cfg.train_min_groups:
        return np.zeros(len(cand), dtype=bool)
    med = float(np.median(chain_p2p_uv))
    r = cfg.train_amplitude_ratio
    return (cand >= med / r) & (cand <= med * r)
