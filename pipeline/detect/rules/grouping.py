"""Shape-aware grouping of close potentials: after-waves and doublets (issue #11).

Two potentials 40-110 ms apart are one twitch only when they are one motor unit: a doublet is
the *same* unit firing twice (Kleine 2012: 10-110 ms), an after-wave is a potential's own tail.
In a storm another unit often fires within 110 ms (at 120 per minute, one twitch in ten has a
neighbour there, twice as often as a 5 % doublet rate), and taking its potential for the first
one's partner or tail loses a twitch. So:

* ``after_wave``: a much smaller wave (under ``doublet_min_ratio`` of the previous potential)
  is the previous potential's tail only inside ``after_wave_ms`` (the band-pass filter's
  ringing and a potential's late phases: past 30 ms the 20-450 Hz filter's ringing of a real
  surface MUAP is under 3 % of its amplitude), or later, up to ``doublet_ms``, when it has the
  previous potential's shape (a small second discharge of the same unit, counted with the
  first). A later, smaller wave of another shape is another unit's discharge.
* ``doublet_partner``: a same-size neighbour within ``doublet_ms`` is a doublet's second
  discharge only when the shapes match at ``doublet_correlation`` (stricter than the
  isolation rule's ``unit_correlation``: biphasic surface potentials of different units, or of
  one unit seen in opposite polarity at a shifted phase, correlate at 0.8-0.9 over ±6 ms; the
  two discharges of one unit correlate at 0.95 and more above the noise). Near the threshold
  (either potential under 2·``isolation_shape_min_snr`` σ peak to peak) noise blurs shapes
  and size alone decides, as before issue #11.

Each function takes potentials carrying ``shape`` (±``unit_shape_ms`` waveform), ``p2p_uv``
and ``sigma_uv`` (the threshold's noise σ), sample gaps and the lag in samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.potentials import shape_similarity


def shapes_clear(a: Any, b: Any, cfg: DetectorConfig) -> bool:
    """Do both potentials stand far enough out of the noise (p2p at least
    2·``isolation_shape_min_snr`` σ) for their shapes to tell units apart?"""
    if a.shape is None or b.shape is None:
        return False
    clear = 2.0 * cfg.isolation_shape_min_snr
    snr_a = a.p2p_uv / a.sigma_uv if a.sigma_uv > 0 else np.inf
    snr_b = b.p2p_uv / b.sigma_uv if b.sigma_uv > 0 else np.inf
    return bool(min(snr_a, snr_b) >= clear)


def same_unit_shape(a: Any, b: Any, lag_n: int, cfg: DetectorConfig) -> bool:
    """Are ``a`` and ``b`` one unit by shape (correlation at least ``doublet_correlation``
    over lags of ±``lag_n`` samples), or too faint to tell (then True: size decides)?"""
    if not shapes_clear(a, b, cfg):
        return True
    assert a.shape is not None and b.shape is not None
    return shape_similarity(a.shape, b.shape, lag_n) >= cfg.doublet_correlation


def is_after_wave(p: Any, prev: Any, gap_n: int, after_wave_n: int, doublet_n: int,
                  lag_n: int, cfg: DetectorConfig) -> bool:
    """Is ``p``, ``gap_n`` samples after ``prev``, that potential's after-wave?

    It must be under ``doublet_min_ratio`` of ``prev``'s size and within ``doublet_n``; past
    ``after_wave_n`` (``after_wave_ms``) it must also have ``prev``'s shape (then it is the
    unit's own smaller second discharge). Faint pairs whose shapes cannot be compared keep
    the size rule alone."""
    if gap_n > doublet_n or not p.p2p_uv < cfg.doublet_min_ratio * prev.p2p_uv:
        return False
    if gap_n <= after_wave_n:
        return True
    return same_unit_shape(p, prev, lag_n, cfg)


def doublet_partner(first: Any, second: Any, gap_n: int, doublet_n: int, lag_n: int,
                    cfg: DetectorConfig) -> bool:
    """May ``second`` (``gap_n`` samples after ``first``, each its only same-size neighbour)
    be the second discharge of ``first``'s doublet? Within ``doublet_n`` and of the same
    shape (:func:`same_unit_shape`); otherwise it is another unit's twitch."""
    return gap_n <= doublet_n and same_unit_shape(first, second, lag_n, cfg)


def short_burst_doublets(bursts: list[Any], doublet_n: int, lag_n: int, cfg: DetectorConfig) -> np.ndarray:
    """Doublets of a short burst (fewer than ``train_min_potentials`` potentials, sorted by
    peak), paired greedily: each potential with the next one when that is within
    ``doublet_n``, of a size within ``unit_amplitude_ratio`` and :func:`doublet_partner`.

    A short burst is not a train (a unit firing tonically or voluntarily fires on for seconds);
    its potentials are sporadic discharges of a few units, each its own twitch unless it is
    the second discharge of a doublet. Returns ``partner``, shape (len(bursts),): the index
    of each first discharge's second one, else -1 (second discharges are -1 too)."""
    n = len(bursts)
    partner = np.full(n, -1, dtype=np.int64)
    r = cfg.unit_amplitude_ratio
    i = 0
    while i < n - 1:
        a, b = bursts[i], bursts[i + 1]
        gap = int(b.peak - a.peak)
        if (a.p2p_uv <= r * b.p2p_uv and b.p2p_uv <= r * a.p2p_uv
                and doublet_partner(a, b, gap, doublet_n, lag_n, cfg)):
            partner[i] = i + 1
            i += 2
        else:
            i += 1
    return partner
