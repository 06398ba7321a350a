"""``toetwitch monitor`` / ``scan`` end to end: emulated sensor on a real BLE stack, the
packet log, a kill -9 in the middle of a session, and machines without Bluetooth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import provisional_lines, recording_table
from toetwitch.drivers import read_recording
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline.cli.main import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def recording_file(tmp_path_factory) -> Path:
    """24 s of 2 kHz EMG + 200 Hz ACC with twitches and a voluntary burst, as Parquet.

    Values are rounded to 0.1 µV and 1e-5 g, as a sensor's ADC would quantise them."""
    rec, _ = simulate_recording(24.0, fs_emg_hz=2000.0, fs_acc_hz=200.0, seed=606,
                                twitch_rate_per_min=40.0, voluntary_bursts=1, name="foot")
    emg = np.round(rec.emg_uv * 10) / 10
    acc = np.round(rec.acc_g * 1e5) / 1e5
    path = tmp_path_factory.mktemp("rec") / "foot.parquet"
    recording_table(emg, acc, 2000.0, 200.0).to_parquet(path, index=False)
    return path


def events(out: Path, name: str = "foot") -> pd.DataFrame:
    return pd.read_csv(out / name / "events.csv")


def summary(out: Path, name: str = "foot") -> dict:
    return json.loads((out / name / "summary.json").read_text())


def test_monitor_emulate_reports_exactly_what_analyse_does(recording_file, tmp_path):
    live, batch, again = tmp_path / "live", tmp_path / "batch", tmp_path / "replay"
    assert main(["monitor", "--emulate", str(recording_file), "--speed", "max", "--out", str(live),
                 "--no-journal", "-q"]) == 0
    assert main(["analyse", str(recording_file), "--out", str(batch), "--no-journal", "-q",
                 "-j", "1"]) == 0
    ev = events(live)
    assert (ev["type"] == "fasciculation").sum() >= 5
    pd.testing.assert_frame_equal(ev, events(batch))
    s_live, s_batch = summary(live), summary(batch)
    for key in ("twitches", "episodes", "twitches_per_min_rest", "limb_movements", "duration_s"):
        assert s_live[key] == s_batch[key], key
    assert s_live["packets"]["lost"] == 0 and s_live["packets"]["received"] > 100
    # the packet log written on the way replays to the same twitches
    log = live / "foot.ttlog"
    assert main(["replay", str(log), "--speed", "max", "--out", str(again), "--no-journal", "-q"]) == 0
    pd.testing.assert_frame_equal(events(again), ev)


def test_monitor_shows_twitches_while_checking_them(recording_file, tmp_path, capsys):
    """--provisional on: each EMG twitch is printed once as 'checking', those the later rules
    reject get a 'not counted' line, and what is left is exactly what is counted."""
    out = tmp_path / "out"
    assert main(["monitor", "--emulate", str(recording_file), "--speed", "max", "--provisional", "on",
                 "--out", str(out), "--no-journal", "--no-log"]) == 0
    lines = capsys.readouterr().out.splitlines()
    checking, dropped_lines, reprinted = provisional_lines(lines)
    dropped = [float(ln.split()[0]) for ln in dropped_lines]
    assert len(checking) == len(set(checking)) >= 5
    assert set(dropped) <= set(checking)
    assert not reprinted  # a settled twitch is not printed a second time
    counted = np.sort(events(out).query("type == 'fasciculation'")["time_s"].to_numpy())
    kept = np.sort(list(set(checking) - set(dropped)))  # same printed strings, same floats
    assert len(kept) == len(counted) and np.allclose(kept, counted, rtol=0, atol=1e-3)


def test_drops_reconnect_and_resume_without_losing_anything(recording_file, tmp_path, capsys):
    out = tmp_path / "out"
    batch = tmp_path / "batch"
    assert main(["monitor", "--emulate", str(recording_file), "--speed", "max", "--drop-every", "150",
                 "--out", str(out), "--no-journal", "-q"]) == 0
    pk = summary(out)["packets"]
    assert pk["disconnects"] >= 2
    assert pk["lost"] == 0 and pk["samples_lost"] == 0  # at max speed no time passes while down
    assert main(["analyse", str(recording_file), "--out", str(batch), "--no-journal", "-q",
                 "-j", "1"]) == 0
    pd.testing.assert_frame_equal(events(out), events(batch))


def test_loss_is_reported_within_half_a_point(recording_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["monitor", "--emulate", str(recording_file), "--speed", "max", "--loss", "0.05",
                 "--seed", "11", "--out", str(out), "--no-journal", "-q"]) == 0
    pk = summary(out)["packets"]
    assert pk["lost"] > 0 and pk["samples_lost"] > 0
    assert pk["loss_fraction"] == pytest.approx(pk["lost"] / (pk["received"] + pk["lost"]), abs=1e-6)
    assert abs(pk["loss_fraction"] - 0.05) <= 0.005
    printed = capsys.readouterr().out
    assert f"{pk['lost']} lost" in printed  # the session summary says it too
    # the log holds exactly what arrived: lost samples are NaN gaps, not shifts
    rec = read_recording(out / "foot.ttlog")
    src = read_recording(recording_file)
    assert len(rec.emg_uv) == len(src.emg_uv)
    gap = np.isnan(rec.emg_uv)
    assert int(gap.sum()) == pk["samples_lost_by_stream"]["emg"]
    np.testing.assert_array_equal(rec.emg_uv[~gap], src.emg_uv[~gap])


def _start_monitor(recording_file: Path, tmp_path: Path, log: Path, *extra: str) -> subprocess.Popen:
    """A real ``toetwitch monitor`` process; returns once its log holds a few hundred packets
    (waiting on the log's growth, not on a fixed sleep)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toetwitch", "monitor", "--emulate", str(recording_file),
         "--speed", "3", "--log", str(log), "--no-journal", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (log.exists() and log.stat().st_size > 20_000):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the monitor ended or wrote no log:\n{out}\n{err}")
        time.sleep(0.02)
    return proc


def _replay(log: Path, out: Path) -> None:
    import warnings

    from toetwitch.drivers.readers import ReaderWarning

    with warnings.catch_warnings():  # a killed writer may have cut the last frame
        warnings.simplefilter("ignore", ReaderWarning)
        assert main(["replay", str(log), "--speed", "max", "--out", str(out), "--no-journal",
                     "-q"]) == 0


def test_kill_9_mid_session_leaves_a_log_that_replays(recording_file, tmp_path, capsys):
    log = tmp_path / "killed.ttlog"
    proc = _start_monitor(recording_file, tmp_path, log, "-q")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out = tmp_path / "out"
    _replay(log, out)
    s = summary(out, "killed")
    assert 0 < s["duration_s"] < 24.0
    assert s["packets"]["received"] > 50 and s["packets"]["lost"] == 0
    # what the log holds is the recording's beginning, bit for bit
    src = read_recording(recording_file)
    rec = _read_quietly(log)
    assert not rec.meta["clean_end"]
    np.testing.assert_array_equal(rec.emg_uv, src.emg_uv[: len(rec.emg_uv)])


def test_ctrl_c_stops_cleanly_and_the_log_replays_the_same_twitches(recording_file, tmp_path, capsys):
    log, live = tmp_path / "session.ttlog", tmp_path / "live"
    proc = _start_monitor(recording_file, tmp_path, log, "--out", str(live))
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "== foot" in stdout and "link:" in stdout  # the session summary
    s = summary(live)
    assert 0 < s["duration_s"] < 24.0  # stopped early, not at the end of the file
    assert _read_quietly(log).meta["clean_end"]
    again = tmp_path / "replay"
    _replay(log, again)
    pd.testing.assert_frame_equal(events(again, "session"), events(live))
    assert summary(again, "session")["packets"] == s["packets"]


def _read_quietly(path: Path):
    """Read a log a killed writer may have cut mid-frame (that warning is expected)."""
    import warnings

    from toetwitch.drivers.readers import ReaderWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReaderWarning)
        return read_recording(path)


def test_scan_finds_the_emulated_sensor(recording_file, capsys):
    assert main(["scan", "--timeout", "0.3", "--emulate", str(recording_file)]) == 0
    out = capsys.readouterr().out
    assert "TT-EMU" in out and "toetwitch-v1" in out


NO_BLUEZ = not Path("/run/dbus/system_bus_socket").exists() and sys.platform.startswith("linux")


@pytest.mark.skipif(not NO_BLUEZ, reason="this machine has a Bluetooth stack")
def test_no_bluetooth_gives_a_clear_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", "--timeout", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "no Bluetooth adapter" in err and "--emulate" in err and "Traceback" not in err
    assert main(["monitor", "AA:BB:CC:DD:EE:FF", "--scan-timeout", "0.5", "--no-journal"]) == 1
    err = capsys.readouterr().err
    assert "no Bluetooth adapter" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.ttlog"))  # no empty log left behind


def test_usage_errors(recording_file, capsys):
    assert main(["monitor", "AA:BB", "--emulate", str(recording_file), "--no-journal"]) == 2
    assert main(["monitor", "--loss", "0.1", "--no-journal"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["monitor", "--emulate", str(recording_file), "--loss", "1.5"])
    assert exc.value.code == 2
    assert "--loss must be" in capsys.readouterr().err


def test_lsl_outlets_carry_the_streams_and_the_twitches(monkeypatch):
    try:
        import pylsl
    except (ImportError, RuntimeError):
        pytest.skip("pylsl (with liblsl) is not installed")
    monkeypatch.setenv("TOETWITCH_LSL_SCOPE", "machine")  # no LAN multicast from tests
    from toetwitch.pipeline.run.lsl import LslPublisher

    name = f"tt-test-{os.getpid()}"
    pub = LslPublisher(name)
    pub.start(1000.0, 100.0, "test")
    try:
        inlets = {}
        for kind in ("EMG", "ACC", "twitches"):
            (info,) = pylsl.resolve_byprop("name", f"{name} {kind}", timeout=10)
            inlets[kind] = pylsl.StreamInlet(info)
            inlets[kind].open_stream(timeout=10)
        t0 = time.time()
        pub.set_origin(t0)
        emg = np.linspace(-50, 50, 300, dtype=np.float32)[:, None]
        emg[10] = np.nan  # a lost sample stays a (NaN) sample: stamps stay regular
        pub.push("emg", 0, emg[:200])
        pub.push("emg", 200, emg[200:])
        pub.push("acc", 0, np.ones((30, 3)))
        pub.events(pd.DataFrame({"time_s": [0.1], "type": ["fasciculation"], "source": ["emg"],
                                 "peak_to_peak_uv": [85.0]}))
        got, stamps = [], []
        deadline = time.monotonic() + 10
        while len(got) < 300 and time.monotonic() < deadline:
            x, ts = inlets["EMG"].pull_chunk(timeout=1.0)
            got += x
            stamps += ts
        np.testing.assert_array_equal(np.array(got, np.float32), emg)
        np.testing.assert_allclose(np.diff(stamps), 1e-3, atol=1e-9)
        marker, ts = inlets["twitches"].pull_sample(timeout=10)
        assert marker == ["fasciculation emg 85uV"]
        assert ts == pytest.approx(stamps[100], abs=1e-6)  # stamped at the event, not the push
        acc, _ = inlets["ACC"].pull_chunk(timeout=5.0)
        assert len(acc) > 0 and acc[0] == [1.0, 1.0, 1.0]
    finally:
        for inlet in locals().get("inlets", {}).values():
            inlet.close_stream()
        pub.close()


def test_monitor_with_an_accelerometer_alone_says_what_it_can_count(tmp_path, capsys):
    from tests.helpers import still_acc, tilt_acc
    from toetwitch.pipeline.present.capability import ACC_ONLY_CAPABILITY, ACTIGRAPHY_CAVEAT

    acc = still_acc(60.0, 52.0, 1.0, seed=4)
    tilt_acc(acc, 52.0, 20.0, 2.0, 12.0)
    path = tmp_path / "toe.csv"
    recording_table(None, acc, fs_acc_hz=52.0).to_csv(path, index=False)
    out = tmp_path / "live"
    assert main(["monitor", "--emulate", str(path), "--speed", "max", "--out", str(out),
                 "--no-log", "--no-journal", "--provisional", "off"]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [ln for ln in lines if ln.startswith("note: ")]
    assert notes[:2] == [f"note: {ACC_ONLY_CAPABILITY}", f"note: {ACTIGRAPHY_CAVEAT}"]
    # said at the start, before any event line
    assert lines.index(notes[0]) < next(i for i, ln in enumerate(lines) if "limb_movement" in ln)
    ev = events(out, "toe")
    lm = ev[ev["type"] == "limb_movement"]
    assert len(lm) == 1 and lm["source"].tolist() == ["acc"]
    assert summary(out, "toe")["limb_movement_source"] == "acc"


def test_status_line_of_an_accelerometer_alone_counts_limb_movements():
    from toetwitch.pipeline.run.live import LiveSession

    session = LiveSession("s")
    session._fs = {"acc": 52.0}
    session._limb_movements = 3
    assert "limb movements 3" in session.status_line() and "visible twitches" in session.status_line()
    session._fs = {"emg": 2000.0, "acc": 200.0}
    assert "limb movements" not in session.status_line()
