"""Filtering, twitch detection, episodes, streaming and batch runners, journal, reports, CLI.

Public API (contracts §5)::

    from drivers import Recording, read_recording
    from pipeline import analyse

    result = analyse(read_recording("sample_data/rest_twitches.csv"))
    result.events, result.episodes, result.summary
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("toetwitch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

from pipeline.analysis import analyse, analyse_source  # noqa: E402
from pipeline.config import DetectorConfig  # noqa: E402
from pipeline.stream import EVENT_COLUMNS, AnalysisResult, StreamingAnalyser  # noqa: E402

__all__ = [
    "EVENT_COLUMNS",
    "AnalysisResult",
    "DetectorConfig",
    "StreamingAnalyser",
    "__version__",
    "analyse",
    "analyse_source",
]
