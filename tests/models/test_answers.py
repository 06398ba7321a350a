"""The answers file (docs/contracts.md §3): validation errors name the key; JSON and YAML load; the
questionnaire's questions cover every red-flag answer and read typed replies."""

from __future__ import annotations

import json

import pytest

from toetwitch.models import AnswersError, load_answers, validate_answers
from toetwitch.models.answers import SCHEMA, SYMPTOMS_SCHEMA
from toetwitch.models.escalation import load_rules
from toetwitch.models.facts import DERIVED_FACTS
from toetwitch.models.questionnaire import (
    load_questions,
    parse_reply,
    question_text,
    set_answer,
    should_ask,
    unanswered_red_flags,
)

#: The example of docs/contracts.md §3 with one value picked where it lists choices.
CONTRACT_EXAMPLE = {
    "age_years": 38, "sex": "female", "twitching_days": 35,
    "sites": ["big_toe", "other_toes", "foot", "calf", "thigh", "hand_arm", "face_eyelid", "tongue", "trunk"],
    "sleep_hours": 6.5, "stress_0_10": 7, "health_anxiety": True, "caffeine_mg_per_day": 300,
    "alcohol_units_per_week": 4, "fluid_litres_per_day": 1.5, "heavy_sweating": False,
    "exercise_last_48h": "moderate", "training_load_increased": True,
    "diet": ["balanced", "skipping_meals", "low_fruit_veg", "vegan_no_b12", "low_dairy"],
    "footwear": "supportive", "sitting_hours_per_day": 10, "crosses_legs": True,
    "weight_loss_kg_3_months": 0, "recent_infection_days_ago": 7, "wound_tetanus_risk": False,
    "pesticide_exposure": False,
    "conditions": ["diabetes", "asthma", "kidney_disease", "pregnancy", "heavy_periods_or_anaemia",
                   "recent_thyroid_or_parathyroid_surgery"],
    "medications": [{"class": "diuretic", "started_days_ago": 42}],
    "symptoms": {
        "weakness": "feels_weak", "weakness_onset": "weeks_months", "weakness_worsening": False,
        "weakness_where": "toe_foot", "foot_drop": False, "muscle_wasting": False, "stiffness": False,
        "numbness": "none", "numbness_worsening": False, "tingling_hands_and_feet": False,
        "back_pain_to_leg": "none", "bladder_bowel_change": False, "trouble_swallowing": False,
        "slurred_speech": False, "breathless_lying_flat_or_at_rest": False, "face_arm_speech_sudden": False,
        "longest_cramp_min": 2, "cramps_disturb_sleep": False, "urge_to_move_legs_evening": False,
        "jaw_stiffness": False, "agitation_sweating_fever_fast_heart": False,
        "mouth_tingling_hand_foot_spasms": False, "palpitations": False, "vomiting_diarrhoea": False,
        "cannot_stand_or_walk": False, "family_history_mnd": False,
    },
}


def test_contract_example_is_valid_and_kept():
    assert validate_answers(CONTRACT_EXAMPLE) == CONTRACT_EXAMPLE
    assert validate_answers({}) == {}


@pytest.mark.parametrize("answers, key, what", [
    ({"favourite_colour": "red"}, "favourite_colour", "unknown key"),
    ({"symptoms": {"twitchy": True}}, "symptoms.twitchy", "unknown key"),
    ({"age_years": 130}, "age_years", "out of range"),
    ({"stress_0_10": 11}, "stress_0_10", "out of range"),
    ({"caffeine_mg_per_day": -5}, "caffeine_mg_per_day", "out of range"),
    ({"age_years": "forty"}, "age_years", "expected a number"),
    ({"age_years": True}, "age_years", "expected a number"),
    ({"health_anxiety": "yes"}, "health_anxiety", "true or false"),
    ({"sex": "robot"}, "sex", "not one of"),
    ({"sites": ["big_toe", "nose"]}, "sites[1]", "not one of"),
    ({"medications": [{"class": "aspirinish"}]}, "medications[0].class", "not one of"),
    ({"medications": [{"started_days_ago": 3}]}, "medications[0].class", "missing"),
    ({"medications": [{"class": "statin", "dose": 40}]}, "medications[0].dose", "unknown key"),
    ({"symptoms": {"longest_cramp_min": float("nan")}}, "symptoms.longest_cramp_min", "finite"),
    ({"symptoms": {"numbness": "tingly"}}, "symptoms.numbness", "not one of"),
])
def test_invalid_answers_name_the_key(answers, key, what):
    with pytest.raises(AnswersError) as info:
        validate_answers(answers)
    assert info.value.key == key
    assert what in str(info.value) and key in str(info.value)
    assert isinstance(info.value, ValueError)


def test_nulls_mean_not_reported_and_shorthands_are_normalised():
    out = validate_answers({"age_years": None, "sites": "big_toe", "medications": ["statin"],
                            "symptoms": {"weakness": None}})
    assert out == {"sites": ["big_toe"], "medications": [{"class": "statin"}], "symptoms": {}}


def test_top_level_must_be_an_object():
    with pytest.raises(AnswersError, match="expected an object"):
        validate_answers(["big_toe"])


def test_load_json_and_yaml(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(CONTRACT_EXAMPLE))
    assert load_answers(tmp_path / "a.json") == CONTRACT_EXAMPLE
    pytest.importorskip("yaml")
    (tmp_path / "a.yaml").write_text("age_years: 38\nsites: [big_toe, calf]\nsymptoms:\n  weakness: none\n")
    assert load_answers(tmp_path / "a.yaml") == {"age_years": 38, "sites": ["big_toe", "calf"],
                                                 "symptoms": {"weakness": "none"}}
    (tmp_path / "b.yml").write_text("age_years: 300\n")
    with pytest.raises(AnswersError, match="age_years"):
        load_answers(tmp_path / "b.yml")


def test_load_errors_name_file_and_place(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"age_years": 38,\n "sex": }')
    with pytest.raises(AnswersError, match=r"bad\.json.*line 2"):
        load_answers(bad)
    with pytest.raises(AnswersError, match="cannot read"):
        load_answers(tmp_path / "missing.json")


# --- questionnaire ----------------------------------------------------------------------------

def _facts_used(cond) -> set[str]:
    if "all" in cond or "any" in cond:
        return set().union(*(_facts_used(c) for c in cond.get("all", cond.get("any", []))))
    if "not" in cond:
        return _facts_used(cond["not"])
    return {cond["fact"]}


def test_every_answer_a_red_flag_rule_reads_is_asked_among_the_red_flags():
    questions = load_questions()
    red_keys = {q["key"].split(".")[-1] for q in questions if q["red_flag"]}
    # derived facts come from these answers (models/facts.py)
    derived_from = {"any_weakness": {"weakness"}, "recent_infection": {"recent_infection_days_ago"},
                    "diuretic": {"medications"}, "beta_agonist": {"medications"},
                    "serotonergic_change": {"medications"}, "has_cramps": {"longest_cramp_min"}}
    for rule in load_rules()["rules"]:
        if rule["kind"] != "answers" or not rule.get("red_flag"):
            continue
        for fact in _facts_used(rule["when"]):
            needed = derived_from.get(fact, {fact})
            assert fact in DERIVED_FACTS or fact in SCHEMA or fact in SYMPTOMS_SCHEMA
            assert needed & red_keys, f"{rule['id']} reads {fact}, which no red-flag question asks"


def test_questions_are_ordered_red_flags_first_and_render():
    questions = load_questions()
    flags = [q["red_flag"] for q in questions]
    assert flags == sorted(flags, reverse=True)
    for q in questions:
        text = question_text(q)
        assert "{" not in text and len(text) > 10, text  # placeholders filled in
    assert len({q["key"] for q in questions}) == len(questions)


@pytest.mark.parametrize("key, reply, value", [
    ("symptoms.foot_drop", "yes", True),
    ("symptoms.foot_drop", " N ", False),
    ("symptoms.foot_drop", "", None),
    ("symptoms.weakness", "2", "feels_weak"),
    ("symptoms.weakness", "cannot", "cannot_do"),
    ("symptoms.numbness", "one foot or leg", "one_foot_or_leg"),
    ("age_years", "44", 44),
    ("sleep_hours", "6.5", 6.5),
    ("sites", "big_toe, calf", ["big_toe", "calf"]),
    ("conditions", "none", []),
    ("medications", "diuretic:40, statin", [{"class": "diuretic", "started_days_ago": 40.0}, {"class": "statin"}]),
])
def test_parse_reply(key, reply, value):
    q = next(q for q in load_questions() if q["key"] == key)
    assert parse_reply(q, reply) == value


@pytest.mark.parametrize("key, reply", [
    ("symptoms.foot_drop", "perhaps"), ("symptoms.weakness", "9"), ("age_years", "old"),
    ("medications", "diuretic:soon"), ("sites", "big_toe, ear"),
])
def test_unreadable_replies_name_the_question(key, reply):
    q = next(q for q in load_questions() if q["key"] == key)
    with pytest.raises(AnswersError) as info:
        parse_reply(q, reply)
    assert info.value.key == key


def test_set_answer_validates_and_follow_up_questions_depend_on_answers():
    onset = next(q for q in load_questions() if q["key"] == "symptoms.weakness_onset")
    answers = set_answer({}, "symptoms.weakness", "none")
    assert not should_ask(onset, answers)
    answers = set_answer(answers, "symptoms.weakness", "feels_weak")
    assert should_ask(onset, answers)
    assert "symptoms.weakness_onset" in unanswered_red_flags(answers)
    with pytest.raises(AnswersError, match="age_years"):
        set_answer(answers, "age_years", 500)
