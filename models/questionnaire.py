"""The interactive questionnaire as data and pure functions (the terminal loop lives in
``pipeline/cli/assess.py``): which question to ask next, how to read a typed reply."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from toetwitch.models.answers import (
    MEDICATION_CLASSES,
    SCHEMA,
    SYMPTOMS_SCHEMA,
    AnswersError,
    validate_answers,
)

__all__ = [
    "get_answer",
    "load_questions",
    "parse_reply",
    "question_text",
    "set_answer",
    "should_ask",
    "unanswered_red_flags",
]

_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}


def _spec(key: str) -> tuple:
    head, _, rest = key.partition(".")
    return SYMPTOMS_SCHEMA[rest] if head == "symptoms" else SCHEMA[head]


@cache
def _questions_text() -> str:
    return resources.files("toetwitch.models.kb").joinpath("questions.json").read_text(encoding="utf-8")


def load_questions() -> list[dict]:
    """The questions in asking order (red flags first). Each key must exist in the schema."""
    questions = json.loads(_questions_text())["questions"]
    seen_plain = False
    for q in questions:
        _spec(q["key"])  # KeyError here = questions.json names a field the schema lacks
        if not q["red_flag"]:
            seen_plain = True
        elif seen_plain:
            raise ValueError(f"questions.json: red-flag question {q['key']} comes after ordinary ones")
    return questions


def question_text(q: dict) -> str:
    """The prompt with its choices filled in."""
    spec = _spec(q["key"])
    choices = ", ".join(spec[1]) if spec[0] in ("list", "enum") else ""
    return q["text"].format(choices=choices, classes=", ".join(MEDICATION_CLASSES))


def get_answer(answers: dict, key: str) -> Any:
    head, _, rest = key.partition(".")
    if rest:
        return answers.get(head, {}).get(rest)
    return answers.get(head)


def set_answer(answers: dict, key: str, value: Any) -> dict:
    """A copy of answers with key (dotted for symptoms) set, validated."""
    out = json.loads(json.dumps(answers))
    head, _, rest = key.partition(".")
    if rest:
        out.setdefault(head, {})[rest] = value
    else:
        out[head] = value
    return validate_answers(out)


def should_ask(q: dict, answers: dict) -> bool:
    """False when an ``ask_if`` condition is not met by the answers so far."""
    for key, allowed in q.get("ask_if", {}).items():
        if get_answer(answers, key) not in allowed:
            return False
    return True


def parse_reply(q: dict, reply: str) -> Any:
    """The value of a typed reply (None for a blank reply = not reported).

    Raises AnswersError naming the question key when the reply cannot be read.
    """
    text = reply.strip()
    if not text:
        return None
    spec = _spec(q["key"])
    low = text.lower()
    if spec[0] == "bool":
        if low in _YES:
            return True
        if low in _NO:
            return False
        raise AnswersError(q["key"], f"answer yes or no (got {text!r})")
    if spec[0] in ("num", "int"):
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            raise AnswersError(q["key"], f"expected a number, got {text!r}") from None
    if spec[0] == "enum":
        return _pick(q["key"], spec[1], low)
    if spec[0] == "list":
        if low == "none":
            return []
        return [_pick(q["key"], spec[1], part.strip().lower()) for part in low.split(",") if part.strip()]
    if spec[0] == "medications":
        if low == "none":
            return []
        meds = []
        for part in low.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, days = part.partition(":")
            med: dict[str, Any] = {"class": _pick(q["key"], MEDICATION_CLASSES, name.strip())}
            if days.strip():
                try:
                    med["started_days_ago"] = float(days)
                except ValueError:
                    raise AnswersError(q["key"], f"days since starting must be a number, got {days!r}") from None
            meds.append(med)
        return meds
    raise AnswersError(q["key"], "this field cannot be asked interactively")


def _pick(key: str, options: list[str], text: str) -> str:
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    norm = text.replace(" ", "_").replace("-", "_")
    if norm in options:
        return norm
    starts = [o for o in options if o.startswith(norm)]
    if len(starts) == 1:
        return starts[0]
    raise AnswersError(key, f"{text!r} is not one of {', '.join(options)}")


def unanswered_red_flags(answers: dict) -> list[str]:
    """Keys of the red-flag questions (that apply) the answers leave unanswered."""
    return [q["key"] for q in load_questions()
            if q["red_flag"] and not q.get("blank_means_none") and should_ask(q, answers)
            and get_answer(answers, q["key"]) is None]
