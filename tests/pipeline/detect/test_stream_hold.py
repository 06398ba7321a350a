"""``StreamingAnalyser.hold_s``: small pushes held and analysed together give the same result as
batch, settle events at most ``hold_s`` later, and leave a provisional display untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toetwitch.drivers import Recording
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import StreamingAnalyser, analyse
from toetwitch.pipeline.run.replay import replay


@pytest.fixture(scope="module")
def rec():
    r, _ = simulate_recording(20.0, 1000.0, 100.0, seed=17, twitch_rate_per_min=30,
                              voluntary_bursts=1, tonic_trains=1, limb_movements=1)
    emg = r.emg_uv.copy()
    emg[9_000:9_040] = np.nan  # a lost packet
    return Recording(emg_uv=emg, fs_emg_hz=1000.0, acc_g=r.acc_g, fs_acc_hz=100.0, name="hold")


def _push_all(rec, hold_s: float, ne: int = 100, provisional: bool = False):
    """100-ms pushes; returns the result, (push index, time_s) of each settled event and the
    twitches shown early (with ``provisional``)."""
    sa = StreamingAnalyser(1000.0, 100.0, name=rec.name)
    sa.hold_s = hold_s
    sa.provisional = provisional
    na = ne // 10
    when, shown = [], []
    for k in range(-(-len(rec.emg_uv) // ne)):
        buf_e = rec.emg_uv[k * ne:(k + 1) * ne].copy()
        buf_a = rec.acc_g[k * na:(k + 1) * na].copy()
        new = sa.push(emg_uv=buf_e, acc_g=buf_a)
        buf_e[:] = 0.0  # a caller reusing its buffer must not change what was held
        buf_a[:] = 0.0
        when += [(k, t) for t in new["time_s"]]
        if provisional:
            shown += sa.take_provisional()["time_s"].tolist()
    result = sa.finish()
    when += [(k + 1, t) for t in sa.flushed_events["time_s"]]
    return result, when, shown


@pytest.mark.parametrize("hold_s", [0.25, 2.0, 100.0])
def test_held_pushes_give_the_batch_result(rec, hold_s):
    batch = analyse(rec)
    held, _, _ = _push_all(rec, hold_s)
    pd.testing.assert_frame_equal(held.events, batch.events)
    pd.testing.assert_frame_equal(held.episodes, batch.episodes)
    assert {k: v for k, v in held.summary.items() if not k.startswith("source_")} == \
        {k: v for k, v in batch.summary.items() if not k.startswith("source_")}


def test_held_events_settle_at_most_hold_s_later(rec):
    _, now, _ = _push_all(rec, 0.0)
    _, later, _ = _push_all(rec, 2.0)
    assert [t for _, t in now] == [t for _, t in later] and len(now) > 5
    delays = [b - a for (a, _), (b, _) in zip(now, later, strict=True)]
    assert min(delays) >= 0
    assert max(delays) <= 20  # 2 s of 100-ms pushes
    assert max(delays) > 0  # it did hold


def test_a_provisional_display_is_not_held(rec):
    r0, now, shown0 = _push_all(rec, 0.0, provisional=True)
    r1, later, shown1 = _push_all(rec, 5.0, provisional=True)
    assert shown0 == shown1 and shown0
    assert now == later
    pd.testing.assert_frame_equal(r0.events, r1.events)


def test_replay_at_full_speed_holds_and_reports_the_same(rec):
    got = []
    result = replay(rec, on_events=lambda df: got.extend(df["time_s"]))
    pd.testing.assert_frame_equal(result.events, analyse(rec).events)
    assert got == result.events["time_s"].tolist()
