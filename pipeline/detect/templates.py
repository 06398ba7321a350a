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

from toetwitch.pipeline.detect.potentials import FloatArray, IntArray, _lag_index, lagged_copies

#: discharges after which a unit's mean waveform is settled (its noise averaged ~6-fold down):
#: later ones only widen its size range and renew it
SETTLED_COUNT = 32


_add = np.add.reduce


def roll_add(acc: FloatArray, a: FloatArray, shift: int) -> None:
    """``acc += np.roll(a, shift)`` in place, both shape (n,), without the rolled copy."""
    n = len(a)
    s = shift % n if n else 0
    if s == 0:
        acc += a
        return
    acc[s:] += a[: n - s]
    acc[:s] += a[n - s:]


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
    unit in the stalest unit's place when the bank is full); ``match_corr`` and
    ``amplitude_ratio``: a discharge is the unit's when at least this similar and its size
    within this factor of the unit's range; ``stale_n``: a unit not seen for this many
    samples is forgotten (it matches nothing, and a new unit may take its place).
    Arrays are allocated once for ``max_units`` (the bank is taught every accepted twitch).
    """

    width: int
    max_lag: int
    max_units: int = 16
    merge_corr: float = 0.9
    match_corr: float = 0.9
    amplitude_ratio: float = 1.5
    stale_n: int = 600_000
    n: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        u, w = self.max_units, self.width
        self.lag = max(min(self.max_lag, w - 1), 0)
        self._sums = np.zeros((u, w))
        self._templates = np.zeros((u, w))  # unit-norm mean waveform of each unit
        self._lagged = np.zeros((u, 2 * self.lag + 1, w))  # their lagged copies
        self._pad = np.zeros(w + 2 * self.lag)  # one template padded with lag zeros each side
        self._lag_idx = _lag_index(w, self.lag)
        self._lo, self._hi = np.zeros(u), np.zeros(u)
        self._count = np.zeros(u, np.int64)
        self._last = np.zeros(u, np.int64)

    def __len__(self) -> int:
        return self.n

    @property
    def templates(self) -> FloatArray:
        """Unit-norm mean waveform of each unit, shape (units, width)."""
        return self._templates[: self.n]

    @property
    def size_range_uv(self) -> tuple[FloatArray, FloatArray]:
        """Smallest and largest p2p (µV) of each unit's discharges, shapes (units,)."""
        return self._lo[: self.n], self._hi[: self.n]

    def learn(self, peak: int, shape: FloatArray, p2p_uv: float) -> None:
        """Add one confident discharge (its waveform, shape (width,), and size).

        Called once per accepted twitch, so kept to a few array operations: the means are
        ``np.add.reduce(x) / width`` (what ``x.mean()`` computes, without its wrapper), the
        realignment adds the two halves of the roll in place, and a template's lagged copies
        are gathered into their preallocated row (:func:`roll_add`, :meth:`_set`)."""
        w = self.width
        if len(shape) != w:
            return
        a = shape - _add(shape) / w
        norm = float(np.sqrt(a @ a))
        if norm <= 0:
            return
        a /= norm
        n, n_lags = self.n, 2 * self.lag + 1
        if n:
            corr = self._lagged[:n].reshape(n * n_lags, -1) @ a
            best = int(corr.argmax())
            k, j = divmod(best, n_lags)
            if corr[best] >= self.merge_corr and peak - int(self._last[k]) <= self.stale_n:
                if self._count[k] < SETTLED_COUNT:
                    # aligned to the unit at the lag where it matches best (a biphasic unit
                    # is centred now on one phase, now on the other)
                    sums = self._sums[k]
                    roll_add(sums, a, j - self.lag)
                    t = sums - _add(sums) / w
                    self._set(k, t / np.sqrt(t @ t))
                if p2p_uv < self._lo[k]:
                    self._lo[k] = p2p_uv
                if p2p_uv > self._hi[k]:
                    self._hi[k] = p2p_uv
                self._count[k] += 1
                self._last[k] = peak
                return
        if n < self.max_units:
            k, self.n = n, n + 1
        else:
            k = int(np.argmin(self._last))
        self._sums[k] = a
        self._set(k, a)
        self._lo[k] = self._hi[k] = p2p_uv
        self._count[k], self._last[k] = 1, peak

    def _set(self, k: int, t: FloatArray) -> None:
        self._templates[k] = t
        # lagged_copies(t[None, :], lag)[0], gathered straight into its row
        self._pad[self.lag: self.lag + self.width] = t
        np.take(self._pad, self._lag_idx, out=self._lagged[k])

    def match(self, peaks: IntArray, shapes: FloatArray, p2p_uv: FloatArray) -> np.ndarray:
        """Which of these discharges (peaks (m,), waveforms (m, width), sizes (m,) µV) are a
        known unit's: similar enough to a unit that is not stale, of a size within
        ``amplitude_ratio`` of its range. Shape (m,), bool."""
        m, n = len(peaks), self.n
        if not n or m == 0 or shapes.shape[1] != self.width:
            return np.zeros(m, dtype=bool)
        sims = bank_similarity(self._templates[:n], shapes, self.lag, self._lagged[:n])  # (u, m)
        r = self.amplitude_ratio
        ok = ((sims >= self.match_corr)
              & (p2p_uv[None, :] >= self._lo[:n, None] / r) & (p2p_uv[None, :] <= self._hi[:n, None] * r)
              & (peaks[None, :] - self._last[:n, None] <= self.stale_n))
        return ok.any(axis=0)
