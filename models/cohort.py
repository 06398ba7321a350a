"""The synthetic training cohort: people drawn from the documented generative model.

No labelled patient data exist for toe twitching, so the cause model learns from people drawn
from ``models/kb/cohort.json`` — base rates of the causes and how each cause shifts each answer
and sensor feature (see that file's ``about`` and models/MODEL_CARD.md). Same spec + same seed
gives the same cohort, bit for bit.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from toetwitch.models.answers import validate_answers

__all__ = ["CAUSES", "generate_cohort", "load_cohort_spec"]

#: Cause labels of docs/contracts.md §4, in the order the model reports its classes.
CAUSES: tuple[str, ...] = (
    "exercise_fatigue", "dehydration_electrolytes", "nutritional_deficiency", "stress_anxiety_sleep",
    "caffeine_stimulants", "nerve_compression", "medication_side_effect", "neurological_disorder",
    "sleep_related_movements", "benign_fasciculation", "toxin_or_infection",
)


@cache
def _spec_text() -> str:
    return resources.files("toetwitch.models.kb").joinpath("cohort.json").read_text(encoding="utf-8")


def load_cohort_spec() -> dict:
    """The generative model (a fresh copy each call)."""
    spec = json.loads(_spec_text())
    if set(spec["base_rates"]) != set(CAUSES):
        raise ValueError("cohort.json: base_rates must name exactly the contract causes")
    return spec


def _lookup(table: dict, keys: tuple[str, ...], default: Any) -> Any:
    """The first of keys (most specific first, e.g. 'cause/subtype', 'cause') in table."""
    for k in keys:
        if k in table:
            return table[k]
    return default


def _draw(field: dict, keys: tuple[str, ...], n: int, rng: np.random.Generator) -> list:
    """n values of one field for people of one mixture component (keys: most specific first)."""
    dist = field["dist"]
    p = _lookup(field.get("by_cause", {}), keys, field["base"])
    if dist in ("normal", "lognormal"):
        if dist == "normal":
            x = rng.normal(p[0], p[1], n)
        else:
            x = np.exp(rng.normal(np.log(p[0]), p[1], n))
        lo, hi = field.get("clip", (-np.inf, np.inf))
        x = np.clip(x, lo, hi)
        x = np.round(x, field.get("round", 3))
        return [int(v) if field.get("round", 3) <= 0 else float(v) for v in x]
    if dist == "bernoulli":
        return [bool(v) for v in rng.random(n) < p]
    if dist == "categorical":
        values = list(field["base"])
        probs = np.array([p.get(v, 0.0) for v in values], dtype=float)
        idx = rng.choice(len(values), size=n, p=probs / probs.sum())
        return [values[i] for i in idx]
    if dist == "multi":
        items = list(field["base"])
        probs = dict(field["base"])
        for k in reversed(keys):  # cause first, then the subtype's overrides
            probs.update(field.get("by_cause", {}).get(k, {}))
        draws = rng.random((n, len(items)))
        out = []
        for r in range(n):
            chosen = [it for j, it in enumerate(items) if draws[r, j] < probs[it]]
            first = field.get("first")
            if first and first not in chosen:
                chosen.insert(0, first)
            out.append(chosen)
        return out
    if dist == "uniform_or_missing":
        p_present = _lookup(field.get("by_cause_p", {}), keys, field["p_present"])
        present = rng.random(n) < p_present
        values = np.round(rng.uniform(p[0], p[1], n))
        return [int(v) if ok else None for v, ok in zip(values, present, strict=True)]
    raise ValueError(f"cohort.json: unknown dist {dist!r} for {field['path']}")


def _draw_medications(spec: dict, keys: tuple[str, ...], n: int, rng: np.random.Generator) -> list[list[dict]]:
    classes = spec["classes"]
    p_recent = _lookup(spec["p_recent"][1], keys, spec["p_recent"][0])
    out: list[list[dict]] = [[] for _ in range(n)]
    for name, (base, by_cause) in classes.items():
        p = _lookup(by_cause, keys, base)
        has = rng.random(n) < p
        recent = rng.random(n) < p_recent
        recent_days = rng.integers(spec["recent_days"][0], spec["recent_days"][1] + 1, n)
        old_days = rng.integers(spec["old_days"][0], spec["old_days"][1] + 1, n)
        for i in np.flatnonzero(has):
            days = int(recent_days[i] if recent[i] else old_days[i])
            out[i].append({"class": name, "started_days_ago": days})
    return out


def _set(obj: dict, path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest:
        _set(obj.setdefault(head, {}), rest, value)
    else:
        obj[head] = value


def _get(obj: dict, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def generate_cohort(n: int | None = None, seed: int | None = None, spec: dict | None = None
                    ) -> tuple[list[dict], list[dict], list[str]]:
    """Draw ``n`` synthetic people: (answers list, sensor dict list, cause label list).

    Defaults come from the spec (``n``, ``seed``). Answers are validated against docs/contracts.md §3,
    so the cohort only ever contains answers a real person could give.
    """
    spec = spec or load_cohort_spec()
    n = int(spec["n"] if n is None else n)
    rng = np.random.default_rng(spec["seed"] if seed is None else seed)
    rates = np.array([spec["base_rates"][c] for c in CAUSES], dtype=float)
    labels_idx = rng.choice(len(CAUSES), size=n, p=rates / rates.sum())
    labels = [CAUSES[i] for i in labels_idx]
    # Mixture components: (lookup keys most specific first, the people drawn from it).
    components: list[tuple[tuple[str, ...], np.ndarray]] = []
    for k, cause in enumerate(CAUSES):
        rows = np.flatnonzero(labels_idx == k)
        subs = spec.get("subtypes", {}).get(cause)
        if not subs:
            components.append(((cause,), rows))
            continue
        names = list(subs)
        w = np.array([subs[s] for s in names], dtype=float)
        pick = rng.choice(len(names), size=rows.size, p=w / w.sum())
        for j, name in enumerate(names):
            components.append(((f"{cause}/{name}", cause), rows[pick == j]))
    answers: list[dict] = [{} for _ in range(n)]
    sensors: list[dict] = [{} for _ in range(n)]
    has_sensor = rng.random(n) < spec["p_sensor"]
    default_missing = spec.get("p_missing_default", 0.12)
    # People differ in how much they fill in: each person's chance of leaving a field out is
    # the field's p_missing times a personal factor (capped at 0.9).
    factors = np.array(spec.get("missing_factors", [1.0]), dtype=float)
    person_factor = factors[rng.integers(0, len(factors), n)]

    for field in spec["fields"]:
        path = field["path"]
        values: list[Any] = [None] * n
        for keys, rows in components:
            if rows.size:
                for r, v in zip(rows, _draw(field, keys, rows.size, rng), strict=True):
                    values[r] = v
        p_miss = np.minimum(field.get("p_missing", default_missing) * person_factor, 0.9)
        missing = rng.random(n) < p_miss
        is_sensor = path.startswith("sensor.")
        for i in range(n):
            if values[i] is None or missing[i] or (is_sensor and not has_sensor[i]):
                continue
            need = field.get("requires")
            if need and not all(_get(answers[i], p) in ok for p, ok in need.items()):
                continue
            if is_sensor:
                sensors[i][path.split(".", 1)[1]] = values[i]
            else:
                _set(answers[i], path, values[i])

    meds_spec = spec["medications"]
    meds: list[list[dict]] = [[] for _ in range(n)]
    for keys, rows in components:
        for r, m in zip(rows, _draw_medications(meds_spec, keys, rows.size, rng), strict=True):
            meds[r] = m
    med_missing = rng.random(n) < meds_spec["p_missing"]
    for i in range(n):
        if not med_missing[i]:
            answers[i]["medications"] = meds[i]
        answers[i] = validate_answers(answers[i])
    return answers, sensors, labels
