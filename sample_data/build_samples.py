"""Build the bundled sample recordings in ``sample_data/`` (deterministic, seeded).

Run by a developer from the repository root::

    .venv/bin/python sample_data/build_samples.py [--shared ../shared]

It reads real public recordings from the shared data folder (``../shared/data``, or
``$TOETWITCH_SHARED/data``), injects simulated fasciculations at known times with
:mod:`toetwitch.drivers.simulate`, and writes each recording with a ``<name>.truth.csv`` table
(columns ``time_s, kind, end_s, peak_to_peak_uv, acc_peak_mg``). Users get the committed
outputs; they never need the shared folder. What each file holds: ``sample_data/README.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import butter, sosfiltfilt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from toetwitch.drivers.readers.edf import write_edf  # noqa: E402
from toetwitch.drivers.simulate import (  # noqa: E402
    TRUTH_COLUMNS,
    add_acc_twitches,
    add_movement,
    inject_twitches,
    rest_twitch_times,
    resting_acc,
    simulate_recording,
)

FS_ACC_HZ = 100.0
#: Fixed wall-clock start for the EDF sample (shows night-time statistics).
EDF_START = "2026-03-14T23:40:00"


def _bandpass(x: np.ndarray, fs_hz: float) -> np.ndarray:
    sos = butter(4, [20, 450], "bandpass", fs=fs_hz, output="sos")
    return sosfiltfilt(sos, x)


def _active_segments(x_uv: np.ndarray, fs_hz: float) -> list[tuple[float, float]]:
    """Voluntary activity in a real trace: 250-ms RMS above 4x its 20th percentile.

    Segments closer than 0.5 s are merged. An approximate label for the truth table, not a
    detector.
    """
    y = _bandpass(x_uv, fs_hz)
    w = int(0.25 * fs_hz)
    rms = np.sqrt(np.convolve(y**2, np.ones(w) / w, "same"))
    act = rms > 4 * np.percentile(rms, 20)
    d = np.diff(np.concatenate([[0], act.astype(int), [0]]))
    starts, ends = np.flatnonzero(d == 1) / fs_hz, np.flatnonzero(d == -1) / fs_hz
    merged: list[list[float]] = []
    for s, e in zip(starts, ends, strict=True):
        if merged and s - merged[-1][1] < 0.5:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _twitch_rows(
    emg_uv: np.ndarray,
    fs_emg_hz: float,
    acc_g: np.ndarray | None,
    rate_per_min: float,
    busy: list[tuple[float, float]],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[dict]]:
    """Inject resting twitches into ``emg_uv`` (and transients into ``acc_g``, in place)."""
    duration_s = len(emg_uv) / fs_emg_hz
    times = rest_twitch_times(rate_per_min, duration_s, busy, rng)
    times = np.round(times * fs_emg_hz) / fs_emg_hz
    p2p = np.exp(rng.uniform(np.log(20), np.log(200), len(times)))
    out = inject_twitches(emg_uv, fs_emg_hz, times, p2p, rng=rng)
    mg = (
        add_acc_twitches(acc_g, FS_ACC_HZ, times, rng)
        if acc_g is not None
        else np.full(len(times), np.nan)
    )
    rows = [
        dict(time_s=t, kind="fasciculation", end_s=t + 0.008, peak_to_peak_uv=a, acc_peak_mg=m)
        for t, a, m in zip(times, p2p, mg, strict=True)
    ]
    return out, rows


def _write_truth(rows: list[dict], path: Path) -> None:
    df = pd.DataFrame(rows, columns=TRUTH_COLUMNS).sort_values("time_s", kind="stable")
    df.to_csv(path, index=False, float_format="%.4f")


def _mixed_csv(
    path: Path,
    emg_uv: np.ndarray | None,
    fs_emg_hz: float | None,
    acc_g: np.ndarray | None,
    fs_acc_hz: float | None,
) -> None:
    """Write docs/contracts.md §1 CSV; with both streams, one row per sample of either stream."""
    parts = []
    if emg_uv is not None:
        t = np.arange(len(emg_uv)) / fs_emg_hz
        parts.append(pd.DataFrame({"time_s": t, "emg_uv": emg_uv}))
    if acc_g is not None:
        t = np.arange(len(acc_g)) / fs_acc_hz
        parts.append(
            pd.DataFrame(
                {
                    "time_s": t,
                    "acc_x_g": acc_g[:, 0],
                    "acc_y_g": acc_g[:, 1],
                    "acc_z_g": acc_g[:, 2],
                }
            )
        )
    df = pd.concat(parts, ignore_index=True).sort_values("time_s", kind="stable")
    cols = [c for c in ("time_s", "emg_uv", "acc_x_g", "acc_y_g", "acc_z_g") if c in df]
    fmt = {
        "time_s": "{:.4f}",
        "emg_uv": "{:.2f}",
        "acc_x_g": "{:.5f}",
        "acc_y_g": "{:.5f}",
        "acc_z_g": "{:.5f}",
    }
    with open(path, "w", newline="\n") as f:
        f.write(",".join(cols) + "\n")
        arr = df[cols].to_numpy()
        for row in arr:
            f.write(
                ",".join(
                    "" if np.isnan(v) else fmt[c].format(v) for c, v in zip(cols, row, strict=True)
                )
                + "\n"
            )


def build_rest_twitches(shared: Path, out: Path) -> None:
    """BioSPPy resting EMG (1 kHz) + injected twitches + synthetic 100 Hz accelerometer."""
    raw = np.loadtxt(shared / "biosppy" / "emg.txt", comments="#")
    # 12-bit ADC -> µV with the PLUX transfer function (data README §2; unverified device).
    emg = (raw * 3.0 / 4096 - 1.5) * 1000.0
    emg -= np.median(emg)
    fs = 1000.0
    rng = np.random.default_rng(20261125)
    # Real low-level tonic motor-unit firing in this file (data README §2).
    tonic = [(35.0, 41.0), (49.0, 56.0)]
    acc = resting_acc(int(len(emg) / fs * FS_ACC_HZ), rng)
    emg, rows = _twitch_rows(emg, fs, acc, 15.0, tonic, rng)
    rows += [
        dict(time_s=s, kind="tonic", end_s=e, peak_to_peak_uv=np.nan, acc_peak_mg=np.nan)
        for s, e in tonic
    ]
    _mixed_csv(out / "rest_twitches.csv", emg, fs, acc, FS_ACC_HZ)
    _write_truth(rows, out / "rest_twitches.truth.csv")


def build_rest_and_voluntary(shared: Path, out: Path) -> None:
    """PLUX adductor pollicis rest + contractions (1 kHz, mV) + twitches; EDF+ with EMG and ACC."""
    path = shared / "biosignalsnotebooks" / "emg_1000_hz_16_bits_solo.csv"
    emg = np.loadtxt(path, comments="#") * 1000.0  # mV -> µV
    fs = 1000.0
    emg = emg[: int(len(emg) // fs * fs)]  # whole seconds: EDF data records are 1 s
    emg -= np.median(emg)
    rng = np.random.default_rng(20261126)
    active = _active_segments(emg, fs)
    acc = resting_acc(int(len(emg) / fs * FS_ACC_HZ), rng)
    rows = []
    for s, e in active:
        # The real recording has no accelerometer: contractions get a synthetic movement.
        mg = add_movement(acc, FS_ACC_HZ, s, e, (20.0, 60.0), rng)
        seg = _bandpass(emg, fs)[int(s * fs) : int(e * fs)]
        rows.append(
            dict(time_s=s, kind="voluntary", end_s=e, peak_to_peak_uv=np.ptp(seg), acc_peak_mg=mg)
        )
    emg, tw = _twitch_rows(emg, fs, acc, 15.0, active, rng)
    # EDF+ typed labels ("type name"): MNE's read_raw_edf(infer_types=True) reads EMG as emg and
    # the axes as misc instead of EEG (see toetwitch.pipeline.run.edf_writer)
    write_edf(out / "rest_and_voluntary.edf", emg, fs, acc, FS_ACC_HZ, start_time=EDF_START,
              emg_label="EMG EMG", acc_label="MISC ACC")
    _write_truth(rows + tw, out / "rest_and_voluntary.truth.csv")


def build_acc_only(out: Path) -> None:
    """Synthetic 100 Hz accelerometer: rest, twitch transients on every twitch, two movements."""
    rec, truth = simulate_recording(
        120.0,
        fs_acc_hz=FS_ACC_HZ,
        seed=20261127,
        twitch_rate_per_min=12.0,
        acc_twitch_fraction=1.0,
        acc_twitch_mg=(5.0, 15.0),
        limb_movements=2,
        emg=False,
        name="acc_only",
    )
    truth = truth.copy()
    truth["peak_to_peak_uv"] = np.nan  # no EMG recorded
    _mixed_csv(out / "acc_only.csv", None, None, rec.acc_g, rec.fs_acc_hz)
    truth.to_csv(out / "acc_only.truth.csv", index=False, float_format="%.4f")


def build_simulated_parquet(out: Path) -> None:
    """Fully synthetic 2 kHz EMG + 100 Hz ACC with every confounder kind, as Parquet."""
    rec, truth = simulate_recording(
        60.0,
        fs_emg_hz=2000.0,
        fs_acc_hz=FS_ACC_HZ,
        seed=20261128,
        twitch_rate_per_min=15.0,
        mains_hz=50.0,
        mains_uv=3.0,
        voluntary_bursts=2,
        tonic_trains=1,
        pops=1,
        motion=1,
        limb_movements=1,
        name="simulated_confounders",
    )
    te = np.arange(len(rec.emg_uv)) / rec.fs_emg_hz
    ta = np.arange(len(rec.acc_g)) / rec.fs_acc_hz
    df = pd.concat(
        [
            pd.DataFrame({"time_s": te, "emg_uv": rec.emg_uv.astype(np.float32)}),
            pd.DataFrame(
                {
                    "time_s": ta,
                    "acc_x_g": rec.acc_g[:, 0].astype(np.float32),
                    "acc_y_g": rec.acc_g[:, 1].astype(np.float32),
                    "acc_z_g": rec.acc_g[:, 2].astype(np.float32),
                }
            ),
        ],
        ignore_index=True,
    ).sort_values("time_s", kind="stable")
    df.to_parquet(out / "simulated_confounders.parquet", index=False, row_group_size=50_000)
    truth.to_csv(out / "simulated_confounders.truth.csv", index=False, float_format="%.4f")


LICENCES = {
    "biosppy/LICENSE_BioSPPy.txt": "LICENSE_BioSPPy_BSD-3-Clause.txt",
    "biosignalsnotebooks/LICENSE_biosignalsnotebooks_MIT.txt": "LICENSE_biosignalsnotebooks_MIT.txt",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("TOETWITCH_SHARED", ROOT.parent / "shared"))
    p.add_argument("--shared", type=Path, default=default, help="shared folder (has data/)")
    p.add_argument("--out", type=Path, default=HERE, help="output folder")
    args = p.parse_args(argv)
    data = args.shared / "data"
    if not data.is_dir():
        print(f"build_samples: {data} not found (needs the shared data folder)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    build_rest_twitches(data, args.out)
    build_rest_and_voluntary(data, args.out)
    build_acc_only(args.out)
    build_simulated_parquet(args.out)
    lic = args.out / "licences"
    lic.mkdir(exist_ok=True)
    for src, dst in LICENCES.items():
        shutil.copyfile(data / src, lic / dst)
    for f in sorted(args.out.iterdir()):
        if f.is_file() and f.suffix != ".py":
            print(f"{f.name:40s} {f.stat().st_size / 1e6:6.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
