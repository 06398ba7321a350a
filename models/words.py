"""The knowledge base's words for people: escalation levels and causes, read from models/kb/.

Presentation (the HTML report, the terminal) shows these instead of restating them, so that a
wording change is made once, in the knowledge base."""

from __future__ import annotations

from functools import cache

from toetwitch.models.assessment import load_causes_kb
from toetwitch.models.escalation import LEVELS, load_rules

__all__ = ["cause_names", "level_words"]


@cache
def level_words() -> dict[str, tuple[str, str]]:
    """{level: (title, what to do)} for every escalation level, from ``rules.json``."""
    kb = load_rules()
    return {level: (kb["level_titles"][level], kb["level_actions"][level]) for level in LEVELS}


@cache
def cause_names() -> dict[str, str]:
    """{cause label: its name in plain words}, from ``causes.json``."""
    return {label: entry["name"] for label, entry in load_causes_kb().items()}
