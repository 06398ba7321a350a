"""``monitor --device bitalino``, ``scan`` and ``devices`` end to end on the emulated board."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import recording_table
from toetwitch.drivers import read_recording
from toetwitch.drivers.ble.profiles import NOT_YET_SUPPORTED
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline.cli.main import main


@pytest.fixture(scope="module")
def foot(tmp_path_factory) -> Path:
    """8 s of 2 kHz EMG + 200 Hz ACC with twitches (served resampled to 1000 Hz)."""
    rec, _ = simulate_recording(8.0, fs_emg_hz=2000.0, fs_acc_hz=200.0, seed=606,
                                twitch_rate_per_min=80.0, name="foot")
    path = tmp_path_factory.mktemp("rec") / "foot.parquet"
    recording_table(rec.emg_uv, rec.acc_g, 2000.0, 200.0).to_parquet(path, index=False)
    return path


def events(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "foot" / "events.csv")


def summary(out: Path) -> dict:
    return json.loads((out / "foot" / "summary.json").read_text())


def test_monitor_bitalino_reports_what_analyse_and_replay_of_its_log_give(foot, tmp_path):
    live, batch, again = tmp_path / "live", tmp_path / "batch", tmp_path / "again"
    # 20-byte notifications (frames cut across them): fewer notifications, and the decoder's
    # byte-stream path end to end; the firmware's pairs are covered by the loss test below
    assert main(["monitor", "--emulate", str(foot), "--device", "bitalino", "--speed", "max",
                 "--pack", "bytes20", "--out", str(live), "--no-journal", "-q"]) == 0
    log = live / "foot.ttlog"
    assert main(["analyse", str(log), "--out", str(batch), "--no-journal", "-q", "-j", "1"]) == 0
    assert main(["replay", str(log), "--speed", "max", "--out", str(again), "--no-journal",
                 "-q"]) == 0
    ev = events(live)
    assert (ev["type"] == "fasciculation").sum() >= 5
    pd.testing.assert_frame_equal(ev, events(batch))
    pd.testing.assert_frame_equal(ev, events(again))
    s = summary(live)
    assert s["packets"]["lost"] == 0 and s["packets"]["received"] == 8_000  # frames
    rec = read_recording(log)
    assert rec.fs_emg_hz == 1000.0 and rec.meta["profile"] == "bitalino"
    # the default map is the board kit's: EMG on A1, one accelerometer axis on A5 (as z)
    assert not rec.acc_g[:, :2].any() and 0.5 < np.median(rec.acc_g[:, 2]) < 1.5
    steps = np.diff(np.unique(rec.emg_uv))
    assert steps.min() == pytest.approx(3.3 / 1024 / 1009 * 1e6)  # the 10-bit ADC step
    # the log's first frame holds the channel map and calibration the session used
    assert rec.meta["session"]["profile"] == "bitalino"


def test_loss_is_reported_within_half_a_point(foot, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["monitor", "--emulate", str(foot), "--device", "bitalino", "--speed", "max",
                 "--loss", "0.05", "--seed", "4", "--out", str(out), "--no-journal", "-q"]) == 0
    pk = summary(out)["packets"]
    assert abs(pk["loss_fraction"] - 0.05) <= 0.005 and pk["lost"] > 0
    assert f"{pk['lost']} lost" in capsys.readouterr().out
    rec = read_recording(out / "foot.ttlog")
    assert int(np.isnan(rec.emg_uv).sum()) == pk["samples_lost_by_stream"]["emg"] == pk["lost"]
    assert len(rec.emg_uv) == 8_000


def test_a_three_axis_channel_map_is_served_and_decoded(foot, tmp_path):
    out = tmp_path / "three"
    assert main(["monitor", "--emulate", str(foot), "--device", "bitalino", "--channels",
                 "A1=emg,A3=acc_x,A4=acc_y,A5=acc_z", "--speed", "max", "--pack", "bytes20",
                 "--out", str(out), "--no-journal", "-q"]) == 0
    rec = read_recording(out / "foot.ttlog")
    src = read_recording(foot)
    assert rec.meta["packets"]["lost"] == 0 and len(rec.acc_g) == 8_000
    # every axis carries the recording's, within one ADC step (9.6 mg) and the resampling
    lo = np.percentile(src.acc_g, 5, axis=0) - 0.02
    hi = np.percentile(src.acc_g, 95, axis=0) + 0.02
    med = np.median(rec.acc_g, axis=0)
    assert ((med > lo) & (med < hi)).all()


def test_scan_and_devices_name_the_profile(foot, capsys):
    assert main(["scan", "--emulate", str(foot), "--device", "bitalino", "--timeout", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "PROFILE" and lines[1].split()[-1] == "bitalino"
    assert main(["devices", "--json"]) == 0
    rows = {r["profile"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["bitalino"]["supported"] and "1000 Hz" in rows["bitalino"]["rates"]
    assert rows["toetwitch-v1"]["supported"]
    assert not any(rows[name]["supported"] for name in NOT_YET_SUPPORTED)


@pytest.mark.parametrize(("argv", "msg"), [
    (["--channels", "A1=emg"], "--channels needs --device"),
    (["--device", "bitalino", "--channels", "A9=emg"], "unknown port"),
    (["--device", "nonsense"], "is unknown"),
])
def test_usage_errors_are_clear(foot, argv, msg, capsys):
    assert main(["monitor", "--emulate", str(foot), *argv, "--no-journal", "-q"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
