"""Coarsely quantised EMG (a BITalino's 10-bit channel, one step ≈ 3.19 µV over ~1.2 µV of
resting noise): the detector reads the ADC step from the samples, keeps the noise estimate at
or above the quantisation noise and does not take the resting baseline's flat runs for a
flatline."""

from __future__ import annotations

import numpy as np
import pytest

from toetwitch.drivers import Recording
from toetwitch.drivers.ble.profiles import bitalino as bit
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import analyse
from toetwitch.pipeline.detect.potentials import flat_runs_mask, quantisation_step

STEP_UV = float(bit.emg_uv(np.array([513]), 10)[0] - bit.emg_uv(np.array([512]), 10)[0])


def adc10(x_uv: np.ndarray) -> np.ndarray:
    """The board's ADC: rounded to 10-bit codes, clipped, converted back to µV."""
    return bit.emg_uv(bit.emg_adc(x_uv, 10), 10)


def test_step_is_read_from_quantised_blocks_only():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.2, 1000)
    step = quantisation_step(adc10(x), 100)
    assert np.allclose(step, STEP_UV)
    assert np.all(quantisation_step(x, 100) == 0)  # float samples: not quantised
    assert quantisation_step(np.full(100, 7.0), 100)[0] == 0  # constant: no step to read
    # a finely quantised signal (CSV at 0.01 µV) gets its fine step
    assert np.allclose(quantisation_step(np.round(x * 20, 0) / 20, 100), 0.05)


def test_flat_baseline_of_a_quantised_block_is_alive_but_clipping_and_dead_are_not():
    rng = np.random.default_rng(2)
    rest = adc10(rng.normal(0.0, 0.8, 300))  # sits on 2-3 codes, long runs of one code
    clipped = adc10(np.concatenate([rng.normal(0.0, 1.0, 40), np.linspace(0, 2500, 10),
                                    np.full(50, 2500.0)]))  # driven into the top rail
    dead = np.full(100, rest[0])
    x = np.concatenate([rest, clipped, dead])
    old = flat_runs_mask(x, 100, 20)
    assert old[:3].any()  # the old rule took the resting baseline for a flatline
    alive = np.ones(5, dtype=bool)
    new = flat_runs_mask(x, 100, 20, alive, 50.0)
    assert not new[:3].any()
    assert new[3] and new[4]
    # where the signal is not coarsely quantised the old rule holds, bit for bit
    assert np.array_equal(flat_runs_mask(x, 100, 20, np.zeros(5, dtype=bool), 50.0), old)


@pytest.fixture(scope="module")
def quiet_recording():
    rec, truth = simulate_recording(120.0, 1000.0, 100.0, acc=False, seed=21, twitch_rate_per_min=20,
                                    noise_uv=1.2, twitch_p2p_uv=(20.0, 150.0))
    return rec, truth[truth["kind"] == "fasciculation"]["time_s"].to_numpy()


def _found(events, truth_s: np.ndarray, tol_s: float = 0.05) -> tuple[int, int]:
    t = events.loc[events["type"] == "fasciculation", "time_s"].to_numpy()
    hit = np.array([np.any(np.abs(t - s) <= tol_s) for s in truth_s])
    fp = int(sum(not np.any(np.abs(truth_s - s) <= tol_s) for s in t))
    return int(hit.sum()), fp


def test_quantised_quiet_recording_finds_what_the_unquantised_one_finds(quiet_recording):
    rec, truth_s = quiet_recording
    raw = analyse(rec)
    q = analyse(Recording(emg_uv=adc10(rec.emg_uv), fs_emg_hz=rec.fs_emg_hz, name="q"))
    found_raw, fp_raw = _found(raw.events, truth_s)
    found_q, fp_q = _found(q.events, truth_s)
    assert found_raw >= 0.8 * len(truth_s)
    assert found_q >= found_raw - max(2, round(0.1 * found_raw))
    assert fp_q <= fp_raw + 2
    # the resting baseline on two or three codes is signal, not a flatline
    assert q.summary["artifact_reasons"].get("saturation_or_flatline", 0.0) == 0.0
    # and the noise reads at least the quantisation noise, near the real one
    noise_raw, noise_q = raw.summary["signal_quality"]["emg_noise_uv"], q.summary["signal_quality"]["emg_noise_uv"]
    assert 0.8 * noise_raw <= noise_q <= 2.0 * noise_raw
    assert q.summary["signal_quality"]["grade"] == raw.summary["signal_quality"]["grade"]


def test_a_dead_quantised_channel_is_still_a_flatline(quiet_recording):
    rec, _ = quiet_recording
    x = adc10(rec.emg_uv)
    x[30_000:40_000] = x[30_000]  # ten seconds on one code: electrode off
    q = analyse(Recording(emg_uv=x, fs_emg_hz=rec.fs_emg_hz, name="q"))
    assert q.summary["artifact_reasons"].get("saturation_or_flatline", 0.0) >= 9.0
    t = q.events.loc[q.events["type"] == "fasciculation", "time_s"].to_numpy()
    assert not np.any((t > 30.1) & (t < 39.9))
