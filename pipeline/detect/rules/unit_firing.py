"""Rules on one motor unit's firing: does the unit of this discharge fire on around it?

One surface channel cannot sort units; "the same unit" is the same shape (waveform
correlation >= ``unit_correlation`` over ±8 ms at ±2 ms lag) and size (within
``unit_amplitude_ratio``), as template sorting does (Kleine 2012, Jahanmiri-Nezhad 2014).

Physiology separates the two kinds of recurrence: tonic and low-level voluntary firing is
*regular* (inter-spike interval CV ≈ 0.1-0.3, De Luca's common drive) at a few Hz and more,
while a fasciculating unit recurs irregularly (Poisson-like, CV ≈ 1) at any rate — healthy
abductor hallucis can exceed 100 fasciculations a minute. ``regular_firing`` asks the first
question; ``repeating_unit`` (the rule before issue #11: "fires again twice within 2 s") is
kept for comparison and can be chosen in ``DetectorConfig.candidate_rules``.
"""

from __future__ import annotations

import math

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.rules.base import Rule


def is_regular_firing(peaks_n: np.ndarray | list[int], fs_hz: float, cfg: DetectorConfig) -> bool:
    """Is a unit's firing (its discharge peaks, sample indices, any order, the discharge
    under test included) regular and fast enough to be tonic?

    True when there are at least ``regular_min_intervals`` inter-discharge intervals, their
    coefficient of variation is at most ``regular_cv_max`` and their mean rate is at least
    ``regular_min_rate_hz``. With three intervals a Poisson unit reads CV <= 0.4 one time in
    eight, hence the rate condition as well (a motor unit cannot fire steadily below ~5 Hz;
    2 Hz leaves room for the slow tonic trains of real resting recordings).
    """
    if len(peaks_n) - 1 < cfg.regular_min_intervals:  # most candidates: no array work
        return False
    t = np.sort(np.asarray(peaks_n, dtype=np.int64))
    isi = np.diff(t) / fs_hz
    mean = float(isi.mean())
    if mean <= 0 or 1.0 / mean < cfg.regular_min_rate_hz:
        return False
    return float(isi.std(ddof=1)) / mean <= cfg.regular_cv_max


def is_fast_firing(peaks_n: np.ndarray | list[int], at_n: int, fs_hz: float, cfg: DetectorConfig) -> bool:
    """Does the unit fire at a sustained rate of ``fast_min_rate_hz`` or more around ``at_n``?

    ``peaks_n`` are its other discharges (sample indices). True when ``fast_min_rate_hz`` ×
    2·``fast_window_s`` of them lie within ``fast_window_s`` on either side, counting only
    half of that (a noisy small unit's template match misses some of its discharges, and a
    regularity measure would read the gaps as irregular): at the default 6 Hz that is 6 in
    ±1 s, which a tonic unit at 6 Hz reaches with half its discharges matched and a lone
    fasciculating unit at 60 per minute one time in 60 (Poisson, mean 2).
    """
    need = math.ceil(0.5 * cfg.fast_min_rate_hz * 2 * cfg.fast_window_s)
    if len(peaks_n) < need:  # most candidates: too few discharges to count
        return False
    d = np.abs(np.asarray(peaks_n, dtype=np.int64) - at_n)
    return int(np.count_nonzero(d <= round(cfg.fast_window_s * fs_hz))) >= need


REPEATING_UNIT = Rule(
    "repeating_unit", lambda path, f, frac: path.unit_repeats(f) >= path.cfg.unit_min_repeats,
    "the same unit fires unit_min_repeats or more times within unit_window_s", looks_ahead=True)

REGULAR_FIRING = Rule(
    "regular_firing", lambda path, f, frac: is_regular_firing(
        [f.peak, *path.unit_discharges(f)], path.fs_hz, path.cfg),
    "the same unit fires regularly (ISI CV <= regular_cv_max) at >= regular_min_rate_hz "
    "within unit_window_s", looks_ahead=True)

FAST_FIRING = Rule(
    "fast_firing", lambda path, f, frac: is_fast_firing(
        path.unit_discharges(f), f.peak, path.fs_hz, path.cfg),
    "the same unit fires at >= fast_min_rate_hz (half its discharges matched) within "
    "fast_window_s", looks_ahead=True)

FAINT_REPEATING_UNIT = Rule(
    "faint_repeating_unit", lambda path, f, frac: (
        f.snr < path.cfg.isolation_shape_min_snr
        and path.unit_repeats(f, min_corr=path.faint_unit_corr(f)) >= path.cfg.unit_min_repeats),
    "a faint discharge (SNR under isolation_shape_min_snr, where noise blurs its shape too much "
    "to measure its unit's regularity) whose unit fires unit_min_repeats or more times within "
    "unit_window_s: the residual firing of small units near the threshold in real resting "
    "recordings", looks_ahead=True)
