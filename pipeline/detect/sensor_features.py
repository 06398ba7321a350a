"""Sensor features for the cause and escalation model, from what the pipeline measures.

``models`` takes a plain dict (keys of ``toetwitch.models.facts.SENSOR_KEYS``); this module builds it from
an analysis summary (``summary.json``), an ``AnalysisResult``, or the journal's longitudinal
features, and merges several sources (later sources fill what earlier ones lack).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "from_journal",
    "from_result",
    "from_summary",
    "merge_sensor_features",
]


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def from_summary(summary: Mapping[str, Any]) -> dict[str, float]:
    """Sensor features from a ``summary.json`` dict (docs/architecture.md summary keys).

    ``plm_per_hour`` is the limb movements per hour of recording when at least one periodic
    series was found (a summary does not say which movements were in a series, so this is an
    upper bound of the PLM index), else 0. ``cramps_per_hour`` and ``limb_movements_per_hour``
    divide counts by the recording duration.
    """
    if not isinstance(summary, Mapping):
        raise ValueError(f"summary: expected a JSON object, got {type(summary).__name__}")
    out: dict[str, float] = {}
    for key in ("twitches_per_min_rest", "episodes_per_hour", "night_fraction"):
        v = _num(summary.get(key))
        if v is not None:
            out[key] = v
    duration_s = _num(summary.get("duration_s"))
    if duration_s and duration_s > 0:
        hours = duration_s / 3600.0
        out["recorded_hours"] = round(hours, 4)
        lms = _num(summary.get("limb_movements"))
        cramps = _num(summary.get("cramps"))
        series = summary.get("plm_series")
        n_series = len(series) if isinstance(series, list) else _num(series)
        if lms is not None:
            out["limb_movements_per_hour"] = round(lms / hours, 3)
            if n_series is not None:
                out["plm_per_hour"] = round(lms / hours, 3) if n_series > 0 else 0.0
        if cramps is not None:
            out["cramps_per_hour"] = round(cramps / hours, 3)
    return out


def from_result(result: Any) -> dict[str, float]:
    """Sensor features from a ``toetwitch.pipeline.AnalysisResult``: the summary's, with the PLM index
    counted exactly (limb movements that belong to a periodic series, per hour)."""
    out = from_summary(result.summary)
    hours = out.get("recorded_hours")
    events = result.events
    if hours and events is not None and len(events):
        from toetwitch.pipeline.detect.config import DetectorConfig
        from toetwitch.pipeline.detect.episodes import plm_series
        from toetwitch.pipeline.detect.stream import event_onsets_s

        cfg = result.summary.get("config") or {}
        defaults = DetectorConfig()
        interval = tuple(cfg.get("plm_interval_s", defaults.plm_interval_s))
        min_mov = int(cfg.get("plm_min_movements", defaults.plm_min_movements))
        times = event_onsets_s(events[events["type"] == "limb_movement"])  # AASM: onset to onset
        in_series = sum(last - first + 1 for first, last in plm_series(times, interval, min_mov))
        out["plm_per_hour"] = round(in_series / hours, 3)
    return out


def from_journal(features: Mapping[str, Any]) -> dict[str, float]:
    """The journal's ``longitudinal_features`` (days_since_first_twitch,
    days_with_twitching_last_14, trend_per_day, night_fraction), unknown values dropped."""
    out: dict[str, float] = {}
    for key in ("days_since_first_twitch", "days_with_twitching_last_14", "trend_per_day", "night_fraction"):
        v = _num(features.get(key))
        if v is not None:
            out[key] = v
    return out


def merge_sensor_features(*sources: Mapping[str, float] | None) -> dict[str, float]:
    """Merge feature dicts; the first source that has a key wins."""
    out: dict[str, float] = {}
    for src in sources:
        for k, v in (src or {}).items():
            out.setdefault(k, v)
    return out
