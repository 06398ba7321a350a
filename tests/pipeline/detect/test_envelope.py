"""Activity spans (limb movements) measured on the ringing-free envelope, and the onset rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from toetwitch.pipeline import DetectorConfig, StreamingAnalyser
from toetwitch.pipeline.detect.envelope import (
    activity_flags,
    block_hum_power,
    ringing_free_envelope,
)

FS_HZ = 1000.0


def _emg(burst_s: float, burst_rms_uv: float, *, hum_uv: float = 10.0, sigma_uv: float = 2.0,
         at_s: float = 15.0, length_s: float = 30.0, seed: int = 3) -> np.ndarray:
    """White resting EMG (σ ``sigma_uv``) with a 50 Hz hum of amplitude ``hum_uv`` and one
    20-450 Hz burst of ``burst_rms_uv`` RMS, ``burst_s`` long, at ``at_s`` (µV, 1 kHz)."""
    rng = np.random.default_rng(seed)
    n = int(length_s * FS_HZ)
    x = sigma_uv * rng.standard_normal(n) + hum_uv * np.sin(2 * np.pi * 50.0 * np.arange(n) / FS_HZ)
    b = signal.sosfilt(signal.butter(4, [20.0, 450.0], "bandpass", fs=FS_HZ, output="sos"),
                       rng.standard_normal(int(burst_s * FS_HZ)))
    i = int(at_s * FS_HZ)
    x[i: i + len(b)] += b * (burst_rms_uv / np.sqrt(np.mean(b ** 2)))
    return x


def _movements(x: np.ndarray, chunk: int | None = None, **config) -> tuple[list, list]:
    """(limb-movement spans (t0, t1) in s, events rows as tuples) of the full analyser."""
    sa = StreamingAnalyser(FS_HZ, None, DetectorConfig(**config))
    for i in range(0, len(x), chunk or len(x)):
        sa.push(emg_uv=x[i: i + (chunk or len(x))])
    ev = sa.finish().events
    spans = [(a, b) for a, b, k in sa.movement_spans_s if k == "limb_movement"]
    rows = list(ev[["time_s", "type", "duration_ms"]].itertuples(index=False, name=None))
    return spans, rows


@pytest.mark.parametrize("rms_uv", [100.0, 300.0])
def test_a_brief_burst_on_mains_hum_is_not_a_limb_movement(rms_uv):
    x = _emg(0.25, rms_uv)
    spans, _ = _movements(x)
    assert spans == []
    # what the step removes: the notches' ringing stretched this burst to >= 0.5 s
    ringing, _ = _movements(x, span_ringing_free=False)
    assert len(ringing) == 1 and ringing[0][1] - ringing[0][0] >= 0.5


@pytest.mark.parametrize("rms_uv", [30.0, 300.0])
def test_a_0_8_s_burst_on_mains_hum_is_a_limb_movement_of_its_own_length(rms_uv):
    spans, _ = _movements(_emg(0.8, rms_uv))
    assert len(spans) == 1
    t0, t1 = spans[0]
    assert 14.9 <= t0 <= 15.1
    assert 0.7 <= t1 - t0 <= 1.0  # the burst's 0.8 s (50 ms sub-blocks), not 0.8 s + ringing


def test_spans_with_notches_stream_like_batch():
    x = _emg(0.8, 300.0) + _emg(0.25, 200.0, hum_uv=0.0, sigma_uv=0.0, at_s=22.0, seed=5)
    whole = _movements(x)
    assert len(whole[0]) == 1
    for chunk in (7, 333, 4096):
        assert _movements(x, chunk) == whole


def test_block_hum_power_is_the_hum_the_notches_remove():
    rng = np.random.default_rng(1)
    noise = 2.0 * rng.standard_normal(2000)
    hum = 10.0 * np.sin(2 * np.pi * 50.0 * np.arange(2000) / FS_HZ)
    # sub-block RMS of 50 samples, 2 per block of 100: before and after an ideal notch
    rms = lambda y: np.sqrt((y.reshape(-1, 50) ** 2).mean(axis=1))  # noqa: E731
    p = block_hum_power(rms(noise), rms(noise + hum), 2)
    assert p.shape == (20,)
    assert np.allclose(np.median(p), 50.0, rtol=0.2)  # a 10 µV sine: 50 µV²


def test_ringing_free_envelope_ends_bursts_sooner_and_never_later():
    notched = np.array([2.0, 30.0, 9.0, 6.0, 2.0])  # at rest, burst, ringing, ringing, rest
    band = np.array([7.5, 31.0, 7.4, 7.4, 7.5])  # the same with a 10 µV hum (50 µV²)
    out = ringing_free_envelope(notched, band, np.full(5, 50.0))
    assert out[0] == 2.0 and out[1] == 30.0 and out[4] == 2.0  # rest and burst: the notched
    assert out[2] < 3.0 and out[3] < 3.0  # the ringing is gone
    assert (out <= notched).all()
    # no hum level known yet (NaN): the un-notched envelope as it is
    assert np.array_equal(ringing_free_envelope(notched, band, np.full(5, np.nan)),
                          np.minimum(notched, band))


def test_onset_is_8_uv_over_rest_up_to_8_uv_of_rest():
    cfg = DetectorConfig()
    env = np.array([11.9, 12.1, 17.9, 18.1])
    rest = np.array([4.0, 4.0, 9.0, 9.0])  # onset 4 + 8; over 8 µV of rest: 9 + 9
    on, above_off = activity_flags(env, rest, cfg)
    assert on.tolist() == [False, True, False, True]
    assert above_off.all()
    strict = DetectorConfig(activity_on_k=3.0)  # the former rule: 4 + 12
    assert not activity_flags(env, rest, strict)[0][:2].any()


def test_a_burst_9_uv_over_a_noisy_rest_is_a_limb_movement():
    # σ 4 µV white rest (3.5 µV in the EMG band), a 12 µV RMS burst: the envelope ~12.5 µV,
    # ~9 µV over rest (AASM: >= 8)
    x = _emg(2.0, 12.0, hum_uv=0.0, sigma_uv=4.0)
    spans, _ = _movements(x)
    assert len(spans) == 1 and 1.7 <= spans[0][1] - spans[0][0] <= 2.3
    # with the onset at 3 × rest over rest (~10.4 µV) it is 'on' for too little of its span
    assert _movements(x, activity_on_k=3.0)[0] == []
