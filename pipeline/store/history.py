"""Day-by-day history from the journal: twitches, rate at rest, episodes, assessments, trend.

Pure functions over a :class:`pipeline.journal.Journal` (reads only) and pandas DataFrames.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from toetwitch.pipeline.store.journal import Journal

#: Columns of :func:`daily_table`.
DAILY_COLUMNS = ["day", "recordings", "recorded_min", "rest_min", "twitches", "rate_per_min_rest",
                 "episodes", "limb_movements", "cramps", "assessments", "escalation"]
#: Fewer recorded days than this give the words "not enough days".
MIN_TREND_DAYS = 3
#: |slope| below this share of the mean daily count per day reads as "steady".
STEADY_SHARE_PER_DAY = 0.03


def daily_table(journal: Journal, *, days: int | None = None, today: date | None = None) -> pd.DataFrame:
    """One row per day with a recording or an assessment, oldest first.

    Columns (:data:`DAILY_COLUMNS`): ``day`` (YYYY-MM-DD), ``recordings`` (sessions started that
    day), ``recorded_min`` and ``rest_min`` (minutes), ``twitches`` (fasciculations),
    ``rate_per_min_rest`` (twitches per minute at rest, NaN without rest time), ``episodes``,
    ``limb_movements``, ``cramps``, ``assessments`` (count) and ``escalation`` (the level of the
    day's latest assessment or None). ``days`` keeps the ``days`` days ending ``today``.
    """
    sess = journal.query(
        "SELECT day, count(*), total(duration_s), total(time_rest_s), total(twitches),"
        " total(episodes), total(limb_movements), total(cramps) FROM sessions GROUP BY day")
    ass = journal.query(
        "SELECT a.day, count(*), (SELECT escalation_level FROM assessments b WHERE b.day = a.day"
        " ORDER BY b.id DESC LIMIT 1) FROM assessments a GROUP BY a.day")
    rows: dict[str, dict[str, Any]] = {}
    for day, n, dur_s, rest_s, tw, ep, lm, cr in sess:
        rows[day] = {
            "day": day, "recordings": int(n), "recorded_min": dur_s / 60.0, "rest_min": rest_s / 60.0,
            "twitches": int(tw), "rate_per_min_rest": tw / (rest_s / 60.0) if rest_s > 0 else np.nan,
            "episodes": int(ep), "limb_movements": int(lm), "cramps": int(cr),
            "assessments": 0, "escalation": None,
        }
    for day, n, level in ass:
        row = rows.setdefault(day, {
            "day": day, "recordings": 0, "recorded_min": 0.0, "rest_min": 0.0, "twitches": 0,
            "rate_per_min_rest": np.nan, "episodes": 0, "limb_movements": 0, "cramps": 0})
        row["assessments"] = int(n)
        row["escalation"] = level
    df = pd.DataFrame([rows[d] for d in sorted(rows)], columns=DAILY_COLUMNS)
    if days is not None:
        today = today or date.today()
        first = (today - timedelta(days=days - 1)).isoformat()
        df = df[(df["day"] >= first) & (df["day"] <= today.isoformat())].reset_index(drop=True)
    return df


def trend_of(daily: pd.DataFrame, column: str = "rate_per_min_rest") -> tuple[float, str]:
    """Least-squares slope of a daily value against the date, and its words.

    ``column`` is ``rate_per_min_rest`` (default: twitches per minute at rest, which does not
    depend on how long each day was recorded) or ``twitches`` (daily counts). Only days with a
    recording and a finite value count (a day without one is unknown, not zero). Returns
    ``(slope per day, words)`` with words ``rising``, ``falling``, ``steady`` (|slope| below
    :data:`STEADY_SHARE_PER_DAY` of the mean, or of 1 twitch (per minute) when the mean is
    smaller) or ``not enough days`` (fewer than :data:`MIN_TREND_DAYS` such days; the slope is
    0.0 with fewer than two).
    """
    rec = daily[daily["recordings"] > 0] if "recordings" in daily else daily
    y = pd.to_numeric(rec[column], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(y)
    if keep.sum() < 2:
        return 0.0, "not enough days"
    x = np.array([date.fromisoformat(d).toordinal() for d in rec["day"]], dtype=float)[keep]
    y = y[keep]
    x -= x.mean()
    denom = float((x**2).sum())
    slope = float((x * (y - y.mean())).sum() / denom) if denom > 0 else 0.0
    if len(y) < MIN_TREND_DAYS:
        return slope, "not enough days"
    scale = max(float(y.mean()), 1.0)
    if abs(slope) < STEADY_SHARE_PER_DAY * scale:
        return slope, "steady"
    return slope, "rising" if slope > 0 else "falling"


def history(journal: Journal, *, days: int | None = None, today: date | None = None) -> dict[str, Any]:
    """Everything ``toetwitch history`` shows, as a JSON-ready dict.

    Keys: ``journal`` (path), ``days`` (list of daily rows, see :func:`daily_table`; NaN as
    None), ``trend_per_day`` (slope of the rate at rest, twitches per minute per day), ``trend``
    (its words), ``trend_twitches_per_day`` (slope of daily counts), all over the shown days; the
    longitudinal features of
    :func:`pipeline.journal.longitudinal_features` (whole journal) and ``latest_assessment``
    (level and top causes, or None).
    """
    from toetwitch.pipeline.store.journal import longitudinal_features

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
