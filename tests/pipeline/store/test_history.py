"""``toetwitch history``: day table, trend words, CLI text and JSON, and an end-to-end run from a
real recording file through the detector into the journal."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from toetwitch.drivers import read_recording
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import analyse
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.store.history import format_history, history
from toetwitch.pipeline.store.journal import Journal, journal_analysis
from toetwitch.pipeline.store.queries import daily_table, trend_of


def _result(n: int, start: str, rest_s: float = 600.0, n_episodes: int = 1, cramps: int = 0):
    events = pd.DataFrame({"time_s": np.arange(n) * 5.0 + 1.0, "source": "emg",
                           "type": "fasciculation"})
    episodes = pd.DataFrame({"episode": range(1, n_episodes + 1), "start_s": 1.0, "end_s": 20.0,
                             "twitches": 3})
    summary = {"start_time": start, "duration_s": 900.0, "time_rest_s": rest_s, "twitches": n,
               "episodes": n_episodes, "cramps": cramps, "limb_movements": 0}
    return SimpleNamespace(events=events, episodes=episodes, summary=summary)


def _at(d: date, hour: int = 22) -> str:
    return datetime(d.year, d.month, d.day, hour, 0).isoformat()


def test_daily_table_sums_sessions_of_a_day(tmp_path):
    d1, d2 = date(2026, 1, 10), date(2026, 1, 12)
    with Journal(tmp_path / "j.sqlite") as j:
        j.record_analysis(_result(10, _at(d1, 8), rest_s=300.0), None, session_key="a")
        j.record_analysis(_result(20, _at(d1, 22), rest_s=900.0, cramps=1), None, session_key="b")
        j.record_analysis(_result(0, _at(d2), rest_s=0.0, n_episodes=0), None, session_key="c")
        daily = daily_table(j)
        window = daily_table(j, days=2, today=d2)
    assert list(daily["day"]) == ["2026-01-10", "2026-01-12"]
    first = daily.iloc[0]
    assert first["recordings"] == 2 and first["twitches"] == 30 and first["cramps"] == 1
    assert first["recorded_min"] == pytest.approx(30.0) and first["rest_min"] == pytest.approx(20.0)
    assert first["rate_per_min_rest"] == pytest.approx(30 / 20.0)
    assert first["episodes"] == 2
    assert np.isnan(daily.iloc[1]["rate_per_min_rest"])  # no rest time: no rate, not zero
    assert list(window["day"]) == ["2026-01-12"]


@pytest.mark.parametrize(("counts", "words"), [
    ([5, 9, 14, 20, 24], "rising"),
    ([40, 31, 20, 12, 3], "falling"),
    ([20, 21, 19, 20, 20], "steady"),
    ([0, 0, 0], "steady"),
    ([5, 50], "not enough days"),
    ([5], "not enough days"),
])
def test_trend_words(counts, words):
    days = [(date(2026, 1, 1) + timedelta(days=2 * k)).isoformat() for k in range(len(counts))]
    slope, got = trend_of(pd.DataFrame({"day": days, "recordings": 1, "twitches": counts}), "twitches")
    assert got == words
    if len(counts) >= 2:
        expected = np.polyfit(np.arange(len(counts)) * 2.0, counts, 1)[0]
        assert slope == pytest.approx(expected)
    else:
        assert slope == 0.0


def test_trend_ignores_days_without_recordings():
    daily = pd.DataFrame({"day": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"],
                          "recordings": [1, 0, 1, 1], "twitches": [10, 0, 20, 30]})
    slope, words = trend_of(daily, "twitches")
    assert words == "rising"
    assert slope == pytest.approx(np.polyfit([0, 2, 3], [10, 20, 30], 1)[0])


def test_trend_follows_the_rate_at_rest_not_the_recording_length(tmp_path):
    """Longer recordings each day give more twitches but the same rate: steady, not rising."""
    with Journal(tmp_path / "j.sqlite") as j:
        for k in range(5):
            rest_min = 10.0 * (k + 1)
            j.record_analysis(_result(int(3 * rest_min), _at(date(2026, 1, 1 + k)), rest_s=rest_min * 60),
                              None, session_key=f"s{k}")
        daily = daily_table(j)
    assert trend_of(daily) == (pytest.approx(0.0, abs=1e-9), "steady")
    assert trend_of(daily, "twitches") == (pytest.approx(30.0), "rising")


def _fill(path, today: date) -> dict[date, int]:
    counts = {today - timedelta(days=k): 10 + 5 * (6 - k) for k in range(0, 7)}
    with Journal(path) as j:
        for d, n in counts.items():
            j.record_analysis(_result(n, _at(d)), None, session_key=d.isoformat())
        j.record_assessment({"age_years": 30}, {"escalation": {"level": "self_care"},
                                                "causes": [{"cause": "exercise_fatigue", "probability": 0.5}]})
    return counts


def test_history_cli_json(tmp_path, capsys):
    today = date.today()
    path = tmp_path / "j.sqlite"
    counts = _fill(path, today)
    assert main(["history", "--journal", str(path), "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    by_day = {r["day"]: r for r in h["days"]}
    for d, n in counts.items():
        assert by_day[d.isoformat()]["twitches"] == n
    assert h["trend"] == "rising" and h["trend_twitches_per_day"] == pytest.approx(5.0)
    assert h["trend_per_day"] == pytest.approx(0.5)  # 10 min at rest a day
    assert h["days_since_first_twitch"] == 6
    assert h["days_with_twitching_last_14"] == 7
    assert by_day[today.isoformat()]["escalation"] == "self_care"
    assert h["latest_assessment"]["causes"][0]["cause"] == "exercise_fatigue"
    assert h["night_fraction"] == pytest.approx(1.0)

    assert main(["history", "--journal", str(path), "--json", "--days", "3"]) == 0
    h3 = json.loads(capsys.readouterr().out)
    assert [r["day"] for r in h3["days"]] == [(today - timedelta(days=k)).isoformat() for k in (2, 1, 0)]


def test_history_cli_text(tmp_path, capsys):
    path = tmp_path / "j.sqlite"
    _fill(path, date.today())
    assert main(["history", "--journal", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Trend: rising (rate at rest +0.50 twitches per minute, per day; daily count +5.0 per day)." in out
    assert "twitching on 7 of the last 14 days" in out
    assert "does not diagnose" in out


def test_history_cli_errors(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert main(["history", "--journal", str(missing)]) == 1
    assert "no journal at" in capsys.readouterr().err
    assert not missing.exists()
    assert main(["history", "--journal", str(tmp_path / "x.sqlite"), "--days", "0"]) == 2
    other = tmp_path / "notes.txt"
    other.write_text("not a journal")
    assert main(["history", "--journal", str(other)]) == 1
    assert "not a toetwitch journal" in capsys.readouterr().err
    assert other.read_text() == "not a journal"


def test_format_history_empty_journal(tmp_path):
    with Journal(tmp_path / "j.sqlite") as j:
        text = format_history(history(j, days=7))
    assert "Nothing recorded yet in the last 7 days." in text


def test_recording_file_analysed_twice_is_journaled_once(tmp_path, capsys):
    """End to end: a real CSV file -> reader -> detector -> journal (twice) -> history."""
    rec, truth = simulate_recording(60.0, fs_emg_hz=1000.0, fs_acc_hz=100.0, seed=3,
                                    twitch_rate_per_min=30.0, acc=False)
    csv = tmp_path / "rest.csv"
    pd.DataFrame({"time_s": np.arange(len(rec.emg_uv)) / 1000.0, "emg_uv": rec.emg_uv}).to_csv(csv, index=False)
    path = tmp_path / "j.sqlite"
    args = argparse.Namespace(journal=path, no_journal=False)
    for _ in range(2):
        result = analyse(read_recording(csv))
        journal_analysis(args, result, csv)
    n = int((result.events["type"] == "fasciculation").sum())
    assert n > 0
    with Journal(path, create=False) as j:
        assert len(j.read_table("recordings")) == len(j.read_table("sessions")) == 1
        assert len(j.read_table("twitches")) == len(result.events)
        sess = j.read_table("sessions").iloc[0]
    assert sess["twitches"] == n
    # the CSV has no wall clock: the day comes from the file's modification time, and says so
    assert sess["start_time_source"] == "file_mtime"
    assert main(["history", "--journal", str(path), "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert sum(r["twitches"] for r in h["days"]) == n


def test_history_before_anything_was_recorded_is_no_error(tmp_path, capsys, monkeypatch):
    """After the Quick start (sample data only) the default journal does not exist yet."""
    path = tmp_path / "never.sqlite"
    monkeypatch.setenv("TOETWITCH_JOURNAL", str(path))
    assert main(["history"]) == 0
    assert "No twitching history yet" in capsys.readouterr().out
    assert not path.exists()
