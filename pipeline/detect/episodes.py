"""Episodes and periodic limb-movement series: pure functions of event times."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

EPISODE_COLUMNS = [
    "episode",
    "start_s",
    "end_s",
    "twitches",
    "duration_s",
    "rate_per_min",
    "median_peak_to_peak_uv",
    "max_peak_to_peak_uv",
]


def group_episodes(times_s: NDArray[np.float64], gap_s: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Split sorted event times where consecutive events are more than ``gap_s`` apart.

    Returns (first, last) indices (inclusive) of each group.
    """
    if len(times_s) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    breaks = np.flatnonzero(np.diff(times_s) > gap_s)
    first = np.concatenate([[0], breaks + 1]).astype(np.int64)
    last = np.concatenate([breaks, [len(times_s) - 1]]).astype(np.int64)
    return first, last


def episodes_table(fasciculations: pd.DataFrame, gap_s: float, min_twitches: int) -> pd.DataFrame:
    """Episodes of twitching: runs of fasciculations with gaps of at most ``gap_s`` seconds.

    A run with fewer than ``min_twitches`` twitches is not an episode. ``rate_per_min`` is the
    twitches per minute over the episode (its duration floored at 1 s).
    Columns: :data:`EPISODE_COLUMNS`.
    """
    t = fasciculations["time_s"].to_numpy(dtype=float)
    p2p = fasciculations["peak_to_peak_uv"].to_numpy(dtype=float) if len(t) else np.empty(0)
    first, last = group_episodes(t, gap_s)
    rows = []
    for a, b in zip(first.tolist(), last.tolist(), strict=True):
        n = b - a + 1
        if n < min_twitches:
            continue
        dur = float(t[b] - t[a])
        amp = p2p[a: b + 1]
        amp = amp[np.isfinite(amp)]
        rows.append(
            {
                "episode": len(rows) + 1,
                "start_s": float(t[a]),
                "end_s": float(t[b]),
                "twitches": n,
                "duration_s": dur,
                "rate_per_min": n / max(dur, 1.0) * 60.0,
                "median_peak_to_peak_uv": float(np.median(amp)) if len(amp) else np.nan,
                "max_peak_to_peak_uv": float(amp.max()) if len(amp) else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=EPISODE_COLUMNS)


def plm_series(times_s: NDArray[np.float64], interval_s: tuple[float, float], min_movements: int) -> list[tuple[int, int]]:
    """Periodic limb-movement series (AASM): >= ``min_movements`` movements in a row, each
    interval (onset to onset) within ``interval_s``. Returns (first, last) index pairs."""
    out = []
    if len(times_s) < min_movements:
        return out
    ok = (np.diff(times_s) >= interval_s[0]) & (np.diff(times_s) <= interval_s[1])
    i = 0
    while i < len(ok):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j < len(ok) and ok[j]:
            j += 1
        if j - i + 1 >= min_movements:
            out.append((i, j))
        i = j
    return out
