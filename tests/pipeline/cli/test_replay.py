"""`toetwitch replay` and the person-facing CLI on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import provisional_lines, recording_table
from toetwitch.drivers import read_recording
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import analyse
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.run.replay import replay

SAMPLES = Path(__file__).resolve().parents[3] / "sample_data"


def _write_csv(rec, path: Path) -> None:
    recording_table(rec.emg_uv, None, rec.fs_emg_hz).to_csv(path, index=False)


def test_replay_reports_what_analyse_finds(tmp_path, capsys):
    rec, _ = simulate_recording(30.0, 1000.0, 100.0, seed=2, twitch_rate_per_min=30, acc=False)
    f = tmp_path / "night.csv"
    _write_csv(rec, f)
    code = main(["replay", str(f), "--speed", "max", "--out", str(tmp_path / "out"), "--no-journal"])
    assert code == 0
    shown = capsys.readouterr().out
    expected = analyse(read_recording(f))
    n = len(expected.twitches)
    assert n > 5
    event_lines = [ln for ln in shown.splitlines() if ln.strip().split()[2:3] == ["fasciculation"]]
    assert len(event_lines) == n  # one line per twitch, as it happened
    written = pd.read_csv(tmp_path / "out" / "night" / "events.csv")
    assert len(written[written["type"] == "fasciculation"]) == n
    summary = json.loads((tmp_path / "out" / "night" / "summary.json").read_text())
    assert summary["twitches"] == n and summary["recording"] == "night"


def test_replay_paces_to_the_requested_speed():
    rec, _ = simulate_recording(4.0, 1000.0, 100.0, seed=2, twitch_rate_per_min=30)
    now = [0.0]
    waits = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    replay(rec, speed=2.0, clock=lambda: now[0], sleep=sleep)
    assert now[0] == pytest.approx(2.0, abs=0.11)  # 4 s of signal at 2x takes 2 s


@pytest.mark.parametrize("content, expected", [
    ("time_s,emg_uv\n0.0,1\n0.001,abc\n", "line 3"),
    ("", "empty"),
])
def test_bad_file_gets_a_clear_error_and_no_traceback(tmp_path, content, expected):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "toetwitch", "replay", str(f), "--speed", "max", "--no-journal"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "bad.csv" in proc.stderr and expected in proc.stderr


def test_missing_file_is_a_usage_error():
    assert main(["replay", "/nonexistent/x.csv", "--no-journal"]) == 2


@pytest.mark.skipif(not SAMPLES.exists(), reason="sample_data not present")
def test_every_bundled_sample_replays_like_it_analyses():
    from toetwitch.drivers.readers import is_recording_file

    for f in sorted(SAMPLES.glob("*")):
        if not is_recording_file(f):
            continue
        rec = read_recording(f)
        pd.testing.assert_frame_equal(replay(rec).events, analyse(rec).events)


def test_replay_shows_twitches_while_checking_them(tmp_path, capsys):
    """--provisional on: as in the live monitor, a twitch is printed once as 'checking', the
    ones the look-ahead rules reject get a 'not counted' line with the reason, settled twitches
    are not printed again, and what is left is exactly what is counted."""
    out = tmp_path / "out"
    assert main(["replay", str(SAMPLES / "rest_and_voluntary.edf"), "--speed", "max",
                 "--provisional", "on", "--out", str(out), "--no-journal"]) == 0
    lines = capsys.readouterr().out.splitlines()
    checking, dropped, reprinted = provisional_lines(lines)
    assert dropped and all(ln.rstrip().endswith(")") for ln in dropped)  # a reason in words
    assert not reprinted
    counted = pd.read_csv(out / "rest_and_voluntary" / "events.csv").query("type == 'fasciculation'")
    kept = sorted(set(checking) - {float(ln.split()[0]) for ln in dropped})
    assert len(kept) == len(counted)
    assert max(abs(a - b) for a, b in zip(kept, sorted(counted["time_s"]), strict=True)) < 1e-3
