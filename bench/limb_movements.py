"""Limb movements counted from EMG, on real EMG backgrounds, scored as the accelerometer ones.

Run from the repository root::

    .venv/bin/python bench/limb_movements.py [--seed N] [--minutes M] [--no-acc] [--markdown] [--json PATH]

Recordings (seeded, deterministic): the real EMG backgrounds bench/detection.py uses,
lengthened with time-reversed copies to ``--minutes`` (30), each "dense" and "sparse" as in
bench/acc_limb_movements.py (:func:`backgrounds`): the longest quiet stretches of BioSPPy
``emg.txt`` (noise σ ~1.2 µV; at 1 and 2 kHz) and ``emg_1.txt`` (σ ~4.3 µV, real 50 Hz mains),
as the accelerometer bench's still stretches, and the three whole files with their real
activity (``emg.txt``'s tonic stretches, ``emg_1``'s activations, PLUX
``emg_1000_hz_16_bits_solo``'s voluntary contractions over most of it, where no movement fits).

Injected limb movements (the truth): EMG bursts made by bench/detection.py's voluntary-burst
generator (:func:`bench.detection.add_voluntary`: 6-15 real openhdemg motor units firing at
8-20 Hz, recruited and de-recruited at staggered times, 0.2 s ramps), scaled to an RMS of
10-300 µV over the burst (log-uniform; the AASM onset is 8 µV above resting EMG, tibialis
anterior bursts run from tens to hundreds of µV), 0.5-10 s long (log-uniform), in the same
series structure as the accelerometer bench (:func:`bench.common.place_movements`: runs of 4-10
at 8-60 s ±20 %, isolated movements > 90 s from any other, dense / sparse). Confounders that are
NOT limb movements: brief bursts (0.1-0.3 s, 30-300 µV RMS) and sustained contractions (12-30 s,
20-200 µV RMS).

With the accelerometer (default; ``--no-acc`` skips it): the same EMG with a simultaneous
100 Hz accelerometer, the still PLUX ``sync_acc_1`` stretch of the accelerometer bench, on which
every movement also turns the foot by 1-30° over the same span (:func:`acc_limb_movements.inject`),
a brief burst is a knock and a sustained contraction a long movement. Every movement is seen by
both sensors here; on a real toe 39 % of EMG leg events move nothing (Terrill et al. 2013).

Scoring: exactly the accelerometer bench's (:func:`bench.common.score_lm_case`): one to one, a
detection matches a truth when the middle of its span lies within the truth's span ± 1 s;
unmatched detections are false positives per hour, those on a confounder shown apart too;
those inside the background's own activity (:func:`bench.common.emg_activity_spans`, labelled
before injection) are neither, and movements are injected ≥ 2 s away from it. PLM index:
movements in AASM series (≥ 4, 5-90 s apart onset to onset) per hour, truth vs detected, and
the pipeline's own ``summary["plm_index_per_h"]``.

Detector: the full pipeline (``StreamingAnalyser``, what ``analyse``, replay and ``monitor`` run),
events of type ``limb_movement``. docs/contracts.md §9: an EMG limb movement's ``time_s`` is its
envelope peak and ``duration_ms`` its span, an accelerometer one's ``time_s`` its onset; the
span of an EMG movement is read from the analyser's ``movement_spans_s`` (:func:`lm_spans`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.acc_limb_movements import DURATION_BINS_S, inject, knock, own_movement_spans  # noqa: E402
from bench.common import (  # noqa: E402
    LM_MATCH_PAD_S,
    FloatArray,
    LmScore,
    Movement,
    Span,
    emg_activity_spans,
    lm_plm_index,
    load_biosppy_emg,
    load_plux_acc,
    load_plux_emg,
    merge_spans,
    mirror_extend,
    motor_unit_templates,
    place_movements,
    render_table,
    resample_uv,
    score_lm_case,
    shared_data_dir,
    truth_plm_index,
)
from bench.detection import add_voluntary  # noqa: E402

DEFAULT_SEED = 20261202
#: injected burst RMS (µV), log-uniform: the smallest just clears the AASM 8 µV onset over rest
BURST_RMS_UV = (10.0, 300.0)
BRIEF_RMS_UV = (30.0, 300.0)
SUSTAINED_RMS_UV = (20.0, 200.0)
SIZE_BINS_UV = ((10.0, 30.0), (30.0, 100.0), (100.0, 300.0))
FS_ACC_HZ = 100.0


@dataclass
class EmgLmCase:
    """One recording: EMG (µV, shape (n,)) at ``fs_hz``, optionally a simultaneous
    accelerometer (g, (m, 3)) at ``fs_acc_hz``, and its truth (``bench.common.LmTruthCase``)."""

    name: str
    fs_hz: float
    emg_uv: FloatArray
    truth: list[Movement]
    confounders: list[tuple[str, Span]]
    background_active: list[Span] = field(default_factory=list)
    fs_acc_hz: float | None = None
    acc_g: FloatArray | None = None

    @property
    def hours(self) -> float:
        return len(self.emg_uv) / self.fs_hz / 3600.0


# --------------------------------------------------------------------------------------------
# injection
# --------------------------------------------------------------------------------------------
def add_burst(x: FloatArray, fs_hz: float, span: Span, rms_uv: float, templates: list[FloatArray],
              rng: np.random.Generator) -> None:
    """Add an EMG burst over ``span`` (s): bench/detection.py's voluntary interference pattern
    of real motor units, scaled so its RMS over the span is ``rms_uv`` (in place)."""
    a, b = int(span[0] * fs_hz), min(len(x), int(span[1] * fs_hz))
    seg = np.zeros(b - a)
    add_voluntary(seg, fs_hz, (0.0, (b - a) / fs_hz), templates, rng)
    rms = float(np.sqrt(np.mean(seg ** 2))) if len(seg) else 0.0
    if rms > 0:
        x[a:b] += seg * (rms_uv / rms)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def build_case(name: str, bg_uv: FloatArray, fs_hz: float, minutes: float, dense: bool,
               rng: np.random.Generator, templates: list[FloatArray],
               acc_bg_g: FloatArray | None = None, fs_acc_hz: float = FS_ACC_HZ,
               acc_rng: np.random.Generator | None = None) -> EmgLmCase:
    """A recording of ``minutes`` on the background (lengthened by time-reversed copies) with
    movements and confounders injected; with ``acc_bg_g``, also the simultaneous accelerometer
    (drawn from ``acc_rng``, so the EMG is the same with or without it)."""
    n = int(minutes * 60 * fs_hz)
    x = mirror_extend(bg_uv, n).copy()
    total = n / fs_hz
    active, _lone = emg_activity_spans(x, fs_hz)
    acc = None
    if acc_bg_g is not None:
        acc = mirror_extend(acc_bg_g, int(total * fs_acc_hz)).copy()
        active = merge_spans(active + own_movement_spans(acc, fs_acc_hz))
    truth, conf = place_movements(total, rng, dense, [(a - 1, b + 1) for a, b in active],
                                  size_range=BURST_RMS_UV, kinds=("brief",) * 6 + ("long",) * 2)
    for mv in truth:
        add_burst(x, fs_hz, mv.span, mv.size, templates, rng)
    spans: list[tuple[str, Span]] = []
    for kind, t, length in conf:
        if kind == "brief":
            d = rng.uniform(0.1, 0.3)
            add_burst(x, fs_hz, (t, t + d), _log_uniform(rng, *BRIEF_RMS_UV), templates, rng)
            spans.append((kind, (t, t + d)))
        else:  # a sustained contraction: not a limb movement (> 10 s)
            add_burst(x, fs_hz, (t, t + length), _log_uniform(rng, *SUSTAINED_RMS_UV), templates, rng)
            spans.append((kind, (t, t + length)))
    if acc is not None:
        r = acc_rng if acc_rng is not None else rng
        for mv in truth:
            inject(acc, fs_acc_hz, mv.onset_s, mv.duration_s, _log_uniform(r, 1.0, 30.0), r,
                   tremor_mg=r.uniform(0, 5))
        for kind, (a, b) in spans:
            if kind == "brief":
                knock(acc, fs_acc_hz, a, r)
            else:
                inject(acc, fs_acc_hz, a, b - a, r.uniform(5, 30), r, tremor_mg=r.uniform(5, 20))
    return EmgLmCase(name, fs_hz, x, truth, spans, active, fs_acc_hz if acc is not None else None,
                     acc)


def backgrounds(data: Path) -> list[tuple[str, FloatArray, float]]:
    """(name, EMG background in µV, rate) on the detection bench's three real EMG files: their
    longest quiet stretches (rest only, as the accelerometer bench's still stretches; one of
    them also at 2 kHz) and the whole files with their real activity (where few movements fit:
    what is detected inside that activity is neither TP nor FP). Rates are changed on the
    whole file before cutting, so no resampler edge sits in the cut."""
    rest = load_biosppy_emg(data / "biosppy" / "emg.txt")
    emg_1 = load_biosppy_emg(data / "biosppy" / "emg_1.txt")
    solo = load_plux_emg(data / "biosignalsnotebooks" / "emg_1000_hz_16_bits_solo.csv")
    cut = lambda x, fs, a, b: x[int(a * fs): int(b * fs)]  # noqa: E731
    return [
        ("BioSPPy emg.txt rest 13.5-34.5 s (σ ~1.2 µV)", cut(rest, 1000, 13.5, 34.5), 1000.0),
        ("BioSPPy emg.txt rest 13.5-34.5 s @2 kHz", cut(resample_uv(rest, 1000, 2000), 2000, 13.5, 34.5), 2000.0),
        ("BioSPPy emg_1 rest 42-63.5 s (σ ~4.3 µV)", cut(emg_1, 1000, 42, 63.5), 1000.0),
        ("BioSPPy emg.txt whole (real tonic stretches)", rest, 1000.0),
        ("BioSPPy emg_1 whole (real activations)", emg_1, 1000.0),
        ("PLUX solo whole (real voluntary, most of it)", solo, 1000.0),
    ]


def acc_background(data: Path) -> FloatArray:
    """The accelerometer bench's still PLUX ``sync_acc_1`` stretch (1-20.5 s) at 100 Hz."""
    a = resample_uv(load_plux_acc(data / "biosignalsnotebooks" / "sync_acc_1.csv"), 1000, FS_ACC_HZ)
    return a[int(1 * FS_ACC_HZ): int(20.5 * FS_ACC_HZ)]


# --------------------------------------------------------------------------------------------
# the pipeline's limb movements
# --------------------------------------------------------------------------------------------
def lm_spans(lm: pd.DataFrame, movement_spans_s: list[tuple[float, float, str]]) -> tuple[FloatArray, FloatArray]:
    """(onsets, ends) in s of the ``limb_movement`` rows ``lm`` (in time order), handling both
    kinds (docs/contracts.md §9): an accelerometer row's ``time_s`` is its onset and
    ``duration_ms`` onset to offset; an EMG row's (``emg``, ``emg+acc``) ``time_s`` is the
    envelope peak, so its span is read from the analyser's ``movement_spans_s`` (one
    ``limb_movement`` entry per row, in order; checked: the same count, each peak inside)."""
    t = lm["time_s"].to_numpy(float)
    dur = lm["duration_ms"].to_numpy(float) / 1000.0
    if (lm["source"] == "acc").all():
        return t, t + dur
    if (lm["source"] == "acc").any():
        raise ValueError("limb movements of both sources in one recording")
    spans = np.array(sorted((a, b) for a, b, k in movement_spans_s if k == "limb_movement"),
                     float).reshape(-1, 2)
    if len(spans) != len(t) or np.any((t < spans[:, 0]) | (t > spans[:, 1] + 0.1)):
        raise ValueError("EMG limb-movement rows do not line up with the analyser's spans")
    return spans[:, 0], spans[:, 1]


def detect_pipeline(case: EmgLmCase, with_acc: bool) -> dict[str, Any]:
    """The full pipeline on the EMG (and, if ``with_acc``, the accelerometer): the
    ``limb_movement`` events' onsets, ends, match times (span middles) and sources, the
    ``cramp`` events' times, and the summary."""
    from toetwitch.pipeline.detect.config import DetectorConfig
    from toetwitch.pipeline.detect.stream import StreamingAnalyser

    acc = case.acc_g if with_acc else None
    sa = StreamingAnalyser(case.fs_hz, case.fs_acc_hz if acc is not None else None,
                           DetectorConfig(), name=case.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sa.push(emg_uv=case.emg_uv, acc_g=acc)
        res = sa.finish()
    ev = res.events
    lm = ev[ev["type"] == "limb_movement"]
    on, end = lm_spans(lm, sa.movement_spans_s)
    return {"onsets": on, "ends": end, "mid": (on + end) / 2, "source": lm["source"].to_numpy(str),
            "cramps_s": ev.loc[ev["type"] == "cramp", "time_s"].to_numpy(float),
            "summary": res.summary}


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.0f} %"


def _f1(x: float | None) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.1f}"


def score_detections(case: EmgLmCase, det: dict[str, Any]) -> dict[str, Any]:
    """The accelerometer bench's scores for one detector output, plus per-truth found flags,
    the onsets' and lengths' errors of matched movements and misses the pipeline typed cramp."""
    sc, m = score_lm_case(case, det["mid"])
    order = np.argsort(det["mid"], kind="stable")
    found = m >= 0
    on_err, dur_ratio, cramped = [], [], 0
    for i, mv in enumerate(case.truth):
        if found[i]:
            k = order[m[i]]
            on_err.append(float(det["onsets"][k] - mv.onset_s))
            dur_ratio.append(float((det["ends"][k] - det["onsets"][k]) / mv.duration_s))
        elif np.any((det["cramps_s"] >= mv.onset_s - LM_MATCH_PAD_S)
                    & (det["cramps_s"] <= mv.onset_s + mv.duration_s + LM_MATCH_PAD_S)):
            cramped += 1
    src = det["source"][order[m[found]]] if found.any() else np.array([], str)
    return {"score": sc, "found": found, "onset_err": on_err, "dur_ratio": dur_ratio,
            "cramped": cramped, "plmi": lm_plm_index(case, det["onsets"], det["mid"]),
            "plmi_summary": det["summary"].get("plm_index_per_h"),
            "corroborated": int(np.count_nonzero(src == "emg+acc"))}


def run(seed: int, minutes: float, markdown: bool, with_acc: bool = True) -> dict | None:
    data = shared_data_dir()
    if data is None:
        print("skipped: the real EMG recordings (../shared/data) are not present")
        return None
    t0 = time.perf_counter()
    templates = {fs: motor_unit_templates(fs) for fs in (1000.0, 2000.0)}
    acc_bg = acc_background(data) if with_acc else None
    kinds = ("emg", "fused") if with_acc else ("emg",)
    tot = {k: LmScore() for k in kinds}
    by_dur = {b: [0] + [0] * len(kinds) for b in DURATION_BINS_S}
    by_size = {b: [0] + [0] * len(kinds) for b in SIZE_BINS_UV}
    rows, res_cases, plmi = [], [], []
    clean: list[bool] = []  # recordings where nothing was detected in real background activity
    misses: list[dict[str, Any]] = []
    onset_err: list[float] = []
    dur_ratio: list[float] = []
    secs = dict.fromkeys(kinds, 0.0)
    build_s = 0.0
    differ, cramped, corroborated = 0, 0, 0
    i = 0
    for name, bg, fs in backgrounds(data):
        for dense in (True, False):
            tb = time.perf_counter()
            case = build_case(f"{name}, {'dense' if dense else 'sparse'}", bg, fs, minutes, dense,
                              np.random.default_rng([seed, i]), templates[fs], acc_bg,
                              acc_rng=np.random.default_rng([seed, i, 1]))
            build_s += time.perf_counter() - tb
            i += 1
            sc: dict[str, dict[str, Any]] = {}
            for k in kinds:
                t = time.perf_counter()
                det = detect_pipeline(case, with_acc=k == "fused")
                secs[k] += time.perf_counter() - t
                sc[k] = score_detections(case, det)
                sc[k]["onsets"] = det["onsets"]
                tot[k] = tot[k] + sc[k]["score"]
            same = True
            if with_acc:
                same = np.array_equal(sc["emg"]["onsets"], sc["fused"]["onsets"])
                differ += 0 if same else max(1, abs(len(sc["emg"]["onsets"]) - len(sc["fused"]["onsets"])))
                corroborated += sc["fused"]["corroborated"]
            e = sc["emg"]
            onset_err += e["onset_err"]
            dur_ratio += e["dur_ratio"]
            cramped += e["cramped"]
            for j, mv in enumerate(case.truth):
                for bins, val, tab in ((DURATION_BINS_S, mv.duration_s, by_dur),
                                       (SIZE_BINS_UV, mv.size, by_size)):
                    b = next(b for b in bins if b[0] <= val <= b[1])
                    tab[b][0] += 1
                    for c, k in enumerate(kinds, start=1):
                        tab[b][c] += bool(sc[k]["found"][j])
            clean.append(e["score"].background == 0)
            for j, mv in enumerate(case.truth):
                if not e["found"][j]:
                    misses.append({"case": case.name, "onset_s": mv.onset_s,
                                   "duration_s": mv.duration_s, "rms_uv": mv.size})
            pi_true = truth_plm_index(case)
            plmi.append((pi_true, e["plmi"], e["plmi_summary"] or 0.0)
                        + ((sc["fused"]["plmi"],) if with_acc else ()))
            s = e["score"]
            row = [case.name, str(len(case.truth)), _pct(s.sensitivity), f"{s.fp_per_h:.1f}",
                   str(s.fp_confounder), str(s.background), str(e["cramped"]), f"{pi_true:.1f}",
                   f"{e['plmi']:.1f}", _f1(e["plmi_summary"])]
            if with_acc:
                f = sc["fused"]
                row += [_pct(f["score"].sensitivity), f"{f['score'].fp_per_h:.1f}",
                        "yes" if same else "no",
                        _pct(f["corroborated"] / f["score"].tp if f["score"].tp else np.nan)]
            rows.append(row)
            res_cases.append({"case": case.name, "hours": case.hours, "truth": len(case.truth),
                              "plm_index_truth": pi_true,
                              **{k: {**vars(sc[k]["score"]), "plm_index": sc[k]["plmi"],
                                     "plm_index_summary": sc[k]["plmi_summary"],
                                     "missed_typed_cramp": sc[k]["cramped"],
                                     "corroborated": sc[k]["corroborated"]} for k in kinds}})
    te = tot["emg"]
    row = ["all", str(te.tp + te.fn), _pct(te.sensitivity), f"{te.fp_per_h:.1f}",
           str(te.fp_confounder), str(te.background), str(cramped), "", "", ""]
    if with_acc:
        tf = tot["fused"]
        row += [_pct(tf.sensitivity), f"{tf.fp_per_h:.1f}",
                "yes" if differ == 0 else f"{differ} differ",
                _pct(corroborated / tf.tp if tf.tp else np.nan)]
    rows.append(row)
    head = ["recording", "LMs", "sens. (EMG)", "FP/h (EMG)", "of which on confounders",
            "in real bg activity", "missed: typed cramp", "PLMI truth /h", "PLMI EMG /h",
            "summary plm_index_per_h"]
    if with_acc:
        head += ["sens. (EMG+acc)", "FP/h (EMG+acc)", "EMG+acc = EMG", "found: source emg+acc"]
    print(f"Limb movements from EMG: {len(res_cases)} recordings of {minutes:g} min (seed {seed}), "
          f"{te.tp + te.fn} injected movements\n")
    print(render_table(head, rows, markdown))
    print("\nSensitivity by duration and by burst RMS (" + " / ".join(kinds) + "):\n")

    def frac(v: list[int], j: int) -> str:
        return _pct(v[j] / v[0] if v[0] else np.nan)

    rows2 = [[f"{a:g}-{b:g} s", str(v[0])] + [frac(v, j) for j in range(1, len(v))]
             for (a, b), v in by_dur.items()]
    rows2 += [[f"{a:g}-{b:g} µV RMS", str(v[0])] + [frac(v, j) for j in range(1, len(v))]
              for (a, b), v in by_size.items()]
    print(render_table(["movements", "n", *kinds], rows2, markdown))
    p = np.array(plmi, float)

    def corr(j: int) -> float:
        return float(np.corrcoef(p[:, 0], p[:, j])[0, 1]) if p[:, j].std() > 0 and p[:, 0].std() > 0 else float("nan")

    r = [corr(j) for j in range(1, p.shape[1])]
    mad = [float(np.abs(p[:, j] - p[:, 0]).mean()) for j in range(1, p.shape[1])]
    q = p[np.array(clean)]
    r_clean = (float(np.corrcoef(q[:, 0], q[:, 2])[0, 1])
               if len(q) > 2 and q[:, 0].std() > 0 and q[:, 2].std() > 0 else float("nan"))
    mad_clean = float(np.abs(q[:, 2] - q[:, 0]).mean()) if len(q) else float("nan")
    err, ratio = np.array(onset_err), np.array(dur_ratio)
    print(f"\nPLM index vs truth over the {len(p)} recordings: EMG (onsets) r = {r[0]:.3f}, mean "
          f"|diff| {mad[0]:.1f}/h; the summary's plm_index_per_h r = {r[1]:.3f}, {mad[1]:.1f}/h"
          + (f"; EMG+acc r = {r[2]:.3f}, {mad[2]:.1f}/h" if with_acc else ""))
    print(f"The summary's plm_index_per_h on the {len(q)} recordings with nothing detected in real "
          f"background activity: r = {r_clean:.3f}, mean |diff| {mad_clean:.1f}/h")
    print("Missed (EMG): " + ("none" if not misses else "; ".join(
        f"{m['case']} at {m['onset_s']:.1f} s, {m['duration_s']:.2f} s, {m['rms_uv']:.0f} µV RMS"
        for m in misses)))
    if with_acc:
        print(f"EMG+acc limb movements identical to EMG-only: "
              f"{'all' if differ == 0 else f'no, {differ} differ'}")
    if len(err):
        print(f"Matched movements (EMG): onset error median {np.median(err):+.2f} s, 95th "
              f"percentile |error| {np.percentile(np.abs(err), 95):.2f} s; detected / injected "
              f"length median {np.median(ratio):.2f} (5-95 %: {np.percentile(ratio, 5):.2f}-"
              f"{np.percentile(ratio, 95):.2f})")
    hours = sum(c["hours"] for c in res_cases)
    print(f"Run time: building {build_s:.1f} s, pipeline " + ", ".join(
        f"{k} {v:.1f} s" for k, v in secs.items()) + f" for {hours:.1f} h of data; total "
          f"{time.perf_counter() - t0:.0f} s")
    return {"seed": seed, "minutes": minutes, "cases": res_cases,
            **{f"total_{k}": vars(tot[k]) for k in kinds},
            "plm_index_r": dict(zip(["emg", "summary", *kinds[1:]], r, strict=True)),
            "plm_index_mean_abs_diff": dict(zip(["emg", "summary", *kinds[1:]], mad, strict=True)),
            "plm_index_summary_clean": {"recordings": len(q), "r": r_clean,
                                        "mean_abs_diff": mad_clean},
            "misses_emg": misses, "fused_differs": differ, "missed_typed_cramp": cramped,
            "onset_error_median_s": float(np.median(err)) if len(err) else None,
            "length_ratio_median": float(np.median(ratio)) if len(ratio) else None,
            "run_time_s": {"build": build_s, **secs},
            "by_duration": {f"{a}-{b}": v for (a, b), v in by_dur.items()},
            "by_size_uv_rms": {f"{a}-{b}": v for (a, b), v in by_size.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--minutes", type=float, default=30.0, help="length of each recording")
    p.add_argument("--no-acc", action="store_true",
                   help="skip the recordings with a simultaneous accelerometer (EMG+acc)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--json", type=Path, help="also write the scores as JSON here")
    a = p.parse_args(argv)
    res = run(a.seed, a.minutes, a.markdown, not a.no_acc)
    if a.json and res:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
