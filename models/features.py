"""Model inputs: validated answers + sensor features -> one row of plain columns.

Numeric columns hold numbers or NaN (= not reported); yes/no answers are 1.0/0.0/NaN; the two
free categorical answers (``sex``, ``footwear``) are strings or None. The same function builds
the training cohort and the rows scored at run time, so training and use cannot drift apart.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from toetwitch.models.answers import CONDITIONS, DIETS, MEDICATION_CLASSES, SITES, SYMPTOMS_SCHEMA
from toetwitch.models.facts import (
    RECENT_INFECTION_DAYS,
    RECENT_MEDICINE_DAYS,
    SENSOR_KEYS,
    TWITCH_ASSOCIATED_CLASSES,
    site_regions,
    validate_sensor,
)

__all__ = [
    "CATEGORICAL_COLUMNS",
    "FEATURE_LABELS",
    "MODEL_SENSOR_KEYS",
    "NUMERIC_COLUMNS",
    "answers_to_row",
    "rows_to_frame",
]

#: Sensor features the cause model uses (the others inform rules only).
MODEL_SENSOR_KEYS = [
    "twitches_per_min_rest", "episodes_per_hour", "night_fraction", "plm_per_hour", "cramps_per_hour",
    "trend_per_day", "days_with_twitching_last_14",
]

_ORDINALS = {
    "exercise_last_48h": {"none": 0.0, "light": 1.0, "moderate": 2.0, "hard": 3.0},
    "weakness": {"none": 0.0, "feels_weak": 1.0, "cannot_do": 2.0},
    "back_pain_to_leg": {"none": 0.0, "one_leg": 1.0, "both_legs": 2.0},
}
_PLAIN_NUMBERS = [
    "age_years", "sleep_hours", "stress_0_10", "caffeine_mg_per_day", "alcohol_units_per_week",
    "fluid_litres_per_day", "sitting_hours_per_day", "weight_loss_kg_3_months",
]
_PLAIN_BOOLS = [
    "health_anxiety", "heavy_sweating", "training_load_increased", "crosses_legs",
    "wound_tetanus_risk", "pesticide_exposure",
]
_SYMPTOM_BOOLS = [k for k, spec in SYMPTOMS_SCHEMA.items() if spec[0] == "bool"]

NUMERIC_COLUMNS: list[str] = (
    _PLAIN_NUMBERS
    + ["log_twitching_days", "n_regions", "recent_infection", "exercise_level"]
    + [f"site_{s}" for s in SITES]
    + _PLAIN_BOOLS
    + [f"diet_{d}" for d in DIETS]
    + [f"cond_{c}" for c in CONDITIONS]
    + [f"med_{m}" for m in MEDICATION_CLASSES]
    + ["med_recent_associated"]
    + ["weakness_level", "weakness_sudden", "weakness_fast_onset", "weakness_widespread",
       "weakness_one_side", "back_pain_level",
       "numb_one_side", "numb_both_feet", "numb_rising", "numb_saddle", "longest_cramp_min"]
    + _SYMPTOM_BOOLS
    + [f"sensor_{k}" for k in MODEL_SENSOR_KEYS]
)
CATEGORICAL_COLUMNS: list[str] = ["sex", "footwear"]

FEATURE_LABELS: dict[str, str] = {
    "age_years": "age", "sleep_hours": "sleep (hours)", "stress_0_10": "stress (0-10)",
    "caffeine_mg_per_day": "caffeine (mg/day)", "alcohol_units_per_week": "alcohol (units/week)",
    "fluid_litres_per_day": "fluids (litres/day)", "sitting_hours_per_day": "sitting (hours/day)",
    "weight_loss_kg_3_months": "weight lost in 3 months (kg)",
    "log_twitching_days": "days of twitching", "n_regions": "body regions twitching",
    "recent_infection": f"infection in the last {RECENT_INFECTION_DAYS} days",
    "exercise_level": "exercise in the last 48 h", "med_recent_associated":
    f"a twitch-associated medicine started within {RECENT_MEDICINE_DAYS} days",
    "weakness_level": "weakness", "weakness_fast_onset": "weakness came on within days",
    "weakness_sudden": "weakness came on suddenly", "weakness_one_side": "weakness on one side of the body",
    "weakness_widespread": "weakness in both legs or widespread", "back_pain_level": "back pain into the leg(s)",
    "numb_one_side": "numbness in one foot or leg", "numb_both_feet": "numbness in both feet",
    "numb_rising": "numbness rising up the legs", "numb_saddle": "numbness between the legs",
    "longest_cramp_min": "longest cramp (min)", "sex": "sex", "footwear": "footwear",
}
for _s in SITES:
    FEATURE_LABELS[f"site_{_s}"] = f"twitching at {_s.replace('_', ' ')}"
for _d in DIETS:
    FEATURE_LABELS[f"diet_{_d}"] = f"diet: {_d.replace('_', ' ')}"
for _c in CONDITIONS:
    FEATURE_LABELS[f"cond_{_c}"] = f"condition: {_c.replace('_', ' ')}"
for _m in MEDICATION_CLASSES:
    FEATURE_LABELS[f"med_{_m}"] = f"medicine: {_m.replace('_', ' ')}"
for _k, _text in SENSOR_KEYS.items():
    FEATURE_LABELS[f"sensor_{_k}"] = f"sensor: {_text}"
for _b in _PLAIN_BOOLS + _SYMPTOM_BOOLS:
    FEATURE_LABELS.setdefault(_b, _b.replace("_", " "))


def _b(value: Any) -> float:
    return math.nan if value is None else float(bool(value))


def answers_to_row(answers: dict, sensor: dict | None = None) -> dict[str, Any]:
    """One model row (dict over NUMERIC_COLUMNS + CATEGORICAL_COLUMNS) from validated answers."""
    nan = math.nan
    sym = answers.get("symptoms", {})
    row: dict[str, Any] = {c: nan for c in NUMERIC_COLUMNS}
    for k in _PLAIN_NUMBERS:
        if k in answers:
            row[k] = float(answers[k])
    for k in _PLAIN_BOOLS:
        row[k] = _b(answers.get(k))
    if "twitching_days" in answers:
        row["log_twitching_days"] = math.log1p(answers["twitching_days"])
    if "recent_infection_days_ago" in answers:
        row["recent_infection"] = float(answers["recent_infection_days_ago"] <= RECENT_INFECTION_DAYS)
    if "exercise_last_48h" in answers:
        row["exercise_level"] = _ORDINALS["exercise_last_48h"][answers["exercise_last_48h"]]
    if "sites" in answers:
        row["n_regions"] = float(site_regions(answers["sites"]))
        for s in SITES:
            row[f"site_{s}"] = float(s in answers["sites"])
    if "diet" in answers:
        for d in DIETS:
            row[f"diet_{d}"] = float(d in answers["diet"])
    if "conditions" in answers:
        for c in CONDITIONS:
            row[f"cond_{c}"] = float(c in answers["conditions"])
    if "medications" in answers:
        classes = {m["class"] for m in answers["medications"]}
        for m in MEDICATION_CLASSES:
            row[f"med_{m}"] = float(m in classes)
        recent = False
        for m in answers["medications"]:
            ages = [m[k] for k in ("started_days_ago", "dose_changed_days_ago") if k in m]
            if m["class"] in TWITCH_ASSOCIATED_CLASSES and ages and min(ages) <= RECENT_MEDICINE_DAYS:
                recent = True
        row["med_recent_associated"] = float(recent)
    if "weakness" in sym:
        row["weakness_level"] = _ORDINALS["weakness"][sym["weakness"]]
        if sym["weakness"] == "none":
            for k in ("weakness_sudden", "weakness_fast_onset", "weakness_widespread", "weakness_one_side"):
                row[k] = 0.0
    if "weakness_onset" in sym:
        row["weakness_sudden"] = float(sym["weakness_onset"] == "sudden")
        row["weakness_fast_onset"] = float(sym["weakness_onset"] in ("sudden", "hours_days"))
    if "weakness_where" in sym:
        row["weakness_widespread"] = float(sym["weakness_where"] in ("both_legs", "widespread"))
        row["weakness_one_side"] = float(sym["weakness_where"] == "one_side_of_body")
    if "back_pain_to_leg" in sym:
        row["back_pain_level"] = _ORDINALS["back_pain_to_leg"][sym["back_pain_to_leg"]]
    if "numbness" in sym:
        n = sym["numbness"]
        row["numb_one_side"] = float(n == "one_foot_or_leg")
        row["numb_both_feet"] = float(n == "both_feet")
        row["numb_rising"] = float(n == "rising_up_legs")
        row["numb_saddle"] = float(n == "saddle")
    if "longest_cramp_min" in sym:
        row["longest_cramp_min"] = float(sym["longest_cramp_min"])
    for k in _SYMPTOM_BOOLS:
        row[k] = _b(sym.get(k))
    for k, v in validate_sensor(sensor).items():
        if k in MODEL_SENSOR_KEYS:
            row[f"sensor_{k}"] = v
    row["sex"] = answers.get("sex")
    row["footwear"] = answers.get("footwear")
    return row


def rows_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of :func:`answers_to_row` as a DataFrame with the model's column order and dtypes
    (float64 numbers, object categories with ``"not_reported"`` for a missing answer)."""
    num = np.array([[r.get(c, math.nan) for c in NUMERIC_COLUMNS] for r in rows], dtype=np.float64)
    num = num.reshape(len(rows), len(NUMERIC_COLUMNS))
    data: dict[str, Any] = {c: num[:, j] for j, c in enumerate(NUMERIC_COLUMNS)}
    for c in CATEGORICAL_COLUMNS:
        values = [r.get(c) for r in rows]
        data[c] = np.array(["not_reported" if _is_missing(v) else str(v) for v in values], dtype=object)
    return pd.DataFrame(data, columns=NUMERIC_COLUMNS + CATEGORICAL_COLUMNS)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
