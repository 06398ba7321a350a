"""The EMG activity envelope that limb-movement spans are measured on (AASM onset/offset).

A limb movement's duration is that of the EMG burst itself (AASM 2018 / WASM 2016: 0.5-10 s
from the 8 µV rise over resting EMG to the start of >= 0.5 s within 2 µV of rest). The mains
notches (Q 30 at 50 Hz: a 1.7 Hz-wide resonance, amplitude time constant Q/(π·f0) ≈ 0.19 s)
keep ringing after a broadband burst ends: the notched signal then carries the burst's own
mains-band content for another 0.2-0.4 s, which stretched 0.2-0.3 s bursts past the 0.5 s a
limb movement needs (bench/limb_movements.py, docs/bench.md §4).
:func:`ringing_free_envelope` measures the span without that ringing; the twitch rules keep
the notched envelope.
"""

from __future__ import annotations

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.potentials import FloatArray


def block_hum_power(env_notched_uv: FloatArray, env_band_uv: FloatArray, subs_per_block: int
                    ) -> FloatArray:
    """Per block: the power the notches removed (µV²), shape (n_subs // subs_per_block,).

    ``env_notched_uv`` and ``env_band_uv`` are the sub-block RMS of the band-passed EMG after
    and before the notches (shape (n_subs,)). At rest that is the mains hum's power (the
    resting EMG inside the ~1.7 Hz notch bands is a fraction of a percent of its power); during
    and after a burst it also holds the burst's mains-band content and the ringing, which
    :func:`ringing_free_envelope`'s low quantile of it leaves out. May be negative (ringing).
    """
    d = env_band_uv.astype(np.float64) ** 2 - env_notched_uv.astype(np.float64) ** 2
    return d.reshape(-1, subs_per_block).mean(axis=1)


def ringing_free_envelope(env_notched_uv: FloatArray, env_band_uv: FloatArray,
                          hum_power_uv2: FloatArray) -> FloatArray:
    """Per envelope sub-block (µV, shape (n_subs,)): the notched RMS, or the un-notched RMS less
    the resting hum's power when that is smaller.

    ``env_notched_uv``, ``env_band_uv``: the sub-block RMS of the band-passed EMG after and
    before the notches; ``hum_power_uv2``: the hum's power under each sub-block (a low rolling
    quantile of :func:`block_hum_power`; 0 or NaN where none is known yet: nothing subtracted).

    After a burst ends the notches ring: the notched envelope then holds the burst's own
    mains-band content, decaying over ~0.2-0.4 s, while the un-notched one holds only the
    resting EMG and the hum, whose power is subtracted. During a burst and at rest the notched
    envelope is the smaller (the hum subtraction is an estimate; the burst's own mains-band
    content is in the other): it is kept there, so the minimum can end a span sooner but never
    start or lengthen one. Sub-block by sub-block, so chunking cannot change it.
    """
    hum = np.nan_to_num(np.maximum(hum_power_uv2, 0.0), nan=0.0)
    dehummed = np.sqrt(np.maximum(env_band_uv ** 2 - hum, 0.0))
    return np.minimum(env_notched_uv, dehummed)


def activity_flags(env_uv: FloatArray, rest_uv: FloatArray, cfg: DetectorConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(on, above_off) per envelope sub-block, shape (n_subs,) each: the AASM/WASM onset and
    offset levels over resting EMG.

    ``env_uv`` is the 50 ms RMS envelope, ``rest_uv`` the resting level under it (the block's
    noise σ, repeated per sub-block). 'on' is ``activity_on_uv`` over rest, or
    ``activity_on_k`` × rest when that is more; 'above off' is more than ``activity_off_uv``
    (or half the rest level) over rest.
    """
    on = env_uv > rest_uv + np.maximum(cfg.activity_on_uv, cfg.activity_on_k * rest_uv)
    above_off = env_uv > rest_uv + np.maximum(cfg.activity_off_uv, 0.5 * rest_uv)
    return on, above_off
