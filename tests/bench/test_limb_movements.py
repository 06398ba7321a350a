"""The EMG limb-movement bench: injection, the span of each kind of limb-movement row, and the
scoring it shares with the accelerometer bench, on synthetic backgrounds (no real data needed).

``bench/`` is not an installed package, so its module is loaded from its path.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.helpers import load_bench_module

lm = load_bench_module("toetwitch_bench_limb_movements", "limb_movements.py")

FS = 1000.0


def _templates() -> list[np.ndarray]:
    """Two MUAP-like shapes of 1 µV peak to peak (a biphasic and a triphasic one)."""
    x = np.arange(15) - 7.0
    bi = np.diff(np.exp(-0.5 * (np.arange(16) - 7.5) ** 2 / 4.0))
    tri = -np.gradient(np.gradient(np.exp(-0.5 * x ** 2 / 3.0)))
    return [w / np.ptp(w) for w in (bi, tri)]


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    bg = rng.normal(0.0, 2.0, int(20 * FS))  # 20 s of 2 µV white noise, mirrored to 8 min
    return bg, lm.build_case("synthetic", bg, FS, 8.0, True, np.random.default_rng(8), _templates())


def test_bursts_are_injected_at_their_rms_in_series_with_both_confounders(case):
    bg, c = case
    assert len(c.truth) >= 5 and c.hours == pytest.approx(8 / 60)
    assert lm.truth_plm_index(c) > 0  # a periodic series was placed
    assert {k for k, _ in c.confounders} == {"brief", "long"}
    added = c.emg_uv - lm.mirror_extend(bg, len(c.emg_uv))
    for mv in c.truth:
        a, b = int(mv.onset_s * FS), int((mv.onset_s + mv.duration_s) * FS)
        assert lm.BURST_RMS_UV[0] <= mv.size <= lm.BURST_RMS_UV[1]
        assert np.sqrt(np.mean(added[a:b] ** 2)) == pytest.approx(mv.size, rel=1e-6)
        assert not added[b + 5: b + 500].any()  # nothing after it but what was placed there
    quiet = np.ones(len(added), bool)
    for mv in c.truth:
        quiet[int(mv.onset_s * FS): int((mv.onset_s + mv.duration_s) * FS) + 1] = False
    for _, (a, e) in c.confounders:
        quiet[int(a * FS): int(e * FS) + 1] = False
    assert not added[quiet].any()


def test_pipeline_finds_clear_bursts_and_not_the_sustained_contractions(case):
    _, c = case
    det = lm.detect_pipeline(c, with_acc=False)
    assert set(det["source"]) <= {"emg"}
    assert np.all(det["ends"] - det["onsets"] <= 10.0 + 1e-9)
    s = lm.score_detections(c, det)
    clear = np.array([mv.size >= 30 and mv.duration_s >= 1.0 for mv in c.truth])
    assert clear.any() and s["found"][clear].all()
    longs = [sp for k, sp in c.confounders if k == "long"]
    assert not any(a <= t <= b for t in det["mid"] for a, b in longs)  # 12-30 s: a cramp, not a limb movement
    assert len(det["cramps_s"]) >= len(longs)
    assert s["score"].tp + s["score"].fn == len(c.truth)


def test_the_same_movement_on_a_simultaneous_accelerometer_is_the_fused_path():
    rng = np.random.default_rng(1)
    bg = rng.normal(0.0, 2.0, int(20 * FS))
    acc_bg = np.tile([0.0, 0.0, 1.0], (2000, 1)) + rng.normal(0.0, 1e-3, (2000, 3))
    args = ("fused", bg, FS, 5.0, True)
    plain = lm.build_case(*args, np.random.default_rng(2), _templates())
    fused = lm.build_case(*args, np.random.default_rng(2), _templates(), acc_bg,
                          acc_rng=np.random.default_rng(9))
    assert np.array_equal(plain.emg_uv, fused.emg_uv)  # the accelerometer draws its own numbers
    assert fused.acc_g.shape == (int(5 * 60 * lm.FS_ACC_HZ), 3)
    e, f = lm.detect_pipeline(fused, with_acc=False), lm.detect_pipeline(fused, with_acc=True)
    assert np.array_equal(e["onsets"], f["onsets"])  # with EMG, the EMG decides
    assert "emg+acc" in set(f["source"])  # the accelerometer saw the movements


def test_spans_of_accelerometer_rows_start_at_time_s_and_emg_rows_come_from_the_analyser():
    acc = pd.DataFrame({"time_s": [10.0, 40.0], "source": ["acc", "acc"],
                        "duration_ms": [2000.0, 500.0]})
    on, end = lm.lm_spans(acc, [])
    assert on.tolist() == [10.0, 40.0] and end.tolist() == [12.0, 40.5]
    emg = pd.DataFrame({"time_s": [11.3, 40.2], "source": ["emg", "emg+acc"],
                        "duration_ms": [2000.0, 500.0]})
    spans = [(40.0, 40.5, "limb_movement"), (10.0, 12.0, "limb_movement"), (50.0, 70.0, "cramp")]
    on, end = lm.lm_spans(emg, spans)
    assert on.tolist() == [10.0, 40.0] and end.tolist() == [12.0, 40.5]
    with pytest.raises(ValueError):
        lm.lm_spans(emg, spans[:1])


def test_scoring_is_one_to_one_within_the_span_and_sets_background_and_confounders_apart():
    truth = [lm.Movement(10.0, 2.0, 50.0), lm.Movement(30.0, 0.5, 50.0), lm.Movement(60.0, 5.0, 50.0)]
    c = SimpleNamespace(truth=truth, confounders=[("brief", (100.0, 100.3))],
                        background_active=[(200.0, 210.0)], hours=0.5)
    det = np.array([9.1, 11.0, 31.4, 200.5, 100.9, 150.0, 66.1])
    s, m = lm.score_lm_case(c, det)
    # 9.1 is within 10 s - 1 s and taken first (the earliest), so 11.0 is a false positive;
    # 31.4 lies in 30-30.5 s + 1 s; 66.1 just past 60-65 s + 1 s
    assert (s.tp, s.fn, s.fp, s.fp_confounder, s.background) == (2, 1, 4, 1, 1)
    assert s.sensitivity == pytest.approx(2 / 3) and s.fp_per_h == pytest.approx(8.0)
    assert m.tolist() == [0, 2, -1]
