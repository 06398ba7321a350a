"""Errors raised for bad input. Each names the file, where in it, and what is wrong."""

from __future__ import annotations

from pathlib import Path

from toetwitch import ToetwitchError


class DriverError(ToetwitchError):
    """The root of the drivers layer's errors (files, packets, Bluetooth)."""


class RecordingError(DriverError, ValueError):
    """A recording (file, packet or array) that cannot be used.

    Parameters
    ----------
    what : str
        What is wrong, in words a person can act on.
    path : str or Path, optional
        The file concerned.
    where : str, optional
        Where in the file: ``"line 12"``, ``"column 'emg_uv'"``, ``"signal 'EMG L'"``.
    """

    def __init__(self, what: str, path: str | Path | None = None, where: str | None = None):
        self.what = what
        self.path = None if path is None else str(path)
        self.where = where
        parts = [p for p in (self.path, where) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {what}" if prefix else what)
