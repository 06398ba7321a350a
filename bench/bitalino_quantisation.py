"""What a BITalino's 10-bit EMG channel (one step ≈ 3.19 µV, range ±1.64 mV) does to detection.

Run from the repository root::

    .venv/bin/python bench/bitalino_quantisation.py [--seed N] [--markdown]

Takes the EMG recordings of ``bench/detection.py`` (real backgrounds and real motor-unit
shapes from ``../shared/data``, twitches of known times and sizes), brings each to the
board's 1000 Hz as the emulated BITalino does (``resample_poly``), and runs toetwitch twice:
on the 1000-Hz signal as it is, and after the board's ADC (PLUX transfer function, rounded
to 10 bit and clipped, ``toetwitch.drivers.ble.profiles.bitalino.emg_adc`` then ``emg_uv``). Reports
twitches found per size (p2p µV and p2p / noise σ), the smallest twitch found, and false
positives, with and without the quantisation. Skips (exit 0) without the shared data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Case, match_events, render_table, score  # noqa: E402
from bench.detection import DEFAULT_SEED, build_cases, detect_toetwitch  # noqa: E402
from toetwitch.drivers.ble.emulator.bitalino import resample  # noqa: E402
from toetwitch.drivers.ble.profiles import bitalino as bit  # noqa: E402

P2P_BINS_UV = (0.0, 30.0, 50.0, 100.0, np.inf)


def at_1k(case: Case) -> Case:
    emg = resample(case.emg_uv, float(case.fs_emg_hz), 1000.0)
    return Case(case.name, case.kind, 1000.0, emg, None, None, case.truth_s, case.active_s,
                case.tolerance_s, case.note, dict(case.extra))


def quantised(case: Case) -> Case:
    q = bit.emg_uv(bit.emg_adc(case.emg_uv, 10), 10)
    return Case(case.name, case.kind, 1000.0, q, None, None, case.truth_s, case.active_s,
                case.tolerance_s, case.note, dict(case.extra))


def run(seed: int, markdown: bool) -> int:
    cases = [c for c in build_cases(seed) if c.emg_uv is not None and "twitch_p2p_uv" in c.extra]
    if not cases:
        print("bitalino_quantisation: ../shared/data is absent; nothing to measure")
        return 0
    rows = {"as sampled (1000 Hz)": [], "BITalino 10-bit ADC": []}
    fp = {k: 0 for k in rows}
    minutes = 0.0
    clipped = 0
    sizes, sigmas = [], []
    for c in cases:
        base = at_1k(c)
        q = quantised(base)
        clipped += int(np.sum(np.abs(base.emg_uv) > 1630.0))
        order = np.argsort(c.truth_s, kind="stable")
        sizes.append(np.asarray(c.extra["twitch_p2p_uv"])[order])
        sigmas.append(np.asarray(c.extra["twitch_p2p_uv"])[order] / c.extra["noise_sigma_uv"])
        minutes += base.duration_s / 60
        for label, case in (("as sampled (1000 Hz)", base), ("BITalino 10-bit ADC", q)):
            det = detect_toetwitch(case)
            m = match_events(case.truth_s[order], det, case.tolerance_s)
            rows[label].append(m >= 0)
            s = score(case.truth_s, det, case.tolerance_s, case.active_s, case.duration_s)
            fp[label] += s.fp
    p2p, sig = np.concatenate(sizes), np.concatenate(sigmas)
    found = {k: np.concatenate(v) for k, v in rows.items()}
    head = ["twitch p2p", "twitches", *rows]
    lines = []
    for lo, hi in zip(P2P_BINS_UV[:-1], P2P_BINS_UV[1:], strict=True):
        inside = (p2p >= lo) & (p2p < hi)
        rng = f"≥ {lo:g} µV" if hi == np.inf else f"{lo:g}–{hi:g} µV"
        lines.append([rng, str(int(inside.sum()))] + [
            f"{int(f[inside].sum())} ({f[inside].mean():.0%})" if inside.any() else "–"
            for f in found.values()])
    lines.append(["all", str(len(p2p))] + [f"{int(f.sum())} ({f.mean():.0%})" for f in found.values()])
    lines.append(["smallest found", ""] + [
        f"{p2p[f].min():.1f} µV ({sig[f][np.argmin(p2p[f])]:.1f} σ)" for f in found.values()])
    lines.append(["false positives / min", ""] + [f"{fp[k] / minutes:.2f}" for k in rows])
    print(f"{len(cases)} EMG recordings, {minutes:.0f} min at 1000 Hz, seed {seed}; one ADC step "
          f"= {bit.emg_uv(np.array([513]), 10)[0]:.2f} µV; samples beyond ±1.64 mV (clipped): "
          f"{clipped}")
    print(render_table(head, lines, markdown))
    lost = int((found["as sampled (1000 Hz)"] & ~found["BITalino 10-bit ADC"]).sum())
    gained = int((~found["as sampled (1000 Hz)"] & found["BITalino 10-bit ADC"]).sum())
    print(f"twitches found only without quantisation: {lost}; only with it: {gained}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args(argv)
    return run(a.seed, a.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
