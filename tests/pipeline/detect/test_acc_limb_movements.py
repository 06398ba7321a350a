"""Limb movements from acceleration alone: the adapted AASM/WASM rules, series, index, streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import jerk_acc as jerk
from tests.helpers import load_bench_module
from tests.helpers import still_acc as still
from tests.helpers import tilt_acc as tilt
from toetwitch.pipeline.detect.acc_limb_movements import (
    LIMB_MOVEMENT_COLUMNS,
    AccLimbMovementDetector,
    LimbMovementConfig,
    collect,
    detect_limb_movements,
)

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.mark.parametrize("fs", [52.0, 100.0, 200.0])
def test_movements_of_every_lm_size_and_duration_are_found(fs):
    acc = still(420, fs, 1.0, seed=int(fs))
    truth = []
    for k, t in enumerate(np.arange(20.0, 400.0, 19.0)):
        dur, deg = (0.6, 1.0, 2.0, 4.0, 8.0, 9.0)[k % 6], (2.0, 5.0, 10.0, 25.0)[k % 4]
        tilt(acc, fs, t, dur, deg)
        truth.append((t, dur))
    r = detect_limb_movements(acc, fs)
    assert len(r.start) == len(truth), r.table()
    t0 = np.array([t for t, _ in truth])
    d = np.array([d for _, d in truth])
    np.testing.assert_allclose(r.onsets_s, t0, atol=0.25)
    tab = r.table()
    assert list(tab.columns) == LIMB_MOVEMENT_COLUMNS
    assert np.all(np.abs(tab["duration_s"].to_numpy() - d) <= 0.6)
    # 20 movements 19 s apart: one periodic series holding all of them
    s = r.summary()
    assert s["plm_series"] == 1 and s["plms"] == len(truth)
    assert s["plm_index_per_h"] == pytest.approx(len(truth) / (r.valid_s / 3600), rel=1e-3)


def test_what_is_not_a_limb_movement():
    fs = 100.0
    acc = still(300, fs, 1.0, seed=3)
    jerk(acc, fs, 20.0, 300.0)  # 0.15 s knock: too short
    tilt(acc, fs, 60.0, 14.0, 10.0)  # 14 s: beyond the 10 s limit
    tilt(acc, fs, 120.0, 3.0, 15.0, back=False)  # turning over: a new posture, never returns
    r = detect_limb_movements(acc, fs)
    assert len(r.start) == 0, r.table()
    assert r.rejected.get("short", 0) + r.rejected.get("weak", 0) >= 1
    assert r.rejected.get("long", 0) >= 2


def test_quiet_recordings_give_no_movements_at_any_noise_level():
    for noise in (0.5, 2.0, 6.0):
        r = detect_limb_movements(still(900, 100.0, noise, seed=int(noise * 10)), 100.0)
        assert len(r.start) == 0 and r.summary()["plm_index_per_h"] == 0


def test_series_follow_the_aasm_interval_rule():
    fs = 50.0
    acc = still(400, fs, 1.0, seed=4)
    onsets = [10, 30, 50, 70,  # 4 at 20 s: a series
              170, 173,  # 3 s apart: breaks
              270, 300, 330]  # 97 s after the last, then only 3: no series
    for t in onsets:
        tilt(acc, fs, t, 1.5, 8.0)
    r = detect_limb_movements(acc, fs)
    np.testing.assert_allclose(r.onsets_s, onsets, atol=0.25)
    assert r.series() == [(0, 3)]
    assert r.table()["series"].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    s = r.summary()
    assert (s["limb_movements"], s["plm_series"], s["plms"]) == (9, 1, 4)
    wasm = detect_limb_movements(acc, fs, LimbMovementConfig(series_interval_s=(25.0, 90.0)))
    assert wasm.series() == []  # 25-90 s: only the last three qualify, and 3 are too few
    assert wasm.summary()["plms"] == 0


def test_gaps_are_not_scored_and_not_counted_as_time():
    fs = 100.0
    acc = still(200, fs, 1.0, seed=5)
    tilt(acc, fs, 50.0, 4.0, 10.0)
    tilt(acc, fs, 120.0, 4.0, 10.0)
    acc[int(52 * fs): int(60 * fs)] = np.nan  # the link dropped during the first movement
    r = detect_limb_movements(acc, fs)
    np.testing.assert_allclose(r.onsets_s, [120.0], atol=0.25)
    assert r.rejected.get("gap") == 1
    assert r.valid_s == pytest.approx(192.0, abs=0.2)


def test_any_chunking_gives_the_movements_of_the_whole_array():
    fs = 100.0
    acc = still(600, fs, 1.5, seed=6)
    rng = np.random.default_rng(7)
    for k, t in enumerate(np.arange(15.0, 580.0, 23.0)):
        tilt(acc, fs, t + rng.uniform(-3, 3), rng.uniform(0.6, 9.0), rng.uniform(2, 25))
        if k % 3 == 0:
            jerk(acc, fs, t + 11.0, rng.uniform(20, 300))
    acc[int(300 * fs): int(303 * fs)] = np.nan
    whole = detect_limb_movements(acc, fs)
    assert len(whole.start) >= 20
    for trial in range(6):
        det = AccLimbMovementDetector(fs)
        cuts = np.sort(rng.integers(0, len(acc), int(rng.integers(1, 400))))
        found = []
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(acc)], strict=True):
            found += det.push(acc[a:b])
        found += det.finish()
        got = collect(fs, found, det.valid_s, det.rejected, det.cfg)
        for name in ("start", "end", "peak_mg", "orientation_change_deg"):
            assert np.array_equal(getattr(got, name), getattr(whole, name)), (trial, name)
        assert got.valid_s == whole.valid_s and got.rejected == whole.rejected


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        detect_limb_movements(np.zeros((10, 2)), 100.0)
    with pytest.raises(ValueError, match="rate must be positive"):
        AccLimbMovementDetector(0.0)


@pytest.mark.skipif(not (SHARED / "ggir" / "ax6_testfile.csv").is_file(),
                    reason="real accelerometer recordings (../shared/data) not present")
def test_movements_injected_on_a_real_still_accelerometer_are_found():
    # GGIR AX6 test file, 100 Hz, g: a still stretch (90-96 s, 2-10 mg in 1-30 Hz),
    # lengthened with time-reversed copies, as the benches do
    raw = np.loadtxt(SHARED / "ggir" / "ax6_testfile.csv", delimiter=",", comments="#")[:, 1:4]
    fs = 100.0
    seg = raw[int(90 * fs): int(96 * fs)]
    reps = [seg if k % 2 == 0 else seg[::-1] for k in range(int(300 / 6) + 1)]
    acc = np.concatenate(reps)[: int(300 * fs)].copy()
    quiet = detect_limb_movements(acc, fs)
    assert len(quiet.start) == 0, quiet.table()
    onsets = np.arange(20.0, 280.0, 25.0)
    for k, t in enumerate(onsets):
        tilt(acc, fs, t, (0.8, 2.0, 5.0)[k % 3], (3.0, 10.0)[k % 2])
    r = detect_limb_movements(acc, fs)
    np.testing.assert_allclose(r.onsets_s, onsets, atol=0.3)
    assert r.summary()["plm_series"] == 1


def _bench():
    return load_bench_module("toetwitch_bench_acc_lm", "acc_limb_movements.py")


def test_bench_injection_turns_the_sensor_and_scoring_is_one_to_one():
    b = _bench()
    fs = 100.0
    acc = still(60, fs, 0.0)
    before = acc.copy()
    b.inject(acc, fs, 10.0, 4.0, 12.0, np.random.default_rng(1))
    mid = slice(int(12 * fs), int(13 * fs))
    # a rotation: magnitude kept, direction turned by the injected angle while held
    np.testing.assert_allclose(np.linalg.norm(acc, axis=1), np.linalg.norm(before, axis=1))
    cos = np.sum(acc[mid] * before[mid], axis=1) / np.linalg.norm(before[mid], axis=1) ** 2
    np.testing.assert_allclose(np.degrees(np.arccos(np.clip(cos, -1, 1))), 12.0, atol=1e-6)
    assert np.array_equal(acc[: int(10 * fs)], before[: int(10 * fs)])
    truth = [b.Movement(10.0, 4.0, 12.0), b.Movement(30.0, 1.0, 3.0)]
    # two detections inside the first truth's span: only one matches; 32.5 s is beyond 31 + 1
    from bench.common import match_spans  # the scoring both limb-movement benches share

    m = match_spans(truth, np.array([11.0, 12.0, 32.5]))
    assert m.tolist() == [0, -1]
    assert match_spans(truth, np.array([9.2, 31.9])).tolist() == [0, 1]
