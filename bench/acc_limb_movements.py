"""Limb movements counted from a foot accelerometer alone, on real accelerometer backgrounds.

Run from the repository root::

    .venv/bin/python bench/acc_limb_movements.py [--seed N] [--minutes M] [--markdown] [--json PATH]

Recordings (seeded, deterministic): still stretches of the real accelerometer recordings in
``../shared/data`` (PLUX ``sync_acc_1/2``, GGIR AX6, GGIR AX3 with its 15.6 mg quantisation),
resampled to a device rate (52 Hz Polar Verity, 100 Hz, 200 Hz Polar H10) and lengthened with
time-reversed copies to ``--minutes`` (30), plus the whole AX6 file, real wrist movement
included, with movements injected only in its still parts.

Injected limb movements (the truth): the sensor turns by 1-30° (log-uniform) about a random
horizontal axis, with raised-cosine rise and fall of 0.1-0.5 s, holds, and turns back, for a
total of 0.5-10 s (log-uniform), with a faint 3-10 Hz tremor of 0-5 mg while held: a toe or
ankle dorsiflexion as a foot sensor sees it (gravity projection changes by ~17 mg per degree).
Each recording holds periodic series (runs of 4-10 movements, intervals 8-60 s ±20 %) and
isolated movements (> 90 s from any other), in two densities per background ("dense": PLM
index ~60/h, "sparse": ~10/h). Confounders that are NOT limb movements: brief knocks
(0.1-0.3 s, 30-300 mg), long movements (12-30 s) and turning over (a new posture kept).

Scoring, as bench/detection.py scores twitches (``bench/common.py`` conventions): one to one, a
detection matches a truth when its time (the new detector and the pipeline: the middle of its
span; the old accelerometer path: its reported time) lies within the truth's span ± 1 s. Unmatched detections
are false positives (per hour of recording); those on an injected confounder are shown apart
too; those inside the real background's own movement (:func:`own_movement_spans`, labelled
before injection: band RMS or orientation shifts) are neither TP nor FP, and movements are
injected ≥ 2 s away from it. PLM index: movements in AASM series (≥ 4, 5-90 s apart onset to onset) per hour,
truth vs detected.

Detectors: ``toetwitch.pipeline.detect.acc_limb_movements`` on its own (the bare detector,
accelerometer rules adapted from AASM/WASM); the full pipeline on the accelerometer-only
recording (``StreamingAnalyser``, what ``analyse``, replay and ``monitor`` run: events of type
``limb_movement``, which without EMG now come from that detector, so the two columns should
agree exactly); and, for comparison, the accelerometer path the analyser used before
(:func:`detect_old`: ``AccPath`` transients of 0.5-10 s over a 2-30 Hz band).

The series placement and the scoring live in ``bench/common.py`` (:func:`place_movements`,
:func:`score_lm_case`), shared with ``bench/limb_movements.py``, which scores EMG limb movements
the same way (and reuses :func:`inject` for its simultaneous accelerometer).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    LM_MATCH_PAD_S,
    FloatArray,
    LmScore,
    Movement,
    Span,
    acc_activity_spans,
    bandpass,
    lm_plm_index,
    load_ax6_acc,
    load_plux_acc,
    merge_spans,
    mirror_extend,
    place_movements,
    render_table,
    resample_uv,
    score_lm_case,
    shared_data_dir,
    truth_plm_index,
)
from toetwitch.pipeline.detect.acc_limb_movements import LimbMovementConfig, detect_limb_movements  # noqa: E402

DEFAULT_SEED = 20261201
#: a detection matches a truth when its time lies within the truth's span ± this (s)
MATCH_PAD_S = LM_MATCH_PAD_S
DURATION_BINS_S = ((0.5, 1.0), (1.0, 3.0), (3.0, 6.0), (6.0, 10.0))
SIZE_BINS_DEG = ((1.0, 3.0), (3.0, 10.0), (10.0, 30.0))


@dataclass
class LmCase:
    name: str
    fs_hz: float
    acc_g: FloatArray
    truth: list[Movement]
    confounders: list[tuple[str, Span]]
    background_active: list[Span] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return len(self.acc_g) / self.fs_hz / 3600.0


# --------------------------------------------------------------------------------------------
# injection (in place on (n, 3) g arrays)
# --------------------------------------------------------------------------------------------
def _rotation(axis: FloatArray, theta: FloatArray) -> FloatArray:
    """Rotation matrices (n, 3, 3) about unit ``axis`` by ``theta`` (rad), Rodrigues."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _profile(n: int, rise: int, fall: int, back: bool) -> FloatArray:
    th = np.ones(n)
    rise, fall = max(1, min(rise, n // 2)), max(1, min(fall, n // 2))
    th[:rise] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, rise))
    if back:
        th[n - fall:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fall))
    return th


def _horizontal_axis(acc_g: FloatArray, a: int, rng: np.random.Generator) -> FloatArray:
    """A random axis perpendicular to the local gravity direction (a real turn of the foot)."""
    g = acc_g[max(0, a - 50): a + 1].mean(axis=0)
    g = g / (np.linalg.norm(g) or 1.0)
    r = rng.normal(size=3)
    r -= r.dot(g) * g
    return r / (np.linalg.norm(r) or 1.0)


def inject(acc_g: FloatArray, fs_hz: float, onset_s: float, duration_s: float, deg: float,
           rng: np.random.Generator, back: bool = True, tremor_mg: float = 0.0) -> None:
    """Turn the sensor by ``deg`` and (if ``back``) turn it back after ``duration_s``."""
    a = int(onset_s * fs_hz)
    b = min(len(acc_g), int((onset_s + duration_s) * fs_hz)) if back else len(acc_g)
    n = b - a
    rise = int(rng.uniform(0.1, 0.5) * fs_hz)
    fall = int(rng.uniform(0.1, 0.5) * fs_hz)
    th = np.radians(deg) * _profile(n, rise, fall, back)
    rot = _rotation(_horizontal_axis(acc_g, a, rng), th)
    acc_g[a:b] = np.einsum("nij,nj->ni", rot, acc_g[a:b])
    if tremor_mg > 0 and n > 8:
        w = bandpass(rng.standard_normal((n + 400, 3)), fs_hz, 3.0, 10.0, order=2)[200:-200]
        w *= tremor_mg / 1000 / (w.std() or 1.0)
        acc_g[a:b] += w * _profile(n, rise, fall, True)[:, None]


def knock(acc_g: FloatArray, fs_hz: float, t_s: float, rng: np.random.Generator) -> Span:
    """A brief knock or twitch: a 0.1-0.3 s, 5-30 Hz burst of 30-300 mg on a random axis."""
    d = rng.uniform(0.1, 0.3)
    a, n = int(t_s * fs_hz), max(4, int(d * fs_hz))
    hi = min(30.0, 0.45 * fs_hz)
    w = bandpass(rng.standard_normal(n + 400), fs_hz, 5.0, hi, order=2)[200:-200] * np.hanning(n)
    acc_g[a: a + n, rng.integers(3)] += w / (np.abs(w).max() or 1.0) * rng.uniform(30, 300) / 1000
    return (t_s, t_s + d)


def own_movement_spans(acc_g: FloatArray, fs_hz: float, shift_mg: float = 20.0) -> list[Span]:
    """The background's own movement, labelled before injection and independently of the
    detectors: ``acc_activity_spans`` (2-30 Hz RMS) plus orientation shifts (the 0.5-s mean
    vector moving more than ``shift_mg`` from one window to the next: > 1 LSB of the AX3's
    15.6 mg steps), padded 0.5 s and joined when < 1 s apart."""
    w = int(round(0.5 * fs_hz))
    nb = len(acc_g) // w
    m = acc_g[: nb * w].reshape(nb, w, 3).mean(axis=1) * 1000.0
    moved = np.r_[False, np.linalg.norm(np.diff(m, axis=0), axis=1) > shift_mg]
    shifts = [(max(0.0, (i - 1) * 0.5 - 0.5), (i + 1) * 0.5 + 0.5) for i in np.flatnonzero(moved)]
    return merge_spans(acc_activity_spans(acc_g, fs_hz) + shifts, 1.0)


def build_case(name: str, bg_g: FloatArray, fs_hz: float, minutes: float, dense: bool,
               rng: np.random.Generator) -> LmCase:
    n = int(minutes * 60 * fs_hz)
    acc = mirror_extend(bg_g, n).copy()
    total = n / fs_hz
    active = own_movement_spans(acc, fs_hz)
    truth, conf = place_movements(total, rng, dense, [(a - 1, b + 1) for a, b in active])
    for mv in truth:
        inject(acc, fs_hz, mv.onset_s, mv.duration_s, mv.size, rng, tremor_mg=rng.uniform(0, 5))
    spans: list[tuple[str, Span]] = []
    for kind, t, length in conf:
        if kind == "brief":  # a knock
            spans.append((kind, knock(acc, fs_hz, t, rng)))
        elif kind == "long":
            inject(acc, fs_hz, t, length, rng.uniform(5, 30), rng, tremor_mg=rng.uniform(5, 20))
            spans.append((kind, (t, t + length)))
        else:  # turning over, and staying so
            inject(acc, fs_hz, t, length, rng.uniform(20, 60), rng, back=False)
            spans.append((kind, (t, t + length)))
    return LmCase(name, fs_hz, acc, truth, spans, active)


def backgrounds(data: Path) -> list[tuple[str, FloatArray, float]]:
    """(name, background in g, rate) per device/background pairing.
    Rates are changed on the whole file before cutting, so no resampler edge sits in the cut."""
    s1 = load_plux_acc(data / "biosignalsnotebooks" / "sync_acc_1.csv")
    s2 = load_plux_acc(data / "biosignalsnotebooks" / "sync_acc_2.csv")
    ax6 = load_ax6_acc(data / "ggir" / "ax6_testfile.csv")
    ax3 = load_ax6_acc(data / "ggir" / "ax3_testfile.csv")
    cut = lambda x, fs, a, b: x[int(a * fs): int(b * fs)]  # noqa: E731
    return [
        ("PLUX sync_acc_1 still @52 Hz (Verity)", cut(resample_uv(s1, 1000, 52), 52, 1, 20.5), 52.0),
        ("PLUX sync_acc_1 still @100 Hz", cut(resample_uv(s1, 1000, 100), 100, 1, 20.5), 100.0),
        ("PLUX sync_acc_2 still @200 Hz (H10)", cut(resample_uv(s2, 1000, 200), 200, 0.5, 3.4), 200.0),
        ("AX6 still 92-95.5 s @100 Hz", cut(ax6, 100, 92, 95.5), 100.0),
        ("AX3 still 33-39 s @100 Hz (15.6 mg steps)", cut(ax3, 100, 33, 39), 100.0),
        # from 11 s: before 6.5 s the AX6 file reads |a| = 0.07 g (not yet a gravity reading)
        ("AX6 from 11 s, real wrist movement @100 Hz", ax6[1100:], 100.0),
    ]


# --------------------------------------------------------------------------------------------
# detectors and scoring
# --------------------------------------------------------------------------------------------
def detect_new(case: LmCase, cfg: LimbMovementConfig) -> tuple[FloatArray, FloatArray, float]:
    """(match times, onsets, PLM index /h) of toetwitch.pipeline.detect.acc_limb_movements."""
    r = detect_limb_movements(case.acc_g, case.fs_hz, cfg)
    mid = (r.start + r.end) / 2 / case.fs_hz
    return mid, r.onsets_s, lm_plm_index(case, r.onsets_s, mid)


def detect_pipeline(case: LmCase) -> tuple[FloatArray, FloatArray, float]:
    """(match times, onsets, PLM index /h) of the full pipeline on the accelerometer alone:
    ``StreamingAnalyser`` events of type ``limb_movement`` (``time_s`` = onset; matched at the
    middle of the span, as the bare detector)."""
    from toetwitch.pipeline.detect.config import DetectorConfig
    from toetwitch.pipeline.detect.stream import StreamingAnalyser

    sa = StreamingAnalyser(None, case.fs_hz, DetectorConfig(), name=case.name)
    sa.push(acc_g=case.acc_g)
    ev = sa.finish().events
    lm = ev[ev["type"] == "limb_movement"]
    on = lm["time_s"].to_numpy(float)
    mid = on + lm["duration_ms"].to_numpy(float) / 2000.0
    return mid, on, lm_plm_index(case, on, mid)


def detect_old(case: LmCase) -> tuple[FloatArray, float]:
    """(times, PLM index /h) of the accelerometer path the analyser typed limb movements with
    before the accelerometer limb-movement rules (``AccPath`` transients lasting
    ``min_activity_s``-``limb_movement_max_s``, at their peak), kept here for comparison."""
    from toetwitch.pipeline.detect.acc_path import AccPath
    from toetwitch.pipeline.detect.config import DetectorConfig

    cfg = DetectorConfig()
    path = AccPath(case.fs_hz, cfg)
    path.push(case.acc_g)
    path.finish()
    t = np.sort(np.array([tr.peak / case.fs_hz for tr in path.transients
                          if cfg.min_activity_s <= (tr.end - tr.start + 1) / case.fs_hz
                          <= cfg.limb_movement_max_s], float))
    return t, lm_plm_index(case, t, t)


def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.0f} %"


def run(seed: int, minutes: float, markdown: bool) -> dict | None:
    data = shared_data_dir()
    if data is None:
        print("skipped: the real accelerometer recordings (../shared/data) are not present")
        return None
    cfg = LimbMovementConfig()
    rng = np.random.default_rng(seed)
    rows, res_cases = [], []
    kinds = ("new", "pipeline", "old")
    tot = {k: LmScore() for k in kinds}
    by_dur = {b: [0, 0, 0, 0] for b in DURATION_BINS_S}  # n, found by new, pipeline, old
    by_size = {b: [0, 0, 0, 0] for b in SIZE_BINS_DEG}
    onset_err: list[float] = []
    plmi = []
    secs = dict.fromkeys(kinds, 0.0)
    differ = 0  # pipeline detections not identical to the bare detector's
    for name, bg, fs in backgrounds(data):
        for dense in (True, False):
            case = build_case(f"{name}, {'dense' if dense else 'sparse'}", bg, fs, minutes, dense,
                              rng)
            t = time.perf_counter()
            mid, onsets, pi_new = detect_new(case, cfg)
            secs["new"] += time.perf_counter() - t
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mid_p, on_p, pi_pipe = detect_pipeline(case)
            secs["pipeline"] += time.perf_counter() - t
            t = time.perf_counter()
            old_t, pi_old = detect_old(case)
            secs["old"] += time.perf_counter() - t
            same = len(on_p) == len(onsets) and np.array_equal(np.sort(on_p), np.sort(onsets))
            differ += 0 if same else max(1, abs(len(on_p) - len(onsets)))
            sc = {"new": score_lm_case(case, mid), "pipeline": score_lm_case(case, mid_p),
                  "old": score_lm_case(case, old_t)}
            for k in kinds:
                tot[k] = tot[k] + sc[k][0]
            order = np.argsort(mid)
            for i, mv in enumerate(case.truth):
                for bins, val, tab in ((DURATION_BINS_S, mv.duration_s, by_dur),
                                       (SIZE_BINS_DEG, mv.size, by_size)):
                    b = next(b for b in bins if b[0] <= val <= b[1])
                    tab[b][0] += 1
                    for j, k in enumerate(kinds, start=1):
                        tab[b][j] += sc[k][1][i] >= 0
                if sc["new"][1][i] >= 0:
                    onset_err.append(float(onsets[order[sc["new"][1][i]]] - mv.onset_s))
            pi_true = truth_plm_index(case)
            plmi.append((pi_true, pi_new, pi_pipe, pi_old))
            s_new, s_pipe, s_old = (sc[k][0] for k in kinds)
            rows.append([case.name, str(len(case.truth)), _pct(s_new.sensitivity),
                         f"{s_new.fp_per_h:.1f}", str(s_new.fp_confounder), str(s_new.background),
                         f"{pi_true:.1f}", f"{pi_new:.1f}",
                         _pct(s_pipe.sensitivity), f"{s_pipe.fp_per_h:.1f}", f"{pi_pipe:.1f}",
                         "yes" if same else "no",
                         _pct(s_old.sensitivity), f"{s_old.fp_per_h:.1f}", f"{pi_old:.1f}"])
            res_cases.append({"case": case.name, "fs_hz": fs, "hours": case.hours,
                              "truth": len(case.truth), "new": vars(s_new),
                              "pipeline": vars(s_pipe), "old": vars(s_old),
                              "pipeline_same_as_new": bool(same),
                              "plm_index_truth": pi_true, "plm_index_new": pi_new,
                              "plm_index_pipeline": pi_pipe, "plm_index_old": pi_old})
    t_new, t_pipe, t_old = (tot[k] for k in kinds)
    rows.append(["all", str(t_new.tp + t_new.fn), _pct(t_new.sensitivity),
                 f"{t_new.fp_per_h:.1f}", str(t_new.fp_confounder), str(t_new.background),
                 "", "", _pct(t_pipe.sensitivity), f"{t_pipe.fp_per_h:.1f}", "",
                 "yes" if differ == 0 else f"{differ} differ",
                 _pct(t_old.sensitivity), f"{t_old.fp_per_h:.1f}", ""])
    head = ["recording", "LMs", "sens. (new)", "FP/h (new)", "of which on confounders",
            "in real bg movement", "PLMI truth /h", "PLMI new /h", "sens. (pipeline)",
            "FP/h (pipeline)", "PLMI pipeline /h", "pipeline = new", "sens. (old)",
            "FP/h (old)", "PLMI old /h"]
    print(f"Limb movements from acceleration alone: {len(res_cases)} recordings of "
          f"{minutes:g} min (seed {seed}), {t_new.tp + t_new.fn} injected movements\n")
    print(render_table(head, rows, markdown))
    print("\nSensitivity by duration and by size (new / pipeline / old):\n")

    def frac(v: list[int], j: int) -> str:
        return _pct(v[j] / v[0] if v[0] else np.nan)

    rows2 = [[f"{a:g}-{b:g} s", str(v[0]), frac(v, 1), frac(v, 2), frac(v, 3)]
             for (a, b), v in by_dur.items()]
    rows2 += [[f"{a:g}-{b:g}°", str(v[0]), frac(v, 1), frac(v, 2), frac(v, 3)]
              for (a, b), v in by_size.items()]
    print(render_table(["movements", "n", "new", "pipeline", "old"], rows2, markdown))
    p = np.array(plmi)
    r = [float(np.corrcoef(p[:, 0], p[:, j])[0, 1]) if p[:, j].std() > 0 else float("nan")
         for j in (1, 2, 3)]
    mad = [float(np.abs(p[:, j] - p[:, 0]).mean()) for j in (1, 2, 3)]
    err = np.array(onset_err)
    print(f"\nPLM index vs truth over the {len(p)} recordings: new r = {r[0]:.3f}, mean |diff| "
          f"{mad[0]:.1f}/h; pipeline r = {r[1]:.3f}, {mad[1]:.1f}/h; old r = {r[2]:.3f}, "
          f"{mad[2]:.1f}/h")
    print(f"Pipeline detections identical to the bare detector's: "
          f"{'all' if differ == 0 else f'no, {differ} differ'}")
    print(f"Onset error of matched movements (new): median {np.median(err):+.2f} s, "
          f"95th percentile |error| {np.percentile(np.abs(err), 95):.2f} s")
    hours = sum(c["hours"] for c in res_cases)
    print(f"Run time: new {secs['new']:.1f} s, pipeline {secs['pipeline']:.1f} s, old "
          f"{secs['old']:.1f} s for {hours:.1f} h of data")
    return {"seed": seed, "minutes": minutes, "cases": res_cases,
            "total_new": vars(t_new), "total_pipeline": vars(t_pipe), "total_old": vars(t_old),
            "pipeline_differs": differ,
            "plm_index_r_new": r[0], "plm_index_r_pipeline": r[1], "plm_index_r_old": r[2],
            "onset_error_median_s": float(np.median(err)), "run_time_s": secs,
            "by_duration": {f"{a}-{b}": v for (a, b), v in by_dur.items()},
            "by_size": {f"{a}-{b}": v for (a, b), v in by_size.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--minutes", type=float, default=30.0, help="length of each recording")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--json", type=Path, help="also write the scores as JSON here")
    a = p.parse_args(argv)
    res = run(a.seed, a.minutes, a.markdown)
    if a.json and res:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
