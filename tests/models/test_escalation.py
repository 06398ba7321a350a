"""Escalation rules: every rule of the table fires on its minimal case, the highest level wins,
red flags only ever raise the level, and sensor statistics never go above routine."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toetwitch.models import assess, validate_answers
from toetwitch.models.answers import CONDITIONS, DIETS, MEDICATION_CLASSES, SITES, SYMPTOMS_SCHEMA
from toetwitch.models.escalation import (
    LEVELS,
    advises_stopping,
    check_rules,
    escalate,
    level_rank,
    load_rules,
)
from toetwitch.models.facts import SENSOR_KEYS

RULES = load_rules()["rules"]


def _run_example(rule: dict) -> dict:
    example = rule["example"]
    if "facts" in example:  # model rules: the example names the model output
        return escalate({}, model_top_cause=example["facts"]["model_top_cause"])
    return escalate(validate_answers(example.get("answers", {})), example.get("sensor"))


@pytest.mark.parametrize("rule", RULES, ids=[r["id"] for r in RULES])
def test_each_rule_fires_on_its_minimal_case(rule):
    result = _run_example(rule)
    fired = {r["rule"]: r for r in result["reasons"]}
    assert rule["id"] in fired, f"{rule['id']} did not fire on its example"
    reason = fired[rule["id"]]
    assert reason["level"] == rule["level"]
    assert reason["message"] == rule["message"] and reason["source"] == rule["source"]
    # highest level wins, and it is the level of the first reason
    assert result["level"] == max((r["level"] for r in result["reasons"]), key=level_rank)
    assert result["reasons"][0]["level"] == result["level"]


def test_nothing_reported_is_self_care():
    result = escalate({})
    assert result["level"] == "self_care"
    assert [r["rule"] for r in result["reasons"]] == ["SC1"]


def test_rule_table_covers_the_evidence_table():
    ids = {r["id"] for r in RULES}
    expected = {f"U{i}" for i in range(1, 11)} | {f"S{i}" for i in range(1, 8)} | {f"R{i}" for i in range(1, 10)}
    assert expected <= ids
    for r in RULES:
        assert r["source"].strip() and r["message"].strip()
        assert r["level"] in LEVELS


def test_highest_level_wins_and_reasons_are_ordered():
    answers = validate_answers({"twitching_days": 30, "pesticide_exposure": True,
                                "symptoms": {"weakness": "feels_weak"}})
    result = escalate(answers)
    assert result["level"] == "urgent"
    ranks = [level_rank(r["level"]) for r in result["reasons"]]
    assert ranks == sorted(ranks, reverse=True)
    assert {"U6", "R1", "R3"} <= {r["rule"] for r in result["reasons"]}


def test_sensor_and_model_rules_may_not_exceed_routine():
    kb = copy.deepcopy(load_rules())
    sensor_rule = next(r for r in kb["rules"] if r["kind"] == "sensor")
    sensor_rule["level"] = "soon"
    with pytest.raises(ValueError, match="may not exceed routine"):
        check_rules(kb)
    kb = copy.deepcopy(load_rules())
    model_rule = next(r for r in kb["rules"] if r["kind"] == "model")
    model_rule["level"] = "urgent"
    with pytest.raises(ValueError, match="may not exceed routine"):
        check_rules(kb)


def test_rule_base_refuses_unknown_facts():
    kb = copy.deepcopy(load_rules())
    kb["rules"][0]["when"] = {"fact": "numbnes", "eq": "saddle"}  # a typo would never fire
    with pytest.raises(ValueError, match="unknown fact 'numbnes'"):
        check_rules(kb)


def test_rule_base_refuses_advice_to_stop_a_medicine():
    kb = copy.deepcopy(load_rules())
    kb["rules"][0]["message"] = "Stop taking your tablets."
    with pytest.raises(ValueError, match="stopping"):
        check_rules(kb)


@pytest.mark.parametrize("text, bad", [
    ("Stop taking your statin.", True),
    ("You could stop the medicine for a week.", True),
    ("Do not stop it yourself.", False),
    ("Don't stop taking it without advice.", False),
    ("Never stop or change a prescribed medicine.", False),
    ("See a GP if sciatica stops you doing normal activities.", False),
])
def test_advises_stopping(text, bad):
    assert advises_stopping(text) is bad


def test_result_always_has_safety_net_disclaimer_and_no_stop_advice():
    for answers in ({}, {"pesticide_exposure": True}, {"medications": [{"class": "statin", "started_days_ago": 10}]}):
        result = assess(answers)
        assert result["disclaimer"] and "not a diagnosis" in result["disclaimer"]
        assert len(result["safety_net"]) >= 5
        for line in result["advice"] + [r["message"] for r in result["escalation"]["reasons"]]:
            assert not advises_stopping(line), line


# --- properties ---------------------------------------------------------------------------

_enum = {k: spec[1] for k, spec in SYMPTOMS_SCHEMA.items() if spec[0] == "enum"}
_bools = [k for k, spec in SYMPTOMS_SCHEMA.items() if spec[0] == "bool"]

symptoms_st = st.fixed_dictionaries({}, optional={
    **{k: st.sampled_from(v) for k, v in _enum.items()},
    **{k: st.booleans() for k in _bools},
    "longest_cramp_min": st.integers(0, 30),
})
answers_st = st.fixed_dictionaries({}, optional={
    "age_years": st.integers(16, 95),
    "twitching_days": st.integers(0, 400),
    "sites": st.lists(st.sampled_from(SITES), max_size=4, unique=True),
    "sleep_hours": st.integers(3, 10),
    "stress_0_10": st.integers(0, 10),
    "caffeine_mg_per_day": st.integers(0, 900),
    "exercise_last_48h": st.sampled_from(["none", "light", "moderate", "hard"]),
    "diet": st.lists(st.sampled_from(DIETS), max_size=2, unique=True),
    "recent_infection_days_ago": st.integers(0, 90),
    "wound_tetanus_risk": st.booleans(),
    "pesticide_exposure": st.booleans(),
    "conditions": st.lists(st.sampled_from(CONDITIONS), max_size=2, unique=True),
    "medications": st.lists(st.fixed_dictionaries(
        {"class": st.sampled_from(MEDICATION_CLASSES)},
        optional={"started_days_ago": st.integers(0, 1000)}), max_size=2),
    "symptoms": symptoms_st,
})
sensor_st = st.fixed_dictionaries({}, optional={
    k: st.floats(0, 200, allow_nan=False) if k != "trend_per_day" else st.floats(-5, 5, allow_nan=False)
    for k in SENSOR_KEYS
})

#: Adding a red flag: a yes to a red-flag question, or its most alarming choice.
RED_FLAGS = (
    [("symptoms", k, True) for k in (
        "face_arm_speech_sudden", "breathless_lying_flat_or_at_rest", "trouble_swallowing",
        "slurred_speech", "foot_drop", "muscle_wasting", "bladder_bowel_change",
        "tingling_hands_and_feet", "jaw_stiffness", "agitation_sweating_fever_fast_heart",
        "mouth_tingling_hand_foot_spasms", "cannot_stand_or_walk", "palpitations",
        "vomiting_diarrhoea", "numbness_worsening", "weakness_worsening")]
    + [("symptoms", "numbness", "saddle"), ("symptoms", "numbness", "rising_up_legs"),
       ("symptoms", "back_pain_to_leg", "both_legs"), ("symptoms", "weakness", "cannot_do"),
       ("symptoms", "longest_cramp_min", 15), (None, "pesticide_exposure", True),
       (None, "wound_tetanus_risk", True)]
)

_settings = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(answers=answers_st, flag=st.sampled_from(RED_FLAGS), sensor=st.none() | sensor_st)
def test_adding_a_red_flag_never_lowers_the_level(answers, flag, sensor):
    before = assess(answers, sensor)["escalation"]["level"]
    more = copy.deepcopy(answers)
    group, key, value = flag
    (more.setdefault("symptoms", {}) if group else more)[key] = value
    after = assess(more, sensor)["escalation"]["level"]
    assert level_rank(after) >= level_rank(before), (flag, before, after)


@_settings
@given(answers=answers_st, sensor=sensor_st)
def test_sensor_statistics_alone_never_go_above_routine(answers, sensor):
    without = level_rank(assess(answers)["escalation"]["level"])
    with_sensor = level_rank(assess(answers, sensor)["escalation"]["level"])
    assert with_sensor >= without  # sensor data never lower a level ...
    assert with_sensor <= max(without, level_rank("routine"))  # ... nor raise it past routine


@_settings
@given(sensor=sensor_st)
def test_sensor_only_case_is_at_most_routine(sensor):
    result = assess({}, sensor)
    assert level_rank(result["escalation"]["level"]) <= level_rank("routine")


# --- the vignette bench -------------------------------------------------------------------

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    """bench/vignettes.py as a module (it is a script, not part of a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        import vignettes
    finally:
        sys.path.remove(str(BENCH))
    return vignettes


def test_vignette_targets(bench):
    data = bench.load_vignettes()
    levels = [v["gold_level"] for v in data]
    assert len(data) >= 40 and all(levels.count(lv) == len(data) // 4 for lv in LEVELS)
    assert all(v["level_source"] and v["cause_source"] for v in data)
    s = bench.score(data, assess)
    assert s["exact_triage"] >= 0.90
    assert s["urgent_under_triaged"] == 0
    assert s["self_care_kept"] >= 0.85
    assert s["top3_cause"] >= 0.90
    table = bench.table_markdown(s)
    assert "toetwitch" in table and "Semigran" in table


def test_vignette_file_is_valid_json_with_valid_answers(bench):
    data = bench.load_vignettes()
    assert len({v["id"] for v in data}) == len(data)
    for v in data:
        validate_answers(v["answers"])
