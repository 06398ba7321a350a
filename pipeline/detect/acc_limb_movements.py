"""Leg and toe movements from a 3-axis accelerometer alone, and periodic series of them.

The AASM 2018 / WASM 2016 limb-movement rules are written for tibialis-anterior EMG (onset
8 µV above resting EMG, offset at the start of ≥ 0.5 s within 2 µV of rest, 0.5-10 s long;
≥ 4 movements 5-90 s apart onset to onset make a periodic series). Here they are adapted to
acceleration, as leg actigraphs do (PAM-RL, Sforza et al. 2005; Actiwatch at the big-toe base,
Neurol Res 2008):

* **Activity** per 0.1-s block, in mg: the larger of (a) the RMS of the 0.5-10 Hz band of the
  acceleration vector (the movement itself) and (b) the change of the block-mean vector over the
  previous 0.5 s (the orientation change as the foot dorsiflexes: a 10° tilt moves the gravity
  vector by ~170 mg, mostly below 0.5 Hz, which a band alone would miss). Once a movement has
  begun, a foot held away from where it started is still moving in the EMG sense (the muscle
  holds it): the movement lasts while the mean vector stays more than half its largest
  excursion away from its pre-onset value. A foot that settles in a new posture therefore
  runs past ``max_s`` and is not counted (turning over is not a limb movement).
* **Quiet level**: the 20th percentile of the activity over the previous 60 s (updated each
  second), so thresholds follow each sensor's and each night's noise, which S-PLMAD and the
  PAM-RL validations found necessary ("noise-floor-adjustable thresholds").
* **Onset** when activity exceeds quiet + max(``on_k``·quiet, ``on_mg``) (the analogue of
  +8 µV); **offset** at the start of ≥ ``offset_quiet_s`` with activity ≤ quiet +
  max(``off_k``·quiet, ``off_mg``) (the analogue of +2 µV).
* A **limb movement** lasts ``min_s``-``max_s`` (0.5-10 s) and holds ≥ ``min_active_s`` of
  blocks above the onset level and a quarter of its peak (WASM's computer-scoring
  morphology rule: ≥ 0.5 s of sustained activity, not a blip and its ringing). Shorter spans are twitches or jerks, longer ones voluntary movement or
  turning over; a span touching a gap in the data is not scored.

Streaming equals batch: fixed blocks aligned to the first sample, causal filters carrying their
state, a quiet level defined on block indices; any chunking gives identical movements
(:class:`AccLimbMovementDetector`). :func:`detect_limb_movements` runs it on a whole array.

The AASM actigraphy guideline (Smith et al. 2018) recommends against actigraphy in place of EMG
to diagnose PLMD: these counts are screening and trend figures, and the report must say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.episodes import plm_series
from toetwitch.pipeline.detect.filters import StreamingSOS, design_bandpass

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Columns of :meth:`AccLimbMovements.table` (one row per movement).
LIMB_MOVEMENT_COLUMNS = [
    "start_s",  # onset, s from the first sample
    "end_s",  # offset (exclusive), s
    "duration_s",
    "peak_mg",  # largest block activity, mg
    "orientation_change_deg",  # angle between the mean vector 0.5 s before onset and after offset
    "series",  # 1-based periodic series the movement belongs to, 0 if none
]


@dataclass(frozen=True)
class LimbMovementConfig:
    """Settings of the accelerometer limb-movement rules (see the module docstring).

    block_s : analysis block; also the onset/offset resolution.
    band_hz, band_order : movement band (Butterworth, causal; upper edge capped at 0.45·fs).
    orientation_lag_s : the orientation term compares each block's mean vector with the one
        this long before.
    quiet_history_s, quiet_quantile, quiet_update_s : the rolling quiet level.
    on_k, on_mg, off_k, off_mg : onset and offset levels above the quiet level.
    offset_quiet_s : AASM/WASM offset: the start of this long a stretch below the offset level.
    min_s, max_s : AASM LM duration 0.5-10 s (WASM monolateral CLM).
    min_active_s, sustain_fraction : WASM morphology: at least ``min_active_s`` of activity
        above both the onset level and ``sustain_fraction`` of the movement's peak. A brief
        knock rings in the band filter for a few tenths of a second after it ends, which
        stretches its span past 0.5 s, but not its sustained part (on bench/acc_limb_movements.py
        0.1-0.3 s knocks of 30-300 mg otherwise passed as 0.5-0.6 s movements; a few still do).
    settle_s : after a gap, no onset for this long (filter and orientation reference settle).
    series_interval_s, series_min_movements : AASM PLM series, ≥ 4 movements 5-90 s apart onset
        to onset (WASM uses 10-90 s).
    """

    block_s: float = 0.1
    band_hz: tuple[float, float] = (2.0, 15.0)
    band_order: int = 2
    orientation_lag_s: float = 0.3
    quiet_history_s: float = 60.0
    quiet_quantile: float = 0.2
    quiet_update_s: float = 1.0
    on_k: float = 3.0
    on_mg: float = 8.0
    off_k: float = 1.0
    off_mg: float = 2.0
    offset_quiet_s: float = 0.5
    min_s: float = 0.5
    max_s: float = 10.0
    min_active_s: float = 0.5
    sustain_fraction: float = 0.25
    settle_s: float = 1.0
    series_interval_s: tuple[float, float] = (5.0, 90.0)
    series_min_movements: int = 4


def limb_movement_config(cfg: DetectorConfig) -> LimbMovementConfig:
    """The accelerometer limb-movement settings the analyser uses under ``cfg``: the rules
    both paths share (the AASM 0.5-10 s duration, the 0.5 s offset, the PLM series) are read
    from the :class:`DetectorConfig`, the rest are this module's defaults. With the default
    ``DetectorConfig`` this is ``LimbMovementConfig()``."""
    return LimbMovementConfig(offset_quiet_s=cfg.offset_quiet_s, min_s=cfg.min_activity_s,
                              max_s=cfg.limb_movement_max_s,
                              series_interval_s=tuple(cfg.plm_interval_s),
                              series_min_movements=cfg.plm_min_movements)


@dataclass(frozen=True)
class AccLimbMovements:
    """Limb movements found in one recording.

    ``start``/``end`` are sample indices at ``fs_hz`` (end exclusive); ``peak_mg`` and
    ``orientation_change_deg`` per movement; ``rejected`` counts candidate spans that were not
    limb movements by reason (``short``, ``long``, ``weak``, ``gap``); ``valid_s`` is the time
    with usable data (gaps excluded), the denominator of the per-hour figures.
    """

    fs_hz: float
    start: IntArray
    end: IntArray
    peak_mg: FloatArray
    orientation_change_deg: FloatArray
    valid_s: float
    rejected: dict[str, int] = field(default_factory=dict)
    config: LimbMovementConfig = LimbMovementConfig()

    @property
    def onsets_s(self) -> FloatArray:
        return self.start / self.fs_hz

    def series(self) -> list[tuple[int, int]]:
        """(first, last) movement indices of each periodic series."""
        cfg = self.config
        return plm_series(self.onsets_s, cfg.series_interval_s, cfg.series_min_movements)

    def series_id(self) -> IntArray:
        out = np.zeros(len(self.start), np.int64)
        for k, (a, b) in enumerate(self.series(), start=1):
            out[a: b + 1] = k
        return out

    def table(self) -> pd.DataFrame:
        """One row per movement; columns :data:`LIMB_MOVEMENT_COLUMNS`."""
        s, e = self.start / self.fs_hz, self.end / self.fs_hz
        return pd.DataFrame({"start_s": s, "end_s": e, "duration_s": e - s,
                             "peak_mg": self.peak_mg,
                             "orientation_change_deg": self.orientation_change_deg,
                             "series": self.series_id()}, columns=LIMB_MOVEMENT_COLUMNS)

    def summary(self) -> dict[str, Any]:
        """``limb_movements``, ``limb_movements_per_h``, ``plm_series``, ``plms`` (movements in a
        series), ``plm_index_per_h`` (PLMs per hour of valid data: recording time, not sleep
        time, which an accelerometer cannot score), ``valid_h`` and ``rejected``."""
        hours = self.valid_s / 3600.0
        series = self.series()
        plms = sum(b - a + 1 for a, b in series)
        per_h = (lambda n: round(n / hours, 3)) if hours > 0 else (lambda n: None)
        return {"limb_movements": int(len(self.start)), "limb_movements_per_h": per_h(len(self.start)),
                "plm_series": len(series), "plms": int(plms), "plm_index_per_h": per_h(plms),
                "valid_h": round(hours, 4), "rejected": dict(sorted(self.rejected.items()))}


class AccLimbMovementDetector:
    """Streaming detector: :meth:`push` chunks of (n, 3) g, then :meth:`finish`.

    Each call returns the movements decided since the previous one as (start, end, peak_mg,
    orientation_change_deg) tuples (sample indices, end exclusive). A movement is decided
    ``offset_quiet_s`` after its offset, up to ``quiet_update_s`` later at the very start.
    NaN samples mark gaps.
    """

    def __init__(self, fs_acc_hz: float, config: LimbMovementConfig | None = None) -> None:
        if not fs_acc_hz > 0:
            raise ValueError(f"accelerometer rate must be positive, got {fs_acc_hz!r} Hz")
        cfg = self.cfg = config or LimbMovementConfig()
        self.fs_hz = float(fs_acc_hz)
        self.block_n = max(1, round(cfg.block_s * fs_acc_hz))
        self.block_dt_s = self.block_n / self.fs_hz
        blocks = lambda s: max(1, round(s / self.block_dt_s))  # noqa: E731
        self.lag_n = blocks(cfg.orientation_lag_s)
        self.hist_n = blocks(cfg.quiet_history_s)
        self.every = blocks(cfg.quiet_update_s)
        self.quiet_n = blocks(cfg.offset_quiet_s)
        self.min_n = blocks(cfg.min_s)
        self.max_n = blocks(cfg.max_s)
        self.active_n = blocks(cfg.min_active_s)
        self.settle_n = blocks(cfg.settle_s)
        self._bp = StreamingSOS(design_bandpass(cfg.band_hz, self.fs_hz, cfg.band_order),
                                n_channels=3)
        self._pending = np.empty((0, 3))
        self._last_valid = np.zeros(3)
        self._means = np.full((self.lag_n, 3), np.nan)  # block means of the last lag_n blocks
        # block activities (mg, NaN = gap) and block means from block index _act0 on
        self._act = np.empty(0)
        self._mean = np.empty((0, 3))
        self._act0 = 0
        self._next = 0  # next block the state machine consumes
        self._final = False
        self._level: tuple[int, float, float, float] | None = None  # anchor, quiet, on, off
        self._open: dict[str, Any] | None = None
        self._busy_last: int | None = None  # last active block of a span cut at max_s
        self._valid_run = 0  # valid blocks since the last gap
        self.rejected: dict[str, int] = {}
        self.valid_blocks = 0
        self.blocks_done = 0

    # -------------------------------------------------------------------- block features
    def push(self, acc_g: FloatArray) -> list[tuple[int, int, float, float]]:
        a = np.asarray(acc_g, dtype=np.float64).reshape(-1, 3)
        if len(a):
            self._pending = np.concatenate([self._pending, a]) if len(self._pending) else a.copy()
        nb = len(self._pending) // self.block_n
        if nb:
            x, self._pending = (self._pending[: nb * self.block_n],
                                self._pending[nb * self.block_n:])
            self._blocks(x)
        return self._run()

    def finish(self) -> list[tuple[int, int, float, float]]:
        """Decide what is left (a partial last block is dropped: under 0.1 s of data)."""
        self._final = True
        out = self._run()
        if self._open is not None:
            self._close(self._open["last"] + 1, out, at_end=True)
        return out

    def _blocks(self, x_g: FloatArray) -> None:
        bn = self.block_n
        nan = np.isnan(x_g).any(axis=1)
        if nan.any():  # hold the last valid sample through gaps so the filter stays sane
            idx = np.where(~nan, np.arange(len(x_g)), -1)
            np.maximum.accumulate(idx, out=idx)
            x_g = np.where((idx >= 0)[:, None], x_g[np.maximum(idx, 0)], self._last_valid)
        self._last_valid = x_g[-1].copy()
        y = self._bp(x_g * 1000.0)  # mg
        band = np.sqrt(((y**2).sum(axis=1)).reshape(-1, bn).mean(axis=1))
        means = x_g.reshape(-1, bn, 3).mean(axis=1) * 1000.0
        lagged = np.concatenate([self._means, means])[: len(means)]
        orient = np.linalg.norm(means - lagged, axis=1)
        act = np.fmax(band, orient)  # NaN lag (first blocks) -> band alone
        gap = nan.reshape(-1, bn).any(axis=1)
        act[gap] = np.nan
        self._means = np.concatenate([self._means, means])[-self.lag_n:]
        self._act = np.concatenate([self._act, act])
        self._mean = np.concatenate([self._mean, means])
        self.blocks_done += len(act)

    # -------------------------------------------------------------------- quiet level
    def _level_for(self, b: int) -> tuple[float, float, float] | None:
        """(quiet, onset, offset) levels for block ``b``, None while not yet known."""
        anchor = (b // self.every) * self.every
        if self._level is not None and self._level[0] == anchor:
            return self._level[1:]
        hi = max(anchor, self.every)
        if hi > self.blocks_done and not self._final:
            return None
        lo = max(0, anchor - self.hist_n)
        seg = self._act[lo - self._act0: hi - self._act0]
        seg = seg[np.isfinite(seg)]
        if not len(seg):
            quiet = np.nan
        else:
            quiet = float(np.quantile(seg, self.cfg.quiet_quantile))
        cfg = self.cfg
        lv = (quiet, quiet + max(cfg.on_k * quiet, cfg.on_mg), quiet + max(cfg.off_k * quiet, cfg.off_mg))
        self._level = (anchor, *lv)
        return lv

    # -------------------------------------------------------------------- state machine
    def _run(self) -> list[tuple[int, int, float, float]]:
        out: list[tuple[int, int, float, float]] = []
        while self._next < self.blocks_done:
            b = self._next
            lv = self._level_for(b)
            if lv is None:
                break
            quiet, on, off = lv
            a = self._act[b - self._act0]
            op = self._open
            if not np.isfinite(a) or not np.isfinite(quiet):  # gap, or no quiet level yet
                if op is not None:
                    self._reject("gap")
                    self._open = None
                self._valid_run = 0
                self._busy_last = None
                self._next += 1
                continue
            self.valid_blocks += 1
            self._valid_run += 1
            if self._busy_last is not None:  # after a span cut at max_s: wait for quiet
                if a > off:
                    self._busy_last = b
                elif b - self._busy_last >= self.quiet_n:
                    self._busy_last = None
            elif op is None:
                # after a gap the filter and the orientation reference need valid data first
                if a > on and self._valid_run > self.settle_n:
                    self._open = {"start": b, "last": b, "peak": a, "acts": [a], "on": on,
                                  "before": self._mean_before(b), "excursion": 0.0}
            else:
                # a foot held dorsiflexed is still: the movement lasts while it stays more than
                # half its largest excursion away from where it started
                disp = float(np.linalg.norm(self._mean[b - self._act0] - op["before"]))
                op["excursion"] = max(op["excursion"], disp)
                if disp > 0.5 * op["excursion"]:
                    a = max(a, disp)
                op["acts"].append(a)
                if a > off:
                    op["last"] = b
                    op["peak"] = max(op["peak"], a)
                elif b - op["last"] >= self.quiet_n:
                    self._close(op["last"] + 1, out)
                if self._open is not None and b - op["start"] >= self.max_n:
                    # too long for a limb movement (voluntary movement, a new posture): drop it
                    # and score nothing until the activity has ended
                    self._open = None
                    self._reject("long")
                    self._busy_last = b
            self._next += 1
        self._trim()
        return out

    def _mean_before(self, b: int) -> FloatArray:
        lo = max(self._act0, b - self.lag_n)
        seg = self._mean[lo - self._act0: b - self._act0]
        return seg.mean(axis=0) if len(seg) else self._mean[b - self._act0]

    def _reject(self, why: str) -> None:
        self.rejected[why] = self.rejected.get(why, 0) + 1

    def _close(self, end_block: int, out: list[tuple[int, int, float, float]],
               at_end: bool = False) -> None:
        op, self._open = self._open, None
        assert op is not None
        n = end_block - op["start"]
        if at_end:
            self._reject("gap")  # cut off by the end of the data: its offset is unknown
            return
        if n < self.min_n:
            self._reject("short")
            return
        if n > self.max_n:
            self._reject("long")
            return
        acts = np.asarray(op["acts"][: n])
        if np.count_nonzero(acts > max(op["on"], self.cfg.sustain_fraction * op["peak"])) < self.active_n:
            self._reject("weak")
            return
        after = self._mean[end_block - self._act0: end_block + self.quiet_n - self._act0].mean(axis=0)
        before = op["before"]
        cos = float(np.dot(before, after) / (np.linalg.norm(before) * np.linalg.norm(after) or 1.0))
        angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        out.append((op["start"] * self.block_n, end_block * self.block_n, float(op["peak"]), angle))

    def _trim(self) -> None:
        """Forget blocks no level, open movement or orientation lookup needs any more."""
        keep = min(self._next - self.hist_n - self.every - self.lag_n,
                   self._open["start"] - self.lag_n if self._open else self._next)
        cut = keep - self._act0
        if cut > 4 * self.hist_n:
            self._act = self._act[cut:]
            self._mean = self._mean[cut:]
            self._act0 = keep

    def settled_s(self) -> float:
        """Every movement with an onset before this time (s from the first sample) has been
        decided: returned by :meth:`push`, or rejected."""
        t = self._next * self.block_dt_s
        if self._open is not None:
            t = min(t, self._open["start"] * self.block_dt_s)
        return t

    @property
    def valid_s(self) -> float:
        return self.valid_blocks * self.block_dt_s


def collect(fs_acc_hz: float, found: list[tuple[int, int, float, float]], valid_s: float,
            rejected: dict[str, int], config: LimbMovementConfig) -> AccLimbMovements:
    """Bundle the streaming detector's output into :class:`AccLimbMovements`."""
    arr = np.array(found, dtype=np.float64).reshape(-1, 4)
    return AccLimbMovements(fs_acc_hz, arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64),
                            arr[:, 2], arr[:, 3], valid_s, dict(rejected), config)


def detect_limb_movements(acc_g: FloatArray, fs_acc_hz: float,
                          config: LimbMovementConfig | None = None) -> AccLimbMovements:
    """Limb movements of a whole recording: acc_g (n, 3) in g at ``fs_acc_hz``."""
    a = np.asarray(acc_g, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"acc_g must have shape (n, 3), got {a.shape}")
    det = AccLimbMovementDetector(fs_acc_hz, config)
    found = det.push(a) + det.finish()
    return collect(fs_acc_hz, found, det.valid_s, det.rejected, det.cfg)
