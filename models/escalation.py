"""Deterministic escalation: when to see a doctor.

The rules are data (``models/kb/rules.json``); this module only evaluates them. Every rule is
checked and the highest level triggered wins (``self_care < routine < soon < urgent``), as in
NHS Pathways: a person may be over-triaged but should never be under-triaged. Rules of kind
``sensor`` (sensor statistics alone) and ``model`` (the cause model) are capped at ``routine``:
they can move a case from self-care to a GP visit, never higher, and nothing lowers a level.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from toetwitch.models.answers import SCHEMA, SYMPTOMS_SCHEMA
from toetwitch.models.facts import DERIVED_FACTS, SENSOR_KEYS, derive_facts

__all__ = [
    "LEVELS",
    "NON_ANSWER_CAP",
    "Rule",
    "advises_stopping",
    "check_rules",
    "escalate",
    "evaluate",
    "level_rank",
    "load_rules",
]

LEVELS = ("self_care", "routine", "soon", "urgent")
#: Highest level a sensor or model rule may set.
NON_ANSWER_CAP = "routine"

_OPS = ("eq", "ne", "in", "gt", "ge", "lt", "le", "true", "false", "contains")

Rule = dict[str, Any]


_STOP_RE = re.compile(r"\b(stop|discontinue|quit|come off)\s+(taking|using|the|your|it|them|any|this)\b", re.I)


def advises_stopping(text: str) -> bool:
    """True when text tells someone to stop something (a medicine) rather than *not* to.

    NHS and Babylon guidance: never advise stopping a prescribed medicine. "Do not stop it"
    and "don't stop taking" are fine; "stop taking your tablets" is not.
    """
    for m in _STOP_RE.finditer(text):
        before = text[max(0, m.start() - 10):m.start()].lower()
        if "not " not in before and "n't " not in before and "never " not in before:
            return True
    return False


def level_rank(level: str) -> int:
    """0 for self_care ... 3 for urgent."""
    return LEVELS.index(level)


#: Every fact a rule may test: answers, symptoms, derived facts and sensor features.
KNOWN_FACTS = frozenset(
    set(SCHEMA) - {"symptoms", "medications"} | set(SYMPTOMS_SCHEMA) | set(DERIVED_FACTS)
    | {f"sensor_{k}" for k in SENSOR_KEYS} | {"medication_classes"}
)


def _check_condition(cond: Any, where: str) -> None:
    if not isinstance(cond, dict) or len(cond) == 0:
        raise ValueError(f"{where}: a condition must be a non-empty object")
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        if len(cond) != 1 or not isinstance(cond[key], list) or not cond[key]:
            raise ValueError(f"{where}: '{key}' takes a non-empty list and nothing else")
        for i, sub in enumerate(cond[key]):
            _check_condition(sub, f"{where}.{key}[{i}]")
    elif "not" in cond:
        if len(cond) != 1:
            raise ValueError(f"{where}: 'not' takes one condition and nothing else")
        _check_condition(cond["not"], f"{where}.not")
    else:
        ops = [k for k in cond if k != "fact"]
        if "fact" not in cond or len(ops) != 1 or ops[0] not in _OPS:
            raise ValueError(f"{where}: expected {{'fact': NAME, OP: VALUE}} with OP in {_OPS}, got {cond}")
        if cond["fact"] not in KNOWN_FACTS:
            raise ValueError(f"{where}: unknown fact {cond['fact']!r}")


@cache
def load_rules() -> dict:
    """The parsed and checked knowledge base of rules (cached; treat as read-only)."""
    text = resources.files("toetwitch.models.kb").joinpath("rules.json").read_text(encoding="utf-8")
    return check_rules(json.loads(text))


def check_rules(kb: dict) -> dict:
    """Refuse a rule base that breaks the engine's guarantees (returns kb unchanged).

    Every rule needs an id, level, kind, title, message, source, condition and minimal
    example; sensor and model rules may not exceed routine; no message may advise stopping a
    medicine; conditions must use the documented operators.
    """
    seen: set[str] = set()
    for rule in kb["rules"]:
        rid = rule["id"]
        if rid in seen:
            raise ValueError(f"rules.json: duplicate rule id {rid}")
        seen.add(rid)
        for field in ("level", "kind", "message", "source", "when", "example", "title"):
            if field not in rule:
                raise ValueError(f"rules.json: rule {rid} lacks '{field}'")
        if rule["level"] not in LEVELS:
            raise ValueError(f"rules.json: rule {rid} has unknown level {rule['level']!r}")
        if rule["kind"] not in ("answers", "sensor", "model"):
            raise ValueError(f"rules.json: rule {rid} has unknown kind {rule['kind']!r}")
        if rule["kind"] != "answers" and level_rank(rule["level"]) > level_rank(NON_ANSWER_CAP):
            raise ValueError(f"rules.json: {rule['kind']} rule {rid} may not exceed {NON_ANSWER_CAP}")
        if advises_stopping(rule["message"]):
            raise ValueError(f"rules.json: rule {rid} message must not advise stopping a medicine")
        _check_condition(rule["when"], f"rules.json: {rid}.when")
    return kb


def evaluate(cond: dict, facts: dict[str, Any]) -> bool:
    """Evaluate one condition of the rule language against facts (missing facts never match)."""
    if "all" in cond:
        return all(evaluate(c, facts) for c in cond["all"])
    if "any" in cond:
        return any(evaluate(c, facts) for c in cond["any"])
    if "not" in cond:
        return not evaluate(cond["not"], facts)
    name = cond["fact"]
    if name not in facts or facts[name] is None:
        return False
    value = facts[name]
    (op, ref), = ((k, v) for k, v in cond.items() if k != "fact")
    if op == "true":
        return bool(value) is bool(ref)
    if op == "false":
        return bool(value) is not bool(ref)
    if op == "eq":
        return value == ref
    if op == "ne":
        return value != ref
    if op == "in":
        return value in ref
    if op == "contains":
        return ref in value
    value = float(value)
    return {"gt": value > ref, "ge": value >= ref, "lt": value < ref, "le": value <= ref}[op]


def escalate(
    answers: dict,
    sensor: dict | None = None,
    *,
    model_top_cause: str | None = None,
    facts: dict[str, Any] | None = None,
) -> dict:
    """Level and reasons for validated answers (+ optional sensor features and model output).

    Returns ``{"level": str, "reasons": [{"rule", "level", "message", "source", "kind"}]}``,
    reasons sorted from the most to the least urgent; the self-care reason ``SC1`` is given
    when no rule fires.
    """
    kb = load_rules()
    if facts is None:
        facts = derive_facts(answers, sensor)
    if model_top_cause is not None:
        facts = {**facts, "model_top_cause": model_top_cause}
    reasons = []
    for rule in kb["rules"]:
        if evaluate(rule["when"], facts):
            level = rule["level"]
            if rule["kind"] != "answers" and level_rank(level) > level_rank(NON_ANSWER_CAP):
                level = NON_ANSWER_CAP  # defence in depth; load_rules already refuses this
            reasons.append({"rule": rule["id"], "level": level, "message": rule["message"],
                            "source": rule["source"], "kind": rule["kind"]})
    if not reasons:
        sc = kb["self_care"]
        return {"level": "self_care", "reasons": [
            {"rule": sc["id"], "level": "self_care", "message": sc["message"], "source": sc["source"],
             "kind": "answers"}]}
    reasons.sort(key=lambda r: -level_rank(r["level"]))  # stable: table order within a level
    return {"level": reasons[0]["level"], "reasons": reasons}
