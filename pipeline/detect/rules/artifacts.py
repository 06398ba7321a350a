"""Rules on one potential before it is grouped: artifacts and noise-like crossings.

Each is a pure test on a potential's features; the reason it returns is the name counted in
the summary's ``rejected``.
"""

from __future__ import annotations

from toetwitch.pipeline.detect.config import DetectorConfig

#: Block flag bits (set per 0.1 s block by the EMG path).
FLAG_NAN = 1
FLAG_FLAT = 2


def artifact_reason(flags: int, p2p_uv: float, lf_p2p_uv: float, thr_sigma_uv: float,
                    cfg: DetectorConfig) -> str | None:
    """Why a potential is an artifact, in this order (the first that holds), or None.

    ``signal_loss``: its block lost samples; ``saturation_or_flatline``: its block holds a flat
    run >= ``flat_ms`` (clipping, dead electrode); ``artifact_amplitude``: p2p over
    ``max_peak_to_peak_uv`` (no surface FP is that big); ``artifact_pop_or_motion``: its 1-15 Hz
    deflection exceeds ``pop_lf_ratio`` of its 20-450 Hz p2p (pops and motion live below 15 Hz,
    a MUAP does not); ``noisy``: the threshold σ exceeds ``max_noise_uv`` (SPiQE's amplitude
    exclusion).
    """
    if flags & FLAG_NAN:
        return "signal_loss"
    if flags & FLAG_FLAT:
        return "saturation_or_flatline"
    if p2p_uv > cfg.max_peak_to_peak_uv:
        return "artifact_amplitude"
    if lf_p2p_uv > cfg.pop_lf_ratio * p2p_uv:
        return "artifact_pop_or_motion"
    if thr_sigma_uv > cfg.max_noise_uv:
        return "noisy"
    return None


def noise_like(core_fraction: float, cfg: DetectorConfig) -> bool:
    """``noise_like``: less than ``min_core_energy_fraction`` of the ±25 ms window's energy lies
    in one 2·``core_ms`` stretch. A MUAP is a compact 5-15 ms wave; a noise crossing is not, and
    (not being a discharge) it breaks no other potential's isolation."""
    return core_fraction < cfg.min_core_energy_fraction
