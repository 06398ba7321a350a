"""The benchmark's scoring: one-to-one matching within a tolerance, FP counts, spans.

``bench/`` is not an installed package, so its modules are loaded from their paths.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from tests.helpers import load_bench_module

common = load_bench_module("toetwitch_bench_common", "common.py")
detection = load_bench_module("toetwitch_bench_detection", "detection.py")

TOL = 0.020


def _pairs(truth, det, tol=TOL):
    m = common.match_events(np.asarray(truth, float), np.asarray(det, float), tol)
    d = np.sort(np.asarray(det, float))
    return [(t, d[j]) for t, j in zip(np.sort(truth), m, strict=True) if j >= 0]


def test_matches_only_within_tolerance():
    pairs = _pairs([1.0, 2.0, 3.0], [1.015, 2.03, 2.985])
    assert pairs == [(1.0, 1.015), (3.0, 2.985)]


def test_one_detection_cannot_match_two_truths():
    s = common.score(np.array([1.0, 1.01]), np.array([1.005]), TOL, [], 60.0)
    assert (s.tp, s.fn, s.fp) == (1, 1, 0)


def test_one_truth_cannot_take_two_detections():
    s = common.score(np.array([1.0]), np.array([0.99, 1.01]), TOL, [], 60.0)
    assert (s.tp, s.fn, s.fp) == (1, 0, 1)
    assert s.precision == pytest.approx(0.5) and s.sensitivity == pytest.approx(1.0)


def test_nearest_neighbour_stealing_does_not_cost_a_match():
    # The second truth is nearest to the first detection; a nearest-first matcher processing
    # it first would leave the first truth unmatched. Both can be matched.
    s = common.score(np.array([1.000, 1.025]), np.array([1.012, 1.044]), TOL, [], 60.0)
    assert (s.tp, s.fn, s.fp) == (2, 0, 0)


def test_matching_is_maximum_on_random_sets():
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth = np.sort(rng.uniform(0, 1, rng.integers(0, 8)))
        det = rng.uniform(0, 1, rng.integers(0, 8))
        got = int(np.count_nonzero(common.match_events(truth, det, 0.05) >= 0))
        if len(truth) and len(det):
            cost = (np.abs(truth[:, None] - det[None, :]) > 0.05).astype(float)
            r, c = linear_sum_assignment(cost)
            best = int(np.count_nonzero(cost[r, c] == 0))
        else:
            best = 0
        assert got == best
        used = common.match_events(truth, det, 0.05)
        assert len(set(used[used >= 0])) == np.count_nonzero(used >= 0)  # one to one


def test_false_positives_inside_active_spans_and_rates():
    truth = np.array([10.0, 20.0])
    det = np.array([10.005, 31.0, 45.0, 46.0, 90.0])
    active = [(40.0, 50.0), (85.0, 95.0)]
    s = common.score(truth, det, TOL, active, 120.0)
    assert (s.tp, s.fn, s.fp, s.fp_active) == (1, 1, 4, 3)
    assert s.fp_per_min == pytest.approx(4 / 2.0)
    assert s.fp_per_min_active == pytest.approx(3 / (20 / 60))
    total = s + s
    assert (total.tp, total.fp, total.minutes) == (2, 8, pytest.approx(4.0))


def test_empty_inputs_give_nan_rates_not_errors():
    s = common.score(np.array([]), np.array([]), TOL, [], 0.0)
    assert (s.tp, s.fp, s.fn) == (0, 0, 0)
    assert np.isnan(s.f1) and np.isnan(s.fp_per_min)


def test_merge_spans_and_mirror_extend():
    assert common.merge_spans([(5, 6), (0, 1), (1.5, 2)], gap_s=0.6) == [(0, 2), (5, 6)]
    x = np.arange(5.0)
    y = common.mirror_extend(x, 12)
    assert y.tolist() == [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0, 1]
    assert np.max(np.abs(np.diff(y))) <= 1.0  # no step at the joints


def _ceiling_case(p2p_uv: float, seed: int = 0):
    """3 min of 1 kHz white noise (σ 2 µV) with a biphasic 8-ms shape every ~4 s."""
    fs, rng = 1000.0, np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, int(180 * fs))
    w = np.diff(np.exp(-0.5 * ((np.arange(13) - 6) / 2.0) ** 2))
    w = w / (w.max() - w.min())
    truth = np.round(np.arange(2.0, 178.0, 4.0) + rng.uniform(-1, 1, 44), 3)
    for t in truth:
        detection.add_waveform(x, w * p2p_uv, int(round(t * fs)))
    active = [(100.0, 110.0)]
    return detection.Case("synthetic", "synthetic", fs, x, None, None, truth, active,
                    extra={"templates": [w], "mains_hz": None, "lone_spikes_s": np.empty(0)})


def test_ceiling_finds_clear_twitches_and_keeps_to_its_false_positive_budget():
    clear = _ceiling_case(60.0)  # 30 σ peak to peak
    s = common.score(clear.truth_s, detection.detect_ceiling(clear), TOL, clear.active_s, 180.0)
    assert s.fn == sum(detection.in_spans(clear.truth_s, clear.active_s)) and s.fp == 0
    faint = _ceiling_case(7.0)  # near the noise: found only at many false positives
    found = detection.detect_ceiling(faint)
    s = common.score(faint.truth_s, found, TOL, faint.active_s, 180.0)
    assert s.fp <= detection.CEILING_FP_PER_MIN * 3
    assert 0 < s.tp < len(faint.truth_s) - sum(detection.in_spans(faint.truth_s, faint.active_s))
    assert not detection.in_spans(found, faint.active_s).any()  # activity is rejected by knowing it


def test_found_by_truth_follows_the_truth_order_and_bins_by_size():
    case = detection.Case("c", "k", 1000.0, np.zeros(10), None, None, np.array([5.0, 1.0, 3.0]), [],
                    extra={"twitch_p2p_uv": np.array([50.0, 5.0, 30.0]), "noise_sigma_uv": 1.0})
    found = detection.found_by_truth(case, np.array([1.005, 5.0]))
    assert found.tolist() == [True, True, False]
    case.extra["found"] = {"x": found}
    rows = detection.sensitivity_by_size([case], ["x"])
    assert [(r["twitches"], r["x"]) for r in rows] == [(1, 1), (0, 0), (1, 0), (1, 1)]


def test_recurring_units_fire_irregularly_apart_and_at_the_rate_asked():
    rng = np.random.default_rng(4)
    dur, busy = 600.0, [(100.0, 130.0)]
    t, unit, dbl = detection.unit_pool_times(dur, busy, rng, 60.0, 3)
    assert np.all(np.diff(t) >= detection.MIN_UNIT_GAP_S)
    assert not np.any((t > 99.0) & (t < 131.0))  # never next to a busy span
    rest_min = (dur - 1.0 - 32.0) / 60
    assert 0.8 * 60 < len(t) / rest_min < 1.1 * 60  # the rate is per minute of rest
    for u in range(3):
        isi = np.diff(t[unit == u])
        assert isi.std() / isi.mean() > 0.5  # irregular, as fasciculations are (tonic: 0.1-0.3)
    assert 0 < np.count_nonzero(dbl) < 0.15 * len(t)
    assert np.all((dbl == 0) | ((dbl >= 0.04) & (dbl <= 0.1)))
    x = np.zeros(int(dur * 1000))
    templates = [np.sin(np.linspace(0, 2 * np.pi, 15)) / 2, np.hanning(11) - 0.5]
    truth, sizes, seconds = detection.inject_unit_pool(x, 1000.0, t, unit, dbl, templates, rng, (20.0, 200.0))
    assert len(seconds) == np.count_nonzero(dbl) and len(truth) == len(t)
    # each unit keeps one size, within ±20 %
    for u in range(3):
        s = sizes[unit == u]
        assert s.max() / s.min() <= 1.2 / 0.8 + 1e-9
