"""Helpers shared by the tests (import them: ``from tests.helpers import recording_table``).

Fixtures live in ``conftest.py``; plain functions live here so that tests import them like any
module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

#: the repository's root (sample_data/, bench/, docs/ are beside the package folders)
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_data"


def load_bench_module(name: str, file: str) -> ModuleType:
    """A module of ``bench/`` (not an installed package), loaded from its path as ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / file)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


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


# ---- accelerometer-only recordings (limb movements)
def still_acc(seconds: float, fs: float, noise_mg: float, seed: int = 0) -> np.ndarray:
    """A still sensor: gravity on z (slightly tilted) plus white noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    g = np.array([0.05, -0.1, 1.0]) / np.linalg.norm([0.05, -0.1, 1.0])
    return g + rng.normal(0, noise_mg / 1000, (n, 3))


def tilt_acc(acc: np.ndarray, fs: float, t0_s: float, dur_s: float, deg: float,
             back: bool = True, ramp_s: float = 0.25) -> None:
    """Rotate the sensor about x by ``deg`` with raised-cosine ramps, holding in between
    (a dorsiflexion held for the movement); ``back=False`` leaves it in the new posture."""
    a = int(t0_s * fs)
    b = int((t0_s + dur_s) * fs) if back else len(acc)
    m = b - a
    r = max(1, min(int(ramp_s * fs), m // 2))
    th = np.ones(m)
    th[:r] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, r))
    if back:
        th[m - r:] = th[:r][::-1]
    th *= np.radians(deg)
    y, z = acc[a:b, 1].copy(), acc[a:b, 2].copy()
    acc[a:b, 1] = np.cos(th) * y - np.sin(th) * z
    acc[a:b, 2] = np.sin(th) * y + np.cos(th) * z


def jerk_acc(acc: np.ndarray, fs: float, t0_s: float, mg: float, dur_s: float = 0.15) -> None:
    """A brief transient (a twitch or a knock), not a limb movement."""
    a, n = int(t0_s * fs), max(2, int(dur_s * fs))
    acc[a: a + n, 0] += mg / 1000 * np.sin(np.linspace(0, 3 * np.pi, n)) * np.hanning(n)
