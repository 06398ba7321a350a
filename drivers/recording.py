"""The :class:`Recording` type: one surface-EMG channel and/or one 3-axis accelerometer.

docs/contracts.md §5. Each stream has its own sample rate, read from the source, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toetwitch.drivers.errors import RecordingError

#: Lowest usable EMG rate: surface potentials need the 20-450 Hz band (SENIAM/ISEK).
MIN_FS_EMG_HZ = 500.0
#: Lowest usable accelerometer rate: twitch/MMG band reaches 20+ Hz.
MIN_FS_ACC_HZ = 50.0
#: Above this a rate comes from a damaged header or timestamps, not from a sensor (research
#: EMG amplifiers sample at up to ~20 kHz); it would also need absurd memory per block.
MAX_FS_HZ = 100_000.0


@dataclass(frozen=True, eq=False)
class Recording:
    """A recording of foot surface EMG and/or 3-axis acceleration.

    Parameters
    ----------
    emg_uv : ndarray, shape (n,), optional
        Surface EMG in microvolts. NaN marks samples lost in transmission (a gap).
    fs_emg_hz : float, optional
        EMG sample rate in Hz (required with ``emg_uv``; >= 500 Hz).
    acc_g : ndarray, shape (m, 3), optional
        Acceleration in units of g (x, y, z). NaN rows mark lost samples.
    fs_acc_hz : float, optional
        Accelerometer sample rate in Hz (required with ``acc_g``; >= 50 Hz).
    name : str
        Short name (the file name without extension for files).
    start_time : str, optional
        ISO-8601 wall-clock time of the first sample, when the source knows it.
    meta : dict
        Provenance: source path, format, reader notes, packet statistics.
    """

    emg_uv: NDArray[np.floating[Any]] | None = None
    fs_emg_hz: float | None = None
    acc_g: NDArray[np.floating[Any]] | None = None
    fs_acc_hz: float | None = None
    name: str = "recording"
    start_time: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.meta.get("path")
        if self.emg_uv is None and self.acc_g is None:
            raise RecordingError("the recording holds neither EMG nor accelerometer data", src)
        if self.emg_uv is not None:
            emg = np.asarray(self.emg_uv)
            if emg.ndim != 1:
                raise RecordingError(f"emg_uv must have shape (n,), got {emg.shape}", src)
            if self.fs_emg_hz is None:
                raise RecordingError("emg_uv given without fs_emg_hz", src)
            check_rate(float(self.fs_emg_hz), MIN_FS_EMG_HZ, "EMG", src)
            object.__setattr__(self, "emg_uv", emg)
            object.__setattr__(self, "fs_emg_hz", float(self.fs_emg_hz))
        if self.acc_g is not None:
            acc = np.asarray(self.acc_g)
            if acc.ndim != 2 or acc.shape[1] != 3:
                raise RecordingError(f"acc_g must have shape (m, 3), got {acc.shape}", src)
            if self.fs_acc_hz is None:
                raise RecordingError("acc_g given without fs_acc_hz", src)
            check_rate(float(self.fs_acc_hz), MIN_FS_ACC_HZ, "accelerometer", src)
            object.__setattr__(self, "acc_g", acc)
            object.__setattr__(self, "fs_acc_hz", float(self.fs_acc_hz))

    @property
    def duration_s(self) -> float:
        """Length of the longer stream in seconds."""
        d = 0.0
        if self.emg_uv is not None and self.fs_emg_hz:
            d = max(d, len(self.emg_uv) / self.fs_emg_hz)
        if self.acc_g is not None and self.fs_acc_hz:
            d = max(d, len(self.acc_g) / self.fs_acc_hz)
        return d

    @property
    def streams(self) -> str:
        """``"emg"``, ``"acc"`` or ``"emg+acc"``."""
        return "+".join(s for s, a in (("emg", self.emg_uv), ("acc", self.acc_g)) if a is not None)


def check_rate(fs_hz: float, minimum_hz: float, stream: str, path: object = None) -> None:
    """Raise :class:`RecordingError` if ``fs_hz`` is not finite, below ``minimum_hz`` or
    above :data:`MAX_FS_HZ`."""
    if not np.isfinite(fs_hz) or fs_hz <= 0:
        raise RecordingError(f"{stream} sample rate {fs_hz!r} Hz is not a positive number", path)
    if fs_hz > MAX_FS_HZ:
        raise RecordingError(
            f"{stream} sample rate {fs_hz:g} Hz is implausibly high (above {MAX_FS_HZ:g} Hz): "
            "the timestamps or the header are probably damaged",
            path,
        )
    if fs_hz < minimum_hz:
        raise RecordingError(
            f"{stream} sample rate {fs_hz:g} Hz is too low: toetwitch needs at least "
            f"{minimum_hz:g} Hz for this stream",
            path,
        )
