"""``monitor --device movesense|metawear`` end to end on the emulated sensors, and the replay
of their packet logs to the same events."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import recording_table
from toetwitch.drivers import read_recording
from toetwitch.drivers.ble import emulator
from toetwitch.drivers.ble.packetlog import FRAME_INFO, iter_frames
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline.cli.main import main


@pytest.fixture(scope="module")
def toe(tmp_path_factory) -> Path:
    """20 s of 100 Hz accelerometer only, with twitch transients and one limb movement."""
    rec, _ = simulate_recording(20.0, fs_emg_hz=None, fs_acc_hz=100.0, emg=False, seed=707,
                                twitch_rate_per_min=40.0, limb_movements=1, name="toe")
    path = tmp_path_factory.mktemp("rec") / "toe.parquet"
    recording_table(None, rec.acc_g, 1000.0, 100.0).to_parquet(path, index=False)
    return path


def events(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "toe" / "events.csv")


def packets(out: Path) -> dict:
    return json.loads((out / "toe" / "summary.json").read_text())["packets"]


def monitor(toe: Path, device: str, out: Path, *extra: str) -> None:
    assert main(["monitor", "--emulate", str(toe), "--device", device, "--speed", "max",
                 *extra, "--out", str(out), "--no-journal", "-q"]) == 0


@pytest.mark.parametrize(("device", "fs_hz"), [("movesense", 104.0), ("metawear", 100.0)])
def test_monitor_writes_outputs_and_its_log_replays_to_the_same_events(toe, tmp_path, device,
                                                                       fs_hz):
    live, again = tmp_path / "live", tmp_path / "again"
    monitor(toe, device, live)
    log = live / "toe.ttlog"
    assert main(["replay", str(log), "--speed", "max", "--out", str(again), "--no-journal",
                 "-q"]) == 0
    ev = events(live)
    assert (ev["type"] == "fasciculation").sum() >= 3 and (ev["type"] == "limb_movement").sum() == 1
    pd.testing.assert_frame_equal(ev, events(again))
    rec = read_recording(log)
    assert rec.meta["profile"] == device and rec.fs_acc_hz == fs_hz and rec.emg_uv is None
    assert 18.0 < len(rec.acc_g) / fs_hz <= 20.0
    assert 0.9 < np.median(rec.acc_g[:, 2]) < 1.1  # gravity on z, in g


def test_movesense_loss_is_measured_from_the_timestamps(toe, tmp_path, capsys):
    out = tmp_path / "out"
    monitor(toe, "movesense", out, "--loss", "0.05", "--seed", "3", "--drop-every", "60")
    pk = packets(out)
    assert pk["loss_measurable"] is True and pk["samples_lost"] > 0 and pk["disconnects"] >= 3
    assert pk["samples_lost"] % 8 == 0  # whole messages of 8 samples
    assert f"{pk['lost']} lost" in capsys.readouterr().out
    rec = read_recording(out / "toe.ttlog")
    assert int(np.isnan(rec.acc_g[:, 0]).sum()) == pk["samples_lost_by_stream"]["acc"]


def test_metawear_loss_is_said_to_be_unmeasurable_never_zero(toe, tmp_path, capsys):
    out = tmp_path / "out"
    monitor(toe, "metawear", out, "--loss", "0.05", "--seed", "3", "--drop-every", "200")
    pk = packets(out)
    assert pk["loss_measurable"] is False and pk["disconnects"] >= 2
    assert pk["lost"] is None and pk["samples_lost"] is None and pk["loss_fraction"] is None
    text = capsys.readouterr().out
    assert "loss unmeasurable" in text and " 0 lost" not in text
    # the samples after each lost notification moved up: fewer samples, none NaN
    rec = read_recording(out / "toe.ttlog")
    assert not np.isnan(rec.acc_g).any() and len(rec.acc_g) < 1998


def test_a_refused_subscription_is_a_clear_error(toe, tmp_path, monkeypatch, capsys):
    cls, cfg = emulator.EMULATED["movesense"]

    def refusing(**knobs):  # noqa: ANN003, ANN202
        return dataclasses.replace(cfg(**knobs), subscribe_status=507)

    monkeypatch.setitem(emulator.EMULATED, "movesense", (cls, refusing))
    assert main(["monitor", "--emulate", str(toe), "--device", "movesense", "--speed", "max",
                 "--out", str(tmp_path / "out"), "--no-journal", "-q"]) == 1
    err = capsys.readouterr().err
    assert "refused the subscription to /Meas/Acc/104 (status 507" in err
    assert "Traceback" not in err and "LinkFailedError" not in err


def test_a_recording_without_an_accelerometer_is_a_clear_error(tmp_path, capsys):
    rec, _ = simulate_recording(2.0, fs_emg_hz=1000.0, fs_acc_hz=None, acc=False, seed=1)
    path = tmp_path / "emg.parquet"
    recording_table(rec.emg_uv, None, 1000.0, 100.0).to_parquet(path, index=False)
    assert main(["monitor", "--emulate", str(path), "--device", "metawear", "--speed", "max",
                 "--no-log", "--no-journal", "-q"]) != 0
    err = capsys.readouterr().err
    assert "no accelerometer stream" in err and "Traceback" not in err


def test_devices_lists_both(capsys):
    assert main(["devices", "--json"]) == 0
    rows = {r["profile"]: r for r in json.loads(capsys.readouterr().out)}
    for name in ("movesense", "metawear"):
        assert rows[name]["supported"] and "from acceleration" in rows[name]["detects"]
        assert any("fasciculations need EMG" in note for note in rows[name]["notes"])
    assert "unmeasurable" in rows["metawear"]["rates"]


@pytest.mark.parametrize(("device", "name"), [("movesense", "Movesense 000000EMU"),
                                              ("metawear", "MetaWear")])
def test_scan_names_the_profile(toe, device, name, capsys):
    assert main(["scan", "--emulate", str(toe), "--device", device, "--timeout", "0.5"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith(name) and row.split()[-1] == device


@pytest.mark.parametrize(("device", "argv", "fs_hz"), [
    ("movesense", ["--acc-rate", "52"], 52.0),
    ("metawear", ["--acc-rate", "50", "--acc-range", "4"], 50.0),
    ("polar-h10", ["--acc-rate", "50", "--acc-range", "4"], 50.0),
])
def test_the_accelerometer_rate_asked_for_is_the_rate_streamed(toe, tmp_path, device, argv, fs_hz):
    out = tmp_path / "out"
    monitor(toe, device, out, *argv)
    rec = read_recording(out / "toe.ttlog")
    assert rec.fs_acc_hz == fs_hz and 18.0 < len(rec.acc_g) / fs_hz <= 20.0
    assert 0.9 < np.median(rec.acc_g[:, 2]) < 1.1
    if "--acc-range" in argv:  # the session description (the log's first frame) records it
        first = next(iter_frames(out / "toe.ttlog"))
        assert first.frame_type == FRAME_INFO and json.loads(first.payload)["range_g"] == 4


@pytest.mark.parametrize(("argv", "msg"), [
    (["--device", "movesense", "--acc-rate", "60"], "--device movesense: Movesense accelerometer rates"),
    (["--device", "movesense", "--acc-range", "4"], "range is set on the sensor"),
    (["--device", "metawear", "--acc-range", "3"], "MetaWear ranges are"),
    (["--device", "bitalino", "--acc-rate", "100"], "1000 Hz"),
    (["--device", "toetwitch-v1", "--acc-rate", "100"], "sets its own rates"),
    (["--acc-rate", "100"], "need --device"),
])
def test_accelerometer_options_that_cannot_apply_are_clear_usage_errors(toe, argv, msg, capsys):
    assert main(["monitor", "--emulate", str(toe), *argv, "--no-log", "--no-journal"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
