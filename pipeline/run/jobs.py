"""What a batch is made of: jobs, fingerprints, task outputs, outcomes, the report, statuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The fingerprint file inside each recording's output folder.
MARKER_NAME = ".toetwitch-source.json"


#: Hidden folder inside the output folder where outputs are written before being renamed.
STAGING_NAME = ".toetwitch-partial"


SUMMARY_CSV = "summary.csv"


SUMMARY_PARQUET = "summary.parquet"


FAILURES_CSV = "failures.csv"


#: The files a recording's folder must hold for ``resume`` to trust it.
OUTPUT_FILES = ("events.csv", "episodes.csv", "summary.json")


#: Files the default writer adds (docs/contracts.md §8); resume re-analyses a folder without them.
FIELD_FILES = ("events.tsv", "events.json")


#: Leading columns of the combined summary table; the flattened summary keys follow.
TABLE_COLUMNS = ("name", "path", "status", "error")


#: Version of the fingerprint format; bump when its meaning changes.
MARKER_VERSION = 1


STATUS_OK = "ok"


STATUS_SKIPPED = "skipped"  # outputs already up to date (resume)


STATUS_FAILED = "failed"


@dataclass(frozen=True)
class BatchJob:
    """One recording to analyse.

    ``path`` is the file as discovered (relative when the person gave a relative path; used in
    messages and tables); ``name`` is its output folder under the output folder.
    """

    index: int
    path: str
    name: str
    size_bytes: int


@dataclass(frozen=True)
class SourceFingerprint:
    """What identifies a recording file's content: size in bytes, mtime in ns, SHA-256."""

    size_bytes: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class TaskOutput:
    """What the per-recording task returns to the parent.

    ``result`` is the ``toetwitch.pipeline.AnalysisResult``; ``notes`` are the warnings raised while
    reading or analysing (re-logged by the parent with the file name); ``peak_rss_mb`` is the
    peak resident memory of the process that ran the task, in MB; ``cpu_s`` the CPU seconds
    the task used (independent of other load on the machine).
    """

    result: Any
    fingerprint: SourceFingerprint
    notes: tuple[str, ...] = ()
    peak_rss_mb: float = float("nan")
    cpu_s: float = float("nan")


@dataclass(frozen=True)
class JobOutcome:
    """How one recording went: ``status`` is ``ok``, ``skipped`` (up to date) or ``failed``.

    ``summary`` is the summary dict (read back from ``summary.json`` when skipped); ``result``
    is the ``AnalysisResult`` of a recording analysed in this run as passed to ``on_outcome``
    (kept in the report only with ``run_batch(keep_results=True)``), else None.
    """

    job: BatchJob
    status: str
    error: str | None = None
    summary: dict[str, Any] | None = None
    result: Any = None
    elapsed_s: float = 0.0
    peak_rss_mb: float = float("nan")
    cpu_s: float = float("nan")


@dataclass(frozen=True)
class BatchReport:
    """Every recording's outcome (in job order) and how the batch ran."""

    outcomes: tuple[JobOutcome, ...]
    out_dir: Path | None
    elapsed_s: float
    backend: str  # "in-process" | "processes" | "dask"
    workers: int
    tables: dict[str, Path] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failures(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == STATUS_FAILED]

    @property
    def exit_code(self) -> int:
        """docs/contracts.md §2: 0 when every recording was analysed (or up to date), 1 when some failed."""
        return 1 if self.failures else 0

    @property
    def signal_hours(self) -> float:
        """Hours of signal in the recordings analysed or skipped (not failed)."""
        total_s = 0.0
        for o in self.outcomes:
            d = (o.summary or {}).get("duration_s")
            if isinstance(d, int | float) and d == d:
                total_s += float(d)
        return total_s / 3600.0


#: The per-recording task: ``task(path, chunk_s, config) -> TaskOutput``. Must be a picklable,
#: importable module-level function so that worker processes and Dask workers can run it.
Task = Callable[[str, float, Any], TaskOutput]


#: Writes one result into a folder: ``writer(result, folder)``.
Writer = Callable[[Any, Path], None]


#: One finished task: the job, its output or error, and the seconds it took.
Done = tuple[BatchJob, "TaskOutput | None", "str | None", float]
