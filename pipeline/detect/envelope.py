"""The EMG activity envelope that limb-movement spans are measured on (AASM onset/offset).

A limb movement's duration is that of the EMG burst itself (AASM 2018 / WASM 2016: 0.5-10 s
from the 8 µV rise over resting EMG to the start of >= 0.5 s within 2 µV of rest). The mains
notches (Q 30 at 50 Hz: a 1.7 Hz-wide resonance, time constant Q/(π·f0) ≈ 0.19 s) keep ringing
after a broadband burst ends: the notched signal then carries the burst's own mains-band
content for ~0.2-0.4 s more, which stretches a 0.25 s burst past the 0.5 s an LM needs
(bench/limb_movements.py, docs/bench.md §4). :func:`ringing_free_envelope` removes it.
"""

from __future__ import annotations

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.potentials import FloatArray


def ringing_free_envelope(env_notched_uv: FloatArray, env_band_uv: FloatArray) -> FloatArray:
    """Per envelope sub-block: the smaller of the notched and the un-notched RMS (µV).

    ``env_notched_uv`` is the RMS of the band-passed and notched EMG, ``env_band_uv`` that of
    the same band-passed EMG before the notches; both shape (n_subs,), same sub-blocks.

    In steady state a notch only removes energy (the mains hum), so the notched envelope is
    the smaller one wherever the hum matters and nothing changes there. After a burst ends the
    notches ring: the notched envelope then exceeds the un-notched one, which holds only the
    resting EMG and the hum, and the un-notched is the truer measure of the burst's end. Where
    the hum is larger than the ringing the notched envelope is kept (the hum would otherwise
    hold the span open). The minimum is sub-block by sub-block, so chunking cannot change it.
    """
    return np.minimum(env_notched_uv, env_band_uv)


def activity_flags(env_uv: FloatArray, rest_uv: FloatArray, cfg: DetectorConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(on, above_off) per envelope sub-block, shape (n_subs,) each: the AASM/WASM onset and
    offset levels over resting EMG.

    ``env_uv`` is the 50 ms RMS envelope, ``rest_uv`` the resting level under it (the block's
    noise σ, repeated per sub-block). 'on' is ``activity_on_uv`` over rest, or
    ``activity_on_k`` × rest when that is more (a noisy background's 50 ms RMS wanders further);
    'above off' is more than ``activity_off_uv`` (or half the rest level) over rest.
    """
    on = env_uv > rest_uv + np.maximum(cfg.activity_on_uv, cfg.activity_on_k * rest_uv)
    above_off = env_uv > rest_uv + np.maximum(cfg.activity_off_uv, 0.5 * rest_uv)
    return on, above_off
