"""Each detector rule as its own unit (toetwitch.pipeline.detect.rules), and the order they run in."""

from __future__ import annotations

import numpy as np
import pytest

from toetwitch.pipeline import DetectorConfig, StreamingAnalyser
from toetwitch.pipeline.detect.rules import RULES, Rule, candidate_rules, first_rejection
from toetwitch.pipeline.detect.rules.activity import in_voluntary_activity
from toetwitch.pipeline.detect.rules.artifacts import (
    FLAG_FLAT,
    FLAG_NAN,
    artifact_reason,
    noise_like,
)
from toetwitch.pipeline.detect.rules.isolation import after_wave, tonic_train_members
from toetwitch.pipeline.detect.rules.low_level import busy_blocks, count_near
from toetwitch.pipeline.detect.rules.motion import is_jerk, is_motion

CFG = DetectorConfig()


def test_artifact_reasons_come_in_their_documented_order():
    # a block with lost samples wins over everything else wrong with the potential
    assert artifact_reason(FLAG_NAN | FLAG_FLAT, 5000.0, 5000.0, 50.0, CFG) == "signal_loss"
    assert artifact_reason(FLAG_FLAT, 5000.0, 5000.0, 50.0, CFG) == "saturation_or_flatline"
    assert artifact_reason(0, 5000.0, 5000.0, 50.0, CFG) == "artifact_amplitude"
    assert artifact_reason(0, 100.0, 60.0, 50.0, CFG) == "artifact_pop_or_motion"
    assert artifact_reason(0, 100.0, 40.0, 50.0, CFG) == "noisy"
    assert artifact_reason(0, 100.0, 40.0, 5.0, CFG) is None


def test_noise_like_is_energy_spread_over_the_window():
    assert noise_like(0.5, CFG) and not noise_like(0.9, CFG)
    assert noise_like(0.9, CFG.with_(min_core_energy_fraction=0.95))


def test_after_wave_needs_both_closeness_and_a_much_smaller_size():
    assert after_wave(50, 20.0, 100.0, 110, CFG)
    assert not after_wave(150, 20.0, 100.0, 110, CFG)  # too late: another discharge
    assert not after_wave(50, 80.0, 100.0, 110, CFG)  # as big: a doublet, not a ringing


def test_tonic_train_takes_the_chains_size_and_spares_other_units():
    chain = np.array([50.0, 55.0, 48.0, 52.0, 200.0])
    assert tonic_train_members(chain, np.array([50.0, 200.0]), CFG).tolist() == [True, False]
    short = chain[: CFG.train_min_groups - 1]
    assert not tonic_train_members(short, np.array([50.0]), CFG).any()


def test_count_near_skips_a_potentials_own_side_waves():
    peaks = np.array([100, 950, 1000, 1050, 1500, 2100])
    assert count_near(peaks, 1000, 1000, 100) == 2  # 100 and 1500; 2100 is out of the window
    assert count_near(peaks[:0], 1000, 1000, 100) == 0


@pytest.mark.parametrize("n", [0, 1, 5, 20, 21, 22, 200])
def test_busy_blocks_is_the_centred_window_sum_for_any_length(n):
    rng = np.random.default_rng(n)
    counts = rng.integers(0, 3, n).astype(np.uint16)
    half = 10
    got = busy_blocks(counts, half, 5)
    want = [counts[max(0, i - half): i + half + 1].sum() >= 5 for i in range(n)]
    assert got.shape == (n,) and got.tolist() == want


@pytest.mark.parametrize("seconds", [0.0, 0.001, 0.05, 0.1, 0.5, 1.0, 2.0, 2.1, 2.2, 3.0])
def test_recordings_of_any_length_are_analysed(seconds):
    # the low-level-firing accounting uses a 21-block window: shorter recordings must work
    rng = np.random.default_rng(3)
    n = int(round(seconds * 1000))
    sa = StreamingAnalyser(1000.0, 100.0)
    sa.push(emg_uv=rng.normal(0, 2, n), acc_g=np.tile([0.0, 0.0, 1.0], (n // 10, 1)))
    result = sa.finish()
    assert result.summary["time_low_level_firing_s"] == 0.0
    assert len(result.twitches) == 0


def test_motion_and_jerk():
    assert is_motion(CFG.activity_fraction, CFG) and not is_motion(0.1, CFG)
    assert is_jerk(CFG.acc_twitch_max_mg + 1, CFG) and not is_jerk(5.0, CFG)
    assert in_voluntary_activity(0.6, CFG) and not in_voluntary_activity(0.4, CFG)


def test_the_first_rule_that_holds_names_the_rejection():
    yes = Rule("yes", lambda path, f, frac: True, "always", looks_ahead=False)
    no = Rule("no", lambda path, f, frac: False, "never", looks_ahead=False)
    assert first_rejection((no, yes, Rule("later", yes.test, "", False)), None, None, 0.0) == "yes"
    assert first_rejection((no,), None, None, 0.0) is None


def test_candidate_rule_names_are_unique_and_documented_in_order():
    from toetwitch.pipeline.detect import rules

    names = list(CFG.candidate_rules)
    assert [r.name for r in candidate_rules(CFG.candidate_rules)] == names
    assert set(names) <= set(RULES)
    with pytest.raises(ValueError, match="unknown detector rule"):
        candidate_rules(("no_such_rule",))
    doc = rules.__doc__ or ""
    positions = [doc.index(f"``{n}``") for n in names]
    assert positions == sorted(positions)


def test_regular_firing_needs_regular_intervals_at_a_rate():
    from toetwitch.pipeline.detect.rules.unit_firing import is_regular_firing

    fs = 1000.0
    tonic = np.arange(0, 2000, 250)  # 4 Hz, CV 0
    assert is_regular_firing(tonic, fs, CFG)
    rng = np.random.default_rng(0)
    poisson = np.cumsum(rng.exponential(250, 8)).astype(int)  # 4 Hz, CV ~1
    assert not is_regular_firing(poisson, fs, CFG)
    assert not is_regular_firing(tonic[:3], fs, CFG)  # two intervals say nothing about regularity
    slow = np.arange(0, 20000, 4000)  # regular but 0.25 Hz: below regular_min_rate_hz
    assert not is_regular_firing(slow, fs, CFG)


def test_fast_firing_counts_half_the_discharges_of_its_rate():
    from toetwitch.pipeline.detect.rules.unit_firing import is_fast_firing

    fs = 1000.0
    need = int(np.ceil(0.5 * CFG.fast_min_rate_hz * 2 * CFG.fast_window_s))
    around = np.linspace(-900, 900, need).astype(int) + 5000
    assert is_fast_firing(around, 5000, fs, CFG)
    assert not is_fast_firing(around[:-1], 5000, fs, CFG)
    far = around + 3000  # as many, but outside the window
    assert not is_fast_firing(far, 5000, fs, CFG)


def test_tonic_train_spares_irregular_chains_of_one_size():
    size = np.full(6, 50.0)
    regular = np.arange(6) * 600
    irregular = np.array([0, 100, 900, 1200, 1950, 2100])
    assert tonic_train_members(size, np.array([50.0]), CFG, regular).all()
    assert not tonic_train_members(size, np.array([50.0]), CFG, irregular).any()


def test_isolation_tells_units_apart_only_when_they_stand_out_of_the_noise():
    from types import SimpleNamespace

    from toetwitch.pipeline.detect.rules.isolation import same_shape_or_unsure

    t = np.linspace(-1, 1, 33)
    a = t * np.exp(-(t * 4) ** 2)  # a biphasic shape
    b = np.exp(-(t * 3) ** 2)  # a monophasic one
    big = dict(p2p_uv=100.0, sigma_uv=2.0)
    small = dict(p2p_uv=20.0, sigma_uv=2.0)  # 10 σ: under 2·isolation_shape_min_snr
    assert not same_shape_or_unsure(SimpleNamespace(shape=a, **big), SimpleNamespace(shape=b, **big), 6, CFG)
    assert same_shape_or_unsure(SimpleNamespace(shape=a, **big), SimpleNamespace(shape=a * 0.8, **big), 6, CFG)
    assert same_shape_or_unsure(SimpleNamespace(shape=a, **small), SimpleNamespace(shape=b, **small), 6, CFG)


def test_shape_similarity_follows_a_biphasic_unit_whose_peak_flips_phase():
    from toetwitch.pipeline.detect.potentials import shape_similarity

    fs = 1000.0
    t = np.arange(-40, 41) / fs
    w = -np.gradient(np.exp(-(t / 0.002) ** 2))  # two phases of equal size, ~3 ms apart
    w /= np.abs(w).max()
    pos, neg = int(np.argmax(w)), int(np.argmin(w))
    half = 16
    one, other = w[pos - half: pos + half + 1], w[neg - half: neg + half + 1]
    assert shape_similarity(one, other, 6) > 0.95  # the same unit, centred on either phase
