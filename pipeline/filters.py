"""Filter design (pure) apart from filter application (stateful, chunk by chunk).

Every filter is causal and applied with :func:`scipy.signal.sosfilt` carrying ``zi`` between
calls, so feeding a signal in any chunks gives bit-identical output to feeding it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

FloatArray = NDArray[np.float64]


def usable_band(band_hz: tuple[float, float], fs_hz: float) -> tuple[float, float]:
    """Clip a band's upper edge to 0.45·fs so it stays below Nyquist at any sample rate."""
    lo, hi = band_hz
    hi = min(hi, 0.45 * fs_hz)
    if not 0 < lo < hi:
        raise ValueError(f"band {band_hz} Hz is empty at fs = {fs_hz:g} Hz")
    return lo, hi


def design_bandpass(band_hz: tuple[float, float], fs_hz: float, order: int = 4) -> FloatArray:
    """Butterworth band-pass of ``order`` per edge as second-order sections, shape (order, 6)."""
    lo, hi = usable_band(band_hz, fs_hz)
    return np.asarray(signal.butter(order, [lo, hi], btype="bandpass",
                                    fs=fs_hz, output="sos"))


def design_notches(mains_hz: float | None, fs_hz: float, top_hz: float, q: float = 30.0,
                   harmonics: Sequence[float] | None = None) -> FloatArray:
    """IIR notches at ``mains_hz`` and its harmonics up to ``top_hz`` (and below 0.45·fs).

    ``harmonics`` (Hz), when given, are the only frequencies notched (see
    :func:`detect_mains_harmonics`). Returns SOS of shape (n_notches, 6); shape (0, 6) when
    ``mains_hz`` is None.
    """
    if mains_hz is None:
        return np.zeros((0, 6))
    freqs = list(harmonics) if harmonics is not None else mains_harmonics(mains_hz, fs_hz, top_hz)
    sections = []
    for f in freqs:
        b, a = signal.iirnotch(f, q, fs=fs_hz)
        sections.append(signal.tf2sos(b, a))
    return np.vstack(sections) if sections else np.zeros((0, 6))


def mains_harmonics(mains_hz: float, fs_hz: float, top_hz: float) -> list[float]:
    """``mains_hz`` and its multiples up to ``top_hz`` and below 0.45·fs."""
    out, f = [], mains_hz
    while f <= min(top_hz, 0.45 * fs_hz):
        out.append(f)
        f += mains_hz
    return out


def cascade(*sos: FloatArray) -> FloatArray:
    """Join SOS filters into one cascade (one ``sosfilt`` call, one Python overhead)."""
    parts = [s for s in sos if len(s)]
    return np.vstack(parts) if parts else np.zeros((0, 6))


class StreamingSOS:
    """Apply an SOS filter chunk by chunk; output equals ``sosfilt`` on the whole signal.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
    n_channels : int
        Number of channels (columns) of the input; 0 for 1-D input.

    The state starts at the steady state for the first sample (``sosfilt_zi * x0``) so the
    filter does not ring at the start of a recording.
    """

    def __init__(self, sos: FloatArray, n_channels: int = 0):
        self.sos = np.asarray(sos, dtype=np.float64)
        self.n_channels = n_channels
        self._zi: FloatArray | None = None

    def reset(self) -> None:
        self._zi = None

    def __call__(self, x: FloatArray) -> FloatArray:
        """Filter the next chunk. ``x`` shape (n,) or (n, n_channels); returns the same shape."""
        if len(self.sos) == 0 or len(x) == 0:
            return np.array(x, dtype=np.float64, copy=True)
        if self._zi is None:
            zi0 = signal.sosfilt_zi(self.sos)  # (n_sections, 2)
            if x.ndim == 1:
                self._zi = zi0 * x[0]
            else:
                self._zi = zi0[:, :, None] * x[0][None, None, :]
        y, self._zi = signal.sosfilt(self.sos, x, axis=0, zi=self._zi)
        return np.asarray(y)

    def state(self) -> dict[str, Any]:
        return {"sos_sections": int(len(self.sos))}


def filter_whole(sos: FloatArray, x: FloatArray) -> FloatArray:
    """Pure-function form of :class:`StreamingSOS` for a whole array."""
    return StreamingSOS(sos, 0 if x.ndim == 1 else x.shape[1])(x)


def detect_mains_hz(x_uv: FloatArray, fs_hz: float, candidates: Sequence[float] = (50.0, 60.0),
                    min_ratio: float = 4.0) -> float | None:
    """Which mains frequency is present in ``x_uv``, if any.

    Compares the Welch power at each candidate with the median power of the 20-450 Hz band;
    picks the strongest candidate whose ratio exceeds ``min_ratio`` (6 dB), else None.
    Pure function of the probe window, so batch and streaming choose the same.
    """
    if len(x_uv) < int(0.5 * fs_hz):
        return None
    f, p, floor = _welch_floor(x_uv, fs_hz)
    if floor <= 0:
        return None
    best, best_ratio = None, min_ratio
    for c in candidates:
        if c >= 0.45 * fs_hz:
            continue
        near = np.abs(f - c) <= 1.0
        ratio = float(p[near].max() / floor)
        if ratio > best_ratio:
            best, best_ratio = float(c), ratio
    return best


def _welch_floor(x_uv: FloatArray, fs_hz: float) -> tuple[FloatArray, FloatArray, float]:
    x = np.nan_to_num(np.asarray(x_uv, dtype=np.float64) - np.nanmean(x_uv))
    nper = int(min(len(x), 2 ** int(np.log2(fs_hz))))  # ~1 Hz resolution
    f, p = signal.welch(x, fs=fs_hz, nperseg=nper)
    band = (f >= 20) & (f <= min(450, 0.45 * fs_hz))
    floor = float(np.median(p[band])) if band.any() else 0.0
    return f, p, floor


def detect_mains_harmonics(x_uv: FloatArray, fs_hz: float, mains_hz: float, top_hz: float,
                           min_ratio: float = 4.0) -> list[float]:
    """Which of ``mains_hz``'s harmonics (up to ``top_hz``) stand out in ``x_uv``.

    The fundamental is always kept; a harmonic is kept when its Welch power exceeds the
    20-450 Hz median by ``min_ratio`` (6 dB), as for the fundamental. Real hum is mostly the
    fundamental and odd harmonics; a notch where there is no hum only removes EMG (and costs
    a filter section), so absent harmonics get none. Pure function of the probe window.
    """
    freqs = mains_harmonics(mains_hz, fs_hz, top_hz)
    if len(x_uv) < int(0.5 * fs_hz):
        return freqs
    f, p, floor = _welch_floor(x_uv, fs_hz)
    if floor <= 0:
        return freqs
    keep = [freqs[0]] if freqs else []
    for h in freqs[1:]:
        near = np.abs(f - h) <= 1.0
        if near.any() and float(p[near].max() / floor) > min_ratio:
            keep.append(h)
    return keep
