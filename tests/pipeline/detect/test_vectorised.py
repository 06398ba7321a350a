"""The vectorised helpers of the per-unit rules equal the straightforward scalar computations
they replace (seeded random inputs, ties and edge cases included)."""

from __future__ import annotations

import bisect
from types import SimpleNamespace

import numpy as np

from toetwitch.pipeline import DetectorConfig
from toetwitch.pipeline.detect.emg_path import EmgPath
from toetwitch.pipeline.detect.potentials import (
    SIMILARITY_MARGIN,
    at_least_similar,
    first_argmax,
    shape_similarity,
    shape_similarity_many,
    shape_similarity_pairs,
)
from toetwitch.pipeline.detect.rules.isolation import (
    same_shape_or_unsure,
    same_shape_or_unsure_pairs,
)
from toetwitch.pipeline.detect.rules.low_level import count_near, count_near_many

CFG = DetectorConfig()


def _shapes(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """Random waveforms, some rows silent, some copies (similarity 1) or negated copies."""
    s = rng.normal(0.0, 1.0, (m, n)) * rng.uniform(0.1, 50.0, (m, 1))
    if m > 2:
        s[0] = 0.0
        s[1] = 3.0 * s[2]
        s[-1] = -s[2]
    return s


def test_shape_similarity_many_and_pairs_equal_the_per_pair_function():
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(1, 40))
        lag = int(rng.integers(0, 12))  # sometimes beyond n - 1
        a, b = _shapes(rng, 9, n), _shapes(rng, 9, n)
        want = np.array([shape_similarity(a[3], row, lag) for row in b])
        np.testing.assert_allclose(shape_similarity_many(a[3], b, lag), want, rtol=0, atol=1e-12)
        want = np.array([shape_similarity(x, y, lag) for x, y in zip(a, b, strict=True)])
        np.testing.assert_allclose(shape_similarity_pairs(a, b, lag), want, rtol=0, atol=1e-12)
    assert shape_similarity_many(np.ones(5), np.empty((0, 5)), 2).shape == (0,)
    assert shape_similarity_pairs(np.empty((0, 5)), np.empty((0, 5)), 2).shape == (0,)


def test_at_least_similar_decides_exactly_as_the_scalar_comparison():
    rng = np.random.default_rng(4)
    for m in (3, 40):  # the Python path for a few, the array path for many
        exact = rng.uniform(0.7, 0.9, m)
        exact[:2] = 0.8  # exactly on the threshold
        # vectorised values off by rounding-sized amounts, on either side of the threshold
        fast = exact + rng.choice([-1, 1], m) * rng.uniform(0, 0.5 * SIMILARITY_MARGIN, m)
        got = at_least_similar(fast, 0.8, lambda k, e=exact: float(e[k]))
        np.testing.assert_array_equal(got, exact >= 0.8)
    # clear of the threshold, the vectorised value decides without the exact one
    assert at_least_similar(np.array([0.9, 0.1]), 0.8, lambda k: 1 / 0).tolist() == [True, False]


def test_first_argmax_is_np_argmax_per_segment():
    rng = np.random.default_rng(5)
    for _ in range(100):
        y = rng.integers(-4, 5, 300).astype(float)  # small integers: many ties
        if rng.random() < 0.2:
            y[rng.integers(0, 300)] = np.nan
        cuts = np.sort(rng.choice(np.arange(300), 2 * int(rng.integers(1, 20)), replace=False))
        starts, ends = cuts[0::2], cuts[1::2]
        for absolute in (False, True):
            v = np.abs(y) if absolute else y
            want = [s + int(np.argmax(v[s: e + 1])) for s, e in zip(starts, ends, strict=True)]
            np.testing.assert_array_equal(first_argmax(y, starts, ends, absolute), want)
    assert first_argmax(np.ones(3), np.empty(0, np.int64), np.empty(0, np.int64)).shape == (0,)


def test_same_shape_or_unsure_pairs_equals_the_pairwise_rule():
    rng = np.random.default_rng(6)
    t = np.linspace(-1, 1, 33)
    base = [t * np.exp(-(t * 4) ** 2), np.exp(-(t * 3) ** 2), np.sin(6 * t) * np.exp(-t ** 2)]
    for _ in range(40):
        n = int(rng.integers(2, 12))
        pots = []
        for _k in range(n):
            shape = base[int(rng.integers(0, 3))] * rng.uniform(0.5, 2) + rng.normal(0, 0.05, 33)
            r = rng.random()
            if r < 0.1:
                shape = None
            elif r < 0.2:
                shape = shape[: int(rng.integers(10, 33))]  # cut by the buffer's edge
            sigma = float(rng.choice([2.0, 0.0, np.nan, 5.0]))
            pots.append(SimpleNamespace(shape=shape, p2p_uv=float(rng.uniform(5, 200)), sigma_uv=sigma))
        i, j = np.triu_indices(n, 1)
        got = same_shape_or_unsure_pairs([p.shape for p in pots], np.array([p.p2p_uv for p in pots]),
                                         np.array([p.sigma_uv for p in pots]), i, j, 6, CFG)
        want = [same_shape_or_unsure(pots[a], pots[b], 6, CFG) for a, b in zip(i, j, strict=True)]
        np.testing.assert_array_equal(got, want)


def test_count_near_equals_its_definition():
    rng = np.random.default_rng(7)
    for _ in range(300):
        peaks = np.sort(rng.integers(0, 500, int(rng.integers(0, 30))))
        at, window, gap = int(rng.integers(-50, 550)), int(rng.integers(-5, 200)), int(rng.integers(-5, 250))
        want = sum(1 for p in peaks.tolist() if abs(p - at) <= window and abs(p - at) > gap)
        assert count_near(peaks, at, window, gap) == want
        many = rng.integers(-50, 550, 7)
        assert count_near_many(peaks, many, window, gap).tolist() == [
            count_near(peaks, int(a), window, gap) for a in many]


def _unit_recording(seed: int) -> np.ndarray:
    """60 s of 2 µV noise with three units of their own shape and size, firing irregularly,
    some under the detection threshold."""
    from toetwitch.drivers.simulate import inject_twitches, muap_template

    rng = np.random.default_rng(seed)
    fs = 1000.0
    x = rng.normal(0.0, 2.0, int(60 * fs))
    for dur_ms, phases, p2p, rate_hz in ((10.0, 3, 40.0, 3.0), (14.0, 2, 25.0, 5.0), (8.0, 4, 13.0, 6.0)):
        times = np.cumsum(rng.exponential(1.0 / rate_hz, int(60 * rate_hz)))
        times = times[(times > 1.0) & (times < 59.0)]
        x = inject_twitches(x, fs, times, p2p * rng.uniform(0.8, 1.2, len(times)), rng=rng,
                            template=muap_template(fs, dur_ms, phases))
    return x


def test_unit_matches_of_many_candidates_at_once_equal_one_by_one():
    """The batched unit matches (:meth:`EmgPath._match_units`) hold the same discharges and
    the same decisions as the one-candidate computation, which in turn follows the
    definition; the busy-window count equals its definition too."""
    for seed in (1, 2):
        path = EmgPath(1000.0, CFG)
        path.push(_unit_recording(seed))
        path.finish()  # every candidate waits in path.ready (nobody took them)
        fs = list(path.ready)
        assert len(fs) > 20
        path._match_units(fs, True)
        batched = {id(f): path._unit_memo[(id(f), True)][1] for f in fs}
        assert any(len(b[0]) > 2 for b in batched.values())
        path._unit_memo = {}
        for f in fs:
            peaks, sims, exact = path._unit_candidates(f, True)
            b_peaks, b_sims, b_exact = batched[id(f)]
            assert b_peaks == peaks
            np.testing.assert_allclose(b_sims, sims, rtol=0, atol=1e-12)
            for k in range(len(peaks)):
                assert b_exact(k) == exact(k)
            for corr in (CFG.unit_correlation, CFG.faint_unit_correlation):
                np.testing.assert_array_equal(at_least_similar(b_sims, corr, b_exact),
                                              at_least_similar(sims, corr, exact))
            # the definition: the discharges near in time and size, of shape >= corr
            r, lo_t, hi_t = CFG.unit_amplitude_ratio, f.peak - path.unit_n, f.peak + path.unit_n
            want = [p for p, a, s in zip(path.discharge_peaks, path.discharge_p2p, path.discharge_shapes,
                                         strict=True)
                    if lo_t <= p <= hi_t and abs(p - f.peak) > path.doublet_n
                    and f.p2p_uv / r <= a <= f.p2p_uv * r
                    and shape_similarity(f.shape, s, path.unit_lag_n) >= CFG.unit_correlation]
            small = path.small[: path.small_featured]
            want += [int(p) for k, p in enumerate(small)
                     if lo_t <= p <= hi_t and abs(p - f.peak) > path.doublet_n
                     and f.p2p_uv / r <= path.small_p2p[k] <= f.p2p_uv * r
                     and shape_similarity(f.shape, path.small_shape[k], path.unit_lag_n) >= CFG.unit_correlation]
            assert path.unit_discharges(f) == want
            over = sum(1 for p in path.discharge_peaks
                       if path.busy_gap_n < abs(p - f.peak) <= path.busy_n)
            lo = bisect.bisect_left(small.tolist(), f.peak - path.busy_n)
            near = sum(1 for p in small.tolist()[lo:] if path.busy_gap_n < abs(p - f.peak) <= path.busy_n)
            assert path.discharges_around(f.peak) == over + near
        path._count_neighbours(np.array([f.peak for f in fs], dtype=np.int64))  # batched counts
        batched = [(path.small_around(f.peak), path.discharges_around(f.peak)) for f in fs]
        path._near_memo = {}
        assert batched == [(path.small_around(f.peak), path.discharges_around(f.peak)) for f in fs]


def test_rolling_quantile_equals_the_quantile_of_each_window():
    """Windows counted from one running count: the level is still the quantile of the finite
    values of the window before each anchor (the block's own value where there is none)."""
    from toetwitch.pipeline.detect.potentials import rolling_quantile

    rng = np.random.default_rng(8)
    for _ in range(100):
        window, every = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        new = rng.lognormal(size=int(rng.integers(1, 300)))
        new[rng.random(len(new)) < rng.choice([0.0, 0.05, 0.6])] = np.nan
        history = np.full(window + every - 1, np.nan)
        first = int(rng.integers(0, 50))
        got = rolling_quantile(history, new, 0.25, first, window, every)
        allv = np.concatenate([history, new])
        for k in range(len(new)):
            end = ((first + k) // every) * every - (first - len(history))  # row of the anchor
            w = allv[end - window: end]
            w = w[np.isfinite(w)]
            want = np.quantile(w, 0.25) if len(w) else new[k]
            np.testing.assert_allclose(got[k], want, rtol=1e-12, equal_nan=True)
