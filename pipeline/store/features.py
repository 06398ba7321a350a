"""Longitudinal features of the whole journal, for the cause model and the escalation rules.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np

from toetwitch.pipeline.store.journal import NIGHT_HOURS, Journal, default_journal_path


def longitudinal_features(journal_path: Path | str | None = None, *, today: date | None = None) -> dict:
    """Features of the whole journal for the cause model and the persistence escalation rule.

    Returns a dict:

    * ``days_since_first_twitch`` — days from the first day with a recorded twitch to ``today``
      (int, None when no twitch was ever recorded);
    * ``days_since_last_twitch`` — likewise to the latest day with a twitch;
    * ``days_with_twitching_last_14`` — distinct days with >= 1 twitch among the 14 days ending
      ``today``;
    * ``trend_per_day`` — least-squares slope of the daily rate at rest (twitches per minute at
      rest, per day) over the recorded days of the last 28 days (0.0 with fewer than two); the
      rate, not the count, so that a long recording one day and a short one the next is no trend;
    * ``trend`` — its words: ``rising``, ``steady``, ``falling`` or ``not enough days``;
    * ``trend_twitches_per_day`` — the same slope for daily twitch counts (twitches per day, per day);
    * ``night_fraction`` — share of all twitches between 22:00 and 07:00 (None without any);
    * ``time_of_day_profile`` — 24 shares of twitches per clock hour 0..23 (sums to 1, or all 0);
      these two leave out sessions whose clock was estimated from a file's modification time;
    * ``recorded_days`` — number of distinct days with a recording;
    * ``sessions_time_estimated`` — sessions whose day came from a file's modification time.

    A missing journal gives the "nothing recorded" values; a damaged or foreign one raises
    :class:`UserError`. ``today`` defaults to the local date.
    """
    from toetwitch.pipeline.store.queries import daily_table, trend_of

    path = Path(journal_path).expanduser() if journal_path else default_journal_path()
    today = today or date.today()
    empty = {
        "days_since_first_twitch": None, "days_since_last_twitch": None,
        "days_with_twitching_last_14": 0, "trend_per_day": 0.0, "trend": "not enough days",
        "trend_twitches_per_day": 0.0,
        "night_fraction": None, "time_of_day_profile": [0.0] * 24, "recorded_days": 0,
        "sessions_time_estimated": 0,
    }
    if not path.exists():
        return empty
    with Journal(path, create=False) as j:
        daily = daily_table(j)
        # hours only from sessions with a real clock (not estimated from a file's mtime)
        hours = j.query("SELECT t.hour, count(*) FROM twitches t JOIN sessions s ON s.id = t.session_id"
                        " WHERE t.type = 'fasciculation' AND t.hour IS NOT NULL"
                        " AND s.start_time_source != 'file_mtime' GROUP BY t.hour")
        n_estimated = j.query("SELECT count(*) FROM sessions WHERE start_time_source = 'file_mtime'")[0][0]
    daily = daily[daily["recordings"] > 0]
    if daily.empty:
        return empty
    out = dict(empty)
    out["recorded_days"] = int(len(daily))
    out["sessions_time_estimated"] = int(n_estimated)
    twitch_days = [date.fromisoformat(d) for d in daily.loc[daily["twitches"] > 0, "day"]]
    if twitch_days:
        out["days_since_first_twitch"] = (today - min(twitch_days)).days
        out["days_since_last_twitch"] = (today - max(twitch_days)).days
        window = {today - timedelta(days=k) for k in range(14)}
        out["days_with_twitching_last_14"] = sum(1 for d in set(twitch_days) if d in window)
    recent = daily[[today - timedelta(days=28) < date.fromisoformat(d) <= today for d in daily["day"]]]
    slope, words = trend_of(recent)
    out["trend_per_day"] = slope
    out["trend"] = words
    out["trend_twitches_per_day"] = trend_of(recent, "twitches")[0]
    counts = np.zeros(24)
    for hour, n in hours:
        if 0 <= int(hour) < 24:
            counts[int(hour)] += n
    total = counts.sum()
    if total > 0:
        out["time_of_day_profile"] = [float(c / total) for c in counts]
        out["night_fraction"] = float(sum(counts[h] for h in NIGHT_HOURS) / total)
    return out
