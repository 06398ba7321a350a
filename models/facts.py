"""Facts: a flat dict derived from the answers (and sensor features) that the rules test.

Answer keys keep their names (symptoms are flattened: ``weakness``, ``numbness``...); derived
facts are documented in :data:`DERIVED_FACTS`; sensor features appear as ``sensor_<key>``.
A fact that was not reported is simply absent.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "DERIVED_FACTS",
    "SENSOR_KEYS",
    "SEROTONERGIC_CLASSES",
    "TWITCH_ASSOCIATED_CLASSES",
    "derive_facts",
    "site_regions",
    "validate_sensor",
]

#: Plain sensor features (all optional, None = unknown). Units in the names.
SENSOR_KEYS: dict[str, str] = {
    "twitches_per_min_rest": "fasciculation rate at rest (per minute)",
    "episodes_per_hour": "twitch episodes per hour recorded",
    "night_fraction": "share of twitches between 22:00 and 07:00 (0-1)",
    "plm_per_hour": "periodic limb movements in series per hour recorded",
    "cramps_per_hour": "cramps per hour recorded",
    "limb_movements_per_hour": "limb movements (0.5-10 s) per hour recorded",
    "recorded_hours": "hours of recording behind these figures",
    "days_since_first_twitch": "days since the journal first recorded a twitch",
    "days_with_twitching_last_14": "days with twitching in the last 14 (journal)",
    "trend_per_day": "change of the daily twitch rate at rest per day (per minute per day)",
}

#: Medicine classes that can cause twitching or cramps (docs/evidence.md §C2.2).
TWITCH_ASSOCIATED_CLASSES = frozenset({
    "diuretic", "beta_agonist", "stimulant", "statin", "ssri_snri", "lithium", "anticholinesterase",
    "opioid", "triptan", "tricyclic",
})
#: Classes that can contribute to serotonin syndrome (Mayo Clinic).
SEROTONERGIC_CLASSES = frozenset({"ssri_snri", "opioid", "triptan", "lithium", "tricyclic"})

#: A medicine started (or changed) this recently counts as new (days).
RECENT_MEDICINE_DAYS = 90
#: Serotonin syndrome follows a start, increase or combination within days to weeks.
SEROTONERGIC_CHANGE_DAYS = 30
#: Guillain-Barre syndrome follows an infection by 1-4 weeks; allow 6.
RECENT_INFECTION_DAYS = 42

_FOOT = {"big_toe", "other_toes", "foot"}

DERIVED_FACTS: dict[str, str] = {
    "n_regions": "body regions with twitching (big toe, other toes and foot count as one region)",
    "any_weakness": "weakness is feels_weak or cannot_do (false when reported none)",
    "has_cramps": "longest cramp above 0 min or cramps disturb sleep",
    "recent_infection": f"an infection within {RECENT_INFECTION_DAYS} days",
    "diuretic": "takes a diuretic", "beta_agonist": "takes a beta agonist (e.g. salbutamol)",
    "suspected_medicine": f"a twitch-associated medicine started or changed within {RECENT_MEDICINE_DAYS} days (or start not given)",
    "serotonergic_change": f"a serotonergic medicine started or changed within {SEROTONERGIC_CHANGE_DAYS} days, or two combined",
    "b12_risk": "vegan without B12, metformin, a PPI, or age 75 or over",
    "model_top_cause": "the cause the model ranks first (model rules only)",
}


def site_regions(sites: list[str]) -> int:
    """Number of distinct body regions among the reported sites (foot sites count once)."""
    regions = {"foot" if s in _FOOT else s for s in sites}
    return len(regions)


def validate_sensor(sensor: dict | None) -> dict:
    """Keep the known, finite sensor features; raise ValueError naming an unknown key."""
    out: dict[str, float] = {}
    for key, value in (sensor or {}).items():
        if key not in SENSOR_KEYS:
            raise ValueError(f"sensor features: unknown key {key!r} (known: {', '.join(SENSOR_KEYS)})")
        if value is None or isinstance(value, bool):
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"sensor features: {key} must be a number, got {value!r}") from None
        if math.isfinite(v):
            out[key] = v
    return out


def _med_age(med: dict) -> float | None:
    ages = [med[k] for k in ("started_days_ago", "dose_changed_days_ago") if k in med]
    return min(ages) if ages else None


def derive_facts(answers: dict, sensor: dict | None = None) -> dict[str, Any]:
    """Flatten validated answers and sensor features into the facts the rules test."""
    facts: dict[str, Any] = {k: v for k, v in answers.items() if k not in ("symptoms", "medications")}
    symptoms = answers.get("symptoms", {})
    facts.update(symptoms)

    if "sites" in answers:
        facts["n_regions"] = site_regions(answers["sites"])
    if "weakness" in symptoms:
        facts["any_weakness"] = symptoms["weakness"] in ("feels_weak", "cannot_do")
    if "longest_cramp_min" in symptoms or "cramps_disturb_sleep" in symptoms:
        facts["has_cramps"] = bool(symptoms.get("longest_cramp_min", 0) > 0 or symptoms.get("cramps_disturb_sleep"))
    if "recent_infection_days_ago" in answers:
        facts["recent_infection"] = answers["recent_infection_days_ago"] <= RECENT_INFECTION_DAYS

    meds = answers.get("medications")
    if meds is not None:
        classes = {m["class"] for m in meds}
        facts["diuretic"] = "diuretic" in classes
        facts["beta_agonist"] = "beta_agonist" in classes
        facts["medication_classes"] = sorted(classes)
        suspected = False
        serotonergic_recent = 0
        serotonergic_total = 0
        for m in meds:
            age = _med_age(m)
            if m["class"] in TWITCH_ASSOCIATED_CLASSES and (age is None or age <= RECENT_MEDICINE_DAYS):
                suspected = True
            if m["class"] in SEROTONERGIC_CLASSES:
                serotonergic_total += 1
                if age is not None and age <= SEROTONERGIC_CHANGE_DAYS:
                    serotonergic_recent += 1
        facts["suspected_medicine"] = suspected
        facts["serotonergic_change"] = serotonergic_recent > 0 or serotonergic_total >= 2
    diet = answers.get("diet", [])
    med_classes = set(facts.get("medication_classes", []))
    if diet or meds is not None or "age_years" in answers:
        facts["b12_risk"] = bool(
            "vegan_no_b12" in diet or med_classes & {"metformin", "ppi"} or answers.get("age_years", 0) >= 75
        )
    for key, value in validate_sensor(sensor).items():
        facts[f"sensor_{key}"] = value
    return facts
