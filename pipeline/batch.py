"""Analyse many recordings: folder discovery, all local cores or a Dask cluster, resume.

The unit of work is one recording: :func:`analyse_file` opens it with
``drivers.readers.open_recording`` and runs ``pipeline.analyse_source`` over it chunk by chunk,
so a recording larger than memory never has to fit in memory. That one function runs

* in this process (``workers=1``),
* in a pool of local worker processes (``workers=N``, the default is every core), or
* on a ``dask.distributed`` cluster (``dask="tcp://host:8786"`` or ``dask="local"``),

and the parent process alone writes the outputs, so every backend produces the same files.

Outputs under ``out_dir`` (contracts §2, plus the batch tables):

* ``X/events.csv``, ``X/episodes.csv``, ``X/summary.json``, ``X/events.tsv`` and
  ``X/events.json`` (BIDS-style, contracts §8) per recording (``X`` from :func:`output_names`),
  ``X/X.edf`` with ``write_edf``, and ``X/.toetwitch-source.json``, the fingerprint :func:`run_batch` uses to
  resume (see :func:`is_up_to_date`);
* ``summary.csv`` and ``summary.parquet``: one row per recording (:func:`summary_table`);
* ``failures.csv``: ``name``, ``path``, ``error`` for every recording that failed.

A recording's folder is written in a hidden staging folder inside ``out_dir`` and renamed into
place with its fingerprint already in it, so a killed batch never leaves a half-written
``X/`` that ``resume`` would trust.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import UserError
from pipeline.log import logger

#: The fingerprint file inside each recording's output folder.
MARKER_NAME = ".toetwitch-source.json"
#: Hidden folder inside the output folder where outputs are written before being renamed.
STAGING_NAME = ".toetwitch-partial"
SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
FAILURES_CSV = "failures.csv"
#: The files a recording's folder must hold for ``resume`` to trust it.
OUTPUT_FILES = ("events.csv", "episodes.csv", "summary.json")
#: Files the default writer adds (contracts §8); resume re-analyses a folder without them.
FIELD_FILES = ("events.tsv", "events.json")
#: Leading columns of the combined summary table; the flattened summary keys follow.
TABLE_COLUMNS = ("name", "path", "status", "error")
#: Version of the fingerprint format; bump when its meaning changes.
MARKER_VERSION = 1

STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"  # outputs already up to date (resume)
STATUS_FAILED = "failed"

#: The scheduler serves its HTTP API (health checks) even without a dashboard, by default on
#: port 8787; a second local cluster would then warn "Port 8787 is already in use". Any free
#: loopback port instead.
LOOPBACK_HTTP = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}

CRASH_MESSAGE = (
    "the worker process analysing this file stopped abruptly (a crash, or killed for "
    "lack of memory)"
)


# --------------------------------------------------------------------------- types


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

    ``result`` is the ``pipeline.AnalysisResult``; ``notes`` are the warnings raised while
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
        """Contracts §2: 0 when every recording was analysed (or up to date), 1 when some failed."""
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


# --------------------------------------------------------------------------- discovery


def discover_recordings(paths: Sequence[str | Path], exclude: Path | None = None) -> list[Path]:
    """Expand files and folders (searched recursively) into recording files, sorted, no duplicates.

    A file given by name is always taken (a wrong format becomes that file's failure); in a
    folder only files that ``drivers.readers.is_recording_file`` accepts are taken, hidden files
    and folders (names starting with ``.``) are skipped, and so is anything under ``exclude``
    (the output folder, so that a second run does not pick up its own outputs).

    Raises
    ------
    UserError (exit code 2)
        A path does not exist, or no recording was found.
    """
    from drivers.readers import is_recording_file

    exclude_r = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    seen: set[Path] = set()

    def take(p: Path) -> None:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            found.append(p)

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"{raw}: no such file or folder", 2)
        if p.is_file():
            take(p)
            continue
        in_folder: list[Path] = []
        for root, dirs, files in os.walk(p):
            root_p = Path(root)
            if exclude_r is not None and _is_within(root_p.resolve(), exclude_r):
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in files:
                fp = root_p / f
                if not f.startswith(".") and is_recording_file(fp):
                    in_folder.append(fp)
        for fp in sorted(in_folder, key=lambda q: q.as_posix()):
            take(fp)
    if not found:
        from drivers.readers import RECORDING_SUFFIXES

        raise UserError(
            "no recordings found in " + ", ".join(str(p) for p in paths)
            + f" (looked for files ending in {', '.join(sorted(RECORDING_SUFFIXES))})",
            2,
        )
    return found


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def output_names(files: Sequence[Path]) -> list[str]:
    """The output folder name of each file, in the same order; deterministic and unique.

    The name is the file name without its extension. When several files share that stem
    (compared case-insensitively, for case-insensitive file systems), each gets the path from
    the deepest folder they share, with ``__`` between the parts: ``a/night.edf`` and
    ``b/night.edf`` become ``a__night`` and ``b__night``. If that still collides (``night.csv``
    and ``night.edf`` in one folder), the extension is appended: ``night_csv``, ``night_edf``.
    Any clash left over gets ``~2``, ``~3``, ... in path order.
    """
    stems = [_stem(f) for f in files]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s.casefold(), []).append(i)
    names = list(stems)
    for members in groups.values():
        if len(members) < 2:
            continue
        resolved = [Path(os.path.abspath(files[i])) for i in members]  # links keep their own folder
        common = Path(os.path.commonpath([str(r.parent) for r in resolved]))
        candidates = []
        for i, r in zip(members, resolved, strict=True):
            parts = r.parent.relative_to(common).parts
            candidates.append("__".join((*parts, stems[i])))
        folded = [c.casefold() for c in candidates]
        for k, i in enumerate(members):
            if folded.count(folded[k]) > 1:
                suffix = Path(files[i]).suffix.lstrip(".").lower() or "file"
                candidates[k] = f"{candidates[k]}_{suffix}"
            names[i] = candidates[k]
    # Last resort: anything still clashing (including with another file's plain stem).
    used: set[str] = set()
    order = sorted(range(len(files)), key=lambda i: Path(os.path.abspath(files[i])).as_posix())
    for i in order:
        base, n = names[i], 1
        while names[i].casefold() in used:
            n += 1
            names[i] = f"{base}~{n}"
        used.add(names[i].casefold())
    return names


def _stem(path: Path) -> str:
    name = Path(path).name
    for suffix in sorted(_recording_suffixes(), key=len, reverse=True):
        if name.lower().endswith(suffix.lower()) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(path).stem or name


def _recording_suffixes() -> tuple[str, ...]:
    try:
        from drivers.readers import RECORDING_SUFFIXES
    except ImportError:  # pragma: no cover - readers are part of the package
        return ()
    return tuple(RECORDING_SUFFIXES)


def plan_jobs(paths: Sequence[str | Path], out_dir: Path | None = None) -> list[BatchJob]:
    """Discover the recordings under ``paths`` and give each its output folder name."""
    files = discover_recordings(paths, exclude=out_dir)
    names = output_names(files)
    return [
        BatchJob(index=i, path=str(f), name=n, size_bytes=_size(f))
        for i, (f, n) in enumerate(zip(files, names, strict=True))
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------- fingerprints


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (bounded memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fingerprint_file(path: str | Path) -> SourceFingerprint:
    st = os.stat(path)
    return SourceFingerprint(st.st_size, st.st_mtime_ns, file_sha256(path))


def config_fingerprint(config: Any = None) -> str:
    """SHA-256 of the detector configuration (the default one for None) and toetwitch version.

    Outputs made with another configuration or another toetwitch version are not up to date.
    """
    if config is None:
        try:
            import pipeline

            cls = getattr(pipeline, "DetectorConfig", None)
            config = cls() if cls is not None else None
        except Exception:  # noqa: BLE001 - a missing default only weakens the fingerprint
            config = None
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        payload: Any = dataclasses.asdict(config)
    elif isinstance(config, dict) or config is None:
        payload = config
    else:
        payload = repr(config)
    text = json.dumps(
        {"config": payload, "toetwitch_version": _version()}, sort_keys=True, default=repr
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toetwitch")
    except PackageNotFoundError:
        return "0+unknown"


def is_up_to_date(source: str | Path, folder: Path, config_sha256: str) -> bool:
    """True when ``folder`` holds complete outputs made from this file's current content.

    Compares the stored fingerprint: same configuration and toetwitch version, same file size,
    and either the same modification time or (when only the time changed: a copy, a ``touch``)
    the same SHA-256 of the file's bytes. In that last case the stored time is refreshed so the
    next check is cheap again.
    """
    marker_path = folder / MARKER_NAME
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        st = os.stat(source)
    except (OSError, ValueError):
        return False
    if not all((folder / f).is_file() for f in OUTPUT_FILES):
        return False
    if marker.get("marker_version") != MARKER_VERSION or marker.get("config_sha256") != config_sha256:
        return False
    if marker.get("size_bytes") != st.st_size:
        return False
    if marker.get("mtime_ns") == st.st_mtime_ns:
        return True
    try:
        same = marker.get("sha256") == file_sha256(source)
    except OSError:
        return False
    if same:
        marker["mtime_ns"] = st.st_mtime_ns
        try:
            _write_text_atomic(marker_path, json.dumps(marker, indent=2) + "\n")
        except OSError:  # read-only output folder: still up to date, just slower next time
            pass
    return same


# --------------------------------------------------------------------------- the task


def analyse_file(path: str, chunk_s: float = 60.0, config: Any = None) -> TaskOutput:
    """The per-recording task: fingerprint, open and analyse one file in bounded memory.

    Runs in whichever process the backend chose. Raises ``drivers.RecordingError`` for a bad
    file; :func:`run_task` turns any exception into a failure of that file.
    """
    from drivers.readers import open_recording
    from pipeline import analyse_source

    st = os.stat(path)
    source = open_recording(path, one_pass=True)  # tables parsed once, not twice
    try:
        result = analyse_source(source, config=config, chunk_s=chunk_s, progress=_progress_hook.get())
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    fp = SourceFingerprint(st.st_size, st.st_mtime_ns, file_sha256(path))
    return TaskOutput(result=result, fingerprint=fp)


def run_task(task: Task, path: str, chunk_s: float, config: Any) -> tuple[TaskOutput | None, str | None, float]:
    """Run ``task`` on one file and never raise: ``(output, error, elapsed_s)``.

    Warnings raised inside are collected into ``output.notes`` (the parent logs them with the
    file name) rather than printed from a worker or turned into errors.
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = task(path, chunk_s, config)
        except MemoryError:
            return None, "not enough memory to analyse this file (try a smaller --chunk-s)", time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - per-file failure isolation
            return None, _describe(exc), time.perf_counter() - t0
    # the message only: a warning class name means nothing to the person reading it
    notes = tuple(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    out = dataclasses.replace(
        out, notes=out.notes + notes, peak_rss_mb=_peak_rss_mb(), cpu_s=time.process_time() - cpu0
    )
    return out, None, time.perf_counter() - t0


def _describe(exc: BaseException) -> str:
    from drivers.errors import RecordingError

    if isinstance(exc, RecordingError):
        return exc.what if exc.where is None else f"{exc.where}: {exc.what}"
    if isinstance(exc, UserError | OSError):
        return str(exc)
    logger.debug("analysis failed", exc_info=exc)
    # never a raw exception name: say it is ours, and how to see the details
    return f"internal error while analysing this file ({exc}); rerun with -vv and report it"


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own memory
    (``ru_maxrss`` would also carry the peak of a parent that started it by fork + exec).
    Elsewhere ``ru_maxrss`` (KiB, bytes on macOS); NaN when neither exists.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# --------------------------------------------------------------------------- backends

#: One finished task: the job, its output or error, and the seconds it took.
Done = tuple[BatchJob, "TaskOutput | None", "str | None", float]


def _task_path(job: BatchJob) -> str:
    """The absolute path the task opens: the same on every backend (so outputs that mention it
    agree) and meaningful on a Dask worker whose working folder is elsewhere."""
    return os.path.abspath(job.path)


#: Set while a recording is analysed in this process: called with the share done (0-1), so
#: the progress bar moves within one long recording, not only between recordings.
_progress_hook: contextvars.ContextVar[Callable[[float], None] | None] = contextvars.ContextVar(
    "toetwitch_progress", default=None)


def _iter_in_process(jobs: Sequence[BatchJob], task: Task, chunk_s: float, config: Any,
                     on_progress: Callable[[BatchJob, float], None] | None = None) -> Iterator[Done]:
    for job in jobs:
        hook = None if on_progress is None else functools.partial(on_progress, job)
        token = _progress_hook.set(hook)
        try:
            out, err, dt = run_task(task, _task_path(job), chunk_s, config)
        finally:
            _progress_hook.reset(token)
        yield job, out, err, dt


# Set in each local worker process: one flag per job of the current pool, raised when the job
# starts, so that after a crash the parent knows which jobs were running.
_started_flags: Any = None


def _init_worker(flags: Any) -> None:
    global _started_flags
    _started_flags = flags


def _run_flagged(slot: int, task: Task, path: str, chunk_s: float, config: Any) -> tuple[TaskOutput | None, str | None, float]:
    if _started_flags is not None:
        _started_flags[slot] = 1
    return run_task(task, path, chunk_s, config)


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: no fork of a threaded parent (tqdm, logging); the server imports the heavy
    # modules once so each worker starts fast. spawn where forkserver does not exist.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "pandas", "scipy.signal", "pipeline", "pipeline.batch"])
        return ctx
    return multiprocessing.get_context("spawn")


def _iter_processes(jobs: Sequence[BatchJob], task: Task, chunk_s: float, config: Any, workers: int) -> Iterator[Done]:
    """Run the jobs in a pool of ``workers`` processes; a crashed worker fails only its file.

    When a worker dies the whole pool breaks. Jobs that had not started are resubmitted to a
    new pool; jobs that were running are suspects and each is re-run alone in a one-process
    pool: if it crashes alone, the crash is its failure.
    """
    ctx = _mp_context()
    pending: list[BatchJob] = list(jobs)
    suspects: list[BatchJob] = []
    while pending or suspects:
        alone = not pending
        batch = pending if pending else [suspects.pop(0)]
        pending = []
        n_proc = 1 if alone else max(1, min(workers, len(batch)))
        flags = ctx.Array("b", len(batch), lock=False)
        broken: list[tuple[int, BatchJob]] = []
        pool = ProcessPoolExecutor(n_proc, mp_context=ctx, initializer=_init_worker, initargs=(flags,))
        try:
            futures = {
                pool.submit(_run_flagged, slot, task, _task_path(job), chunk_s, config): (slot, job)
                for slot, job in enumerate(batch)
            }
            not_done = set(futures)
            while not_done:
                done, not_done = wait(not_done, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: futures[f][0]):
                    slot, job = futures[fut]
                    try:
                        out, err, dt = fut.result()
                    except BrokenProcessPool:
                        broken.append((slot, job))
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                        yield job, None, _describe(exc), 0.0
                        continue
                    yield job, out, err, dt
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for slot, job in broken:
            if alone:
                yield job, None, CRASH_MESSAGE, 0.0
            elif flags[slot]:
                suspects.append(job)
            else:
                pending.append(job)
        if broken and not alone:
            logger.warning(
                "a worker process crashed; re-running the %d recording(s) it may have been "
                "analysing one at a time", sum(1 for s, _ in broken if flags[s])
            )


def _iter_dask(
    jobs: Sequence[BatchJob], task: Task, chunk_s: float, config: Any, address: str, workers: int,
    timeout_s: float,
) -> Iterator[Done]:
    """Run the jobs as Dask futures on a scheduler at ``address`` or on a new LocalCluster.

    When a worker dies, the scheduler moves its tasks to other workers up to its
    ``allowed-failures`` and then fails them with ``KilledWorker``. A task can be caught in
    another task's crash (a worker holds more than one task when ``worker-saturation`` > 1), so
    a ``KilledWorker`` task is submitted once more; the second time it is that file's failure.
    """
    try:
        import dask
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise UserError(
            "--dask needs dask.distributed: pip install 'dask[distributed]'", 2
        ) from exc

    cluster = None
    try:
        if address == "local":
            # One task per single-thread worker: a crash never takes another file with it.
            # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, which also pins
            # glibc's mmap threshold at 128 KiB: every chunk-sized numpy temporary is then a
            # fresh mmap, page-faulted in again (measured: 2.6 M faults and twice the CPU per
            # 24-h recording). Arrays up to 4 MiB (a 60-s chunk is < 1 MiB) come from the heap
            # instead; a variable already in the environment wins (dask reads it first).
            with dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                                  "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 4 * 2**20}):
                cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, host="127.0.0.1", scheduler_kwargs=LOOPBACK_HTTP,
                )
            client = Client(cluster)
            logger.info("started a local Dask cluster: %d workers at %s", workers, cluster.scheduler_address)
        else:
            try:
                client = Client(address, timeout=timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UserError(f"cannot reach the Dask scheduler at {address}: {exc}", 2) from exc
            logger.info("connected to the Dask scheduler at %s", address)
        try:
            run_id = uuid.uuid4().hex[:8]
            futures: dict[Any, tuple[BatchJob, int]] = {}

            def submit(job: BatchJob, attempt: int) -> Any:
                fut = client.submit(
                    run_task, task, _task_path(job), chunk_s, config,
                    key=f"toetwitch-{run_id}-{job.index}-{attempt}", pure=False,
                )
                futures[fut] = (job, attempt)
                return fut

            pending = as_completed([submit(job, 1) for job in jobs])
            for fut in pending:
                job, attempt = futures.pop(fut)
                try:
                    out, err, dt = fut.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker and friends
                    killed = type(exc).__name__ == "KilledWorker"
                    fut.release()
                    if killed and attempt == 1:
                        logger.info("%s: its Dask worker died; trying once more", job.path)
                        pending.add(submit(job, 2))
                        continue
                    out, err, dt = None, CRASH_MESSAGE if killed else f"{type(exc).__name__}: {exc}", 0.0
                else:
                    fut.release()
                yield job, out, err, dt
        finally:
            if cluster is not None:
                _quiet_local_workers(client)
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _silence_shutdown_logs() -> None:
    import logging

    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)


def _quiet_local_workers(client: Any) -> None:
    """Our own local cluster is about to close: a worker whose heartbeat is in flight when the
    scheduler goes logs a traceback ("Failed to communicate with scheduler during heartbeat",
    dask/distributed#7105) that means nothing to the person running the batch. Every result is
    in by now, so the workers' logs are muted for the shutdown."""
    try:
        client.run(_silence_shutdown_logs)
    except Exception as exc:  # noqa: BLE001 - cosmetic: never fail a finished batch over it
        logger.debug("could not quiet the local Dask workers: %s", exc)


# --------------------------------------------------------------------------- writing


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _default_writer(result: Any, folder: Path) -> None:
    from pipeline.outputs import write_outputs

    write_outputs(result, folder)


def _edf_writer(result: Any, folder: Path) -> None:
    """The default files plus ``<name>.edf`` (``analyse --write-edf``, contracts §8): an EDF+
    copy of the source with the events as annotations (:mod:`pipeline.edf_writer`)."""
    from pipeline.edf_writer import write_annotated_edf

    _default_writer(result, folder)
    name = _output_name.get() or folder.name
    try:
        write_annotated_edf(result.summary["source_path"], result.events, folder / f"{name}.edf")
    except ValueError as exc:  # a rate EDF records cannot hold: say so, keep the other files
        logger.warning("%s: cannot write %s.edf (%s); the other outputs are written",
                       result.summary.get("source_path"), name, exc)


#: The output name of the recording being written (``commit_outputs`` sets it for the writer).
_output_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("_output_name", default=None)


def commit_outputs(out_dir: Path, name: str, result: Any, marker: dict[str, Any], writer: Writer) -> Path:
    """Write one recording's outputs into ``out_dir/name`` all at once.

    Writes into a staging folder inside ``out_dir`` (same file system), adds the fingerprint
    last, then swaps the folder into place; the previous folder, if any, is moved aside first
    and removed after. A crash at any point leaves either the old complete folder, nothing (the
    next ``resume`` re-analyses), or the new complete folder.
    """
    staging = out_dir / STAGING_NAME
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=staging))
    final = out_dir / name
    old: Path | None = None
    token = _output_name.set(name)
    try:
        writer(result, tmp)
        _write_text_atomic(tmp / MARKER_NAME, json.dumps(marker, indent=2) + "\n")
        if final.exists() or final.is_symlink():
            old = staging / f"{name}.old.{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _output_name.reset(token)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _marker(job: BatchJob, fp: SourceFingerprint, config_sha256: str) -> dict[str, Any]:
    return {
        "marker_version": MARKER_VERSION,
        "source": str(Path(job.path).resolve()),
        "size_bytes": fp.size_bytes,
        "mtime_ns": fp.mtime_ns,
        "sha256": fp.sha256,
        "config_sha256": config_sha256,
        "toetwitch_version": _version(),
    }


def flatten_summary(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with ``.`` (``signal_quality.grade``) and lists by position, from 0
    (``config.emg_band_hz.0``, ``config.emg_band_hz.1``): one value per cell (tidy tables).

    An empty list gives no column (``signal_quality.mains_notches_hz.0`` is then empty)."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        k = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                flat.update(flatten_summary(value, prefix=f"{k}."))
            else:
                flat[k] = None
        elif isinstance(value, list | tuple):
            flat.update(flatten_summary({str(i): v for i, v in enumerate(value)}, prefix=f"{k}."))
        else:
            flat[k] = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    return flat


def summary_table(outcomes: Iterable[JobOutcome]) -> pd.DataFrame:
    """One row per recording: ``name``, ``path``, ``status``, ``error``, then the summary keys.

    Nested summary keys are flattened with ``.``; keys only some recordings have (an artifact
    reason, packet statistics) are empty elsewhere. Columns are typed (nullable integers,
    booleans, strings) so the Parquet file keeps the types.
    """
    rows = []
    for o in outcomes:
        row: dict[str, Any] = {"name": o.job.name, "path": o.job.path, "status": o.status, "error": o.error}
        if o.summary:
            for k, v in flatten_summary(o.summary).items():
                row.setdefault(k, v)
        rows.append(row)
    columns: list[str] = list(TABLE_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    data = {c: _typed_column([row.get(c) for row in rows]) for c in columns}
    return pd.DataFrame(data, columns=columns)


def _typed_column(values: list[Any]) -> pd.Series:
    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    if not present:
        return pd.Series([None] * len(values), dtype="object")
    if all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype="string")
    return pd.Series([None if v is None else str(v) for v in values], dtype="string")


def write_tables(outcomes: Sequence[JobOutcome], out_dir: Path) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.parquet`` and ``failures.csv`` into ``out_dir`` atomically."""
    table = summary_table(outcomes)
    failures = pd.DataFrame(
        {
            "name": [o.job.name for o in outcomes if o.status == STATUS_FAILED],
            "path": [o.job.path for o in outcomes if o.status == STATUS_FAILED],
            "error": [o.error for o in outcomes if o.status == STATUS_FAILED],
        },
        columns=["name", "path", "error"],
    )
    paths = {
        "summary_csv": out_dir / SUMMARY_CSV,
        "summary_parquet": out_dir / SUMMARY_PARQUET,
        "failures_csv": out_dir / FAILURES_CSV,
    }
    _write_text_atomic(paths["summary_csv"], table.to_csv(index=False, lineterminator="\n"))
    _write_text_atomic(paths["failures_csv"], failures.to_csv(index=False, lineterminator="\n"))
    tmp = out_dir / f".{SUMMARY_PARQUET}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, paths["summary_parquet"])
    finally:
        tmp.unlink(missing_ok=True)
    return paths


# --------------------------------------------------------------------------- the batch


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


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
        with its events as annotations (contracts §8).

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


def _drop_stale(job: BatchJob, folder: Path, cfg_sha: str) -> None:
    """Remove outputs of an earlier run that no longer match the (now failing) file."""
    if folder.is_dir() and not is_up_to_date(job.path, folder, cfg_sha):
        shutil.rmtree(folder, ignore_errors=True)


def _read_summary(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
