"""Shape-aware grouping (after-waves, doublets) and ``tonic_train`` by unit (issue #11)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from toetwitch.drivers import Recording
from toetwitch.drivers.simulate import inject_twitches, muap_template
from toetwitch.pipeline import DetectorConfig, analyse
from toetwitch.pipeline.detect.rules.grouping import (
    doublet_partner,
    is_after_wave,
    same_unit_shape,
    short_burst_doublets,
)
from toetwitch.pipeline.detect.rules.unit_trains import regular_intervals, unit_train_members

CFG = DetectorConfig()
FS = 1000.0
LAG = 6  # samples: unit_lag_ms at 1 kHz


def _shape(duration_ms: float, phases: int, sign: float = 1.0) -> np.ndarray:
    """A ±16-sample window centred on the template's largest sample."""
    t = sign * muap_template(FS, duration_ms, phases)
    x = np.zeros(33)
    start = 16 - int(np.argmax(np.abs(t)))
    x[start: start + len(t)] = t[: 33 - start]
    return x


def _pot(shape: np.ndarray, p2p_uv: float, sigma_uv: float = 1.0, peak: int = 0) -> SimpleNamespace:
    return SimpleNamespace(shape=shape * p2p_uv, p2p_uv=p2p_uv, sigma_uv=sigma_uv, peak=peak)


BI, TRI = _shape(12.0, 2), _shape(12.0, 4)  # correlate at ~0.44: two units


def test_a_clear_pair_is_one_unit_only_at_the_doublet_correlation():
    assert same_unit_shape(_pot(BI, 60.0), _pot(BI, 50.0), LAG, CFG)
    assert not same_unit_shape(_pot(BI, 60.0), _pot(TRI, 50.0), LAG, CFG)
    # near the threshold (under 2 x isolation_shape_min_snr sigma p2p) shapes are not compared
    assert same_unit_shape(_pot(BI, 12.0), _pot(TRI, 10.0), LAG, CFG)
    # a stricter doublet_correlation than the two shapes reach splits them
    b8 = _shape(8.0, 2)  # ~0.9 with BI
    assert not same_unit_shape(_pot(BI, 60.0), _pot(b8, 50.0), LAG, CFG.with_(doublet_correlation=0.99))


def test_after_wave_late_in_the_window_must_have_the_first_potentials_shape():
    prev = _pot(BI, 100.0)
    # inside after_wave_ms a much smaller wave is the tail, whatever its shape
    assert is_after_wave(_pot(TRI, 30.0), prev, 40, 50, 110, LAG, CFG)
    # later, another shape is another unit's discharge; the same shape is the unit's own
    assert not is_after_wave(_pot(TRI, 30.0), prev, 80, 50, 110, LAG, CFG)
    assert is_after_wave(_pot(BI, 30.0), prev, 80, 50, 110, LAG, CFG)
    # never past doublet_ms, never for a wave of similar size
    assert not is_after_wave(_pot(BI, 30.0), prev, 150, 50, 110, LAG, CFG)
    assert not is_after_wave(_pot(BI, 80.0), prev, 40, 50, 110, LAG, CFG)


def test_doublet_partner_is_the_same_unit_within_doublet_ms():
    first = _pot(BI, 60.0)
    assert doublet_partner(first, _pot(BI, 55.0), 70, 110, LAG, CFG)
    assert not doublet_partner(first, _pot(TRI, 55.0), 70, 110, LAG, CFG)
    assert not doublet_partner(first, _pot(BI, 55.0), 120, 110, LAG, CFG)


def test_regular_intervals_needs_enough_regular_and_fast_enough_intervals():
    assert regular_intervals(np.array([0, 250, 500, 760]), 3, 0.4)
    assert not regular_intervals(np.array([0, 250, 500]), 3, 0.4)  # two intervals only
    assert not regular_intervals(np.array([0, 60, 500, 560]), 3, 0.4)  # irregular
    assert not regular_intervals(np.array([0, 250, 500, 760]), 3, 0.4, max_mean_n=200)  # too slow


def _chain(peaks: list[int], shapes: list[np.ndarray], p2p: list[float]):
    order = np.argsort(peaks)
    peaks_a = np.array(peaks)[order]
    return (peaks_a, np.array(p2p)[order], [shapes[k] * p2p[k] for k in order.tolist()],
            np.ones(len(peaks), bool))


def test_tonic_train_by_unit_rejects_a_regular_unit_and_spares_another_unit_beside_it():
    # one unit at 4 Hz (CV ~0.05) and, among its discharges, another unit of the same size
    tonic = [1000 + 250 * k + (7 if k % 2 else -5) for k in range(8)]
    other = [1400, 2050]
    peaks, p2p, shapes, clear = _chain(tonic + other, [BI] * 8 + [TRI] * 2, [50.0] * 10)
    rows = np.arange(len(peaks))
    got = unit_train_members(peaks, p2p, shapes, clear, rows, 2000, LAG, FS, CFG)
    is_other = np.isin(peaks, other)
    assert got[~is_other].all() and not got[is_other].any()


def test_tonic_train_by_unit_spares_irregular_recurrence_and_slow_regular_chains():
    rng = np.random.default_rng(4)
    # one unit recurring irregularly (Poisson, 2 per second) in a chain under train_gap_ms
    t = np.cumsum(rng.exponential(500.0, 12)).astype(int) + 1000
    t = t[np.concatenate([[True], np.diff(t) > 60])]
    peaks, p2p, shapes, clear = _chain(t.tolist(), [BI] * len(t), [50.0] * len(t))
    isi = np.diff(peaks)
    assert np.std(isi, ddof=1) / np.mean(isi) > CFG.train_cv_max  # the premise: irregular
    assert not unit_train_members(peaks, p2p, shapes, clear, np.arange(len(t)), 2000, LAG, FS, CFG).any()
    # regular but slower than train_min_rate_hz: the regular_firing rule's business, not this one's
    slow = [1000 + 700 * k for k in range(6)]
    peaks, p2p, shapes, clear = _chain(slow, [BI] * 6, [50.0] * 6)
    rows = np.arange(6)
    assert not unit_train_members(peaks, p2p, shapes, clear, rows, 2000, LAG, FS, CFG).any()
    # at a lower train_min_rate_hz it is tonic where unit_window_s holds three intervals
    got = unit_train_members(peaks, p2p, shapes, clear, rows, 2000, LAG, FS, CFG.with_(train_min_rate_hz=1.0))
    assert got.tolist() == [False, True, True, True, True, False]


def test_another_units_twitch_80_ms_after_a_potential_is_its_own_twitch():
    """End to end: the second of two potentials 80 ms apart counts when it is another unit
    (another shape), and not when it is the same unit again (a doublet: one twitch)."""
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 1.5, int(30 * FS))
    firsts = np.arange(2.0, 28.0, 2.6)
    bi, tri = muap_template(FS, 12.0, 2), muap_template(FS, 12.0, 4)
    pairs = inject_twitches(noise, FS, firsts, 120.0, rng=rng, template=bi)
    pairs = inject_twitches(pairs, FS, firsts + 0.08, 50.0, rng=rng, template=tri)
    found = analyse(Recording(emg_uv=pairs, fs_emg_hz=FS)).twitches["time_s"].to_numpy()
    want = np.sort(np.concatenate([firsts, firsts + 0.08]))
    assert len(found) == len(want) and np.abs(found - want).max() <= 0.02
    # before issue #11 the smaller one was taken for the first one's after-wave
    old = analyse(Recording(emg_uv=pairs, fs_emg_hz=FS), CFG.with_(after_wave_ms=110.0)).twitches
    assert len(old) == len(firsts)
    doublets = inject_twitches(noise, FS, firsts, 120.0, rng=rng, template=bi)
    doublets = inject_twitches(doublets, FS, firsts + 0.08, 110.0, rng=rng, template=bi)
    result = analyse(Recording(emg_uv=doublets, fs_emg_hz=FS)).twitches
    assert len(result) == len(firsts) and result["doublet"].all()


def test_short_burst_doublets_pairs_only_same_unit_neighbours_in_order():
    a = _pot(BI, 60.0, peak=0)
    a2 = _pot(BI, 55.0, peak=70)  # a's second discharge
    b = _pot(TRI, 58.0, peak=190)  # another unit, 120 ms later
    b2 = _pot(TRI, 50.0, peak=260)
    got = short_burst_doublets([a, a2, b, b2], 110, LAG, CFG)
    assert got.tolist() == [1, -1, 3, -1]
    # no pairing across units, across doublet_ms, or with a much smaller neighbour
    assert short_burst_doublets([a, b], 110, LAG, CFG).tolist() == [-1, -1]
    assert short_burst_doublets([a, _pot(BI, 55.0, peak=150)], 110, LAG, CFG).tolist() == [-1, -1]
    assert short_burst_doublets([a, _pot(BI, 30.0, peak=70)], 110, LAG, CFG).tolist() == [-1, -1]


def test_a_short_cluster_of_units_is_not_a_train_but_a_long_train_is():
    """Three twitches of one size and shape within 250 ms of each other, now and then: a
    storm's chance cluster (one channel cannot tell its units apart), counted; a unit firing
    on at 8 Hz for 2 s is not."""
    rng = np.random.default_rng(12)
    noise = rng.normal(0, 1.5, int(40 * FS))
    starts = np.arange(2.0, 38.0, 3.7)
    shapes = [muap_template(FS, 12.0, 2)]
    x = noise
    times = []
    for k, t0 in enumerate(starts):
        for j, dt in enumerate((0.0, 0.13, 0.31)):
            t = t0 + dt + 0.01 * (k % 3)
            x = inject_twitches(x, FS, [t], 60.0 * (1.1 if j == 1 else 1.0), rng=rng, template=shapes[0])
            times.append(t)
    found = analyse(Recording(emg_uv=x, fs_emg_hz=FS)).twitches["time_s"].to_numpy()
    want = np.array(times)
    hits = sum(bool(np.any(np.abs(found - t) <= 0.02)) for t in want)
    assert hits == len(want) and len(found) == len(want)
    # before issue #11 the middle one of each cluster, with two neighbours, made it a train
    old = analyse(Recording(emg_uv=x, fs_emg_hz=FS), CFG.with_(train_min_potentials=0)).twitches
    assert len(old) == len(want) - len(starts)
    tonic = inject_twitches(noise, FS, np.arange(10.0, 12.0, 0.125), 60.0, rng=rng, template=shapes[0])
    assert len(analyse(Recording(emg_uv=tonic, fs_emg_hz=FS)).twitches) == 0
