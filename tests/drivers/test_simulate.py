"""Synthetic signals with known truth, and the bundled sample recordings built from them."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toetwitch.drivers.readers import is_recording_file, read_recording
from toetwitch.drivers.simulate import (
    KINDS,
    MIN_TWITCH_GAP_S,
    REST_MARGIN_S,
    TRUTH_COLUMNS,
    inject_twitches,
    muap_template,
    simulate_recording,
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
CONFOUNDERS = dict(voluntary_bursts=2, tonic_trains=2, pops=2, motion=1, limb_movements=1)


def _local_p2p(x: np.ndarray, fs: float, t: float, half_ms: float = 10.0) -> float:
    i, h = int(round(t * fs)), int(half_ms * 1e-3 * fs)
    seg = x[max(0, i - h) : i + h + 1]
    return float(seg.max() - seg.min())


@pytest.mark.parametrize("phases", [1, 2, 3, 4, 5])
def test_muap_template_shape(phases):
    w = muap_template(2000.0, duration_ms=12.0, phases=phases)
    assert len(w) == 25 and np.ptp(w) == pytest.approx(1.0)
    assert abs(w[0]) < 1e-3 and abs(w[-1]) < 1e-3  # no step at the ends
    big = w[np.abs(w) > 0.05 * np.abs(w).max()]
    assert int(np.sum(np.diff(np.sign(big)) != 0)) + 1 == phases


def test_inject_twitches_places_peaks_and_amplitudes():
    fs = 1000.0
    times = np.array([0.2, 0.6, 1.1])
    amps = np.array([20.0, 80.0, 150.0])
    x = inject_twitches(np.zeros(1500), fs, times, amps)
    peaks = [int(np.argmax(np.abs(x[int(t * fs) - 20 : int(t * fs) + 20]))) - 20 for t in times]
    assert peaks == [0, 0, 0]  # largest phase exactly at the requested time
    np.testing.assert_allclose([_local_p2p(x, fs, t) for t in times], amps)
    y = inject_twitches(np.zeros(1500), fs, times, 50.0, rng=np.random.default_rng(3))
    np.testing.assert_allclose([_local_p2p(y, fs, t, 12) for t in times], 50.0)
    assert not np.allclose(x / np.ptp(x), y / np.ptp(y))  # random shapes differ


def test_same_seed_same_recording_other_seed_differs():
    a, ta = simulate_recording(30, seed=5, twitch_rate_per_min=20, **CONFOUNDERS)
    b, tb = simulate_recording(30, seed=5, twitch_rate_per_min=20, **CONFOUNDERS)
    c, _ = simulate_recording(30, seed=6, twitch_rate_per_min=20, **CONFOUNDERS)
    np.testing.assert_array_equal(a.emg_uv, b.emg_uv)
    np.testing.assert_array_equal(a.acc_g, b.acc_g)
    pd.testing.assert_frame_equal(ta, tb)
    assert not np.array_equal(a.emg_uv, c.emg_uv)


def test_truth_matches_injected_twitches():
    rec, truth = simulate_recording(
        60,
        fs_emg_hz=2000,
        fs_acc_hz=200,
        seed=11,
        twitch_rate_per_min=30,
        noise_uv=0.0,
        acc_noise_mg=0.0,
    )
    assert list(truth.columns) == TRUTH_COLUMNS
    tw = truth[truth.kind == "fasciculation"]
    assert len(tw) >= 15
    for t, p2p, mg in tw[["time_s", "peak_to_peak_uv", "acc_peak_mg"]].itertuples(index=False):
        assert 20.0 <= p2p <= 200.0
        i = int(round(t * 2000))
        assert np.argmax(np.abs(rec.emg_uv[i - 20 : i + 21])) == 20  # peak at time_s
        assert _local_p2p(rec.emg_uv, 2000, t, 9) == pytest.approx(p2p, rel=1e-9)
        j = int(round(t * 200))
        dev = np.linalg.norm(rec.acc_g[j : j + 70] - [0, 0, 1], axis=1).max() * 1e3
        if np.isnan(mg):
            assert dev == 0.0  # this twitch did not move the toe
        else:
            assert 3.0 <= mg <= 10.0 and dev == pytest.approx(mg, rel=1e-6)
    # Away from twitches, the noise-free trace is exactly zero: nothing uninjected.
    quiet = np.ones(len(rec.emg_uv), bool)
    for t in tw.time_s:
        quiet[max(0, int(t * 2000) - 40) : int(t * 2000) + 40] = False
    assert not rec.emg_uv[quiet].any()


def test_twitches_only_at_rest_and_isolated():
    rec, truth = simulate_recording(180, seed=2, twitch_rate_per_min=25, **CONFOUNDERS)
    assert set(truth.kind) <= set(KINDS)
    conf = truth[truth.kind != "fasciculation"]
    assert {k: int(n) for k, n in conf.kind.value_counts().items()} == {
        "voluntary": 2,
        "tonic": 2,
        "pop": 2,
        "motion": 1,
        "limb_movement": 1,
    }
    tw = truth[truth.kind == "fasciculation"].time_s.to_numpy()
    assert len(tw) > 30
    assert np.diff(tw).min() > 0.25 and np.diff(tw).min() >= MIN_TWITCH_GAP_S - 1e-3
    for s, e in conf[["time_s", "end_s"]].itertuples(index=False):
        assert not ((tw > s - REST_MARGIN_S) & (tw < e + REST_MARGIN_S)).any()
    # Confounders really are in the signal: a voluntary burst is far above the 2 µV floor.
    s, e = conf[conf.kind == "voluntary"][["time_s", "end_s"]].iloc[0]
    burst = rec.emg_uv[int(s * 1000) : int(e * 1000)]
    assert burst.std() > 10 * 2.0


def test_streams_and_mains_options():
    rec, truth = simulate_recording(10, seed=1, emg=False, twitch_rate_per_min=30)
    assert rec.streams == "acc" and rec.fs_acc_hz == 100.0
    rec, _ = simulate_recording(
        4, seed=1, acc=False, noise_uv=0.0, twitch_rate_per_min=0, mains_hz=60, mains_uv=5.0
    )
    spec = np.abs(np.fft.rfft(rec.emg_uv))
    f = np.fft.rfftfreq(len(rec.emg_uv), 1e-3)
    assert f[np.argmax(spec)] == pytest.approx(60.0)
    with pytest.raises(ValueError):
        simulate_recording(1, seed=0, emg=False, acc=False)
    # Switching a stream off (rate None) leaves the other stream unchanged.
    both, t_both = simulate_recording(20, 1000.0, 100.0, seed=4, pops=1)
    emg_only, t_emg = simulate_recording(20, 1000.0, None, seed=4, pops=1, acc=False)
    np.testing.assert_array_equal(both.emg_uv, emg_only.emg_uv)
    pd.testing.assert_frame_equal(t_both, t_emg)


# ---------------------------------------------------------------- bundled samples

SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if is_recording_file(p))


def test_sample_folder_has_recordings_and_truth():
    names = {p.name for p in SAMPLE_FILES}
    assert {"rest_twitches.csv", "rest_and_voluntary.edf", "acc_only.csv"} <= names
    assert not any(n.endswith(".truth.csv") for n in names)
    assert (SAMPLES / "README.md").is_file() and any((SAMPLES / "licences").iterdir())


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_file_reads_and_matches_its_truth(path):
    rec = read_recording(path)  # warnings are errors: a clean file
    assert 60 <= rec.duration_s <= 180 and rec.name == path.stem
    truth = pd.read_csv(path.with_name(path.stem + ".truth.csv"))
    assert list(truth.columns) == TRUTH_COLUMNS and set(truth.kind) <= set(KINDS)
    assert truth.time_s.is_monotonic_increasing
    assert ((truth.time_s >= 0) & (truth.end_s <= rec.duration_s)).all()
    tw = truth[truth.kind == "fasciculation"]
    assert len(tw) >= 10
    if rec.emg_uv is not None:
        # Every injected twitch stands out of the real background at its stated size.
        local = [_local_p2p(rec.emg_uv, rec.fs_emg_hz, t) for t in tw.time_s]
        assert np.all(np.array(local) >= 0.7 * tw.peak_to_peak_uv.to_numpy())
    if rec.acc_g is not None:
        moved = tw[tw.acc_peak_mg.notna()]
        assert len(moved) >= 3
        for t, mg in moved[["time_s", "acc_peak_mg"]].itertuples(index=False):
            j = int(round(t * rec.fs_acc_hz))
            seg = rec.acc_g[j : j + int(0.35 * rec.fs_acc_hz)]
            assert np.linalg.norm(seg - np.median(rec.acc_g, axis=0), axis=1).max() * 1e3 > 0.5 * mg


SHARED = Path(os.environ.get("TOETWITCH_SHARED", SAMPLES.parent.parent / "shared"))


@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="needs the shared development data")
def test_committed_samples_are_what_the_builder_makes(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("build_samples", SAMPLES / "build_samples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--shared", str(SHARED), "--out", str(tmp_path)]) == 0
    for path in SAMPLE_FILES:
        built, committed = read_recording(tmp_path / path.name), read_recording(path)
        for a, b in ((built.emg_uv, committed.emg_uv), (built.acc_g, committed.acc_g)):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, atol=0.01)
        truth = path.stem + ".truth.csv"
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / truth), pd.read_csv(SAMPLES / truth), atol=1e-3
        )
