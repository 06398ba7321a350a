"""``toetwitch analyse``: what a person sees, exit statuses of docs/contracts.md §2, resume, journal."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers import recording_table
from tests.pipeline.run.test_batch import (
    FS_ACC_HZ,
    FS_EMG_HZ,
    folder_bytes,
    make_study,
    synth_streams,
    write_csv,
    write_edf,
)
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.run import batch


@pytest.fixture
def study(tmp_path):
    return tmp_path / "study", make_study(tmp_path / "study")


def test_one_recording_prints_its_report_and_writes_the_contract_files(tmp_path, capsys):
    rec = write_edf(tmp_path / "night.edf", seed=3, duration_s=40)
    out = tmp_path / "out"
    assert main(["analyse", str(rec), "--out", str(out), "--no-journal"]) == 0
    shown = capsys.readouterr().out
    summary = json.loads((out / "night" / "summary.json").read_text())
    assert "night" in shown and str(summary["twitches"]) in shown
    assert str(out / "night") in shown
    events = pd.read_csv(out / "night" / "events.csv")
    assert {"time_s", "source", "type"} <= set(events.columns)
    assert (events["type"] == "fasciculation").sum() == summary["twitches"]
    assert pd.read_csv(out / batch.SUMMARY_CSV)["status"].tolist() == ["ok"]


def test_without_out_nothing_is_written(tmp_path, capsys, monkeypatch):
    rec = write_csv(tmp_path / "calf.csv", seed=4, duration_s=10)
    monkeypatch.chdir(tmp_path)
    assert main(["analyse", str(rec), "--no-journal"]) == 0
    assert "calf" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calf.csv"]


def test_a_folder_with_a_corrupt_file_exits_1_lists_it_and_writes_the_rest(study, tmp_path, capsys):
    root, files = study
    out = tmp_path / "out"
    assert main(["analyse", str(root), "--out", str(out), "--workers", "2", "--no-journal"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"{files['corrupt']}: line 3" in captured.err
    assert "1 of 5 recordings failed" in captured.err
    for name in ("p1__night", "p2__night", "walk", "calf"):
        assert name in captured.out
        assert (out / name / "summary.json").is_file()
    assert "4 analysed, 1 failed" in captured.out
    assert pd.read_csv(out / batch.FAILURES_CSV)["name"].tolist() == ["broken"]


def test_resume_reports_up_to_date_recordings_and_keeps_their_files(study, tmp_path, capsys):
    root, _ = study
    out = tmp_path / "out"
    argv = ["analyse", str(root), "--out", str(out), "--workers", "1", "--no-journal"]
    assert main(argv) == 1
    first = folder_bytes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 1
    shown = capsys.readouterr().out
    assert "4 already up to date, 1 failed" in shown
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")} == mtimes
    again = folder_bytes(out)
    assert {k: v for k, v in again.items() if "/" in k} == {k: v for k, v in first.items() if "/" in k}


def test_quiet_prints_only_failures(study, tmp_path, capsys):
    root, files = study
    assert main(["analyse", str(root), "--out", str(tmp_path / "o"), "--quiet", "--no-journal"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(files["corrupt"]) in captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/missing.edf"], "no such file"),
        (["{tmp}/empty"], "no recordings found"),
        (["{tmp}/empty", "--workers", "0"], "--workers"),
        (["{tmp}/ok.csv", "--chunk-s", "-1"], "--chunk-s"),
        (["{tmp}/ok.csv", "--resume"], "--resume needs"),
    ],
)
def test_usage_errors_exit_2_without_traceback(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    write_csv(tmp_path / "ok.csv", seed=1, duration_s=3)
    if "--workers" in args:
        write_csv(tmp_path / "empty" / "r.csv", seed=1, duration_s=3)
    argv = ["analyse", *(a.format(tmp=tmp_path) for a in args), "--no-journal"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_single_bad_file_exits_1_with_its_reason(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,emg_uv\n")
    assert main(["analyse", str(bad), "--out", str(tmp_path / "o"), "--no-journal"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"toetwitch: error: {bad}") and "Traceback" not in err


def test_journal_gets_each_analysed_recording_unless_no_journal(tmp_path, capsys):
    pytest.importorskip("toetwitch.pipeline.store.journal")
    from toetwitch.pipeline.store.journal import Journal

    root = tmp_path / "in"
    write_csv(root / "a.csv", seed=1, duration_s=10)
    write_csv(root / "b.csv", seed=2, duration_s=10)
    jpath = tmp_path / "journal.sqlite"
    assert main(["analyse", str(root), "--out", str(tmp_path / "o1"), "--journal", str(jpath)]) == 0
    with Journal(jpath, create=False) as j:
        assert j.query("SELECT COUNT(*) FROM recordings")[0][0] == 2
    other = tmp_path / "other.sqlite"
    assert main(["analyse", str(root), "--out", str(tmp_path / "o2"), "--journal", str(other),
                 "--no-journal"]) == 0
    assert not other.exists()


def test_accelerometer_only_report_says_what_its_counts_can_and_cannot_see(tmp_path, capsys):
    from toetwitch.pipeline.present.text import ACC_ONLY_NOTE

    emg, acc = synth_streams(5, 30.0)
    toe = tmp_path / "toe.csv"
    recording_table(None, acc, FS_EMG_HZ, FS_ACC_HZ).to_csv(toe, index=False)
    both = write_edf(tmp_path / "both.edf", seed=5, duration_s=30)
    assert main(["analyse", str(toe), "--no-journal"]) == 0
    assert ACC_ONLY_NOTE.strip() in capsys.readouterr().out
    assert main(["analyse", str(both), "--no-journal"]) == 0
    assert "accelerometer only" not in capsys.readouterr().out


def test_demonstration_data_and_unasked_batches_stay_out_of_the_journal(tmp_path, capsys, monkeypatch):
    """The personal journal holds only the person's own recordings (store/policy.py)."""
    from toetwitch.pipeline.store.journal import Journal
    from toetwitch.pipeline.store.policy import DEMO_MARKER

    jpath = tmp_path / "journal.sqlite"
    monkeypatch.setenv("TOETWITCH_JOURNAL", str(jpath))
    demo = tmp_path / "demo"
    one = write_csv(demo / "a.csv", seed=1, duration_s=10)
    write_csv(demo / "sub" / "b.csv", seed=2, duration_s=10)
    (demo / DEMO_MARKER).write_text("demonstration data\n")
    assert main(["analyse", str(one), "--out", str(tmp_path / "o1")]) == 0
    assert main(["analyse", str(demo), "--out", str(tmp_path / "o2"), "--journal", str(jpath)]) == 0
    assert not jpath.exists()  # demonstration data, even when a journal is named
    (demo / DEMO_MARKER).unlink()
    capsys.readouterr()
    assert main(["analyse", str(demo), "--out", str(tmp_path / "o3")]) == 0  # a batch, not asked
    assert "not recorded in the journal: 2 recordings" in capsys.readouterr().err
    assert not jpath.exists()
    assert main(["analyse", str(one), "--out", str(tmp_path / "o4")]) == 0  # one of their own
    with Journal(jpath, create=False) as j:
        assert j.query("SELECT COUNT(*) FROM recordings")[0][0] == 1


def test_accelerometer_only_file_gives_limb_movements_from_the_accelerometer(tmp_path, capsys):
    import numpy as np

    from tests.helpers import still_acc, tilt_acc
    from toetwitch.pipeline.present.capability import ACC_ONLY_CAPABILITY

    fs = 52.0
    acc = still_acc(240.0, fs, 1.0, seed=31)
    onsets = [30.0, 55.0, 80.0, 105.0, 130.0, 225.0]  # a series of five, one 95 s later
    for t in onsets:
        tilt_acc(acc, fs, t, 2.0, 12.0)
    toe = tmp_path / "toe.csv"
    recording_table(None, acc, fs_acc_hz=fs).to_csv(toe, index=False)
    out = tmp_path / "out"
    assert main(["analyse", str(toe), "--out", str(out), "--no-journal", "-j", "1"]) == 0
    shown = capsys.readouterr().out
    events = pd.read_csv(out / "toe" / "events.csv")
    lms = events[events["type"] == "limb_movement"]
    assert set(lms["source"]) == {"acc"}
    np.testing.assert_allclose(lms["time_s"], onsets, atol=0.3)  # stamped at their onset
    assert lms["duration_ms"].between(1500, 2800).all() and (lms["acc_peak_mg"] > 0).all()
    s = json.loads((out / "toe" / "summary.json").read_text())
    assert s["limb_movement_source"] == "acc" and s["limb_movements"] == 6 and s["plm_series"] == 1
    hours = s["duration_analysed_s"] / 3600
    assert s["limb_movements_per_h"] == pytest.approx(6 / hours, rel=0.01)
    assert s["plm_index_per_h"] == pytest.approx(5 / hours, rel=0.01)
    assert isinstance(s["lm_rejected"], dict)
    # the study table holds the new keys too (nested ones flattened)
    row = pd.read_csv(out / batch.SUMMARY_CSV).iloc[0]
    assert row["limb_movement_source"] == "acc" and row["plm_index_per_h"] == s["plm_index_per_h"]
    assert ACC_ONLY_CAPABILITY in shown and "PLM index" in shown
