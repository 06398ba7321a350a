"""The boundary where samples enter the analyser: values no sensor can produce become lost.

A single ``inf`` or ``1e308`` cell pushed into the band-pass filters turns their state into
``inf``/``NaN`` for the rest of the recording (most later twitches lost, a long false
"cramp", numpy overflow warnings). Such values are not signal: they are marked lost (NaN,
what a gap is everywhere else in toetwitch), so they cost only their own samples. They are
counted, reported in the summary (``repairs``) and warned about once per analysis.

Limits (magnitudes at or above them are impossible, not merely large):

* EMG: 1 V (``1e6`` µV). Surface EMG is micro- to millivolts; even the electrode-skin DC
  offset that a DC-coupled front end sees stays within a few hundred millivolts.
* Accelerometer: 1000 g. Wearable MEMS accelerometers measure ±2 to ±400 g.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toetwitch.pipeline.log import TwitchWarning

#: |EMG| at or above this (µV) is not a surface-EMG value.
EMG_LIMIT_UV = 1e6
#: |acceleration| at or above this (g, any axis) is not an accelerometer value.
ACC_LIMIT_G = 1e3


@dataclass
class InputGuard:
    """Counts and removes impossible samples per stream (stateful: warns once).

    ``counts`` maps ``"<stream>_not_finite"`` / ``"<stream>_out_of_range"`` to sample counts.
    """

    name: str = "recording"
    counts: dict[str, int] = field(default_factory=dict)
    #: samples (EMG) or rows (accelerometer) that arrive lost or are made lost here, by stream
    lost: dict[str, int] = field(default_factory=dict)
    _warned: bool = False

    def emg(self, x_uv: np.ndarray) -> np.ndarray:
        """EMG samples (k,) µV with impossible values set to NaN (a copy only when needed)."""
        return self._clean(np.asarray(x_uv, dtype=float), "emg", EMG_LIMIT_UV, "µV")

    def acc(self, x_g: np.ndarray) -> np.ndarray:
        """Accelerometer rows (j, 3) g; a row with an impossible axis becomes NaN (lost)."""
        return self._clean(np.asarray(x_g, dtype=float), "acc", ACC_LIMIT_G, "g")

    def _clean(self, x: np.ndarray, stream: str, limit: float, unit: str) -> np.ndarray:
        if x.size and -limit < x.min() and x.max() < limit:  # the usual case: two passes, no copy
            return x  # (a NaN makes both comparisons False: it goes the long way)
        with np.errstate(invalid="ignore"):
            ok = np.abs(x) < limit
        if ok.all():
            return x
        isnan = np.isnan(x)
        bad = ~ok & ~isnan  # NaN already means lost
        if not bad.any():
            self._count_lost(stream, isnan)
            return x
        inf = bad & np.isinf(x)
        huge = bad & ~inf
        x = x.copy()
        if x.ndim == 2:
            x[bad.any(axis=1)] = np.nan
        else:
            x[bad] = np.nan
        self._count_lost(stream, np.isnan(x))
        n_inf, n_huge = int(inf.sum()), int(huge.sum())
        for key, n in ((f"{stream}_not_finite", n_inf), (f"{stream}_out_of_range", n_huge)):
            if n:
                self.counts[key] = self.counts.get(key, 0) + n
        if not self._warned:
            self._warned = True
            what = "EMG" if stream == "emg" else "accelerometer"
            warnings.warn(
                f"impossible {what} values in '{self.name}' (infinite, or {limit:g} {unit} or "
                "more) treated as lost samples; the summary's 'repairs' counts them",
                TwitchWarning,
                stacklevel=4,
            )
        return x

    def repairs(self) -> list[str]:
        """One line per kind of repair, for the summary."""
        words = {
            "emg_not_finite": "EMG samples not finite (inf/NaN text) marked lost",
            "emg_out_of_range": f"EMG samples at or beyond ±{EMG_LIMIT_UV:g} µV marked lost",
            "acc_not_finite": "accelerometer values not finite marked lost (whole row)",
            "acc_out_of_range": f"accelerometer values at or beyond ±{ACC_LIMIT_G:g} g marked lost (whole row)",
        }
        return [f"{n} {words[k]}" for k, n in sorted(self.counts.items())]

    def _count_lost(self, stream: str, isnan: np.ndarray) -> None:
        n = int((isnan.any(axis=1) if isnan.ndim == 2 else isnan).sum())
        if n:
            self.lost[stream] = self.lost.get(stream, 0) + n


def merge_repairs(summary: dict[str, Any], lines: list[str]) -> None:
    """Append repair lines to ``summary["repairs"]`` (created empty by the analyser)."""
    summary.setdefault("repairs", [])
    for line in lines:
        if line not in summary["repairs"]:
            summary["repairs"].append(line)
