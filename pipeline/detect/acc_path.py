"""The accelerometer half of the detector: gravity removal, transients, movement.

Works like :mod:`toetwitch.pipeline.detect.emg_path`: fixed blocks aligned to the first sample, pure steps
on each group of complete blocks, so any chunking gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.filters import StreamingSOS, design_bandpass
from toetwitch.pipeline.detect.potentials import (
    FloatArray,
    Growing,
    RollingLevel,
    carry_clusters,
    cluster_indices,
)


@dataclass
class Transient:
    """One accelerometer transient; sample indices absolute at the accelerometer rate."""

    start: int
    end: int
    peak: int
    peak_mg: float


@dataclass
class AccPath:
    fs_hz: float
    cfg: DetectorConfig
    block_n: int = field(init=False)

    def __post_init__(self) -> None:
        cfg, fs = self.cfg, self.fs_hz
        self.block_n = max(2, round(cfg.block_s * fs))
        self.hist_n = max(1, round(cfg.noise_history_s / cfg.block_s))
        self.level_every = max(1, round(cfg.noise_update_s / cfg.block_s))
        self.merge_n = max(1, round(cfg.acc_merge_ms * fs / 1000))
        # band-pass removes gravity and posture (< 2 Hz) per axis; order 2 keeps it short
        self._bp = StreamingSOS(design_bandpass(cfg.acc_band_hz, fs, 2), n_channels=3)
        self.pending = np.empty((0, 3))
        self.n_done = 0
        self.last_valid = np.zeros(3)
        self.quiet_level = RollingLevel(cfg.noise_quantile, self.hist_n, self.level_every)
        self.block_level = Growing()  # quiet level (median |a|), mg
        self.block_rms = Growing()  # movement envelope, mg
        self.block_thr = Growing()
        self.block_nan = Growing(bool)
        #: keep transients (only the accelerometer-only path turns them into events)
        self.keep_transients = True
        self.buf_start = 0
        self.m_buf = np.empty(0)  # dynamic acceleration magnitude, mg
        self.open_cluster: tuple[int, int] | None = None
        self.transients: list[Transient] = []
        self.final = False

    @property
    def t_done_s(self) -> float:
        return self.n_done / self.fs_hz

    def push(self, acc_g: FloatArray) -> None:
        a = np.asarray(acc_g, dtype=np.float64).reshape(-1, 3)
        if len(a):
            self.pending = np.concatenate([self.pending, a]) if len(self.pending) else a.copy()
        nb = len(self.pending) // self.block_n
        if nb:
            x, self.pending = self.pending[: nb * self.block_n], self.pending[nb * self.block_n:]
            self._process_blocks(x * 1000.0)  # g -> mg

    def finish(self) -> None:
        self.final = True
        if self.open_cluster is not None:
            self._add_transient(*self.open_cluster)
            self.open_cluster = None

    def _process_blocks(self, x_mg: FloatArray) -> None:
        bn = self.block_n
        nan = np.isnan(x_mg).any(axis=1)
        if nan.any():
            idx = np.where(~nan, np.arange(len(x_mg)), -1)
            np.maximum.accumulate(idx, out=idx)
            x_mg = np.where((idx >= 0)[:, None], x_mg[np.maximum(idx, 0)], self.last_valid)
        self.last_valid = x_mg[-1].copy()
        y = self._bp(x_mg)
        m = np.sqrt((y**2).sum(axis=1))
        mb = m.reshape(-1, bn)
        block_nan = nan.reshape(-1, bn).any(axis=1)
        level = np.median(mb, axis=1)
        rms = np.sqrt((mb**2).mean(axis=1))
        usable = np.where(block_nan, np.nan, level)
        quiet = self.quiet_level(usable)
        thr = np.maximum(self.cfg.acc_threshold_k * quiet, self.cfg.acc_min_mg)
        thr = np.where(block_nan, np.inf, thr)
        self.block_level.append(level)
        self.block_rms.append(rms)
        self.block_thr.append(thr)
        self.block_nan.append(block_nan)
        cand = np.flatnonzero(mb > thr[:, None]) + self.n_done
        self.m_buf = np.concatenate([self.m_buf, m])
        self.n_done += len(x_mg)
        starts, ends, self.open_cluster = carry_clusters(
            *cluster_indices(cand, self.merge_n), self.open_cluster, self.merge_n, self.n_done
        )
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            self._add_transient(s, e)

    def _add_transient(self, s: int, e: int) -> None:
        if not self.keep_transients:
            return
        seg = self.m_buf[s - self.buf_start: e + 1 - self.buf_start]
        k = int(np.argmax(seg))
        self.transients.append(Transient(s, e, s + k, float(seg[k])))

    # ------------------------------------------------------------------ queries by time
    def available(self, t_s: float) -> bool:
        """Has the accelerometer been processed up to time ``t_s`` (or has it ended)?"""
        return self.final or self.n_done / self.fs_hz >= t_s

    def moving_fraction(self, t0_s: float, t1_s: float) -> float:
        """Share of blocks overlapping [t0, t1] whose movement envelope exceeds ``acc_move_mg``."""
        rms = self.block_rms.view()
        b0 = max(int(np.floor(t0_s * self.fs_hz / self.block_n)), 0)
        b1 = min(int(np.floor(t1_s * self.fs_hz / self.block_n)) + 1, len(rms))
        seg = rms[b0:b1]
        return float((seg > self.cfg.acc_move_mg).mean()) if len(seg) else 0.0

    def peak_in(self, t0_s: float, t1_s: float) -> tuple[float, bool]:
        """Largest dynamic acceleration (mg) in [t0, t1] and whether it crossed the threshold."""
        i0 = max(int(np.ceil(t0_s * self.fs_hz)), self.buf_start)
        i1 = min(int(np.floor(t1_s * self.fs_hz)) + 1, self.n_done)
        if i1 <= i0:
            return float("nan"), False
        seg = self.m_buf[i0 - self.buf_start: i1 - self.buf_start]
        k = int(np.argmax(seg))
        thr = self.block_thr.view()
        return float(seg[k]), bool(seg[k] > thr[(i0 + k) // self.block_n])

    def trim(self, keep_from_s: float) -> None:
        """Forget samples before ``keep_from_s`` (no pending decision needs them)."""
        keep = int(keep_from_s * self.fs_hz) - self.block_n
        if self.open_cluster is not None:
            keep = min(keep, self.open_cluster[0])
        for t in self.transients[:1]:
            keep = min(keep, t.start)
        cut = keep - self.buf_start
        if cut > 8 * self.block_n:
            self.m_buf = self.m_buf[cut:].copy()
            self.buf_start = keep

    def records(self) -> tuple[FloatArray, FloatArray, np.ndarray]:
        """Per-block quiet level (mg), movement envelope (mg) and gap flags."""
        return self.block_level.view(), self.block_rms.view(), self.block_nan.view()
