"""Benchmark ``toetwitch analyse`` at scale: 1 and 2 local workers and Dask local (issue 5).

Generates a 24-h EDF+ recording once into ``bench/_cache/`` (1 kHz EMG + 100 Hz 3-axis
accelerometer; written chunk by chunk, so generation itself needs little memory), points a
batch of ``--files`` names at it (hard links, so each file is a full 24-h analysis), and reports
for each backend: recordings per second, hours of signal per second, scaling efficiency against
one worker, and the peak resident memory of each worker process (its high-water mark, ``VmHWM`` on Linux:
libraries included).

Usage::

    .venv/bin/python bench/batch.py                 # 2 x 24 h, chunk 60 s
    .venv/bin/python bench/batch.py --files 2 --hours 2   # quick look

Times include starting the worker pool or the Dask cluster, as a person running the command
would see them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "_cache"
FS_EMG_HZ = 1000
FS_ACC_HZ = 100
#: Seconds generated and written per step (a multiple of the 1-s EDF data record).
GEN_CHUNK_S = 600


def _muap(fs_hz: float) -> np.ndarray:
    """A biphasic surface potential, 16 ms, unit peak-to-peak-ish."""
    t = np.arange(-8, 9) / fs_hz
    return -np.sin(2 * np.pi * t / 0.016) * np.exp(-((t / 0.004) ** 2))


def generate_edf(path: Path, hours: float, seed: int = 2026) -> Path:
    """Write a synthetic EDF+ of ``hours`` hours: EMG noise (3 µV) with ~2 twitches a minute
    (80-250 µV) and a 3-s movement burst every 20 minutes; accelerometer: gravity on z, 2 mg
    noise, a jolt with each twitch and movement. Generated ``GEN_CHUNK_S`` seconds at a time."""
    import pyedflib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.edf")
    headers = [pyedflib.highlevel.make_signal_header("EMG toe", "uV", FS_EMG_HZ, -3000, 3000)]
    headers += [pyedflib.highlevel.make_signal_header(f"ACC {a}", "g", FS_ACC_HZ, -8, 8) for a in "XYZ"]
    total_s = int(round(hours * 3600))
    shape = _muap(FS_EMG_HZ)
    writer = pyedflib.EdfWriter(str(tmp), 4, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(headers)
        for start in range(0, total_s, GEN_CHUNK_S):
            n_s = min(GEN_CHUNK_S, total_s - start)
            rng = np.random.default_rng([seed, start])
            emg = rng.normal(0.0, 3.0, n_s * FS_EMG_HZ)
            acc = rng.normal(0.0, 0.002, (n_s * FS_ACC_HZ, 3))
            acc[:, 2] += 1.0
            n_tw = rng.poisson(2.0 * n_s / 60.0)
            for ts in rng.uniform(0.1, n_s - 0.1, n_tw):
                i = int(ts * FS_EMG_HZ)
                emg[i - 8 : i + 9] += shape * rng.uniform(80, 250)
                j = int(ts * FS_ACC_HZ)
                acc[j : j + 3, 0] += 0.02
            if (start // GEN_CHUNK_S) % 2 == 1:  # a movement every 20 min
                m0 = int(rng.uniform(10, n_s - 10))
                emg[m0 * FS_EMG_HZ : (m0 + 3) * FS_EMG_HZ] += rng.normal(0, 60, 3 * FS_EMG_HZ)
                acc[m0 * FS_ACC_HZ : (m0 + 3) * FS_ACC_HZ] += rng.normal(0, 0.15, (3 * FS_ACC_HZ, 3))
            writer.writeSamples([emg, *(np.ascontiguousarray(acc[:, k]) for k in range(3))])
    finally:
        writer.close()
    os.replace(tmp, path)
    return path


def cached_recording(hours: float) -> Path:
    path = CACHE / f"bench_{hours:g}h.edf"
    if not path.exists():
        t0 = time.perf_counter()
        print(f"generating {path} ({hours:g} h) ...", file=sys.stderr)
        generate_edf(path, hours)
        print(f"  done in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    return path


def batch_folder(source: Path, n_files: int) -> Path:
    """``n_files`` names for the same recording: hard links (a batch dedupes symlinks to one file,
    which is what a person wants; hard links count as separate files), copies where links fail."""
    folder = CACHE / f"batch_{source.stem}_{n_files}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i in range(n_files):
        target = folder / f"day{i + 1:02d}.edf"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    return folder


def run_case(label: str, folder: Path, *, workers: int, dask: str | None, chunk_s: float) -> dict:
    from toetwitch.pipeline.run import batch

    out = CACHE / f"out_{label.replace(' ', '_')}"
    shutil.rmtree(out, ignore_errors=True)
    jobs = batch.plan_jobs([folder], out)
    t0 = time.perf_counter()
    report = batch.run_batch(jobs, out, workers=workers, dask=dask, chunk_s=chunk_s)
    elapsed = time.perf_counter() - t0
    if report.failures:
        raise SystemExit(f"{label}: {report.failures[0].job.path}: {report.failures[0].error}")
    peaks = [o.peak_rss_mb for o in report.outcomes]
    cpu_per_rec = sum(o.cpu_s for o in report.outcomes) / len(report.outcomes)
    hours = report.signal_hours
    twitches = sorted({o.summary["twitches"] for o in report.outcomes})
    # Every file is the same recording: all summaries but the name and path must agree.
    ignore = ("recording", "source_path")
    first = report.outcomes[0].summary
    differ = sorted({
        k for o in report.outcomes for k in set(o.summary) | set(first)
        if k not in ignore and json.dumps(o.summary.get(k), sort_keys=True, default=str)
        != json.dumps(first.get(k), sort_keys=True, default=str)
    })
    shutil.rmtree(out, ignore_errors=True)
    return {
        "label": label, "workers": report.workers, "recordings": len(jobs), "elapsed_s": elapsed,
        "recordings_per_s": len(jobs) / elapsed, "signal_h_per_s": hours / elapsed,
        "peak_rss_mb_max": max(peaks), "peak_rss_mb_min": min(peaks), "cpu_s_per_recording": cpu_per_rec,
        "twitches": twitches, "summary_keys_differing": differ,
    }


def baseline_rss_mb() -> float:
    """Peak memory of a fresh process that has only loaded what a worker loads (Python, numpy,
    pandas, scipy, pyedflib, toetwitch): the part of each worker's peak that is not data."""
    code = (
        "import pyedflib, toetwitch.pipeline, toetwitch.pipeline.run.batch, toetwitch.drivers.readers, toetwitch.drivers.readers.edf; "
        "print(toetwitch.pipeline.run.batch._peak_rss_mb())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0, help="length of the recording (default 24)")
    ap.add_argument("--files", type=int, default=2, help="recordings in the batch (default 2: one per worker)")
    ap.add_argument("--chunk-s", type=float, default=60.0, help="analysis chunk (default 60 s)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    source = cached_recording(args.hours)
    folder = batch_folder(source, args.files)
    cases = [
        ("1 worker", 1, None),
        ("2 workers", 2, None),
        ("dask local, 2 workers", 2, "local"),
    ]
    rows = []
    load0 = os.getloadavg()[0]
    for label, workers, dask in cases:
        print(f"running {label} ...", file=sys.stderr)
        rows.append(run_case(label, folder, workers=workers, dask=dask, chunk_s=args.chunk_s))
    base = rows[0]["recordings_per_s"]
    for r in rows:
        r["scaling_efficiency"] = r["recordings_per_s"] / (base * r["workers"])

    print(f"\n{args.files} x {args.hours:g}-h EDF (1 kHz EMG + 100 Hz ACC), chunk {args.chunk_s:g} s, "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average before/after {load0:.1f}/{os.getloadavg()[0]:.1f}\n")
    print("| backend | recordings/s | hours of signal/s | scaling efficiency | peak memory per worker "
          "| CPU s per recording | wall time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['label']} | {r['recordings_per_s']:.4f} | {r['signal_h_per_s']:.2f} | "
              f"{r['scaling_efficiency']:.0%} | {r['peak_rss_mb_max']:.0f} MB | "
              f"{r['cpu_s_per_recording']:.1f} | {r['elapsed_s']:.1f} s |")
    base_mb = baseline_rss_mb()
    print(f"\nof each worker's peak, {base_mb:.0f} MB is the libraries loaded before any data "
          f"(a fresh process importing toetwitch); the Dask worker adds dask.distributed itself.")
    same = len({tuple(r["twitches"]) for r in rows}) == 1
    print(f"\nsame twitch count on every backend: {'yes' if same else 'NO'} ({rows[0]['twitches']})")
    for r in rows:
        if r["summary_keys_differing"]:
            print(f"{r['label']}: summaries of the same recording differ in {r['summary_keys_differing']}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "baseline_rss_mb": base_mb, "rows": rows}, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
