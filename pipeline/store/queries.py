"""Queries over the journal: the day-by-day table and its trend (pure reads).
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
