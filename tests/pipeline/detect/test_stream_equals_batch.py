"""Streaming equals batch: any chunking gives the same events as the whole array."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import StreamingAnalyser, analyse


def _stream(rec, emg_chunk: int, acc_chunk: int | None = None, config=None,
            on_provisional=None, on_withdrawn=None):
    """Push ``rec`` chunk by chunk; returns the result and every event reported on the way.
    With ``on_provisional``/``on_withdrawn`` the live display's early twitches are on and
    handed over after each push, as the live session does."""
    sa = StreamingAnalyser(rec.fs_emg_hz if rec.emg_uv is not None else None,
                           rec.fs_acc_hz if rec.acc_g is not None else None,
                           config, name=rec.name)
    sa.provisional = on_provisional is not None or on_withdrawn is not None
    n_e = len(rec.emg_uv) if rec.emg_uv is not None else 0
    n_a = len(rec.acc_g) if rec.acc_g is not None else 0
    # interleave the two streams as a sensor would: in time order, each in its own chunks
    acc_chunk = acc_chunk or max(1, round(emg_chunk * (rec.fs_acc_hz or 1) / (rec.fs_emg_hz or 1)))
    i = j = 0
    reported = []
    while i < n_e or j < n_a:
        e = rec.emg_uv[i: i + emg_chunk] if i < n_e else None
        a = rec.acc_g[j: j + acc_chunk] if j < n_a else None
        reported.append(sa.push(emg_uv=e, acc_g=a))
        if sa.provisional:
            sa.report_early(on_provisional, on_withdrawn)
        i += emg_chunk
        j += acc_chunk
    result = sa.finish()
    if sa.provisional:
        sa.report_early(on_provisional, on_withdrawn)
    reported.append(sa.flushed_events)
    return result, pd.concat(reported, ignore_index=True)


@pytest.fixture(scope="module")
def recording():
    rec, truth = simulate_recording(40.0, 1000.0, 100.0, seed=7, twitch_rate_per_min=30,
                                    mains_hz=50, voluntary_bursts=1, tonic_trains=1, pops=1)
    # lose 30 ms of EMG and 50 ms of acceleration, as a dropped BLE packet would
    emg = rec.emg_uv.copy()
    emg[12_000:12_030] = np.nan
    acc = rec.acc_g.copy()
    acc[2_500:2_505] = np.nan
    from toetwitch.drivers import Recording

    return Recording(emg_uv=emg, fs_emg_hz=1000.0, acc_g=acc, fs_acc_hz=100.0, name="sim"), truth


def test_whole_recording_finds_twitches(recording):
    rec, truth = recording
    result = analyse(rec)
    assert (result.events["type"] == "fasciculation").sum() >= 0.8 * (truth["kind"] == "fasciculation").sum()


@pytest.mark.parametrize("chunk", [17, 1000, 40_000])
def test_chunked_stream_gives_identical_events(recording, chunk):
    rec, _ = recording
    whole = analyse(rec)
    streamed, reported = _stream(rec, chunk)
    pd.testing.assert_frame_equal(streamed.events, whole.events)
    pd.testing.assert_frame_equal(streamed.episodes, whole.episodes)
    assert streamed.summary["twitches"] == whole.summary["twitches"]
    assert streamed.summary["time_rest_s"] == whole.summary["time_rest_s"]
    # what the live path reported as it went is exactly the final event list
    pd.testing.assert_frame_equal(
        reported.sort_values(["time_s", "type"], kind="mergesort").reset_index(drop=True),
        whole.events,
    )


def test_sample_by_sample_stream_gives_identical_events():
    rec, _ = simulate_recording(5.0, 1000.0, 100.0, seed=3, twitch_rate_per_min=60)
    whole = analyse(rec)
    streamed, _ = _stream(rec, 1, 1)
    assert len(whole.twitches) > 0
    pd.testing.assert_frame_equal(streamed.events, whole.events)


def test_emg_only_and_acc_only_streams_match_batch():
    rec, _ = simulate_recording(20.0, 2000.0, 100.0, seed=11, twitch_rate_per_min=30)
    from toetwitch.drivers import Recording

    emg_only = Recording(emg_uv=rec.emg_uv, fs_emg_hz=2000.0)
    acc_only = Recording(acc_g=rec.acc_g, fs_acc_hz=100.0)
    for r, chunk in ((emg_only, 333), (acc_only, 7)):
        pd.testing.assert_frame_equal(_stream(r, chunk)[0].events, analyse(r).events)


def test_no_event_is_invented_inside_a_gap():
    rec, _ = simulate_recording(20.0, 1000.0, 100.0, seed=5, twitch_rate_per_min=0, acc=False)
    emg = rec.emg_uv.copy()
    emg[5_000:6_000] = np.nan  # one second lost
    emg[6_000:] += 300.0  # and the baseline jumps when the link comes back
    from toetwitch.drivers import Recording

    result = analyse(Recording(emg_uv=emg, fs_emg_hz=1000.0))
    assert len(result.twitches) == 0
    assert result.summary["artifact_reasons"]["signal_loss"] >= 1.0


def test_low_latency_settings_also_stream_like_batch(recording):
    """Looking back only (the live low-latency option) must not make chunking matter."""
    from toetwitch.pipeline import DetectorConfig

    rec, _ = recording
    cfg = DetectorConfig(unit_look_ahead=False, train_gap_ms=300.0, pre_activity_s=0.0)
    whole = analyse(rec, cfg)
    for chunk in (17, 250):
        streamed, reported = _stream(rec, chunk, config=cfg)
        pd.testing.assert_frame_equal(streamed.events, whole.events)


def test_rolling_noise_level_is_the_same_in_any_chunks():
    """The cached streaming noise level equals the pure function on the whole block series,
    across gaps (NaN blocks), the empty first windows and a gap longer than the window."""
    from toetwitch.pipeline.detect.potentials import RollingLevel, rolling_quantile

    rng = np.random.default_rng(7)
    values = rng.lognormal(size=3_000)
    values[rng.random(len(values)) < 0.05] = np.nan
    values[1_000:1_400] = np.nan  # longer than the window: the level falls back to the block
    window, every = 240, 4
    whole = rolling_quantile(np.full(window + every - 1, np.nan), values, 0.25, 0, window, every)
    for sizes in ([1], [3], [1, 2, 5, 17, 400]):
        level, out, i, k = RollingLevel(0.25, window, every), [], 0, 0
        while i < len(values):
            n = sizes[k % len(sizes)]
            out.append(level(values[i: i + n]))
            i, k = i + n, k + 1
        np.testing.assert_array_equal(np.concatenate(out), whole)


def _stream_shown(rec, emg_chunk: int):
    """Stream with the live display's provisional twitches on; returns (shown, withdrawn,
    settled twitch times) and the final result."""
    shown, withdrawn = [], []
    result, reported = _stream(rec, emg_chunk,
                               on_provisional=lambda df: shown.extend(df["time_s"].tolist()),
                               on_withdrawn=lambda gone: withdrawn.extend(t for t, _ in gone))
    settled = reported.loc[reported["type"] == "fasciculation", "time_s"].tolist()
    return shown, withdrawn, settled, result


@pytest.fixture(scope="module")
def slow_train():
    """Rest with twitches, plus one unit firing every 0.6 s five times: its first discharge
    looks isolated until the unit fires again."""
    from toetwitch.drivers import Recording
    from toetwitch.drivers.simulate import inject_twitches, muap_template

    rec, _ = simulate_recording(40.0, 1000.0, 100.0, seed=8, twitch_rate_per_min=20)
    w = muap_template(1000.0, 10.0, 3)
    peaks_s = (31_000 + 600 * np.arange(5) + int(np.argmax(np.abs(w)))) / 1000.0
    emg = inject_twitches(rec.emg_uv, 1000.0, peaks_s, 80.0, template=w)
    return Recording(emg_uv=emg, fs_emg_hz=1000.0, acc_g=rec.acc_g, fs_acc_hz=100.0, name="slow")


@pytest.fixture(scope="module")
def slow_train_runs(slow_train):
    """``analyse`` (chunk None) and ``_stream_shown`` of ``slow_train``, each run once."""
    return functools.cache(
        lambda chunk: analyse(slow_train) if chunk is None else _stream_shown(slow_train, chunk))


@pytest.mark.parametrize("chunk", [17, 100, 1000])
def test_shown_twitches_are_settled_or_withdrawn_exactly_once(slow_train_runs, chunk):
    """The live display's early twitches: every counted EMG twitch was shown first, every
    shown one is then counted or withdrawn (never both, never twice), what is shown does
    not depend on the chunking, and showing them changes nothing in the result."""
    shown, withdrawn, settled, result = slow_train_runs(chunk)
    assert len(shown) == len(set(shown)) and len(withdrawn) == len(set(withdrawn))
    assert set(settled) == set(result.twitches["time_s"])
    assert set(shown) == set(settled) | set(withdrawn)
    assert not set(settled) & set(withdrawn)
    assert len(withdrawn) >= 1  # the slow train added to the recording is shown, then not counted
    whole = slow_train_runs(None)
    pd.testing.assert_frame_equal(result.events, whole.events)
    first, *_ = slow_train_runs(100)
    assert sorted(shown) == sorted(first)


@pytest.fixture(scope="module")
def storm():
    """A twitch storm: three recurring units firing irregularly at ~90/min in all, beside a
    unit firing regularly at 8 Hz (the low-level firing the unit rules must reject)."""
    from toetwitch.drivers import Recording
    from toetwitch.drivers.simulate import inject_twitches, muap_template

    fs = 1000.0
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 2.0, int(30 * fs))
    for k, p2p in enumerate((40.0, 70.0, 120.0)):
        times = np.cumsum(rng.exponential(2.0, 20)) + 0.5
        times = times[times < 29.0]
        x = inject_twitches(x, fs, times, p2p, rng=rng, template=muap_template(fs, 10.0 + 3 * k, 2 + k % 2))
    tonic = np.arange(12.0, 18.0, 0.125) + rng.normal(0, 0.01, 48)
    x = inject_twitches(x, fs, tonic, 30.0, rng=rng, template=muap_template(fs, 12.0, 3))
    return Recording(emg_uv=x, fs_emg_hz=fs, name="storm")


@pytest.mark.parametrize("chunk", [7, 37, 1000])
def test_storm_and_its_unit_rules_stream_like_batch(storm, chunk):
    whole = analyse(storm)
    assert len(whole.twitches) > 20  # the storm is counted, not rejected as one unit's train
    streamed, _ = _stream(storm, chunk)
    pd.testing.assert_frame_equal(streamed.events, whole.events)
    assert streamed.summary["rejected"] == whole.summary["rejected"]


def test_quantised_recording_streams_like_batch():
    """A BITalino's 10-bit EMG (the step read from the data, flat resting runs kept alive):
    the quantisation step and the noise floor it sets are block-local, so chunking still
    changes nothing."""
    from toetwitch.drivers import Recording
    from toetwitch.drivers.ble.profiles import bitalino as bit

    rec, _ = simulate_recording(20.0, 1000.0, 100.0, acc=False, seed=13, twitch_rate_per_min=40, noise_uv=1.2)
    q = Recording(emg_uv=bit.emg_uv(bit.emg_adc(rec.emg_uv, 10), 10), fs_emg_hz=1000.0, name="q")
    whole = analyse(q)
    assert len(whole.twitches) > 0
    for chunk in (1, 37, 1000):
        pd.testing.assert_frame_equal(_stream(q, chunk)[0].events, whole.events)
