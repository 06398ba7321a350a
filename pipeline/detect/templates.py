"""An online template bank: the units already seen, to find their fainter later discharges.

Once a motor unit has fired clearly over the detection threshold, its waveform is known; a
later discharge of the same unit that stays under the threshold can still be told from noise
by that waveform (matched filtering / template matching, Kleine 2012; Jahanmiri-Nezhad 2014).

The bank learns from confident discharges only (over the threshold, not an artifact, compact)
and is asked about sub-threshold discharges. It is fed in peak order by
:class:`~toetwitch.pipeline.detect.emg_path.EmgPath`, whose peaks and features do not depend
on the chunking, so neither do the bank's answers (streaming = batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toetwitch.pipeline.detect.potentials import FloatArray, IntArray, lagged_copies


def normalised(shapes: FloatArray) -> FloatArray:
    """Each row of ``shapes`` (m, n) minus its mean, over its norm (a silent row stays 0)."""
    s = shapes - shapes.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", s, s))
    return s / np.where(norm > 0, norm, 1.0)[:, None]


def bank_similarity(templates: FloatArray, shapes: FloatArray, max_lag: int,
                    lagged: FloatArray | None = None) -> FloatArray:
    """Normalised cross-correlation of every unit-norm template (u, n) with every waveform
    (m, n), the best over lags up to ±``max_lag`` samples. Shape (u, m), in [-1, 1].
    ``lagged``: ``lagged_copies(templates, max_lag)`` when the caller keeps it."""
    u, n = templates.shape
    m = len(shapes)
    if u == 0 or m == 0:
        return np.full((u, m), -1.0)
    if lagged is None:
        lagged = lagged_copies(templates, max_lag)  # (u, 2·lag+1, n)
    corr = (lagged.reshape(-1, n) @ shapes.T).reshape(u, -1, m).max(axis=1)
    norm = np.sqrt(np.einsum("ij,ij->i", shapes, shapes))
    return corr / np.where(norm > 0, norm, np.inf)[None, :]


@dataclass
class TemplateBank:
    """At most ``max_units`` units, each a mean unit-norm waveform, the range of its sizes
    (p2p, µV), how many discharges made it and its last discharge (sample index).

    ``merge_corr``: a confident discharge this similar to a unit joins it (else it starts a new
    unit, the stalest one dropped when the bank is full); ``match_corr`` and
    ``amplitude_ratio``: a discharge is the unit's when at least this similar and its size
    within this factor of the unit's range; ``stale_n``: a unit not seen for this many
    samples is dropped.
    """

    width: int
    max_lag: int
    max_units: int = 16
    merge_corr: float = 0.9
    match_corr: float = 0.9
    amplitude_ratio: float = 1.5
    stale_n: int = 600_000
    sums: FloatArray = field(init=False)
    templates: FloatArray = field(init=False)
    lagged: FloatArray = field(init=False)
    lo_uv: FloatArray = field(init=False)
    hi_uv: FloatArray = field(init=False)
    count: IntArray = field(init=False)
    last: IntArray = field(init=False)

    def __post_init__(self) -> None:
        self.lag = max(min(self.max_lag, self.width - 1), 0)
        self.sums = np.empty((0, self.width))
        self.templates = np.empty((0, self.width))  # unit-norm mean waveform of each unit
        self.lagged = np.empty((0, 2 * self.lag + 1, self.width))  # their lagged copies
        self.lo_uv, self.hi_uv = np.empty(0), np.empty(0)
        self.count = np.empty(0, np.int64)
        self.last = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.count)

    def _keep(self, keep: np.ndarray) -> None:
        self.sums, self.templates, self.lagged = self.sums[keep], self.templates[keep], self.lagged[keep]
        self.lo_uv, self.hi_uv = self.lo_uv[keep], self.hi_uv[keep]
        self.count, self.last = self.count[keep], self.last[keep]

    def learn(self, peak: int, shape: FloatArray, p2p_uv: float) -> None:
        """Add one confident discharge (its waveform, shape (width,), and size)."""
        if len(shape) != self.width:
            return
        if len(self) and int(self.last.min()) < peak - self.stale_n:
            self._keep(peak - self.last <= self.stale_n)
        a = shape - shape.mean()
        norm = float(np.sqrt(a @ a))
        if norm <= 0:
            return
        a = a / norm
        if len(self):
            corr = self.lagged @ a  # (u, 2·lag+1)
            k = int(np.argmax(corr.max(axis=1)))
            j = int(np.argmax(corr[k]))
            if corr[k, j] >= self.merge_corr:
                # aligned to the unit at the lag where it matches best (a biphasic unit is
                # centred now on one phase, now on the other)
                self.sums[k] += np.roll(a, j - self.lag)
                t = self.sums[k] - self.sums[k].mean()
                self.templates[k] = t / np.sqrt(t @ t)
                self.lagged[k] = lagged_copies(self.templates[k][None, :], self.lag)[0]
                self.lo_uv[k], self.hi_uv[k] = min(self.lo_uv[k], p2p_uv), max(self.hi_uv[k], p2p_uv)
                self.count[k] += 1
                self.last[k] = peak
                return
        if len(self) >= self.max_units:
            self._keep(np.arange(len(self)) != int(np.argmin(self.last)))
        self.sums = np.vstack([self.sums, a])
        self.templates = np.vstack([self.templates, a])
        self.lagged = np.concatenate([self.lagged, lagged_copies(a[None, :], self.lag)])
        self.lo_uv, self.hi_uv = np.append(self.lo_uv, p2p_uv), np.append(self.hi_uv, p2p_uv)
        self.count, self.last = np.append(self.count, 1), np.append(self.last, peak)

    def match(self, peaks: IntArray, shapes: FloatArray, p2p_uv: FloatArray) -> np.ndarray:
        """Which of these discharges (peaks (m,), waveforms (m, width), sizes (m,) µV) are a
        known unit's: similar enough to a unit that is not stale, of a size within
        ``amplitude_ratio`` of its range. Shape (m,), bool."""
        m = len(peaks)
        if not len(self) or m == 0 or shapes.shape[1] != self.width:
            return np.zeros(m, dtype=bool)
        sims = bank_similarity(self.templates, shapes, self.lag, self.lagged)  # (u, m)
        r = self.amplitude_ratio
        ok = ((sims >= self.match_corr)
              & (p2p_uv[None, :] >= self.lo_uv[:, None] / r) & (p2p_uv[None, :] <= self.hi_uv[:, None] * r)
              & (peaks[None, :] - self.last[:, None] <= self.stale_n))
        return ok.any(axis=0)
