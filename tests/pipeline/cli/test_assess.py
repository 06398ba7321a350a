"""`toetwitch assess` and `toetwitch train` end to end: answers files, the questionnaire on a
pipe, sensor features from a summary or a recording, the journal hook, and training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.detect.sensor_features import (
    from_journal,
    from_summary,
    merge_sensor_features,
)

CONTRACT_KEYS = {"escalation", "causes", "advice", "unanswered_red_flags", "disclaimer"}
CAUSES = {
    "exercise_fatigue", "dehydration_electrolytes", "nutritional_deficiency", "stress_anxiety_sleep",
    "caffeine_stimulants", "nerve_compression", "medication_side_effect", "neurological_disorder",
    "sleep_related_movements", "benign_fasciculation", "toxin_or_infection",
}


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _assess_json(capsys, *argv) -> dict:
    code = main(["assess", "--json", "--no-journal", *map(str, argv)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1  # exactly one JSON object on one line
    return json.loads(out)


def test_answers_file_json_follows_contract(tmp_path, capsys):
    f = _write(tmp_path / "a.json", {"age_years": 38, "twitching_days": 35, "sites": ["big_toe", "calf"],
                                     "symptoms": {"weakness": "none"}})
    result = _assess_json(capsys, "--answers", f)
    assert CONTRACT_KEYS <= set(result)
    esc = result["escalation"]
    assert esc["level"] == "routine"
    assert {"R1", "R2"} <= {r["rule"] for r in esc["reasons"]}
    assert all({"rule", "message", "source"} <= set(r) for r in esc["reasons"])
    assert {c["cause"] for c in result["causes"]} <= CAUSES
    assert all(isinstance(c["probability"], float) and isinstance(c["why"], list) for c in result["causes"])
    assert "symptoms.foot_drop" in result["unanswered_red_flags"]
    assert "not a diagnosis" in result["disclaimer"]


def test_readable_rendering(tmp_path, capsys):
    f = _write(tmp_path / "a.json", {"pesticide_exposure": True})
    assert main(["assess", "--no-journal", "--answers", str(f)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== URGENT")
    assert "[U6, urgent]" in out and "source:" in out
    assert "Get help sooner if:" in out and "not a diagnosis" in out


def test_yaml_answers(tmp_path, capsys):
    pytest.importorskip("yaml")
    f = tmp_path / "a.yaml"
    f.write_text("symptoms:\n  foot_drop: true\n")
    assert _assess_json(capsys, "--answers", f)["escalation"]["level"] == "soon"


@pytest.mark.parametrize("content, needle", [
    ({"age_years": 200}, "age_years"),
    ({"symptoms": {"wobbly": True}}, "symptoms.wobbly"),
    ("{not json", "not valid JSON"),
])
def test_bad_answers_file_is_a_usage_error_naming_the_key(tmp_path, capsys, content, needle):
    f = tmp_path / "bad.json"
    f.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["assess", "--no-journal", "--answers", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("toetwitch: error:") and needle in err
    assert "Traceback" not in err


def test_summary_sensor_features_reach_the_rules_but_stay_routine(tmp_path, capsys):
    summary = {"duration_s": 8 * 3600, "twitches_per_min_rest": 55.0, "episodes_per_hour": 30.0,
               "night_fraction": 0.9, "limb_movements": 200, "plm_series": 12, "cramps": 2}
    s = _write(tmp_path / "summary.json", summary)
    f = _write(tmp_path / "a.json", {"twitching_days": 3, "sites": ["big_toe"]})
    result = _assess_json(capsys, "--answers", f, "--summary", s)
    assert result["sensor"]["plm_per_hour"] == pytest.approx(25.0)
    assert result["sensor"]["twitches_per_min_rest"] == 55.0
    assert result["escalation"]["level"] == "routine"
    assert "X3" in {r["rule"] for r in result["escalation"]["reasons"]}


def test_bad_summary_is_a_usage_error(tmp_path, capsys):
    s = tmp_path / "summary.json"
    s.write_text("[1, 2")
    f = _write(tmp_path / "a.json", {})
    assert main(["assess", "--no-journal", "--answers", str(f), "--summary", str(s)]) == 2
    assert "--summary" in capsys.readouterr().err


def test_sensor_feature_helpers():
    assert from_summary({"duration_s": 3600, "limb_movements": 10, "plm_series": 0, "cramps": 3,
                         "twitches_per_min_rest": None})["plm_per_hour"] == 0.0
    assert from_summary({"duration_s": 1800, "cramps": 3})["cramps_per_hour"] == 6.0
    j = from_journal({"days_since_first_twitch": None, "days_with_twitching_last_14": 9, "trend_per_day": 0.2,
                      "night_fraction": None, "time_of_day_profile": [0.0] * 24})
    assert j == {"days_with_twitching_last_14": 9.0, "trend_per_day": 0.2}
    assert merge_sensor_features({"a": 1.0}, None, {"a": 2.0, "b": 3.0}) == {"a": 1.0, "b": 3.0}
    with pytest.raises(ValueError):
        from_summary([1, 2])


def test_recording_is_analysed_for_sensor_features(tmp_path, capsys):
    pytest.importorskip("toetwitch.pipeline.detect.analysis")
    rng = np.random.default_rng(0)
    fs = 2000
    t = np.arange(20 * fs) / fs
    pd.DataFrame({"time_s": t, "emg_uv": rng.normal(0, 2.0, t.size)}).to_csv(tmp_path / "rest.csv", index=False)
    f = _write(tmp_path / "a.json", {"twitching_days": 2})
    result = _assess_json(capsys, "--answers", f, "--recording", tmp_path / "rest.csv")
    assert result["sensor"]["recorded_hours"] == pytest.approx(20 / 3600, rel=0.01)
    assert result["escalation"]["level"] == "self_care"


def test_missing_recording_is_a_usage_error(tmp_path, capsys):
    f = _write(tmp_path / "a.json", {})
    assert main(["assess", "--no-journal", "--answers", str(f), "--recording", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_journal_hook_is_called_unless_no_journal(tmp_path, capsys, monkeypatch):
    journal = pytest.importorskip("toetwitch.pipeline.store.journal")
    calls = []
    monkeypatch.setattr(journal, "journal_assessment", lambda args, answers, result: calls.append((answers, result)))
    features = pytest.importorskip("toetwitch.pipeline.store.features")
    monkeypatch.setattr(features, "longitudinal_features",
                        lambda path: {"days_since_first_twitch": 30, "days_with_twitching_last_14": 12,
                                      "trend_per_day": 0.0, "night_fraction": None})
    f = _write(tmp_path / "a.json", {"twitching_days": 3})
    assert main(["assess", "--json", "--answers", str(f), "--journal", str(tmp_path / "j.sqlite")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(calls) == 1 and calls[0][0] == {"twitching_days": 3}
    assert "X1" in {r["rule"] for r in result["escalation"]["reasons"]}  # persistence seen in the journal
    assert main(["assess", "--json", "--no-journal", "--answers", str(f)]) == 0
    assert len(calls) == 1


# --- the interactive questionnaire, as a separate process reading a pipe ------------------------

def _run(argv: list[str], stdin, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOETWITCH_JOURNAL": str(tmp_path / "journal.sqlite")}
    return subprocess.run([sys.executable, "-m", "toetwitch", *argv], input=stdin if isinstance(stdin, str) else None,
                          stdin=None if isinstance(stdin, str) else stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_questionnaire_stops_at_the_first_urgent_answer(tmp_path):
    # no to the first four red flags, weakness none, no foot drop, no wasting, saddle numbness
    replies = "no\nno\nno\nno\nnone\nno\nno\nsaddle\n" + "no\n" * 60
    proc = _run(["assess", "--json", "--no-journal"], replies, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["escalation"]["level"] == "urgent"
    assert result["escalation"]["reasons"][0]["rule"] == "U1"
    assert result["questionnaire_stopped_early"] is True
    assert "stopping the questions" in proc.stderr
    assert "bladder" not in proc.stderr.split("saddle")[-1]  # nothing asked after the urgent answer


def test_questionnaire_full_run_on_a_pipe(tmp_path):
    from toetwitch.models.questionnaire import load_questions

    questions = load_questions()
    reply = {"symptoms.weakness": "none", "symptoms.numbness": "none", "symptoms.back_pain_to_leg": "none",
             "medications": "none", "recent_infection_days_ago": "", "symptoms.longest_cramp_min": "0",
             "age_years": "30", "sex": "male", "twitching_days": "4", "sites": "big_toe", "sleep_hours": "7",
             "stress_0_10": "3", "caffeine_mg_per_day": "650", "alcohol_units_per_week": "2",
             "fluid_litres_per_day": "2", "exercise_last_48h": "light", "diet": "balanced",
             "footwear": "supportive", "sitting_hours_per_day": "6", "weight_loss_kg_3_months": "0",
             "conditions": "none"}
    lines = [reply.get(q["key"], "no") for q in questions if "ask_if" not in q]
    proc = _run(["assess", "--no-journal"], "\n".join(lines) + "\n", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "== SELF-CARE" in proc.stdout
    causes_block = proc.stdout.split("Most likely causes:")[1].splitlines()
    first_cause = next(line for line in causes_block if "%" in line)
    assert "Caffeine or other stimulants" in first_cause
    assert "Not answered" not in proc.stdout  # every red flag was answered


def test_questionnaire_without_input_fails_fast_with_a_clear_error(tmp_path):
    proc = _run(["assess"], subprocess.DEVNULL, tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "no answers on standard input" in proc.stderr and "--answers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_questionnaire_rejects_repeated_nonsense(tmp_path):
    proc = _run(["assess", "--no-journal"], "maybe\nperhaps\nwho knows\n", tmp_path)
    assert proc.returncode == 2
    assert "answer yes or no" in proc.stderr + proc.stdout


# --- train ------------------------------------------------------------------------------------

def test_train_is_reproducible_and_its_model_is_usable(tmp_path, capsys):
    out1, out2 = tmp_path / "m1", tmp_path / "m2"
    assert main(["train", "--out", str(out1), "--n", "1200", "--seed", "9"]) == 0
    assert main(["train", "--out", str(out2), "--n", "1200", "--seed", "9", "--json"]) == 0
    printed = capsys.readouterr().out
    meta1 = json.loads((out1 / "cause_model.json").read_text())
    meta2 = json.loads((out2 / "cause_model.json").read_text())
    assert meta1["metrics_held_out"] == meta2["metrics_held_out"]
    assert meta1["seed"] == 9 and meta1["data"]["n"] == 1200
    assert '"top3_accuracy"' in printed
    f = _write(tmp_path / "a.json", {"twitching_days": 2})
    result = _assess_json(capsys, "--answers", f, "--model", out1 / "cause_model.skops")
    assert {c["cause"] for c in result["causes"]} == CAUSES


def test_train_labelled_csv(tmp_path, capsys):
    from toetwitch.models.cohort import generate_cohort

    answers, _, labels = generate_cohort(n=300, seed=2)
    csv = tmp_path / "clinic.csv"
    pd.DataFrame({"answers_json": [json.dumps(a) for a in answers], "cause": labels}).to_csv(csv, index=False)
    assert main(["train", "--labelled", str(csv), "--out", str(tmp_path / "m")]) == 0
    meta = json.loads((tmp_path / "m" / "cause_model.json").read_text())
    assert meta["data"]["kind"] == "labelled"
    bad = tmp_path / "bad.csv"
    bad.write_text("cause\nnot_a_cause\n")
    assert main(["train", "--labelled", str(bad), "--out", str(tmp_path / "m2")]) == 2
    assert "not_a_cause" in capsys.readouterr().err


def test_unloadable_model_file_is_a_usage_error(tmp_path, capsys):
    bogus = tmp_path / "x.skops"
    bogus.write_bytes(b"not a zip")
    f = _write(tmp_path / "a.json", {})
    assert main(["assess", "--no-journal", "--answers", str(f), "--model", str(bogus)]) == 2
    assert "cannot load the cause model" in capsys.readouterr().err


def test_train_writes_to_the_user_data_folder_and_assess_uses_it_first(tmp_path, capsys, monkeypatch):
    """Never into the installed package (a wheel's RECORD, a read-only install)."""
    from importlib import resources

    kb = Path(str(resources.files("toetwitch.models.kb")))
    before = {p.name: p.stat().st_mtime_ns for p in kb.iterdir()}
    data = tmp_path / "data"
    monkeypatch.setenv("TOETWITCH_DATA_DIR", str(data))
    f = _write(tmp_path / "a.json", {"twitching_days": 2})
    shipped = _assess_json(capsys, "--answers", f)
    assert main(["train", "--n", "1200", "--seed", "9"]) == 0
    capsys.readouterr()
    assert (data / "cause_model.skops").is_file() and (data / "cause_model.json").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in kb.iterdir()} == before
    result = _assess_json(capsys, "--answers", f)
    meta = json.loads((data / "cause_model.json").read_text())
    assert result["model"]["model"] == "user" and shipped["model"]["model"] == "shipped"
    assert result["model"]["artifact_sha256"] == meta["artifact_sha256"]
