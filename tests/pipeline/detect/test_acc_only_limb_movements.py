"""Without EMG the one detector types limb movements with the accelerometer limb-movement rules.

StreamingAnalyser runs :class:`AccLimbMovementDetector` on the accelerometer samples it is
given (batch, replay and live push the same way); any chunking gives the same events; with
EMG the EMG path decides limb movements as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers import jerk_acc, still_acc, tilt_acc
from toetwitch.drivers import Recording
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import StreamingAnalyser, analyse
from toetwitch.pipeline.detect.acc_limb_movements import (
    LimbMovementConfig,
    detect_limb_movements,
    limb_movement_config,
)
from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.episodes import episodes_table

FS = 52.0  # a Polar Verity's accelerometer rate: not a round number of samples per block


def _acc_night(seconds: float = 260.0, seed: int = 11) -> np.ndarray:
    """A still foot with a periodic series of 5 movements 20 s apart, an isolated one, and what
    is not a limb movement: a knock, a 14 s movement, a movement cut by a gap."""
    acc = still_acc(seconds, FS, 1.0, seed=seed)
    for k, t in enumerate((20.0, 40.0, 60.0, 80.0, 100.0)):
        tilt_acc(acc, FS, t, (1.0, 2.5, 4.0, 0.8, 6.0)[k], (5.0, 12.0, 3.0, 20.0, 8.0)[k])
    tilt_acc(acc, FS, 200.0, 2.0, 10.0)  # isolated: 100 s after the series
    jerk_acc(acc, FS, 130.0, 200.0)  # a knock: too short
    tilt_acc(acc, FS, 150.0, 14.0, 10.0)  # too long
    tilt_acc(acc, FS, 230.0, 3.0, 10.0)
    acc[int(231 * FS): int(233 * FS)] = np.nan  # the link dropped during this one
    return acc


@pytest.fixture(scope="module")
def night() -> Recording:
    return Recording(acc_g=_acc_night(), fs_acc_hz=FS, name="acc-night")


def _push_in_chunks(rec: Recording, sizes: list[int]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    sa = StreamingAnalyser(None, rec.fs_acc_hz, name=rec.name)
    reported, i, k = [], 0, 0
    while i < len(rec.acc_g):
        n = sizes[k % len(sizes)]
        reported.append(sa.push(acc_g=rec.acc_g[i: i + n]))
        i, k = i + n, k + 1
    result = sa.finish()
    reported.append(sa.flushed_events)
    return result.events, pd.concat(reported, ignore_index=True), result.summary


def test_limb_movements_are_the_accelerometer_detectors(night):
    result = analyse(night)
    ev = result.events
    lms = ev[ev["type"] == "limb_movement"]
    bare = detect_limb_movements(night.acc_g, FS, limb_movement_config(DetectorConfig()))
    # one row per movement of the bare detector, at its onset, with its length and peak
    np.testing.assert_array_equal(lms["time_s"].to_numpy(), bare.onsets_s)
    np.testing.assert_allclose(lms["duration_ms"].to_numpy(), (bare.end - bare.start) / FS * 1000)
    np.testing.assert_array_equal(lms["acc_peak_mg"].to_numpy(), bare.peak_mg)
    assert set(lms["source"]) == {"acc"}
    # what was injected: the five of the series and the isolated one, nothing else
    np.testing.assert_allclose(lms["time_s"], [20, 40, 60, 80, 100, 200], atol=0.3)
    # transients longer than a twitch are no longer limb movements on the accelerometer path
    assert not ((ev["type"] == "limb_movement") & (ev["time_s"].between(125, 170))).any()


def test_default_settings_are_the_bare_detectors():
    assert limb_movement_config(DetectorConfig()) == LimbMovementConfig()
    cfg = DetectorConfig(limb_movement_max_s=8.0, plm_interval_s=(10.0, 90.0))
    lmc = limb_movement_config(cfg)
    assert (lmc.max_s, lmc.series_interval_s) == (8.0, (10.0, 90.0))


def test_summary_says_where_limb_movements_come_from(night):
    s = analyse(night).summary
    bare = detect_limb_movements(night.acc_g, FS).summary()
    assert s["limb_movement_source"] == "acc"
    assert s["limb_movements"] == bare["limb_movements"] == 6
    assert s["plm_series"] == bare["plm_series"] == 1
    assert s["limb_movements_per_h"] == bare["limb_movements_per_h"]
    assert s["plm_index_per_h"] == bare["plm_index_per_h"]
    assert s["plm_index_per_h"] == pytest.approx(5 / (bare["valid_h"]), rel=1e-3)
    assert s["lm_rejected"] == bare["rejected"]
    assert s["lm_rejected"].get("long", 0) >= 1 and s["lm_rejected"].get("gap", 0) >= 1
    assert s["lm_rejected"].get("short", 0) + s["lm_rejected"].get("weak", 0) >= 1
    # episodes are runs of twitches: limb movements do not make them, with or without EMG
    res = analyse(night)
    cfg = DetectorConfig()
    pd.testing.assert_frame_equal(
        res.episodes, episodes_table(res.twitches, cfg.episode_gap_s, cfg.episode_min_twitches))
    # time inside a movement is active, not rest
    assert s["time_active_s"] >= sum(d for d in (1.0, 2.5, 4.0, 0.8, 6.0, 2.0))


@pytest.mark.parametrize("sizes", [[1, 2, 3], [7], [52], [1000], "random"])
def test_any_chunking_gives_the_same_events(night, sizes):
    whole = analyse(night)
    if sizes == "random":
        sizes = np.random.default_rng(3).integers(1, 400, 200).tolist()
    events, reported, summary = _push_in_chunks(night, sizes)
    pd.testing.assert_frame_equal(events, whole.events)
    # what was reported push by push is exactly the final list
    pd.testing.assert_frame_equal(
        reported.sort_values(["time_s", "type"], kind="mergesort").reset_index(drop=True),
        whole.events)
    for key in ("limb_movements", "limb_movements_per_h", "plm_index_per_h", "lm_rejected",
                "plm_series", "time_rest_s", "time_active_s"):
        assert summary[key] == whole.summary[key], key


def test_held_pushes_give_the_same_events(night):
    whole = analyse(night)
    sa = StreamingAnalyser(None, FS, name=night.name)
    sa.hold_s = 2.0  # replay as fast as possible holds samples before running the detector
    for i in range(0, len(night.acc_g), 13):
        sa.push(acc_g=night.acc_g[i: i + 13])
    pd.testing.assert_frame_equal(sa.finish().events, whole.events)


def test_with_emg_the_emg_decides_limb_movements():
    rec, _ = simulate_recording(60.0, 1000.0, 100.0, seed=5, twitch_rate_per_min=20,
                                voluntary_bursts=2)
    acc = rec.acc_g.copy()
    # a foot movement the accelerometer rules would count on their own
    tilt_acc(acc, 100.0, 30.0, 2.0, 15.0)
    moved = Recording(emg_uv=rec.emg_uv, fs_emg_hz=1000.0, acc_g=acc, fs_acc_hz=100.0,
                      name="sim")
    assert len(detect_limb_movements(acc, 100.0).start) >= 1
    sa = StreamingAnalyser(1000.0, 100.0)
    assert sa.acc_lm is None
    result = analyse(moved)
    s, ev = result.summary, result.events
    lms = ev[ev["type"] == "limb_movement"]
    assert s["limb_movement_source"] == "emg"
    assert set(lms["source"]) <= {"emg", "emg+acc"}
    # the EMG's own movements, as its activity spans say
    assert s["limb_movements"] == len(lms) >= 1
    hours = (s["time_rest_s"] + s["time_active_s"]) / 3600
    assert s["limb_movements_per_h"] == pytest.approx(len(lms) / hours, abs=1e-3)
    assert s["plm_index_per_h"] == 0.0  # two bursts: no series


def test_a_twitch_is_not_counted_at_the_turns_of_a_limb_movement():
    acc = still_acc(120.0, FS, 1.0, seed=21)
    for t in (20.0, 50.0, 80.0):
        tilt_acc(acc, FS, t, 2.0, 20.0, ramp_s=0.15)  # brisk turns: brief transients at each end
    for t in (35.0, 65.0, 100.0):
        jerk_acc(acc, FS, t, 12.0)  # twitches of a still foot, well away from any movement
    rec = Recording(acc_g=acc, fs_acc_hz=FS, name="turns")
    result = analyse(rec)
    ev = result.events
    tw = ev[ev["type"] == "fasciculation"]["time_s"].to_numpy()
    assert (ev["type"] == "limb_movement").sum() == 3
    np.testing.assert_allclose(tw, [35.0, 65.0, 100.0], atol=0.2)
    assert result.summary["rejected"].get("in_limb_movement", 0) >= 3
    for sizes in ([5], [1, 9, 2]):  # the rule waits for the movements: chunking changes nothing
        events, _, _ = _push_in_chunks(rec, sizes)
        pd.testing.assert_frame_equal(events, ev)
