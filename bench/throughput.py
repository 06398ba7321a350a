"""Speed and memory of the full pipeline beside a lean scipy baseline and the peers.

Run from the repository root::

    .venv/bin/python bench/throughput.py [--repeats 3] [--skip-day] [--markdown] [--json PATH]
    .venv/bin/python bench/throughput.py --profile     # cProfile of toetwitch.pipeline.analyse on 1 h
    .venv/bin/python bench/throughput.py --ratios --repeats 5   # reader and streaming ratios only

Input: 1 h of 1 kHz EMG + 100 Hz accelerometer from ``toetwitch.drivers.simulate.simulate_recording``
(seeded; twitches, voluntary bursts, tonic trains, pops, motion, limb movements, 50 Hz mains),
generated once into ``bench/_cache/`` (gitignored) as ``.npz``, EDF, Parquet and CSV; a 24-h EDF
and a 24-h Parquet file (the hour repeated) for the bounded-memory check.

Every case runs in its own subprocess pinned to one core (``os.sched_setaffinity``), with
BLAS/OpenMP threads set to 1. Time: ``time.perf_counter`` over ``--repeats`` runs (min and
median). Memory, two ways (as in the performance measurements, docs/evidence.md §B):

* RSS Δ: peak resident set (``VmHWM``) after the runs minus ``VmHWM`` after imports and after
  loading/preparing the inputs (inputs already in memory are not counted);
* tracemalloc peak: one extra run under ``tracemalloc`` (numpy buffers are traced), inputs
  excluded.

Cases: toetwitch in memory (``toetwitch.pipeline.analyse``), from EDF, Parquet and CSV
(``toetwitch.pipeline.analyse_source``, 60-s chunks, opened as ``toetwitch analyse`` opens them: tables
parsed once), beside each library's own whole-file read (pyedflib, ``pyarrow.parquet.read_table``,
``pyarrow.csv.read_csv``) so that the reader ratio (toetwitch from the file) / (library read +
in-memory analysis) comes out of one run; streaming (``StreamingAnalyser`` fed 250-ms blocks,
100-ms packets each analysed at once as live, 100-ms packets held 5 s as ``replay --speed max``
does, and 20-sample packets), with its ratio to the in-memory analysis; a lean baseline (float32, band-pass + notch merged into one SOS cascade,
``sosfiltfilt``, 50-ms moving RMS, median/MAD threshold, crossings); NeuroKit2 ``emg_process``
(on 5 min, extrapolated ×12 to 1 h: its per-sample pandas loop makes 1 h take minutes) and
BioSPPy ``emg()`` (1 h). Real-time factor = recording seconds / wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "_cache"
SEED = 20261125
HOUR_S = 3600.0
FS_EMG_HZ = 1000.0
FS_ACC_HZ = 100.0
#: NeuroKit2 runs on this much of the hour; its time is scaled to 1 h (said in the table).
NK_SECONDS = 300.0
#: 20-sample packets are measured on this much of the hour (x real time is a rate).
PACKET_SECONDS = 600.0

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------------------------
# inputs (generated once)
# --------------------------------------------------------------------------------------------
def hour_paths() -> dict[str, Path]:
    return {"npz": CACHE / "hour.npz", "edf": CACHE / "hour.edf",
            "parquet": CACHE / "hour.parquet", "csv": CACHE / "hour.csv", "day": CACHE / "day.edf",
            "day_parquet": CACHE / "day.parquet"}


def make_inputs(day: bool = True) -> None:
    """Write the cached recordings if missing (seeded, so the same every time)."""
    import numpy as np

    from toetwitch.drivers.readers.edf import write_edf
    from toetwitch.drivers.simulate import simulate_recording

    p = hour_paths()
    CACHE.mkdir(parents=True, exist_ok=True)
    if not p["npz"].exists():
        print("generating 1 h of EMG + accelerometer (once) ...", flush=True)
        rec, truth = simulate_recording(HOUR_S, FS_EMG_HZ, FS_ACC_HZ, seed=SEED,
                                        voluntary_bursts=60, tonic_trains=60, pops=30, motion=30,
                                        limb_movements=20, mains_hz=50.0, name="hour")
        np.savez(p["npz"], emg_uv=rec.emg_uv, acc_g=rec.acc_g,
                 n_twitches=int((truth["kind"] == "fasciculation").sum()))
    if not p["edf"].exists() or not p["parquet"].exists():
        d = np.load(p["npz"])
        emg, acc = d["emg_uv"], d["acc_g"]
        if not p["edf"].exists():
            write_edf(p["edf"], emg, FS_EMG_HZ, acc, FS_ACC_HZ)
        if not p["parquet"].exists():
            _write_parquet(p["parquet"], emg, acc)
    if not p["csv"].exists():  # docs/contracts.md §1: the other stream's cells left empty
        import pandas as pd

        pd.read_parquet(p["parquet"]).to_csv(p["csv"], index=False, float_format="%.9g")
    if day and not p["day"].exists():
        print("writing the 24-h EDF (the hour repeated, once) ...", flush=True)
        d = np.load(p["npz"])
        write_edf(p["day"], np.tile(d["emg_uv"], 24), FS_EMG_HZ, np.tile(d["acc_g"], (24, 1)),
                  FS_ACC_HZ)
    if day and not p["day_parquet"].exists():
        print("writing the 24-h Parquet file (the hour repeated, once) ...", flush=True)
        _repeat_parquet(p["parquet"], p["day_parquet"], 24, HOUR_S)


def _repeat_parquet(src: Path, dst: Path, times: int, period_s: float) -> None:
    """``src`` written ``times`` times one after the other (times shifted), one hour at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    hour = pq.read_table(src)
    t = hour.column("time_s").to_numpy()
    with pq.ParquetWriter(dst, hour.schema) as w:
        for k in range(times):
            w.write_table(hour.set_column(0, "time_s", pa.array(t + k * period_s)),
                          row_group_size=1_000_000)


def _write_parquet(path: Path, emg, acc) -> None:  # noqa: ANN001
    """docs/contracts.md §1 layout: one table, each row one stream's sample, sorted by time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    t_e = np.arange(len(emg)) / FS_EMG_HZ
    t_a = np.arange(len(acc)) / FS_ACC_HZ
    t = np.concatenate([t_e, t_a])
    order = np.argsort(t, kind="stable")
    nan_e, nan_a = np.full(len(emg), np.nan), np.full((len(acc), 3), np.nan)
    cols = {"time_s": t[order], "emg_uv": np.concatenate([emg, nan_a[:, 0]])[order]}
    a = np.concatenate([nan_e[:, None].repeat(3, 1), acc])[order]
    for j, ax in enumerate("xyz"):
        cols[f"acc_{ax}_g"] = a[:, j]
    pq.write_table(pa.table(cols), path, row_group_size=1_000_000)


# --------------------------------------------------------------------------------------------
# measurement inside the subprocess
# --------------------------------------------------------------------------------------------
def _reset_hwm() -> None:
    """Linux lets a process reset its VmHWM to the current RSS (write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def lean_baseline(x):  # noqa: ANN001, ANN201
    """The lean reference: float32, 20-450 Hz order-4 band-pass and 50 Hz notch merged into one
    SOS cascade, zero phase; 50-ms moving RMS; threshold median + 5·MAD; threshold crossings."""
    import numpy as np
    from scipy import ndimage, signal

    fs = FS_EMG_HZ
    bp = signal.butter(4, [20.0, 450.0], btype="bandpass", fs=fs, output="sos")
    notch = signal.tf2sos(*signal.iirnotch(50.0, 30.0, fs=fs))
    sos = np.vstack([bp, notch]).astype(np.float32)
    y = signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float32))
    np.square(y, out=y)
    env = ndimage.uniform_filter1d(y, int(0.05 * fs))
    np.sqrt(env, out=env)
    med = np.median(env)
    thr = med + 5.0 * np.median(np.abs(env - med)) / 0.6745
    return np.flatnonzero(np.diff((env > thr).view(np.int8)))


#: ``DetectorConfig`` overrides from ``--set KEY=VALUE`` (as bench/detection.py parses them),
#: used by every toetwitch case; empty: the defaults
OVERRIDES: dict[str, object] = {}


def _config():  # noqa: ANN202
    """The ``DetectorConfig`` of the toetwitch cases (None: the default one)."""
    from toetwitch.pipeline.detect.config import DetectorConfig

    return DetectorConfig(**OVERRIDES) if OVERRIDES else None


def _prepare(case: str):  # noqa: ANN202
    """Load inputs for a case; returns (callable, recording seconds, note)."""
    import numpy as np

    p = hour_paths()
    if case in ("edf", "parquet", "csv", "day", "day_parquet"):
        from toetwitch.drivers.readers import open_recording
        from toetwitch.pipeline import analyse_source

        path = p[case]

        def fn():  # noqa: ANN202
            with open_recording(path, one_pass=True) as src:  # as toetwitch analyse opens it
                return analyse_source(src, _config())

        dur = HOUR_S * (24 if case.startswith("day") else 1)
        fmt = "Parquet" if case.endswith("parquet") else "CSV" if case == "csv" else "EDF"
        return fn, dur, f"from {fmt}, 60-s chunks" + ("" if fmt == "EDF" else ", parsed once")
    if case in LIB_READS:
        return _library_read(case, p), HOUR_S, LIB_READS[case]
    d = np.load(p["npz"])
    emg = np.ascontiguousarray(d["emg_uv"], dtype=np.float64)
    acc = np.ascontiguousarray(d["acc_g"], dtype=np.float64)
    if case == "memory":
        from toetwitch.drivers import Recording
        from toetwitch.pipeline import analyse

        rec = Recording(emg_uv=emg, fs_emg_hz=FS_EMG_HZ, acc_g=acc, fs_acc_hz=FS_ACC_HZ)
        return (lambda: analyse(rec, _config())), HOUR_S, "toetwitch.analyse, arrays in memory"
    if case in ("blocks_250ms", "packets_20", "packets_100ms", "packets_100ms_held"):
        from toetwitch.pipeline import StreamingAnalyser
        from toetwitch.pipeline.run.replay import MAX_SPEED_HOLD_S

        ne, na, secs = {"blocks_250ms": (250, 25, HOUR_S), "packets_20": (20, 2, PACKET_SECONDS),
                        "packets_100ms": (100, 10, PACKET_SECONDS),
                        "packets_100ms_held": (100, 10, HOUR_S)}[case]
        hold = MAX_SPEED_HOLD_S if case.endswith("held") else 0.0
        e, a = emg[: int(secs * FS_EMG_HZ)], acc[: int(secs * FS_ACC_HZ)]

        def fn():  # noqa: ANN202
            sa = StreamingAnalyser(FS_EMG_HZ, FS_ACC_HZ, _config())
            sa.hold_s = hold
            for k in range(len(e) // ne):
                sa.push(emg_uv=e[k * ne:(k + 1) * ne], acc_g=a[k * na:(k + 1) * na])
            return sa.finish()

        note = f"{ne} EMG + {na} acc samples per push"
        if hold:
            note += f", hold_s {hold:g} (replay --speed max)"
        if secs < HOUR_S:
            note += f"; measured on {secs / 60:g} min"
        return fn, secs, note
    if case == "lean":
        return (lambda: lean_baseline(emg)), HOUR_S, "float32, merged SOS, sosfiltfilt"
    if case == "neurokit":
        import warnings

        import neurokit2 as nk

        x = emg[: int(NK_SECONDS * FS_EMG_HZ)]

        def fn():  # noqa: ANN202
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return nk.emg_process(x, sampling_rate=int(FS_EMG_HZ))

        return fn, NK_SECONDS, f"measured on {NK_SECONDS / 60:g} min, x real time holds for 1 h"
    if case == "biosppy":
        import warnings

        from biosppy.signals import emg as bemg

        def fn():  # noqa: ANN202
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return bemg.emg(signal=emg, sampling_rate=FS_EMG_HZ, show=False)

        return fn, HOUR_S, "emg() defaults, 1 h"
    raise SystemExit(f"unknown case {case!r}")


#: The libraries' own whole-file reads, the reference for the readers' ratios (docs/contracts.md §1 files).
LIB_READS = {
    "parquet_read": "pyarrow.parquet.read_table, whole file",
    "csv_read": "pyarrow.csv.read_csv, whole file",
    "edf_read": "pyedflib readSignal of every signal, whole file",
}


def _library_read(case: str, p: dict):  # noqa: ANN202
    """The library reading the whole hour its own way (one thread: every case has one core)."""
    if case == "parquet_read":
        import pyarrow.parquet as pq

        return lambda: pq.read_table(p["parquet"], use_threads=False)
    if case == "csv_read":
        from pyarrow import csv as pacsv

        return lambda: pacsv.read_csv(p["csv"], read_options=pacsv.ReadOptions(use_threads=False))
    import pyedflib

    def fn():  # noqa: ANN202
        with pyedflib.EdfReader(str(p["edf"])) as f:
            return [f.readSignal(i) for i in range(f.signals_in_file)]

    return fn


#: Cases timed together by ``--ratios`` (one process, interleaved rounds).
RATIO_CASES = ("memory", "parquet_read", "parquet", "csv_read", "csv", "edf_read", "edf",
               "packets_100ms_held")


def run_ratios(repeats: int) -> dict:
    """Time :data:`RATIO_CASES` in this process, one round of each after the other ``repeats``
    times (min of each): on a shared machine, load that drifts between subprocesses run minutes
    apart moves each case alike, so the ratios hold better than across separate runs."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    prepared = {c: _prepare(c) for c in RATIO_CASES}
    times: dict[str, list[float]] = {c: [] for c in RATIO_CASES}
    for _ in range(repeats):
        for c, (fn, _, _) in prepared.items():
            t = time.perf_counter()
            fn()
            times[c].append(time.perf_counter() - t)
    return {"results": [{"case": c, "seconds_recording": prepared[c][1], "t_min": min(ts),
                         "t_median": sorted(ts)[len(ts) // 2], "repeats": len(ts)}
                        for c, ts in times.items()]}


def run_case(case: str, repeats: int) -> dict:
    """Measure one case in this process (called in a subprocess); returns a JSON-able dict."""
    import tracemalloc

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import numpy  # noqa: F401  (imports count in the baseline)
    import pandas  # noqa: F401
    import scipy.signal  # noqa: F401

    from toetwitch.pipeline.run.batch import _peak_rss_mb  # VmHWM on Linux, as docs/bench.md says

    fn, secs, note = _prepare(case)
    _reset_hwm()
    base = _peak_rss_mb()
    times = []
    once = ("day", "day_parquet", "neurokit", "packets_20", "packets_100ms")
    for _ in range(repeats if case not in once else 1):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    peak = _peak_rss_mb()
    rss = peak - base
    tm = None
    if case not in once + tuple(LIB_READS):  # too slow to trace; RSS is enough (Arrow is untraced)
        tracemalloc.start()
        fn()
        tm = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    times.sort()
    return {"case": case, "seconds_recording": secs, "t_min": times[0],
            "t_median": times[len(times) // 2], "repeats": len(times), "rss_delta_mb": rss,
            "rss_peak_mb": peak,
            "tracemalloc_mb": tm, "note": note}


# --------------------------------------------------------------------------------------------
# orchestration
# --------------------------------------------------------------------------------------------
CASES = [
    ("memory", "toetwitch analyse (in memory)"),
    ("edf", "toetwitch analyse_source (EDF)"),
    ("edf_read", "pyedflib read (EDF), no analysis"),
    ("parquet", "toetwitch analyse_source (Parquet)"),
    ("parquet_read", "pyarrow read (Parquet), no analysis"),
    ("csv", "toetwitch analyse_source (CSV)"),
    ("csv_read", "pyarrow read (CSV), no analysis"),
    ("blocks_250ms", "toetwitch streaming, 250-ms blocks"),
    ("packets_100ms", "toetwitch streaming, 100-ms packets (live)"),
    ("packets_100ms_held", "toetwitch streaming, 100-ms packets, held"),
    ("packets_20", "toetwitch streaming, 20-sample packets"),
    ("lean", "lean scipy baseline"),
    ("neurokit", "NeuroKit2 emg_process"),
    ("biosppy", "BioSPPy emg()"),
    ("day", "toetwitch analyse_source, 24-h EDF"),
    ("day_parquet", "toetwitch analyse_source, 24-h Parquet"),
]


def machine() -> str:
    import numpy as np
    import scipy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}; one core per case")


def _fmt_rows(results: list[dict], labels: dict[str, str], markdown: bool) -> str:
    head = ["case", "time for 1 h (min / median)", "x real time", "RSS Δ MB",
            "tracemalloc MB", "note"]
    lines = []
    for r in results:
        if "error" in r:
            lines.append([labels[r["case"]], r["error"], "", "", "", ""])
            continue
        scale = HOUR_S / r["seconds_recording"]
        t1 = r["t_min"] * scale
        t = f"{t1:.2f} s / {r['t_median'] * scale:.2f} s"
        if r["case"].startswith("day"):
            t = f"24 h: {r['t_min']:.1f} s"
        x = f"{r['seconds_recording'] / r['t_min']:,.0f}"
        tm = "–" if r["tracemalloc_mb"] is None else f"{r['tracemalloc_mb']:.0f}"
        lines.append([labels[r["case"]], t, x, f"{r['rss_delta_mb']:.0f}", tm, r["note"]])
    from bench.common import render_table

    return render_table(head, lines, markdown, right_align=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="case names (memory, edf, parquet, ...)")
    ap.add_argument("--skip-day", action="store_true", help="skip the 24-h EDF and Parquet cases")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--from-json", type=Path, metavar="PATH",
                    help="print the table of an earlier --json run instead of measuring")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile toetwitch.pipeline.analyse on the hour and print the top costs")
    ap.add_argument("--ratios", action="store_true",
                    help="only the reader and streaming ratios: their cases timed in one "
                         "process, interleaved (--repeats rounds)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="DetectorConfig override for the toetwitch cases, e.g. "
                         "--set template_bank=true (repeatable)")
    a = ap.parse_args(argv)
    from bench.common import parse_sets

    OVERRIDES.update(parse_sets(a.set))
    sets = [x for kv in a.set for x in ("--set", kv)]  # handed on to the case subprocesses
    if a.case == "ratios":
        print(json.dumps(run_ratios(a.repeats)))
        return 0
    if a.ratios:
        make_inputs(day=False)
        p = subprocess.run([sys.executable, __file__, "--case", "ratios", "--repeats",
                            str(a.repeats), *sets], capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            print(p.stderr[-2000:])
            return 1
        res = json.loads(p.stdout.strip().splitlines()[-1])["results"]
        print(f"{time.strftime('%Y-%m-%d')}, {machine()}; interleaved in one process\n")
        for r in res:
            print(f"  {r['case']:<20} min {r['t_min']:.2f} s, median {r['t_median']:.2f} s "
                  f"({r['repeats']} rounds, {r['seconds_recording'] / 3600:g} h)")
        print()
        for line in ratio_lines({r["case"]: r for r in res}):
            print(line)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": machine(),
                                          "ratios": res}, indent=1))
        return 0
    if a.case:
        print(json.dumps(run_case(a.case, a.repeats)))
        return 0
    if a.from_json:
        saved = json.loads(a.from_json.read_text())
        print(f"{saved['date']}, {saved['machine']}\n")
        print(_fmt_rows(saved["results"], dict(CASES), a.markdown))
        for line in ratio_lines({r["case"]: r for r in saved["results"] if "error" not in r}):
            print(line)
        return 0
    make_inputs(day=not a.skip_day)
    if a.profile:
        return profile()
    labels = dict(CASES)
    results = []
    for case, label in CASES:
        if a.only and case not in a.only:
            continue
        if case.startswith("day") and a.skip_day:
            continue
        mod = {"neurokit": "neurokit2", "biosppy": "biosppy"}.get(case)
        from bench.common import peer_available

        if mod and not peer_available(mod):
            print(f"{mod} not installed: {label} skipped (pip install '.[bench]')")
            results.append({"case": case, "error": "not installed"})
            continue
        print(f"running {label} ...", flush=True)
        p = subprocess.run([sys.executable, __file__, "--case", case, "--repeats",
                            str(a.repeats), *sets], capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            print(p.stderr[-2000:])
            results.append({"case": case, "error": f"failed (exit {p.returncode})"})
            continue
        results.append(json.loads(p.stdout.strip().splitlines()[-1]))
    print(f"\n{time.strftime('%Y-%m-%d')}, {machine()}\n")
    print(_fmt_rows(results, labels, a.markdown))
    by = {r["case"]: r for r in results if "error" not in r}
    if "memory" in by:
        x = by["memory"]["seconds_recording"] / by["memory"]["t_min"]
        print(f"\ntoetwitch in memory: {x:,.0f}x real time (target >= 10,000x)", end="")
        if "lean" in by:
            print(f"; {by['memory']['t_min'] / by['lean']['t_min']:.1f}x the lean baseline's "
                  "time (target <= 2x)", end="")
        if "neurokit" in by:
            nk_h = by["neurokit"]["t_min"] * HOUR_S / by["neurokit"]["seconds_recording"]
            print(f"; {nk_h / by['memory']['t_min']:,.0f}x faster than NeuroKit2 (target >= 500x)",
                  end="")
        print()
    for line in ratio_lines(by):
        print(line)
    for case, fmt in (("day", "EDF"), ("day_parquet", "Parquet")):
        if case in by:
            print(f"24-h {fmt} peak memory: RSS Δ {by[case]['rss_delta_mb']:.0f} MB over the "
                  f"imports, whole process {by[case]['rss_peak_mb']:.0f} MB (target < 300 MB)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": machine(),
                                      "results": results}, indent=1))
    return 0


def ratio_lines(by: dict[str, dict]) -> list[str]:
    """The issue's ratios from one run: each reader against (the library's own read + the
    in-memory analysis), target <= 1.5x; streaming in 100-ms packets against batch, <= 10x."""
    out = []
    mem = by.get("memory")
    if mem is None:
        return out
    for case, lib, name in (("parquet", "parquet_read", "Parquet"), ("csv", "csv_read", "CSV"),
                            ("edf", "edf_read", "EDF")):
        if case in by and lib in by:
            ref = by[lib]["t_min"] + mem["t_min"]
            out.append(f"{name}: {by[case]['t_min']:.2f} s = {by[case]['t_min'] / ref:.2f}x "
                       f"(library read {by[lib]['t_min']:.2f} s + in-memory analysis "
                       f"{mem['t_min']:.2f} s) (target <= 1.5x)")
    for case, what in (("packets_100ms_held", "held as replay --speed max does"),
                       ("packets_100ms", "each packet analysed at once, as live")):
        if case in by:
            per_h = by[case]["t_min"] * HOUR_S / by[case]["seconds_recording"]
            out.append(f"streaming, 100-ms packets, {what}: {per_h:.2f} s per hour = "
                       f"{per_h / mem['t_min']:.1f}x batch (target <= 10x)")
    return out


def profile(top: int = 25) -> int:
    """cProfile of ``toetwitch.pipeline.analyse`` on the in-memory hour; prints the top cumulative and
    self-time entries."""
    import cProfile
    import io
    import pstats

    fn, _, _ = _prepare("memory")
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    for key in ("tottime", "cumulative"):
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats(key).print_stats(top)
        print(f"--- sorted by {key} ---")
        print("\n".join(s.getvalue().splitlines()[:top + 12]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
