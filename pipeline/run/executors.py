"""Where the work runs: in this process, in worker processes, or on a Dask cluster.

A task is one recording analysed in full; a crash or a killed worker is that file's
failure, never the batch's.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import multiprocessing
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.log import logger
from toetwitch.pipeline.run.jobs import BatchJob, Done, SourceFingerprint, Task, TaskOutput
from toetwitch.pipeline.run.resume import file_sha256

#: The scheduler serves its HTTP API (health checks) even without a dashboard, by default on
#: port 8787; a second local cluster would then warn "Port 8787 is already in use". Any free
#: loopback port instead.
LOOPBACK_HTTP = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


CRASH_MESSAGE = (
    "the worker process analysing this file stopped abruptly (a crash, or killed for "
    "lack of memory)"
)


def analyse_file(path: str, chunk_s: float = 60.0, config: Any = None) -> TaskOutput:
    """The per-recording task: fingerprint, open and analyse one file in bounded memory.

    Runs in whichever process the backend chose. Raises ``toetwitch.drivers.RecordingError`` for a bad
    file; :func:`run_task` turns any exception into a failure of that file.
    """
    from toetwitch.drivers.readers import open_recording
    from toetwitch.pipeline import analyse_source

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
    from toetwitch.drivers.errors import RecordingError

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
        ctx.set_forkserver_preload(["numpy", "pandas", "scipy.signal", "toetwitch.pipeline", "toetwitch.pipeline.run.batch"])
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
            "--dask needs dask.distributed, which is not installed: pip install 'toetwitch[dask]'", 2
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


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
