"""Shared pieces of the benchmarks: real-data loaders, real motor-unit templates, scoring.

Everything here is plain numpy/scipy on arrays (no toetwitch detector code; the limb-movement
PLM index borrows only the AASM series counting rule, ``plm_series``, for truth and detections
alike), so the benches measure the detector against an independent truth.

* Real backgrounds come from ``../shared/data`` (see its README for provenance, licences and
  unit conversions). None of those recordings contains a fasciculation, so they serve as real
  noise, real voluntary activity and real tonic firing; twitches are injected at known times.
* Real motor-unit shapes: spike-triggered averages (STA) of the openhdemg HD-sEMG file
  (GPL-3.0 package data, used from ``../shared`` and never copied into the project).
* Scoring: one-to-one matching of detection times to truth times within a tolerance
  (±20 ms for EMG peaks); limb movements: within each movement's span ± 1 s
  (:func:`score_lm_case`, shared by bench/acc_limb_movements.py and bench/limb_movements.py).

When ``../shared/data`` is absent, :func:`shared_data_dir` returns None and the benches skip the
real-data cases with a clear line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import signal

FloatArray = NDArray[np.float64]
Span = tuple[float, float]

REPO = Path(__file__).resolve().parents[1]
#: Matching tolerance for EMG twitches (peak time vs injected peak time).
EMG_TOLERANCE_S = 0.020
#: Matching tolerance for accelerometer-only twitches: a transient lasts 100-300 ms and is
#: sampled at 100 Hz, so its reported peak can sit several samples from the injected one.
ACC_TOLERANCE_S = 0.100
#: 12-bit PLUX-type ADC: 3 V / 4096 / gain 1000 (shared data README §2; unverified for BioSPPy).
BIOSPPY_UV_PER_LSB = 3.0 / 4096 / 1000 * 1e6


# --------------------------------------------------------------------------------------------
# where the real data is
# --------------------------------------------------------------------------------------------
def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the repo (or ``$TOETWITCH_SHARED/data``), None when absent."""
    env = os.environ.get("TOETWITCH_SHARED")
    for p in ([Path(env) / "data"] if env else []) + [REPO.parent / "shared" / "data"]:
        if (p / "README.md").is_file():
            return p
    return None


# --------------------------------------------------------------------------------------------
# loaders (units per the shared data README)
# --------------------------------------------------------------------------------------------
def _numbers(path: Path, delimiter: str | None = None) -> FloatArray:
    return np.loadtxt(path, comments="#", delimiter=delimiter, dtype=np.float64, ndmin=2)


def load_biosppy_emg(path: Path) -> FloatArray:
    """BioSPPy example EMG (12-bit ADC text, 1 kHz) -> µV, DC removed. Shape (n,)."""
    adc = _numbers(path)[:, 0]
    return (adc - np.median(adc)) * BIOSPPY_UV_PER_LSB


def load_plux_emg(path: Path) -> FloatArray:
    """biosignalsnotebooks EMG CSV (mV, 1 kHz) -> µV, DC removed. Shape (n,)."""
    mv = _numbers(path)[:, 0]
    return (mv - np.median(mv)) * 1e3


def load_plux_acc(path: Path) -> FloatArray:
    """biosignalsnotebooks ACC CSV (g, 1 kHz). Shape (n, 3)."""
    return _numbers(path, ",")[:, :3]


def load_ax6_acc(path: Path) -> FloatArray:
    """GGIR AX6 test file (unix time, ax, ay, az in g, gyro), 100 Hz -> (n, 3) g."""
    return _numbers(path, ",")[:, 1:4]


def resample_uv(x: FloatArray, fs_in_hz: float, fs_out_hz: float) -> FloatArray:
    """Polyphase resampling (``scipy.signal.resample_poly``) between integer rates."""
    if fs_in_hz == fs_out_hz:
        return np.asarray(x, float)
    g = np.gcd(int(fs_in_hz), int(fs_out_hz))
    return signal.resample_poly(x, int(fs_out_hz) // g, int(fs_in_hz) // g, axis=0)


def mirror_extend(x: FloatArray, n: int) -> FloatArray:
    """Lengthen a background to ``n`` samples (axis 0) by appending time-reversed copies.

    Reversal keeps the trace continuous at each joint (no step that would look like a pop);
    reversed noise and reversed muscle activity are still realistic backgrounds.
    """
    x = np.asarray(x, dtype=np.float64)
    parts, have, flip = [x], len(x), True
    while have < n:
        parts.append(x[::-1] if flip else x)
        have += len(x)
        flip = not flip
    return np.concatenate(parts, axis=0)[:n]


# --------------------------------------------------------------------------------------------
# small signal helpers
# --------------------------------------------------------------------------------------------
def bandpass(x: FloatArray, fs_hz: float, lo_hz: float, hi_hz: float, order: int = 4) -> FloatArray:
    """Zero-phase Butterworth band-pass along axis 0 (upper edge kept below 0.45·fs)."""
    hi = min(hi_hz, 0.45 * fs_hz)
    sos = signal.butter(order, [lo_hz, hi], btype="bandpass", fs=fs_hz, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def mad_sigma(x: FloatArray) -> float:
    """Robust noise σ = median(|x|)/0.6745 (Quiroga 2004)."""
    return float(np.median(np.abs(x)) / 0.6745)


def merge_spans(spans: list[Span], gap_s: float = 0.0) -> list[Span]:
    """Union of (start, end) intervals; intervals closer than ``gap_s`` are joined."""
    out: list[list[float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1] + gap_s:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def mask_to_spans(mask: NDArray[np.bool_], step_s: float) -> list[Span]:
    """Runs of True in a per-window mask -> (start, end) in s (window k = [k, k+1)·step)."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.flatnonzero(np.diff(m))
    return [(a * step_s, b * step_s) for a, b in zip(d[::2], d[1::2], strict=True)]


def cluster_peaks(mag: FloatArray, thr: float, merge_n: int) -> NDArray[np.intp]:
    """Indices of the largest sample of each cluster of supra-threshold samples (gap <= merge)."""
    idx = np.flatnonzero(mag > thr)
    if len(idx) == 0:
        return idx
    groups = np.split(idx, np.flatnonzero(np.diff(idx) > merge_n) + 1)
    return np.array([g[np.argmax(mag[g])] for g in groups])


def render_table(head: list[str], rows: list[list[str]], markdown: bool, *,
                 right_align: bool = True, rule: bool = False) -> str:
    """A Markdown table, or plain text in aligned columns (the first left-aligned, the others
    right-aligned unless ``right_align`` is False; a dashed rule under the header if ``rule``)."""
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i and right_align else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([line(head)] + ([line(["-" * w for w in widths])] if rule else [])
                     + [line(r) for r in rows])


def peer_available(module: str) -> bool:
    """Is an optional peer library (NeuroKit2, BioSPPy, ...) installed?"""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def parse_sets(items: list[str]) -> dict[str, object]:
    """``key=value`` pairs for ``DetectorConfig`` (values parsed as JSON when possible, so
    numbers, ``true``/``false`` and ``[20, 450]`` work)."""
    import json

    out: dict[str, object] = {}
    for it in items:
        k, _, v = it.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
        if isinstance(out[k], list):
            out[k] = tuple(out[k])
    return out


def emg_activity_spans(emg_uv: FloatArray, fs_hz: float) -> tuple[list[Span], FloatArray]:
    """Where a real EMG background is not at rest: the truth of its 'active' spans.

    Independent of the detector under test. Two rules on the 20-450 Hz signal:

    * envelope: 100-ms RMS above 3× the quiet level (20th percentile of the 100-ms RMS) plus
      2 µV (AASM-style onset above resting EMG);
    * spikes: the 5 σ_MAD peaks (60-ms clusters) of the background itself. The recordings hold
      no known fasciculation, so two or more such peaks within 1 s are tonic or voluntary firing
      (active). A lone peak is returned separately: it is a real single discharge at rest, which
      a fasciculation detector may rightly report, so the scoring neither rewards nor punishes it.

    Active hits are padded by 0.5 s and joined when closer than 1 s.

    Returns
    -------
    spans : list of (start_s, end_s)
    lone_spikes_s : ndarray, times of isolated background peaks
    """
    y = bandpass(emg_uv, fs_hz, 20.0, 450.0)
    w = int(round(0.1 * fs_hz))
    nb = len(y) // w
    rms = np.sqrt(np.mean(y[: nb * w].reshape(nb, w) ** 2, axis=1))
    quiet = float(np.percentile(rms, 20))
    spans = mask_to_spans(rms > 3.0 * quiet + 2.0, 0.1)
    peaks = cluster_peaks(np.abs(y), 5.0 * mad_sigma(y), int(0.06 * fs_hz)) / fs_hz
    gap = np.diff(peaks)
    lone = np.ones(len(peaks), dtype=bool)
    if len(peaks) > 1:
        lone[1:] &= gap >= 1.0
        lone[:-1] &= gap >= 1.0
    spans += [(t, t) for t in peaks[~lone]]
    dur = len(y) / fs_hz
    merged = [(max(0.0, s - 0.5), min(dur, e + 0.5)) for s, e in merge_spans(spans, 1.0)]
    lone_s = peaks[lone]
    return merged, lone_s[~in_spans(lone_s, merged)]


def acc_activity_spans(acc_g: FloatArray, fs_hz: float) -> list[Span]:
    """Movement spans of a real accelerometer background: 0.5-s RMS of the 2-30 Hz vector
    magnitude above 4× its quiet level (20th percentile) plus 2 mg; padded 0.5 s, joined < 1 s."""
    y = np.linalg.norm(bandpass(acc_g, fs_hz, 2.0, 30.0), axis=1) * 1e3
    w = int(round(0.5 * fs_hz))
    nb = len(y) // w
    rms = np.sqrt(np.mean(y[: nb * w].reshape(nb, w) ** 2, axis=1))
    quiet = float(np.percentile(rms, 20))
    spans = mask_to_spans(rms > 4.0 * quiet + 2.0, 0.5)
    dur = len(y) / fs_hz
    return [(max(0.0, s - 0.5), min(dur, e + 0.5)) for s, e in merge_spans(spans, 1.0)]


# --------------------------------------------------------------------------------------------
# real motor-unit templates (openhdemg spike-triggered averages)
# --------------------------------------------------------------------------------------------
@cache
def _openhdemg_stas(path_str: str, half_ms: float = 25.0) -> tuple[FloatArray, float]:
    """Monopolar STAs, shape (n_mu, 64, window), and the file's rate (2048 Hz)."""
    d = np.load(path_str)
    emg = d["emg_uV_ch0_63"].astype(np.float64)
    fir = d["mu_firings_binary"]
    fs = float(d["fs"])
    h = int(round(half_ms * 1e-3 * fs))
    # 20-450 Hz first so slow force-related drift does not leak into the averages.
    emg = bandpass(emg, fs, 20.0, 450.0)
    stas = []
    for k in range(fir.shape[1]):
        idx = np.flatnonzero(fir[:, k])
        idx = idx[(idx > h) & (idx < len(emg) - h)]
        seg = emg[idx[:, None] + np.arange(-h, h + 1)[None, :]]  # (firings, window, 64)
        stas.append(seg.mean(axis=0).T)
    return np.stack(stas), fs


def motor_unit_templates(fs_hz: float, per_unit: int = 3) -> list[FloatArray]:
    """Real surface MUAP shapes at ``fs_hz``, each normalised to 1 µV peak to peak.

    Spike-triggered averages of the 4 decomposed motor units of the openhdemg file, as
    single-differential (bipolar) signals of neighbouring electrodes: the ``per_unit`` pairs
    with the largest STA per unit. Band-limited 20-450 Hz, resampled from 2048 Hz with
    ``resample_poly``, cut to where the waveform exceeds 5 % of its peak plus 3 ms, tapered.
    Returns [] when the shared data is absent.
    """
    root = shared_data_dir()
    if root is None:
        return []
    stas, fs_src = _openhdemg_stas(str(root / "openhdemg" / "otb_vl_hdsemg_compact.npz"))
    out: list[FloatArray] = []
    for mu in stas:
        bip = mu[1:] - mu[:-1]  # (63, window): neighbouring electrodes
        p2p = np.ptp(bip, axis=1)
        for ch in np.argsort(p2p)[::-1][:per_unit]:
            w = resample_uv(bip[ch], fs_src, fs_hz)
            core = np.flatnonzero(np.abs(w) > 0.05 * np.max(np.abs(w)))
            m = int(round(3e-3 * fs_hz))
            w = w[max(0, core[0] - m) : core[-1] + m + 1]
            w = w * np.hanning(len(w) + 2)[1:-1] ** 0.25
            w = w - np.linspace(w[0], w[-1], len(w))
            out.append(w / np.ptp(w))
    return out


def add_waveform(x: FloatArray, w: FloatArray, peak_index: int) -> None:
    """``x += w`` with w's largest |sample| landing on ``peak_index`` (in place, clipped)."""
    start = peak_index - int(np.argmax(np.abs(w)))
    a, b = max(start, 0), min(start + len(w), len(x))
    if b > a:
        x[a:b] += w[a - start : b - start]


# --------------------------------------------------------------------------------------------
# a scored case
# --------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One benchmark recording with its truth.

    ``truth_s``: injected twitch times (s); ``active_s``: spans that are not rest (voluntary,
    tonic, motion, pop, real-background activity); ``tolerance_s``: matching tolerance.
    """

    name: str
    kind: str
    fs_emg_hz: float | None
    emg_uv: FloatArray | None
    fs_acc_hz: float | None
    acc_g: FloatArray | None
    truth_s: FloatArray
    active_s: list[Span]
    tolerance_s: float = EMG_TOLERANCE_S
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        if self.emg_uv is not None and self.fs_emg_hz:
            return len(self.emg_uv) / self.fs_emg_hz
        return len(self.acc_g) / self.fs_acc_hz  # type: ignore[arg-type, operator]


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
class Rates:
    """Sensitivity and precision of anything with ``tp``, ``fp`` and ``fn`` counts."""

    tp: int
    fp: int
    fn: int

    @property
    def sensitivity(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")


@dataclass(frozen=True)
class Score(Rates):
    """Counts of one detector on one or more recordings (add them with ``+``)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    fp_active: int = 0
    minutes: float = 0.0
    active_minutes: float = 0.0
    lone_spikes: int = 0

    def __add__(self, o: Score) -> Score:
        return Score(self.tp + o.tp, self.fp + o.fp, self.fn + o.fn, self.fp_active + o.fp_active,
                     self.minutes + o.minutes, self.active_minutes + o.active_minutes,
                     self.lone_spikes + o.lone_spikes)


    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else float("nan")

    @property
    def fp_per_min(self) -> float:
        return self.fp / self.minutes if self.minutes else float("nan")

    @property
    def fp_per_min_active(self) -> float:
        return self.fp_active / self.active_minutes if self.active_minutes else float("nan")


def match_events(truth_s: FloatArray, detected_s: FloatArray, tolerance_s: float) -> NDArray[np.intp]:
    """Match detections to truths one to one within ±``tolerance_s``.

    Returns an array of length ``len(truth_s)`` holding the index (into the sorted detections)
    of the detection matched to each truth, or -1. Both inputs are sorted here. The sweep gives
    each truth the earliest detection still free within tolerance; for points on a line with a
    symmetric window this greedy order gives a maximum matching. A detection matches at most one
    truth and a truth at most one detection.
    """
    t = np.sort(np.asarray(truth_s, dtype=float))
    d = np.sort(np.asarray(detected_s, dtype=float))
    out = np.full(len(t), -1, dtype=np.intp)
    j = 0
    for i, ti in enumerate(t):
        while j < len(d) and d[j] < ti - tolerance_s:
            j += 1  # too early for this truth and so for every later one
        if j < len(d) and d[j] <= ti + tolerance_s:
            out[i] = j
            j += 1
    return out


def in_spans(times_s: FloatArray, spans: list[Span]) -> NDArray[np.bool_]:
    """Which times fall inside any (start, end) span (ends inclusive)."""
    times = np.asarray(times_s, dtype=float)
    inside = np.zeros(len(times), dtype=bool)
    for s, e in spans:
        inside |= (times >= s) & (times <= e)
    return inside


def spans_minutes(spans: list[Span], duration_s: float) -> float:
    """Total length of the merged spans inside [0, duration], in minutes."""
    return sum(min(e, duration_s) - max(s, 0.0) for s, e in merge_spans(spans)) / 60.0


def score(case_truth_s: FloatArray, detected_s: FloatArray, tolerance_s: float,
          active_s: list[Span], duration_s: float,
          lone_spikes_s: FloatArray | None = None) -> Score:
    """Sensitivity/precision counts plus false positives overall and inside active spans.

    Detections left unmatched that fall within ``tolerance_s`` of a lone real background
    discharge (``lone_spikes_s``, see :func:`emg_activity_spans`) are counted as
    ``lone_spikes``, not as false positives.
    """
    d = np.sort(np.asarray(detected_s, dtype=float))
    m = match_events(case_truth_s, d, tolerance_s)
    used = np.zeros(len(d), dtype=bool)
    used[m[m >= 0]] = True
    fp_times = d[~used]
    lone = np.zeros(len(fp_times), dtype=bool)
    if lone_spikes_s is not None and len(lone_spikes_s) and len(fp_times):
        ls = np.sort(np.asarray(lone_spikes_s, dtype=float))
        k = np.clip(np.searchsorted(ls, fp_times), 1, len(ls)) - 1
        near = np.minimum(np.abs(fp_times - ls[k]), np.abs(fp_times - ls[np.minimum(k + 1, len(ls) - 1)]))
        lone = near <= tolerance_s
    fp_times = fp_times[~lone]
    tp = int(np.count_nonzero(m >= 0))
    return Score(
        tp=tp,
        fp=int(len(fp_times)),
        fn=int(len(m) - tp),
        fp_active=int(np.count_nonzero(in_spans(fp_times, active_s))),
        minutes=duration_s / 60.0,
        active_minutes=spans_minutes(active_s, duration_s),
        lone_spikes=int(np.count_nonzero(lone)),
    )


# --------------------------------------------------------------------------------------------
# limb movements: series placement and scoring (bench/acc_limb_movements.py, limb_movements.py)
# --------------------------------------------------------------------------------------------
#: a limb-movement detection matches a truth when its time lies within the truth's span ± this (s)
LM_MATCH_PAD_S = 1.0


@dataclass
class Movement:
    """An injected limb movement: onset (s), length (s) and size (the accelerometer bench:
    degrees turned; the EMG bench: the burst's RMS in µV)."""

    onset_s: float
    duration_s: float
    size: float

    @property
    def span(self) -> Span:
        return (self.onset_s, self.onset_s + self.duration_s)


def place_movements(total_s: float, rng: np.random.Generator, dense: bool, avoid: list[Span],
                    size_range: tuple[float, float] = (1.0, 30.0),
                    kinds: tuple[str, ...] = ("brief",) * 6 + ("long",) * 2 + ("turn",),
                    ) -> tuple[list[Movement], list[tuple[str, float, float]]]:
    """Limb movements in AASM-like series and alone, and confounder (kind, start, length) tuples.

    Series: runs of 4-10 movements, intervals 8-60 s ±20 % (kept within 5.5-85 s), about one
    series per 4 min (``dense``) or per 15 min; isolated movements, one per 6 or 10 min. Each
    movement lasts 0.5-10 s and has a size in ``size_range``, both log-uniform. Confounders,
    ``kinds`` per 30 min: ``brief`` (0.3 s slot), ``long`` (12-30 s), ``turn`` (3 s). Each
    placement keeps 2 s from ``avoid`` (real background activity); a series or isolated movement
    keeps 95 s from other placements (so isolated ones stay isolated), a confounder 12 s.
    """
    taken: list[Span] = []

    def clear(s: float, e: float, spans: list[Span], pad: float) -> bool:
        return all(e + pad < a or s - pad > b for a, b in spans)

    def ok(s: float, e: float) -> bool:
        return s > 2.0 and e < total_s - 15.0 and clear(s, e, avoid, 2.0)

    def draw(t: float) -> Movement:
        d = float(np.exp(rng.uniform(np.log(0.5), np.log(10.0))))
        size = float(np.exp(rng.uniform(np.log(size_range[0]), np.log(size_range[1]))))
        return Movement(t, d, size)

    moves: list[Movement] = []
    n_series = max(1, round(total_s / 60 / (4 if dense else 15)))
    for _ in range(n_series):
        for _try in range(500):
            k = int(rng.integers(4, 11))
            step = rng.uniform(8, 60)
            times = np.cumsum(np.r_[rng.uniform(0, total_s), step * rng.uniform(0.8, 1.2, k - 1)])
            iv = np.diff(times)
            cand = [draw(t) for t in times]
            if (np.all((iv >= 5.5) & (iv <= 85)) and times[-1] + 10 < total_s - 15
                    and clear(times[0], times[-1] + 10, taken, 95)
                    and all(ok(m.onset_s, m.onset_s + m.duration_s) for m in cand)
                    and all(a.onset_s + a.duration_s + 2 < b.onset_s for a, b in zip(cand, cand[1:], strict=False))):
                moves += cand
                taken.append((times[0], times[-1] + 10))
                break
    for _ in range(max(1, round(total_s / 60 / (6 if dense else 10)))):
        for _try in range(500):
            m = draw(rng.uniform(0, total_s))
            if ok(m.onset_s, m.onset_s + m.duration_s) and clear(m.onset_s, m.onset_s + 10, taken, 95):
                moves.append(m)
                taken.append((m.onset_s, m.onset_s + 10))
                break
    conf: list[tuple[str, float, float]] = []
    for kind in list(kinds) * max(1, round(total_s / 1800)):
        length = {"brief": 0.3, "long": rng.uniform(12, 30), "turn": 3.0}[kind]
        for _try in range(500):
            t = rng.uniform(0, total_s)
            if ok(t, t + length) and clear(t, t + length, taken, 12):
                conf.append((kind, t, length))
                taken.append((t, t + length))
                break
    return sorted(moves, key=lambda m: m.onset_s), conf


class LmTruthCase(Protocol):
    """What limb-movement scoring reads of a case: the injected movements, the confounders
    ((kind, span) pairs), the background's own activity (spans) and the length in hours."""

    truth: list[Movement]
    confounders: list[tuple[str, Span]]
    background_active: list[Span]

    @property
    def hours(self) -> float: ...


def lm_plm_index(case: LmTruthCase, onsets_s: FloatArray, times_s: FloatArray) -> float:
    """PLMs per hour (AASM series: ≥ 4 movements 5-90 s apart onset to onset, the detector
    package's ``plm_series`` counting rule) among detections outside the background's own
    activity (a real movement repeated by the time-reversed copies would otherwise form a
    perfect periodic series). ``times_s`` (the match times) decide what is inside."""
    from toetwitch.pipeline.detect.episodes import plm_series

    keep = ~in_spans(times_s, case.background_active)
    on = np.sort(np.asarray(onsets_s, float)[keep])
    return sum(b - a + 1 for a, b in plm_series(on, (5.0, 90.0), 4)) / case.hours


def truth_plm_index(case: LmTruthCase) -> float:
    """PLMs per hour of the injected movements (same rule as :func:`lm_plm_index`)."""
    from toetwitch.pipeline.detect.episodes import plm_series

    on = np.array([m.onset_s for m in case.truth])
    return sum(b - a + 1 for a, b in plm_series(on, (5.0, 90.0), 4)) / case.hours


def match_spans(truth: list[Movement], times_s: FloatArray) -> NDArray[np.intp]:
    """Index (into the sorted detections) of the detection matched to each truth (-1 if none):
    the earliest free detection whose time lies in the truth's span ± ``LM_MATCH_PAD_S``
    (truths are ≥ 5 s apart: greedy is exact)."""
    d = np.sort(np.asarray(times_s, float))
    used = np.zeros(len(d), bool)
    out = np.full(len(truth), -1, np.intp)
    for i, m in enumerate(truth):
        a, b = m.onset_s - LM_MATCH_PAD_S, m.onset_s + m.duration_s + LM_MATCH_PAD_S
        cand = np.flatnonzero((d >= a) & (d <= b) & ~used)
        if len(cand):
            out[i] = cand[0]
            used[cand[0]] = True
    return out


@dataclass
class LmScore(Rates):
    """Limb-movement counts (add them with ``+``): false positives exclude detections on the
    background's own activity (``background``); ``fp_confounder`` is the part of ``fp`` lying
    on an injected confounder."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    fp_confounder: int = 0
    background: int = 0
    hours: float = 0.0

    def __add__(self, o: LmScore) -> LmScore:
        return LmScore(self.tp + o.tp, self.fn + o.fn, self.fp + o.fp,
                       self.fp_confounder + o.fp_confounder, self.background + o.background,
                       self.hours + o.hours)

    @property
    def fp_per_h(self) -> float:
        return self.fp / self.hours if self.hours else float("nan")


def score_lm_case(case: LmTruthCase, times_s: FloatArray) -> tuple[LmScore, NDArray[np.intp]]:
    """Score detection (match) times against the case's movements: one to one within each
    truth's span ± ``LM_MATCH_PAD_S``; unmatched detections inside the background's own activity
    are neither TP nor FP; those within ``LM_MATCH_PAD_S`` of a confounder are FP counted apart
    too. Returns the score and :func:`match_spans`' indices (into the sorted times)."""
    d = np.sort(np.asarray(times_s, float))
    m = match_spans(case.truth, d)
    used = np.zeros(len(d), bool)
    used[m[m >= 0]] = True
    rest = d[~used]
    bg = in_spans(rest, case.background_active)
    rest = rest[~bg]
    conf = in_spans(rest, [(a - LM_MATCH_PAD_S, b + LM_MATCH_PAD_S) for _, (a, b) in case.confounders])
    tp = int((m >= 0).sum())
    return LmScore(tp, len(m) - tp, int(len(rest)), int(conf.sum()), int(bg.sum()), case.hours), m
