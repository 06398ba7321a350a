"""``assess``: answers (+ sensor features) -> the docs/contracts.md §4 object.

Order of work: validate, rank causes with the model, run the escalation rules (the model's top
cause may raise the level to routine, never lower it), then assemble advice, the red-flag
questions left unanswered, the safety net and the disclaimer.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from toetwitch.models.answers import validate_answers
from toetwitch.models.causes import default_model_info, rank_causes
from toetwitch.models.escalation import advises_stopping, escalate, load_rules
from toetwitch.models.facts import validate_sensor
from toetwitch.models.questionnaire import unanswered_red_flags

__all__ = ["assess", "load_causes_kb"]

#: A cause contributes advice when it ranks in the top 3 with at least this probability
#: (the top cause always does).
ADVICE_MIN_PROBABILITY = 0.15


@cache
def load_causes_kb() -> dict[str, dict]:
    """causes.json as {label: entry}; refuses advice that tells anyone to stop a medicine."""
    text = resources.files("toetwitch.models.kb").joinpath("causes.json").read_text(encoding="utf-8")
    entries = {c["cause"]: c for c in json.loads(text)["causes"]}
    for label, entry in entries.items():
        for line in entry["advice"]:
            if advises_stopping(line):
                raise ValueError(f"causes.json: advice of {label} must not advise stopping a medicine")
    return entries


def assess(answers: dict, sensor: dict | None = None, *, model: Any = None) -> dict:
    """The full assessment (docs/contracts.md §4) for an answers object and optional sensor features.

    ``answers`` is validated here (``AnswersError`` on bad input); ``sensor`` is the plain
    dict of ``toetwitch.models.facts.SENSOR_KEYS`` (None values ignored).
    """
    answers = validate_answers(answers)
    sensor = validate_sensor(sensor)
    causes = rank_causes(answers, sensor, model=model)
    escalation = escalate(answers, sensor, model_top_cause=causes[0]["cause"])
    kb = load_rules()
    level = escalation["level"]

    advice = [kb["level_actions"][level]]
    cause_kb = load_causes_kb()
    for i, c in enumerate(causes[:3]):
        if i == 0 or c["probability"] >= ADVICE_MIN_PROBABILITY:
            for line in cause_kb[c["cause"]]["advice"]:
                if line not in advice:
                    advice.append(line)
    for c in causes:
        c["name"] = cause_kb[c["cause"]]["name"]

    return {
        "escalation": escalation,
        "causes": causes,
        "advice": advice,
        "unanswered_red_flags": unanswered_red_flags(answers),
        "disclaimer": kb["disclaimer"],
        "safety_net": list(kb["safety_net"]),
        "sensor": sensor,
        "model": default_model_info() if model is None else {"data": "custom model"},
    }
