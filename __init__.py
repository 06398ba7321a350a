"""toetwitch: counted muscle twitches, episodes, likely causes and when to see a doctor.

One import name. The layers are sub-packages (the repository keeps their folders at its top
level; ``pyproject.toml`` maps them): ``toetwitch.drivers`` (where samples come from),
``toetwitch.pipeline`` (detection, runners, store, presentation, command line) and
``toetwitch.models`` (causes and escalation). The public API (docs/contracts.md §5)::

    import toetwitch as tt

    result = tt.analyse(tt.read_recording("sample_data/rest_twitches.csv"))
    result.events, result.episodes, result.summary

Names are imported on first use, so that ``import toetwitch`` and commands that do not
analyse signals (``history``, ``export``, ``--help``) start without loading scipy.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("toetwitch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

#: public name -> module that defines it
_LAZY = {
    "Recording": "toetwitch.drivers.recording",
    "RecordingError": "toetwitch.drivers.errors",
    "read_recording": "toetwitch.drivers.readers",
    "open_recording": "toetwitch.drivers.readers",
    "analyse": "toetwitch.pipeline.detect.analysis",
    "analyse_source": "toetwitch.pipeline.detect.analysis",
    "DetectorConfig": "toetwitch.pipeline.detect.config",
    "EVENT_COLUMNS": "toetwitch.pipeline.detect.stream",
    "AnalysisResult": "toetwitch.pipeline.detect.stream",
    "StreamingAnalyser": "toetwitch.pipeline.detect.stream",
}

__all__ = ["EVENT_COLUMNS", "AnalysisResult", "DetectorConfig", "Recording", "RecordingError",
           "StreamingAnalyser", "ToetwitchError", "__version__", "analyse", "analyse_source",
           "open_recording", "read_recording"]

if TYPE_CHECKING:
    from toetwitch.drivers.errors import RecordingError
    from toetwitch.drivers.readers import open_recording, read_recording
    from toetwitch.drivers.recording import Recording
    from toetwitch.pipeline.detect.analysis import analyse, analyse_source
    from toetwitch.pipeline.detect.config import DetectorConfig
    from toetwitch.pipeline.detect.stream import EVENT_COLUMNS, AnalysisResult, StreamingAnalyser


class ToetwitchError(Exception):
    """The root of every error toetwitch raises on purpose: catch this to catch them all.

    Each layer has one subclass: ``toetwitch.drivers.errors.DriverError`` (bad input files,
    packets, Bluetooth), ``toetwitch.models.errors.ModelError`` (answers, knowledge base) and
    ``toetwitch.pipeline.errors.PipelineError`` (a command that cannot do what was asked).
    Their messages are meant for a person: the command line prints them without a traceback.
    """


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toetwitch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
