"""Analyse many recordings: folder discovery, all local cores or a Dask cluster, resume.

The unit of work is one recording: :func:`analyse_file` opens it with
``toetwitch.drivers.readers.open_recording`` and runs ``toetwitch.pipeline.analyse_source`` over it chunk by chunk,
so a recording larger than memory never has to fit in memory. That one function runs

* in this process (``workers=1``),
* in a pool of local worker processes (``workers=N``, the default is every core), or
* on a ``dask.distributed`` cluster (``dask="tcp://host:8786"`` or ``dask="local"``),

and the parent process alone writes the outputs, so every backend produces the same files.

Outputs under ``out_dir`` (docs/contracts.md §2, plus the batch tables):

* ``X/events.csv``, ``X/episodes.csv``, ``X/summary.json``, ``X/events.tsv`` and
  ``X/events.json`` (BIDS-style, docs/contracts.md §8) per recording (``X`` from :func:`output_names`),
  ``X/X.edf`` with ``write_edf``, and ``X/.toetwitch-source.json``, the fingerprint :func:`run_batch` uses to
  resume (see :func:`is_up_to_date`);
* ``summary.csv`` and ``summary.parquet``: one row per recording (:func:`summary_table`);
* ``failures.csv``: ``name``, ``path``, ``error`` for every recording that failed.

A recording's folder is written in a hidden staging folder inside ``out_dir`` and renamed into
place with its fingerprint already in it, so a killed batch never leaves a half-written
``X/`` that ``resume`` would trust.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.log import logger
from toetwitch.pipeline.run.discovery import discover_recordings, output_names, plan_jobs
from toetwitch.pipeline.run.executors import (
    CRASH_MESSAGE,
    LOOPBACK_HTTP,
    _iter_dask,
    _iter_in_process,
    _iter_processes,
    analyse_file,
    default_workers,
    run_task,
)
from toetwitch.pipeline.run.executors import _peak_rss_mb as _peak_rss_mb
from toetwitch.pipeline.run.executors import _progress_hook as _progress_hook
from toetwitch.pipeline.run.jobs import (
    FAILURES_CSV,
    FIELD_FILES,
    MARKER_NAME,
    MARKER_VERSION,
    OUTPUT_FILES,
    STAGING_NAME,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    SUMMARY_CSV,
    SUMMARY_PARQUET,
    TABLE_COLUMNS,
    BatchJob,
    BatchReport,
    Done,
    JobOutcome,
    SourceFingerprint,
    Task,
    TaskOutput,
    Writer,
)
from toetwitch.pipeline.run.resume import (
    _drop_stale,
    _marker,
    _read_summary,
    config_fingerprint,
    file_sha256,
    fingerprint_file,
    is_up_to_date,
)
from toetwitch.pipeline.run.tables import (
    _default_writer,
    _edf_writer,
    commit_outputs,
    flatten_summary,
    summary_table,
    write_tables,
)

__all__ = ["BatchJob", "BatchReport", "CRASH_MESSAGE", "Done", "FAILURES_CSV", "FIELD_FILES", "JobOutcome", "LOOPBACK_HTTP", "MARKER_NAME", "MARKER_VERSION", "OUTPUT_FILES", "STAGING_NAME", "STATUS_FAILED", "STATUS_OK", "STATUS_SKIPPED", "SUMMARY_CSV", "SUMMARY_PARQUET", "SourceFingerprint", "TABLE_COLUMNS", "Task", "TaskOutput", "Writer", "analyse_file", "commit_outputs", "config_fingerprint", "default_workers", "discover_recordings", "file_sha256", "fingerprint_file", "flatten_summary", "is_up_to_date", "output_names", "plan_jobs", "run_batch", "run_task", "summary_table", "write_tables"]


# --------------------------------------------------------------------------- the batch


def run_batch(
    jobs: Sequence[BatchJob],
    out_dir: Path | None,
    *,
    workers: int | None = None,
    dask: str | None = None,
    resume: bool = False,
    chunk_s: float = 60.0,
    config: Any = None,
    progress: bool = False,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    keep_results: bool = False,
    task: Task = analyse_file,
    writer: Writer | None = None,
    dask_timeout_s: float = 10.0,
    write_edf: bool = False,
) -> BatchReport:
    """Analyse every job and write its outputs and the combined tables.

    Parameters
    ----------
    jobs : from :func:`plan_jobs`.
    out_dir : output folder; None analyses without writing anything (``resume`` impossible).
    workers : local processes (default: every core; 1 = in this process), or the number of
        workers of ``dask="local"``.
    dask : ``"local"`` for a new LocalCluster on loopback, or a scheduler address
        (``tcp://host:8786``); the workers must see the input files at the same paths.
    resume : skip recordings whose outputs are up to date (:func:`is_up_to_date`).
    chunk_s : seconds of signal read and analysed at a time (bounds memory).
    progress : show a tqdm bar with ETA on stderr (by bytes of input, so big files weigh more).
    on_outcome : called in this process after each recording (in completion order), e.g. to
        print a line or write the journal; ``outcome.result`` is set for analysed recordings.
    keep_results : keep each ``AnalysisResult`` in the returned outcomes. Off by default so a
        batch of thousands of recordings holds only their summaries in memory.
    task, writer : the per-recording function and the output writer (tests inject others).
    write_edf : with the default writer, also write ``X/X.edf``, an EDF+ copy of the recording
        with its events as annotations (docs/contracts.md §8).

    A failure of one recording (bad file, error, crashed worker, unwritable output) is recorded
    in its outcome and the batch goes on.
    """
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}", 2)
    if chunk_s <= 0 or chunk_s != chunk_s:
        raise UserError(f"--chunk-s must be a positive number of seconds, got {chunk_s}", 2)
    if resume and out_dir is None:
        raise UserError("--resume needs an output folder (--out DIR)", 2)
    n_workers = workers or default_workers()
    extra_files = () if writer else FIELD_FILES
    writer = writer or (_edf_writer if write_edf else _default_writer)
    t0 = time.perf_counter()
    cfg_sha = config_fingerprint(config)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output folder {out_dir}: {exc}", 2) from exc

    outcomes: dict[int, JobOutcome] = {}
    todo: list[BatchJob] = []
    for job in jobs:
        if (resume and out_dir is not None and is_up_to_date(job.path, out_dir / job.name, cfg_sha)
                and all((out_dir / job.name / f).is_file() for f in extra_files)
                and (not write_edf or (out_dir / job.name / f"{job.name}.edf").is_file())):
            summary = _read_summary(out_dir / job.name)
            if summary is not None:
                outcomes[job.index] = JobOutcome(job, STATUS_SKIPPED, summary=summary)
                continue
        todo.append(job)

    from tqdm import tqdm

    total_bytes = sum(j.size_bytes for j in todo) or None
    bar = tqdm(
        total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc="analysing",
        file=sys.stderr, disable=not progress or not todo, leave=False, dynamic_ncols=True,
    )
    shown: dict[int, int] = {}  # bytes already shown for a recording still being analysed

    def advance(job: BatchJob, share: float) -> None:
        step = int(job.size_bytes * share) - shown.get(job.index, 0)
        if step > 0:
            shown[job.index] = shown.get(job.index, 0) + step
            bar.update(step)

    if dask is not None and todo:
        backend = "dask"
        stream = _iter_dask(todo, task, chunk_s, config, dask, n_workers, dask_timeout_s)
    elif n_workers == 1 or len(todo) <= 1:
        backend, n_workers = "in-process", 1
        stream = _iter_in_process(todo, task, chunk_s, config, advance)
    else:
        backend, n_workers = "processes", min(n_workers, len(todo))
        stream = _iter_processes(todo, task, chunk_s, config, n_workers)
    try:  # the three streams are generators: nothing starts before the loop below
        for skipped in sorted(outcomes.values(), key=lambda o: o.job.index):
            if on_outcome is not None:
                on_outcome(skipped)
        n_done = n_failed = 0
        try:
            for job, out, err, dt in stream:
                outcome = _finish(job, out, err, dt, out_dir, cfg_sha, writer)
                outcomes[job.index] = outcome if keep_results else dataclasses.replace(outcome, result=None)
                n_done += 1
                n_failed += outcome.status == STATUS_FAILED
                bar.set_postfix_str(f"{n_done}/{len(todo)} recordings, {n_failed} failed", refresh=False)
                bar.update(job.size_bytes - shown.pop(job.index, 0))
                if on_outcome is not None:
                    on_outcome(outcome)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    finally:
        bar.close()

    ordered = tuple(outcomes[j.index] for j in jobs if j.index in outcomes)
    tables: dict[str, Path] = {}
    if out_dir is not None:
        shutil.rmtree(out_dir / STAGING_NAME, ignore_errors=True)
        try:
            tables = write_tables(ordered, out_dir)
        except OSError as exc:
            raise UserError(f"cannot write the combined tables in {out_dir}: {exc}", 1) from exc
    return BatchReport(
        outcomes=ordered, out_dir=out_dir, elapsed_s=time.perf_counter() - t0,
        backend=backend, workers=n_workers, tables=tables,
    )


def _finish(
    job: BatchJob, out: TaskOutput | None, err: str | None, dt: float, out_dir: Path | None,
    cfg_sha: str, writer: Writer,
) -> JobOutcome:
    """Log the task's warnings and commit its outputs; a failure becomes the job's outcome."""
    if out is not None:
        for note in out.notes:  # readers' warnings already start with the path
            logger.warning("%s", note if note.startswith(str(job.path)) else f"{job.path}: {note}")
    if err is not None or out is None:
        if out_dir is not None:
            _drop_stale(job, out_dir / job.name, cfg_sha)
        return JobOutcome(job, STATUS_FAILED, error=err or "no result")
    summary = getattr(out.result, "summary", None)
    if out_dir is not None:
        try:
            commit_outputs(out_dir, job.name, out.result, _marker(job, out.fingerprint, cfg_sha), writer)
        except Exception as exc:  # noqa: BLE001 - disk full, permissions: fail this file only
            return JobOutcome(job, STATUS_FAILED, error=f"cannot write outputs to {out_dir / job.name}: {exc}")
    return JobOutcome(
        job, STATUS_OK, summary=summary, result=out.result, elapsed_s=dt,
        peak_rss_mb=out.peak_rss_mb, cpu_s=out.cpu_s,
    )


