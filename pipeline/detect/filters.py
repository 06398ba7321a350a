"""Filter design (pure) apart from filter application (stateful, chunk by chunk).

Every filter is causal and applied with :func:`scipy.signal.sosfilt` carrying ``zi`` between
calls, so feeding a signal in any chunks gives bit-identical output to feeding it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def design_notches(freqs_hz: Sequence[float], fs_hz: float, q: float = 30.0) -> FloatArray:
    """IIR notches at ``freqs_hz`` (mains and those harmonics to remove: see
    :func:`mains_harmonics` and :func:`detect_mains`). Returns SOS of shape (n_notches, 6)."""
    sections = [signal.tf2sos(*signal.iirnotch(f, q, fs=fs_hz)) for f in freqs_hz]
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


def white_noise_gain(sos: FloatArray, fs_hz: float) -> float:
    """How much the filter scales the σ of white noise: the RMS of its impulse response,
    √Σh² (over 4 s, long after a 20 Hz high-pass or a Q 30 notch has rung out)."""
    if len(sos) == 0:
        return 1.0
    impulse = np.zeros(max(16, round(4.0 * fs_hz)))
    impulse[0] = 1.0
    h = signal.sosfilt(sos, impulse)
    return float(np.sqrt(np.dot(h, h)))


def _hum_ratio(x_uv: FloatArray, fs_hz: float) -> Callable[[float], float] | None:
    """Welch power within 1 Hz of a frequency over the median power of the 20-450 Hz band,
    as a function of the frequency; None when the window is under 0.5 s or silent."""
    if len(x_uv) < int(0.5 * fs_hz):
        return None
    x = np.nan_to_num(np.asarray(x_uv, dtype=np.float64) - np.nanmean(x_uv))
    nper = int(min(len(x), 2 ** int(np.log2(fs_hz))))  # ~1 Hz resolution
    f, p = signal.welch(x, fs=fs_hz, nperseg=nper)
    band = (f >= 20) & (f <= min(450, 0.45 * fs_hz))
    floor = float(np.median(p[band])) if band.any() else 0.0
    if floor <= 0:
        return None

    def ratio(hz: float) -> float:
        near = np.abs(f - hz) <= 1.0
        return float(p[near].max() / floor) if near.any() else 0.0

    return ratio


def _fundamental(ratio: Callable[[float], float], fs_hz: float, candidates: Sequence[float],
                 min_ratio: float) -> float | None:
    best, best_ratio = None, min_ratio
    for c in candidates:
        if c < 0.45 * fs_hz and (r := ratio(c)) > best_ratio:
            best, best_ratio = float(c), r
    return best


def _present(ratio: Callable[[float], float], freqs: list[float], min_ratio: float) -> list[float]:
    return freqs[:1] + [h for h in freqs[1:] if ratio(h) > min_ratio]


def detect_mains(x_uv: FloatArray, fs_hz: float, top_hz: float,
                 candidates: Sequence[float] = (50.0, 60.0),
                 min_ratio: float = 4.0) -> tuple[float | None, list[float]]:
    """The mains frequency present in ``x_uv`` and the frequencies to notch (one Welch pass).

    The fundamental is the strongest candidate whose Welch power exceeds the median power of
    the 20-450 Hz band by ``min_ratio`` (6 dB), else None (and nothing to notch). Of its
    harmonics up to ``top_hz`` those that stand out by the same ratio are notched besides it:
    real hum is mostly the fundamental and odd harmonics, and a notch where there is no hum
    only removes EMG. Pure function of the probe window, so batch and streaming choose the same.
    """
    ratio = _hum_ratio(x_uv, fs_hz)
    hz = None if ratio is None else _fundamental(ratio, fs_hz, candidates, min_ratio)
    if hz is None or ratio is None:
        return None, []
    return hz, _present(ratio, mains_harmonics(hz, fs_hz, top_hz), min_ratio)
