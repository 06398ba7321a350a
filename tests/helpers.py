"""Helpers shared by the tests (import them: ``from tests.helpers import recording_table``).

Fixtures live in ``conftest.py``; plain functions live here so that tests import them like any
module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: the repository's root (sample_data/, bench/, docs/ are beside the package folders)
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_data"


def match_events(truth_s: np.ndarray, detected_s: np.ndarray, tol_s: float) -> tuple[int, int, int]:
    """Greedy one-to-one matching in time order: (true positives, false positives, misses)."""
    truth_s = np.sort(np.asarray(truth_s, float))
    detected_s = np.sort(np.asarray(detected_s, float))
    used = np.zeros(len(detected_s), bool)
    tp = 0
    for t in truth_s:
        if len(detected_s) == 0:
            break
        d = np.abs(detected_s - t)
        d[used] = np.inf
        k = int(np.argmin(d))
        if d[k] <= tol_s:
            used[k] = True
            tp += 1
    return tp, int((~used).sum()), len(truth_s) - tp


def truth_times(truth: pd.DataFrame, kind: str = "fasciculation") -> np.ndarray:
    return truth.loc[truth["kind"] == kind, "time_s"].to_numpy(float)


def recording_table(emg: np.ndarray | None, acc: np.ndarray | None, fs_emg_hz: float = 2048.0,
                    fs_acc_hz: float = 200.0) -> pd.DataFrame:
    """A recording as the docs/contracts.md §1 table: ``time_s``, ``emg_uv`` and/or ``acc_x_g`` ..
    ``acc_z_g`` rows, the two streams interleaved in time order (mixed-rate rows)."""
    parts = []
    if emg is not None:
        parts.append(pd.DataFrame({"time_s": np.arange(len(emg)) / fs_emg_hz, "emg_uv": emg}))
    if acc is not None:
        parts.append(pd.DataFrame({"time_s": np.arange(len(acc)) / fs_acc_hz, "acc_x_g": acc[:, 0],
                                   "acc_y_g": acc[:, 1], "acc_z_g": acc[:, 2]}))
    return pd.concat(parts, ignore_index=True).sort_values("time_s", kind="stable")


def provisional_lines(lines: list[str]) -> tuple[list[float], list[str], list[str]]:
    """A live display's printout (``monitor``/``replay --provisional on``): the times of the
    twitches shown as '(checking)', the 'not counted' lines, and settled twitch lines printed
    again (there should be none)."""
    checking = [float(ln.split()[0]) for ln in lines if ln.endswith("(checking)")]
    dropped = [ln for ln in lines if ln.split()[2:4] == ["not", "counted"]]
    reprinted = [ln for ln in lines if ln.split()[2:3] == ["fasciculation"] and not ln.endswith("(checking)")]
    return checking, dropped, reprinted
