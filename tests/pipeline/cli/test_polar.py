"""``monitor --device polar-h10`` / ``polar-verity``, ``replay``, ``scan`` and ``devices`` end to
end on the emulated Polar devices (accelerometer only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import recording_table
from toetwitch.drivers import read_recording
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline.cli.main import main

RATE_HZ = {"polar-h10": 200.0, "polar-verity": 52.0}
MODEL = {"polar-h10": "Polar H10", "polar-verity": "Polar Verity Sense"}


@pytest.fixture(scope="module")
def foot(tmp_path_factory) -> Path:
    """8 s of 200 Hz acceleration with twitches, no EMG (what a Polar device can give)."""
    rec, _ = simulate_recording(8.0, fs_emg_hz=2000.0, fs_acc_hz=200.0, seed=606,
                                twitch_rate_per_min=80.0, name="foot")
    path = tmp_path_factory.mktemp("rec") / "foot.parquet"
    recording_table(None, rec.acc_g, 2000.0, 200.0).to_parquet(path, index=False)
    return path


def events(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "foot" / "events.csv")


def summary(out: Path) -> dict:
    return json.loads((out / "foot" / "summary.json").read_text())


@pytest.mark.parametrize("device", ["polar-h10", "polar-verity"])
def test_monitor_polar_writes_an_acc_session_whose_log_replays_to_the_same_events(
        device, foot, tmp_path):
    live, again, batch = tmp_path / "live", tmp_path / "again", tmp_path / "batch"
    assert main(["monitor", "--emulate", str(foot), "--device", device, "--speed", "max",
                 "--out", str(live), "--no-journal", "-q"]) == 0
    log = live / "foot.ttlog"
    assert main(["replay", str(log), "--speed", "max", "--out", str(again), "--no-journal",
                 "-q"]) == 0
    assert main(["analyse", str(log), "--out", str(batch), "--no-journal", "-q", "-j", "1"]) == 0
    ev = events(live)
    assert len(ev) >= 3  # the simulated twitches move the accelerometer
    pd.testing.assert_frame_equal(ev, events(again))
    pd.testing.assert_frame_equal(ev, events(batch))
    s = summary(live)
    assert s["packets"]["lost"] == 0 and s["packets"]["loss_measurable"]
    assert s["packets"]["samples_received"] == 8 * RATE_HZ[device]
    rec = read_recording(log)
    assert rec.emg_uv is None and rec.fs_acc_hz == RATE_HZ[device]
    assert rec.meta["session"]["profile"] == rec.meta["profile"] == device
    assert rec.meta["device"]["model"] == MODEL[device]
    # the device's acceleration in g: at rest the foot reads about 1 g
    assert 0.8 < np.median(np.linalg.norm(rec.acc_g, axis=1)) < 1.2


@pytest.mark.parametrize(("device", "loss", "drop_every"), [
    ("polar-h10", "0.1", "9"),  # 42 frames of 39 samples
    ("polar-verity", "0.2", "3"),  # 8 s at 52 Hz are 7 delta frames
])
def test_loss_and_drops_are_counted_from_the_stamps_and_replay_agrees(device, loss, drop_every,
                                                                      foot, tmp_path):
    live, again = tmp_path / "live", tmp_path / "again"
    assert main(["monitor", "--emulate", str(foot), "--device", device, "--speed", "max",
                 "--loss", loss, "--seed", "2", "--drop-every", drop_every, "--out", str(live),
                 "--no-journal", "-q"]) == 0
    pk = summary(live)["packets"]
    assert pk["samples_lost"] > 0 and pk["disconnects"] >= 1
    rec = read_recording(live / "foot.ttlog")
    assert int(np.isnan(rec.acc_g[:, 0]).sum()) == pk["samples_lost"]
    assert main(["replay", str(live / "foot.ttlog"), "--speed", "max", "--out", str(again),
                 "--no-journal", "-q"]) == 0
    pd.testing.assert_frame_equal(events(live), events(again))
    assert summary(again)["packets"]["samples_lost"] == pk["samples_lost"]


def test_scan_and_devices_name_the_polar_profiles(foot, capsys):
    assert main(["scan", "--emulate", str(foot), "--device", "polar-verity", "--timeout", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["Polar", "Sense", "EMU0001"] and lines[1].split()[-1] == "polar-verity"
    assert main(["devices", "--json"]) == 0
    rows = {r["profile"]: r for r in json.loads(capsys.readouterr().out)}
    for name in ("polar-h10", "polar-verity"):
        assert rows[name]["supported"] and "from acceleration" in rows[name]["detects"]
        assert any("fasciculations need EMG" in note for note in rows[name]["notes"])
    assert "200 Hz" in rows["polar-h10"]["rates"] and "52 Hz" in rows["polar-verity"]["rates"]


def test_an_emg_only_recording_is_refused_clearly(tmp_path, capsys):
    rec, _ = simulate_recording(2.0, fs_emg_hz=2000.0, fs_acc_hz=200.0, seed=1, name="emg")
    path = tmp_path / "emg.parquet"
    recording_table(rec.emg_uv, None, 2000.0, 200.0).to_parquet(path, index=False)
    assert main(["monitor", "--emulate", str(path), "--device", "polar-h10", "--speed", "max",
                 "--out", str(tmp_path / "o"), "--no-journal", "-q"]) == 1
    err = capsys.readouterr().err
    assert "has no accelerometer" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "emg.ttlog").exists()  # an empty log is not left behind


def test_a_refused_start_is_one_clear_line(foot, tmp_path, capsys, monkeypatch):
    """A device that answers START with an error status (here: in its charger)."""
    from toetwitch.drivers.ble import emulator as emu

    @dataclass(frozen=True)
    class Charging(emu.PolarH10Config):
        start_status: int = 13

    monkeypatch.setitem(emu.EMULATED, "polar-h10", (emu.EmulatedPolar, Charging))
    assert main(["monitor", "--emulate", str(foot), "--device", "polar-h10", "--speed", "max",
                 "--out", str(tmp_path / "o"), "--no-journal", "-q"]) == 1
    err = capsys.readouterr().err
    assert "the Polar H10 refused to start the accelerometer at 200 Hz, ±8 g: device in charger" in err
    assert "Traceback" not in err and not (tmp_path / "o" / "foot.ttlog").exists()


def test_a_start_refused_after_a_reconnect_ends_the_session_with_what_was_received(
        foot, tmp_path, capsys, monkeypatch):
    """Nothing is lost: the samples before the drop are analysed and written."""
    from toetwitch.drivers.ble import emulator as emu

    @dataclass(frozen=True)
    class ChargesAfterADrop(emu.PolarH10Config):
        start_status: int = 13
        start_status_from: int = 2

    monkeypatch.setitem(emu.EMULATED, "polar-h10", (emu.EmulatedPolar, ChargesAfterADrop))
    out = tmp_path / "o"
    assert main(["monitor", "--emulate", str(foot), "--device", "polar-h10", "--speed", "max",
                 "--drop-every", "40", "--out", str(out), "--no-journal", "-q"]) == 0
    err = capsys.readouterr().err
    assert "device in charger; ending the session with what was received" in err
    assert "Traceback" not in err
    s = summary(out)
    assert 0 < s["packets"]["samples_received"] < 8 * RATE_HZ["polar-h10"]
    assert (out / "foot.ttlog").exists()
