"""The SQLite journal: identity, permissions, no duplicates, migrations, concurrent writers,
refusing foreign or damaged files, longitudinal features."""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from toetwitch.pipeline.cli.common import add_journal_arguments
from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.store import journal as jmod
from toetwitch.pipeline.store.features import longitudinal_features
from toetwitch.pipeline.store.journal import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    Journal,
    default_journal_path,
    file_mode,
    journal_analysis,
    journal_assessment,
)

EVENT_COLS = ["time_s", "source", "type", "duration_ms", "peak_to_peak_uv", "phases", "snr",
              "acc_peak_mg", "doublet"]


def make_result(times_s, *, start_time=None, types=None, duration_s=600.0, rest_s=500.0, **summary):
    """An AnalysisResult-like object with fasciculations at ``times_s`` and one episode."""
    times_s = np.asarray(times_s, dtype=float)
    n = len(times_s)
    types = list(types) if types is not None else ["fasciculation"] * n
    events = pd.DataFrame({
        "time_s": times_s, "source": ["emg"] * n, "type": types,
        "duration_ms": np.full(n, 8.0), "peak_to_peak_uv": np.linspace(80, 160, n),
        "phases": np.full(n, 2), "snr": np.full(n, 6.0), "acc_peak_mg": np.full(n, np.nan),
        "doublet": np.zeros(n, dtype=bool), "confidence": np.full(n, 0.9),
    }, columns=[*EVENT_COLS, "confidence"])
    episodes = pd.DataFrame({
        "episode": [1], "start_s": [float(times_s[0]) if n else 0.0],
        "end_s": [float(times_s[-1]) if n else 0.0], "twitches": [n], "duration_s": [1.0],
        "rate_per_min": [float(n)], "median_peak_to_peak_uv": [100.0], "max_peak_to_peak_uv": [160.0],
    }) if n else pd.DataFrame(columns=["episode", "start_s", "end_s", "twitches"])
    s = {"recording": "test", "start_time": start_time, "duration_s": duration_s,
         "time_rest_s": rest_s, "twitches": sum(t == "fasciculation" for t in types),
         "episodes": len(episodes), "signal_quality": {"grade": "good"},
         "twitches_per_min_rest": n / (rest_s / 60.0), "night_fraction": float("nan")}
    s.update(summary)
    return SimpleNamespace(events=events, episodes=episodes, summary=s)


def counts(path: Path) -> dict[str, int]:
    with Journal(path, create=False) as j:
        return {t: len(j.read_table(t)) for t in jmod.TABLES}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def rec_file(tmp_path: Path) -> Path:
    p = tmp_path / "night.csv"
    p.write_text("time_s,emg_uv\n0.0,1.0\n0.0005,2.0\n")
    return p


def test_new_journal_is_private_wal_and_identified(tmp_path):
    path = tmp_path / "data" / "toetwitch" / "journal.sqlite"
    with Journal(path) as j:
        assert j.schema_version == SCHEMA_VERSION
    assert file_mode(path) == 0o600
    assert file_mode(path.parent) == 0o700
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    assert set(jmod.TABLES) <= names


def test_wal_side_files_are_private_too(tmp_path, rec_file):
    path = tmp_path / "j.sqlite"
    with Journal(path) as j1, Journal(path) as j2:
        j1.record_analysis(make_result([1.0, 2.0], start_time="2026-01-05T10:00:00"), rec_file)
        assert len(j2.read_table("twitches")) == 2
        side = [p for p in tmp_path.iterdir() if p.name.startswith("j.sqlite-")]
        assert side, "WAL mode keeps -wal/-shm files while connections are open"
        for p in side:
            assert file_mode(p) & 0o077 == 0, p


def test_same_recording_twice_is_stored_once(tmp_path, rec_file):
    path = tmp_path / "j.sqlite"
    args = argparse.Namespace(journal=path, no_journal=False)
    res = make_result([1.0, 2.0, 3.0], start_time="2026-01-05T22:30:00")
    journal_analysis(args, res, rec_file)
    first = counts(path)
    journal_analysis(args, res, rec_file)
    # the same bytes under another name are the same recording
    copy = tmp_path / "copy_of_night.csv"
    copy.write_bytes(rec_file.read_bytes())
    journal_analysis(args, make_result([1.0, 2.0], start_time="2026-01-05T22:30:00"), copy)
    again = counts(path)
    assert first["recordings"] == first["sessions"] == 1 and first["twitches"] == 3
    assert again["recordings"] == again["sessions"] == again["episodes"] == 1
    assert again["twitches"] == 2  # replaced by the latest analysis, not added
    with Journal(path, create=False) as j:
        recs = j.read_table("recordings")
        assert recs.loc[0, "path"] == str(copy.resolve())
        assert recs.loc[0, "sha256"] == sha(rec_file)
    # a different recording is a second session
    other = tmp_path / "other.csv"
    other.write_text("time_s,emg_uv\n0.0,5.0\n0.0005,6.0\n")
    journal_analysis(args, make_result([4.0]), other)
    assert counts(path)["sessions"] == 2


def test_events_stored_with_wall_clock_and_extra_columns(tmp_path, rec_file):
    path = tmp_path / "j.sqlite"
    res = make_result([10.0, 3700.0], start_time="2026-03-01T23:30:00+01:00",
                      types=["fasciculation", "cramp"])
    with Journal(path) as j:
        j.record_analysis(res, rec_file)
        tw = j.read_table("twitches")
        sess = j.read_table("sessions")
    assert list(tw["wall_time"]) == ["2026-03-01T23:30:10", "2026-03-02T00:31:40"]
    assert list(tw["hour"]) == [23, 0]
    assert list(tw["day"]) == ["2026-03-01", "2026-03-01"]  # the night belongs to its evening
    assert list(tw["type"]) == ["fasciculation", "cramp"]
    assert tw["acc_peak_mg"].isna().all()
    assert '"confidence": 0.9' in tw.loc[0, "extra_json"]
    assert sess.loc[0, "start_time_source"] == "recording"
    assert sess.loc[0, "twitches"] == 1 and sess.loc[0, "signal_grade"] == "good"


def test_unknown_start_time_uses_file_mtime_and_says_so(tmp_path, rec_file):
    end = datetime(2026, 2, 10, 7, 0, 0)
    os.utime(rec_file, (end.timestamp(), end.timestamp()))
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.record_analysis(make_result([5.0], start_time=None, duration_s=8 * 3600.0), rec_file)
        sess = j.read_table("sessions")
    assert sess.loc[0, "start_time_source"] == "file_mtime"
    assert sess.loc[0, "start_time"] == "2026-02-09T23:00:00"
    assert sess.loc[0, "day"] == "2026-02-09"


def test_live_sessions_keyed_by_session_id(tmp_path):
    path = tmp_path / "j.sqlite"
    args = argparse.Namespace(journal=path, no_journal=False)
    journal_analysis(args, make_result([1.0], session_id="abc"), None)
    journal_analysis(args, make_result([1.0, 2.0], session_id="abc"), None)
    journal_analysis(args, make_result([1.0], start_time="2026-01-01T08:00:00"), None)
    with Journal(path, create=False) as j:
        sess = j.read_table("sessions")
    assert len(sess) == 2
    assert set(sess["kind"]) == {"live"}
    by_key = sess.set_index("session_key")
    assert by_key.loc["live:abc", "twitches"] == 2
    assert by_key.loc["live:abc", "start_time_source"] == "journal_time"
    assert by_key.loc["live:2026-01-01T08:00:00", "start_time_source"] == "recording"


def test_no_journal_writes_nothing(tmp_path, rec_file):
    path = tmp_path / "j.sqlite"
    args = argparse.Namespace(journal=path, no_journal=True)
    journal_analysis(args, make_result([1.0]), rec_file)
    journal_assessment(args, {"age_years": 40}, {"escalation": {"level": "routine"}})
    assert not path.exists()


def test_assessment_and_answers_recorded(tmp_path):
    path = tmp_path / "j.sqlite"
    args = argparse.Namespace(journal=path, no_journal=False)
    assessment = {"escalation": {"level": "soon", "reasons": []},
                  "causes": [{"cause": "caffeine_stimulants", "probability": np.float64(0.61)},
                             {"cause": "benign_fasciculation", "probability": 0.2}],
                  "advice": ["Cut caffeine."], "disclaimer": "informs, does not diagnose"}
    journal_assessment(args, {"age_years": 38, "caffeine_mg_per_day": 300}, assessment)
    with Journal(path, create=False) as j:
        a = j.read_table("assessments")
        ans = j.read_table("answers")
        latest = j.latest_assessment()
    assert a.loc[0, "escalation_level"] == "soon" and a.loc[0, "top_cause"] == "caffeine_stimulants"
    assert a.loc[0, "answers_id"] == ans.loc[0, "id"]
    assert latest["causes"][0]["probability"] == pytest.approx(0.61)
    assert latest["advice"] == ["Cut caffeine."]


def test_journal_path_from_arguments_and_environment(tmp_path, monkeypatch):
    parser = argparse.ArgumentParser()
    add_journal_arguments(parser)
    args = parser.parse_args([])
    assert args.journal is None and args.no_journal is False
    monkeypatch.setenv("TOETWITCH_JOURNAL", str(tmp_path / "env.sqlite"))
    assert jmod.journal_path_from_args(args) == tmp_path / "env.sqlite"
    args = parser.parse_args(["--journal", str(tmp_path / "arg.sqlite"), "--no-journal"])
    assert jmod.journal_path_from_args(args) == tmp_path / "arg.sqlite" and args.no_journal
    monkeypatch.delenv("TOETWITCH_JOURNAL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_journal_path() == tmp_path / "xdg" / "toetwitch" / "journal.sqlite"


# ---------------------------------------------------------------- never overwrite others' files


def _assert_refused(path: Path, match: str):
    before = (sha(path), path.stat().st_mtime_ns, path.stat().st_size)
    args = argparse.Namespace(journal=path, no_journal=False)
    with pytest.raises(UserError, match=match):
        journal_analysis(args, make_result([1.0]), None)
    with pytest.raises(UserError, match=match):
        journal_assessment(args, {}, {"escalation": {"level": "routine"}})
    with pytest.raises(UserError, match=match):
        longitudinal_features(path)
    assert (sha(path), path.stat().st_mtime_ns, path.stat().st_size) == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_non_sqlite_file_refused_and_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n" * 100)
    _assert_refused(path, "not an SQLite database")


def test_foreign_sqlite_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (name TEXT)")
    con.execute("INSERT INTO contacts VALUES ('Ada')")
    con.commit()
    con.close()
    _assert_refused(path, "another program")


def test_damaged_journal_refused_and_untouched(tmp_path, rec_file):
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        for k in range(30):  # several pages of rows
            j.record_analysis(make_result(np.arange(1.0, 60.0), session_id=f"s{k}"), None)
    raw = bytearray(path.read_bytes())
    assert len(raw) > 8 * 4096
    raw[4 * 4096: 6 * 4096] = bytes(range(256)) * 16  # garble two b-tree pages
    path.write_bytes(bytes(raw))
    jmod._CHECKED.clear()  # as in a new process: the integrity check on opening finds it
    _assert_refused(path, "damaged")


def test_journal_from_newer_toetwitch_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.commit()
    con.close()
    _assert_refused(path, "newer toetwitch")


def test_missing_journal_for_reading_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no journal at"):
        Journal(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()
    assert longitudinal_features(tmp_path / "none.sqlite")["days_since_first_twitch"] is None


# ---------------------------------------------------------------- migrations


def test_migration_upgrades_old_journal_and_keeps_data(tmp_path, monkeypatch):
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.record_analysis(make_result([1.0, 2.0], session_id="old"), None)
    extra = "ALTER TABLE sessions ADD COLUMN note TEXT; CREATE TABLE IF NOT EXISTS tags (tag TEXT)"
    monkeypatch.setattr(jmod, "MIGRATIONS", [*jmod.MIGRATIONS, extra])
    monkeypatch.setattr(jmod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Journal(path) as j:
        assert j.schema_version == SCHEMA_VERSION + 1
        sess = j.read_table("sessions")
        assert "note" in sess.columns and sess.loc[0, "twitches"] == 2
        assert j.query("SELECT count(*) FROM tags") == [(0,)]
    with Journal(path) as j:  # opening again does not re-run the step
        assert j.migrate() == SCHEMA_VERSION + 1


# ---------------------------------------------------------------- concurrency

WRITER = textwrap.dedent("""
    import sys, argparse, time
    from pathlib import Path
    from types import SimpleNamespace
    import numpy as np, pandas as pd
    from toetwitch.pipeline.store.journal import journal_analysis, journal_assessment
    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    args = argparse.Namespace(journal=path, no_journal=False)
    # start barrier: imports take a while; begin writing (and creating the journal) together
    sync = Path(path).parent.parent
    (sync / f"ready-{tag}").touch()
    deadline = time.monotonic() + 60
    while len(list(sync.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    t = np.arange(1.0, 201.0)
    ev = pd.DataFrame({"time_s": t, "source": "emg", "type": "fasciculation"})
    for k in range(n):
        summary = {"start_time": "2026-01-0%dT10:00:00" % (1 + k % 9), "duration_s": 300.0,
                   "time_rest_s": 300.0, "twitches": len(t), "session_id": "%s-%d" % (tag, k)}
        journal_analysis(args, SimpleNamespace(events=ev, episodes=pd.DataFrame(), summary=summary), None)
        if k % 5 == 0:
            journal_assessment(args, {"k": k}, {"escalation": {"level": "routine"}, "causes": []})
    print("done", tag)
""")


def test_two_processes_write_at_once(tmp_path):
    """Two real processes (think: live monitor + batch analysis) create and fill one journal."""
    path = tmp_path / "shared" / "journal.sqlite"
    n = 40
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in ("monitor", "batch")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    c = counts(path)
    assert c["sessions"] == 2 * n
    assert c["twitches"] == 2 * n * 200
    assert c["assessments"] == c["answers"] == 2 * len(range(0, n, 5))
    with Journal(path, create=False) as j:
        keys = set(j.read_table("sessions")["session_key"])
        assert j.query("PRAGMA integrity_check") == [("ok",)]
    assert keys == {f"live:{tag}-{k}" for tag in ("monitor", "batch") for k in range(n)}
    assert file_mode(path) == 0o600


def test_threads_share_a_journal(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "j.sqlite"

    def work(tag: str) -> None:
        with Journal(path) as j:
            for k in range(10):
                j.record_analysis(make_result([1.0, 2.0, 3.0], session_id=f"{tag}{k}"), None)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, "abcd"))
    assert counts(path)["sessions"] == 40 and counts(path)["twitches"] == 120


# ---------------------------------------------------------------- longitudinal features


def _fill_days(path: Path, day_counts: dict[date, int], hour: int = 23) -> None:
    with Journal(path) as j:
        for d, n in day_counts.items():
            start = datetime(d.year, d.month, d.day, hour, 0, 0).isoformat()
            j.record_analysis(make_result(np.arange(n) * 10.0 + 1.0, start_time=start), None)


def test_longitudinal_features_rising_twitching(tmp_path):
    today = date(2026, 3, 20)
    path = tmp_path / "j.sqlite"
    day_counts = {today - timedelta(days=k): 10 + 3 * (20 - k) for k in range(0, 21, 2)}
    day_counts[today - timedelta(days=4)] = 0  # a recorded day without twitches
    _fill_days(path, day_counts, hour=23)
    f = longitudinal_features(path, today=today)
    assert f["days_since_first_twitch"] == 20
    assert f["days_since_last_twitch"] == 0
    with_twitching = {d for d, n in day_counts.items() if n > 0 and (today - d).days < 14}
    assert f["days_with_twitching_last_14"] == len(with_twitching)
    assert f["trend"] == "rising" and f["trend_per_day"] > 0
    # all sessions start at 23:00 and last < 1 h per 10 twitches, so hours 23 and later
    profile = np.array(f["time_of_day_profile"])
    assert profile.shape == (24,) and profile.sum() == pytest.approx(1.0)
    assert profile[23] > 0.5
    assert f["night_fraction"] == pytest.approx(1.0)
    assert f["recorded_days"] == len(day_counts)


def test_longitudinal_features_falling_and_daytime(tmp_path):
    today = date(2026, 3, 20)
    path = tmp_path / "j.sqlite"
    _fill_days(path, {today - timedelta(days=k): 5 + 4 * k for k in range(6)}, hour=12)
    f = longitudinal_features(path, today=today)
    assert f["trend"] == "falling"
    assert f["trend_twitches_per_day"] == pytest.approx(-4.0)
    assert f["trend_per_day"] == pytest.approx(-4.0 / (500.0 / 60.0))  # rate at rest: 500 s rest a day
    assert f["night_fraction"] == 0.0
    assert f["days_with_twitching_last_14"] == 6


def test_longitudinal_features_empty_journal(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    f = longitudinal_features(path)
    assert f["days_since_first_twitch"] is None
    assert f["days_with_twitching_last_14"] == 0 and f["trend_per_day"] == 0.0
    assert f["time_of_day_profile"] == [0.0] * 24 and f["night_fraction"] is None


def test_estimated_clock_counts_for_days_but_not_for_time_of_day(tmp_path, rec_file):
    end = datetime(2026, 3, 19, 4, 0, 0)  # a file copied at 04:00: its hour says nothing
    os.utime(rec_file, (end.timestamp(), end.timestamp()))
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.record_analysis(make_result([1.0, 2.0, 3.0], start_time=None, duration_s=60.0), rec_file)
        j.record_analysis(make_result([5.0], start_time="2026-03-18T15:00:00"), None)
    f = longitudinal_features(path, today=date(2026, 3, 20))
    assert f["sessions_time_estimated"] == 1
    assert f["days_with_twitching_last_14"] == 2 and f["days_since_first_twitch"] == 2
    assert f["time_of_day_profile"][15] == 1.0 and f["time_of_day_profile"][3] == 0.0
    assert f["night_fraction"] == 0.0


def test_writer_blocked_too_long_gets_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        monkeypatch.setattr(jmod, "BUSY_TIMEOUT_MS", 50)
        args = argparse.Namespace(journal=path, no_journal=False)
        with pytest.raises(UserError, match="locked by another toetwitch"):
            journal_analysis(args, make_result([1.0], session_id="x"), None)
        other.execute("ROLLBACK")
    finally:
        other.close()
    journal_analysis(args, make_result([1.0], session_id="x"), None)  # free again: works
    assert counts(path)["sessions"] == 1
