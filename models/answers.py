"""The answers file (docs/contracts.md §3): schema, validation and loading.

Every field is optional; a missing field means "not reported". ``validate_answers`` returns a
normalised copy or raises :class:`AnswersError` naming the offending key (dotted path, e.g.
``symptoms.weakness`` or ``medications[0].class``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from toetwitch.models.errors import ModelError

__all__ = [
    "AnswersError",
    "MEDICATION_CLASSES",
    "SCHEMA",
    "SYMPTOMS_SCHEMA",
    "load_answers",
    "validate_answers",
]


class AnswersError(ModelError, ValueError):
    """An answers file (or questionnaire answer) is not valid; ``key`` names where."""

    def __init__(self, key: str, what: str):
        super().__init__(f"answers: {key}: {what}")
        self.key = key
        self.what = what


SITES = ["big_toe", "other_toes", "foot", "calf", "thigh", "hand_arm", "face_eyelid", "tongue", "trunk"]
DIETS = ["balanced", "skipping_meals", "low_fruit_veg", "vegan_no_b12", "low_dairy"]
CONDITIONS = [
    "diabetes", "asthma", "kidney_disease", "pregnancy", "heavy_periods_or_anaemia",
    "recent_thyroid_or_parathyroid_surgery",
]
MEDICATION_CLASSES = [
    "diuretic", "beta_agonist", "stimulant", "statin", "ssri_snri", "opioid", "triptan", "lithium",
    "metformin", "ppi", "anticholinesterase", "antihistamine", "tricyclic", "other",
]

# Field specs: ("bool",), ("num", lo, hi), ("int", lo, hi), ("enum", [..]), ("list", [..]).
SCHEMA: dict[str, tuple] = {
    "age_years": ("num", 0, 120),
    "sex": ("enum", ["female", "male", "other"]),
    "twitching_days": ("num", 0, 36500),
    "sites": ("list", SITES),
    "sleep_hours": ("num", 0, 24),
    "stress_0_10": ("num", 0, 10),
    "health_anxiety": ("bool",),
    "caffeine_mg_per_day": ("num", 0, 5000),
    "alcohol_units_per_week": ("num", 0, 300),
    "fluid_litres_per_day": ("num", 0, 20),
    "heavy_sweating": ("bool",),
    "exercise_last_48h": ("enum", ["none", "light", "moderate", "hard"]),
    "training_load_increased": ("bool",),
    "diet": ("list", DIETS),
    "footwear": ("enum", ["supportive", "tight", "high_heels", "new"]),
    "sitting_hours_per_day": ("num", 0, 24),
    "crosses_legs": ("bool",),
    "weight_loss_kg_3_months": ("num", -100, 200),
    "recent_infection_days_ago": ("num", 0, 36500),
    "wound_tetanus_risk": ("bool",),
    "pesticide_exposure": ("bool",),
    "conditions": ("list", CONDITIONS),
    "medications": ("medications",),
    "symptoms": ("symptoms",),
}

SYMPTOMS_SCHEMA: dict[str, tuple] = {
    "weakness": ("enum", ["none", "feels_weak", "cannot_do"]),
    "weakness_onset": ("enum", ["sudden", "hours_days", "weeks_months"]),
    "weakness_worsening": ("bool",),
    "weakness_where": ("enum", ["toe_foot", "one_leg", "both_legs", "one_side_of_body", "widespread"]),
    "foot_drop": ("bool",),
    "muscle_wasting": ("bool",),
    "stiffness": ("bool",),
    "numbness": ("enum", ["none", "one_foot_or_leg", "both_feet", "rising_up_legs", "saddle"]),
    "numbness_worsening": ("bool",),
    "tingling_hands_and_feet": ("bool",),
    "back_pain_to_leg": ("enum", ["none", "one_leg", "both_legs"]),
    "bladder_bowel_change": ("bool",),
    "trouble_swallowing": ("bool",),
    "slurred_speech": ("bool",),
    "breathless_lying_flat_or_at_rest": ("bool",),
    "face_arm_speech_sudden": ("bool",),
    "longest_cramp_min": ("num", 0, 1440),
    "cramps_disturb_sleep": ("bool",),
    "urge_to_move_legs_evening": ("bool",),
    "jaw_stiffness": ("bool",),
    "agitation_sweating_fever_fast_heart": ("bool",),
    "mouth_tingling_hand_foot_spasms": ("bool",),
    "palpitations": ("bool",),
    "vomiting_diarrhoea": ("bool",),
    "cannot_stand_or_walk": ("bool",),
    "family_history_mnd": ("bool",),
}

MEDICATION_SCHEMA: dict[str, tuple] = {
    "class": ("enum", MEDICATION_CLASSES),
    "started_days_ago": ("num", 0, 36500),
    "name": ("str",),
    "dose_changed_days_ago": ("num", 0, 36500),
}


def _check(key: str, spec: tuple, value: Any) -> Any:
    kind = spec[0]
    if kind == "bool":
        if not isinstance(value, bool):
            raise AnswersError(key, f"expected true or false, got {value!r}")
        return value
    if kind in ("num", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AnswersError(key, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise AnswersError(key, f"expected a finite number, got {value!r}")
        lo, hi = spec[1], spec[2]
        if not lo <= value <= hi:
            raise AnswersError(key, f"{value!r} is out of range ({lo} to {hi})")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise AnswersError(key, f"expected text, got {value!r}")
        return value
    if kind == "enum":
        if value not in spec[1]:
            raise AnswersError(key, f"{value!r} is not one of {', '.join(spec[1])}")
        return value
    if kind == "list":
        if isinstance(value, str):
            value = [value]  # a single site written without brackets
        if not isinstance(value, list):
            raise AnswersError(key, f"expected a list, got {value!r}")
        out = []
        for i, item in enumerate(value):
            if item not in spec[1]:
                raise AnswersError(f"{key}[{i}]", f"{item!r} is not one of {', '.join(spec[1])}")
            if item not in out:
                out.append(item)
        return out
    if kind == "medications":
        if not isinstance(value, list):
            raise AnswersError(key, f"expected a list of {{\"class\": ...}} objects, got {value!r}")
        meds = []
        for i, med in enumerate(value):
            if isinstance(med, str):
                med = {"class": med}
            meds.append(_check_object(f"{key}[{i}]", MEDICATION_SCHEMA, med))
            if "class" not in meds[-1]:
                raise AnswersError(f"{key}[{i}].class", "missing (each medication needs a class)")
        return meds
    if kind == "symptoms":
        return _check_object(key, SYMPTOMS_SCHEMA, value)
    raise AssertionError(kind)  # pragma: no cover - schema typo


def _check_object(prefix: str, schema: dict[str, tuple], obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise AnswersError(prefix or "(top level)", f"expected an object, got {type(obj).__name__}")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in schema:
            raise AnswersError(path, "unknown key")
        if value is None:
            continue  # null = not reported
        out[key] = _check(path, schema[key], value)
    return out


def validate_answers(obj: Any) -> dict:
    """Check an answers object against docs/contracts.md §3 and return a normalised copy.

    ``null`` values are dropped (= not reported), a bare string in a list field becomes a
    one-item list, and a medication given as a bare class name becomes ``{"class": name}``.
    Raises :class:`AnswersError` naming the first unknown key or out-of-range value.
    """
    return _check_object("", SCHEMA, obj)


def load_answers(path: str | Path) -> dict:
    """Read and validate an answers file: JSON, or YAML (``.yaml``/``.yml``) when PyYAML is installed."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise AnswersError(str(p), f"cannot read the file ({exc.strerror or exc})") from None
    text = decode_text(raw, p)
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise AnswersError(str(p), "YAML answers need PyYAML (pip install 'toetwitch[yaml]'); or use JSON") from None
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AnswersError(str(p), f"not valid YAML ({exc})") from None
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnswersError(str(p), f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if obj is None:
        obj = {}
    try:
        return validate_answers(obj)
    except AnswersError as exc:  # name the file as well as the key
        raise AnswersError(f"{p}: {exc.key}", exc.what) from None


def decode_text(raw: bytes, path: Path) -> str:
    """Text of an answers file: UTF-8 (with or without a BOM) or UTF-16/32 with a BOM (what
    Windows Notepad saves as "Unicode"); anything else is an :class:`AnswersError`."""
    import codecs

    boms = (
        (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16: same start
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
    )
    enc = next((e for bom, e in boms if raw.startswith(bom)), "utf-8")
    try:
        return raw.decode(enc)
    except UnicodeDecodeError as exc:
        raise AnswersError(
            str(path), f"not a text file in UTF-8 or UTF-16 (undecodable byte at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
