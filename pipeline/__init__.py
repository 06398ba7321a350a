"""Filtering, twitch detection, episodes, streaming and batch runners, journal, reports, CLI.

Public API (docs/contracts.md §5)::

    from toetwitch.drivers import Recording, read_recording
    from toetwitch.pipeline import analyse

    result = analyse(read_recording("sample_data/rest_twitches.csv"))
    result.events, result.episodes, result.summary

The names below are imported on first use, so that commands which do not analyse signals
(``history``, ``export``, ``--help``) start without loading scipy.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("toetwitch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

_LAZY = {
    "analyse": "toetwitch.pipeline.detect.analysis",
    "analyse_source": "toetwitch.pipeline.detect.analysis",
    "DetectorConfig": "toetwitch.pipeline.detect.config",
    "EVENT_COLUMNS": "toetwitch.pipeline.detect.stream",
    "AnalysisResult": "toetwitch.pipeline.detect.stream",
    "StreamingAnalyser": "toetwitch.pipeline.detect.stream",
}

__all__ = ["EVENT_COLUMNS", "AnalysisResult", "DetectorConfig", "StreamingAnalyser", "__version__",
           "analyse", "analyse_source"]

if TYPE_CHECKING:
    from toetwitch.pipeline.detect.analysis import analyse, analyse_source
    from toetwitch.pipeline.detect.config import DetectorConfig
    from toetwitch.pipeline.detect.stream import EVENT_COLUMNS, AnalysisResult, StreamingAnalyser


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
