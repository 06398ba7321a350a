"""Day-by-day history from the journal: twitches, rate at rest, episodes, assessments, trend.

Pure functions over a :class:`toetwitch.pipeline.store.journal.Journal` (reads only) and pandas DataFrames.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from toetwitch.pipeline.store.queries import (
    DAILY_COLUMNS,
    MIN_TREND_DAYS,
    STEADY_SHARE_PER_DAY,
    daily_table,
    trend_of,
)

__all__ = ["DAILY_COLUMNS", "MIN_TREND_DAYS", "STEADY_SHARE_PER_DAY", "daily_table", "format_history", "history", "trend_of"]

if TYPE_CHECKING:
    from toetwitch.pipeline.store.journal import Journal


def history(journal: Journal, *, days: int | None = None, today: date | None = None) -> dict[str, Any]:
    """Everything ``toetwitch history`` shows, as a JSON-ready dict.

    Keys: ``journal`` (path), ``days`` (list of daily rows, see :func:`daily_table`; NaN as
    None), ``trend_per_day`` (slope of the rate at rest, twitches per minute per day), ``trend``
    (its words), ``trend_twitches_per_day`` (slope of daily counts), all over the shown days; the
    longitudinal features of
    :func:`toetwitch.pipeline.store.features.longitudinal_features` (whole journal) and ``latest_assessment``
    (level and top causes, or None).
    """
    from toetwitch.pipeline.store.features import longitudinal_features

    today = today or date.today()
    daily = daily_table(journal, days=days, today=today)
    slope, words = trend_of(daily)
    count_slope, _ = trend_of(daily, "twitches")
    feats = longitudinal_features(journal.path, today=today)
    latest = journal.latest_assessment()
    latest_short = None
    if latest:
        latest_short = {
            "recorded_at": latest.get("recorded_at"),
            "level": (latest.get("escalation") or {}).get("level"),
            "causes": [{"cause": c.get("cause"), "probability": c.get("probability")}
                       for c in (latest.get("causes") or [])[:3]],
        }
    records = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
               for r in daily.to_dict("records")]
    return {
        "journal": str(journal.path),
        "today": today.isoformat(),
        "window_days": days,
        "days": records,
        "trend_per_day": slope,
        "trend": words,
        "trend_twitches_per_day": count_slope,
        "days_since_first_twitch": feats["days_since_first_twitch"],
        "days_since_last_twitch": feats["days_since_last_twitch"],
        "days_with_twitching_last_14": feats["days_with_twitching_last_14"],
        "night_fraction": feats["night_fraction"],
        "time_of_day_profile": feats["time_of_day_profile"],
        "sessions_time_estimated": feats["sessions_time_estimated"],
        "latest_assessment": latest_short,
    }


def format_history(h: dict[str, Any]) -> str:
    """The history dict as text for a person: a day table, then the trend in words."""
    lines = [f"Journal: {h['journal']}"]
    days = h["days"]
    if not days:
        lines.append("Nothing recorded yet" + (f" in the last {h['window_days']} days." if h["window_days"] else "."))
        return "\n".join(lines)
    header = f"{'day':<10}  {'recorded':>8}  {'twitches':>8}  {'per min at rest':>15}  {'episodes':>8}  assessment"
    lines += ["", header, "-" * len(header)]
    for r in days:
        rate = "-" if r["rate_per_min_rest"] is None else f"{r['rate_per_min_rest']:.2f}"
        recorded = f"{r['recorded_min']:.0f} min" if r["recordings"] else "-"
        tw = str(r["twitches"]) if r["recordings"] else "-"
        ep = str(r["episodes"]) if r["recordings"] else "-"
        assess = r["escalation"] or ("yes" if r["assessments"] else "")
        lines.append(f"{r['day']:<10}  {recorded:>8}  {tw:>8}  {rate:>15}  {ep:>8}  {assess}")
    lines.append("")
    trend = h["trend"]
    if trend == "not enough days":
        lines.append("Trend: not enough recorded days to tell (need at least 3).")
    else:
        lines.append(f"Trend: {trend} (rate at rest {h['trend_per_day']:+.2f} twitches per minute, per day; "
                     f"daily count {h['trend_twitches_per_day']:+.1f} per day).")
    first = h["days_since_first_twitch"]
    if first is None:
        lines.append("No twitches recorded so far.")
    else:
        lines.append(f"Twitching first recorded {first} day{'s' if first != 1 else ''} ago; "
                     f"twitching on {h['days_with_twitching_last_14']} of the last 14 days.")
    if h["night_fraction"] is not None:
        lines.append(f"{h['night_fraction'] * 100:.0f}% of twitches were between 22:00 and 07:00.")
    n_est = h.get("sessions_time_estimated") or 0
    if n_est:
        lines.append(f"{n_est} recording{'s have' if n_est != 1 else ' has'} no clock time: "
                     "the day comes from the file's date, and the time of day is left out.")
    la = h.get("latest_assessment")
    if la:
        causes = ", ".join(f"{c['cause']} ({(c['probability'] or 0) * 100:.0f}%)" for c in la["causes"])
        lines.append(f"Latest assessment ({la['recorded_at']}): {la['level'] or 'no level'}"
                     + (f"; likely causes: {causes}" if causes else ""))
    lines.append("toetwitch informs; it does not diagnose. If you are worried, see a doctor.")
    return "\n".join(lines)
