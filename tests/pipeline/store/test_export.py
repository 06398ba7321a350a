"""``toetwitch export``: every journal table as CSV or Parquet, readable back unchanged."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.store.journal import TABLES, Journal


@pytest.fixture
def journal_path(tmp_path):
    path = tmp_path / "j.sqlite"
    rec_file = tmp_path / "night.csv"
    rec_file.write_text("time_s,emg_uv\n0,1\n0.001,2\n")
    with Journal(path) as j:
        for k, n in enumerate([3, 5]):
            events = pd.DataFrame({"time_s": np.arange(n) * 2.0 + 0.5, "source": "emg",
                                   "type": "fasciculation", "peak_to_peak_uv": 50.0 + np.arange(n)})
            episodes = pd.DataFrame({"episode": [1], "start_s": [0.5], "end_s": [n * 2.0], "twitches": [n]})
            summary = {"start_time": f"2026-02-0{k + 1}T21:00:00", "duration_s": 120.0,
                       "time_rest_s": 100.0, "twitches": n, "episodes": 1}
            res = SimpleNamespace(events=events, episodes=episodes, summary=summary)
            j.record_analysis(res, rec_file if k == 0 else None, session_key=None if k == 0 else "live1")
        j.record_assessment({"age_years": 50, "sites": ["big_toe"]},
                            {"escalation": {"level": "routine"}, "causes": [], "advice": ["Rest."]})
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_every_table(journal_path, tmp_path, fmt, capsys):
    out = tmp_path / "export"
    assert main(["export", "--journal", str(journal_path), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.{fmt}" for t in TABLES)
    with Journal(journal_path, create=False) as j:
        for table in TABLES:
            expected = j.read_table(table)
            got = pd.read_csv(out / f"{table}.csv") if fmt == "csv" else pd.read_parquet(out / f"{table}.parquet")
            assert list(got.columns) == list(expected.columns), table
            assert len(got) == len(expected), table
            assert f"{table}.{fmt}  ({len(expected)} rows)" in printed
    tw = pd.read_csv(out / "twitches.csv") if fmt == "csv" else pd.read_parquet(out / "twitches.parquet")
    assert len(tw) == 8
    assert tw["time_s"].sum() == pytest.approx((0.5 * 3 + 2 * 3) + (0.5 * 5 + 2 * 10))
    assert sorted(tw["peak_to_peak_uv"]) == sorted([50.0, 51.0, 52.0, 50.0, 51.0, 52.0, 53.0, 54.0])
    ans = pd.read_csv(out / "answers.csv") if fmt == "csv" else pd.read_parquet(out / "answers.parquet")
    assert json.loads(ans.loc[0, "answers_json"]) == {"age_years": 50, "sites": ["big_toe"]}


def test_export_errors(journal_path, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["export", "--journal", str(journal_path), "--out", str(a_file)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["export", "--journal", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "o")]) == 1
    assert "no journal at" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
