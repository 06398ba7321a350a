"""Where samples come from: file readers, BLE sensors, the emulated sensor.

Knows nothing of detection or models. Public API (docs/contracts.md §5)::

    from toetwitch.drivers import Recording, read_recording
"""

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.recording import MIN_FS_ACC_HZ, MIN_FS_EMG_HZ, Recording

__all__ = ["MIN_FS_ACC_HZ", "MIN_FS_EMG_HZ", "Recording", "RecordingError", "read_recording"]


def __getattr__(name: str):  # lazy: keep `import drivers` light
    if name == "read_recording":
        from toetwitch.drivers.readers import read_recording

        return read_recording
    raise AttributeError(name)
