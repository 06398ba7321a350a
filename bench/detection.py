"""Detection quality on a realistic scored set: toetwitch beside a naive detector and peers.

Run from the repository root::

    .venv/bin/python bench/detection.py [--seed N] [--only KIND ...] [--set key=value ...]
                                        [--no-peers] [--no-live] [--json PATH] [--markdown]

Recordings (EMG 3 min, accelerometer 2 min, backgrounds lengthened with time-reversed copies;
seeded, deterministic):

* real backgrounds from ``../shared/data``: BioSPPy ``emg.txt`` (rest with two stretches of real
  tonic firing), PLUX ``emg_1000_hz_16_bits_solo`` (rest + real voluntary contractions),
  BioSPPy ``emg_1.txt`` (rest + real activations); for the accelerometer GGIR AX6 and PLUX
  ``sync_acc_1/2``;
* real motor-unit shapes: openhdemg spike-triggered averages (bipolar), 20-200 µV p2p;
* confounders injected on the rest background: voluntary interference bursts built from the
  real motor units, tonic trains (one unit at 6-12 Hz), motion artifacts, electrode pops,
  mains at 50 and 60 Hz; low SNR (20 µV twitches on the ~4.6 µV-noise ``emg_1``); 2 kHz EMG
  (``resample_poly``); accelerometer-only recordings;
* twitches at known times, only at rest (>= 1 s from every active span) and >= 300 ms apart;
* a twitching muscle (issue #11): 2-8 recurring units per recording, each with its own real
  shape, polarity and size, firing irregularly (gamma, ISI CV 0.7-1.3) at 5, 20, 60 and 120 per
  minute of rest, with doublets; storms beside voluntary bursts and on a real background with
  activations; regular low-level firing (5-15 Hz, CV 0.1-0.3, slow recruitment) as confounder.

Besides the tables per recording type it prints, per EMG recording, what a plain threshold
finds (naive sensitivity and FP/min), and sensitivity by twitch size (p2p / σ) and by rate.
``--no-peers --no-live`` runs in ~15 s (NeuroKit2 and the packet-by-packet replay are the
slow parts).

Scoring (``bench/common.py``): false positives overall and inside active spans (injected
confounders and the backgrounds' own activity); detections of lone real background discharges are
counted apart, neither TP nor FP.

Detectors: toetwitch (``toetwitch.pipeline.analyse``, rows of type ``fasciculation``); a naive 5×MAD
detector (20-450 Hz, peaks of |x| > 5 σ_MAD, 60 ms merge); NeuroKit2 ``emg_process`` and
BioSPPy ``emg()`` (each activation interval is one detection, timed at its largest |x|: an
envelope onset lands up to ~50 ms before the potential's peak and would lose matches for a
reason that has nothing to do with detection). Matching: one to one within ±20 ms
(±100 ms for accelerometer-only twitches). Peers are optional: without them their columns read
"not installed". The last column, "ceiling", is not a detector anyone could run: it knows the
twitches' shapes, the active spans and the truth, and estimates how many twitches are in the
signal to be found at the target's 0.5 false positives per minute (:func:`detect_ceiling`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    ACC_TOLERANCE_S,
    Case,
    FloatArray,
    Score,
    Span,
    acc_activity_spans,
    add_waveform,
    bandpass,
    cluster_peaks,
    emg_activity_spans,
    in_spans,
    load_ax6_acc,
    load_biosppy_emg,
    load_plux_acc,
    load_plux_emg,
    mad_sigma,
    match_events,
    merge_spans,
    mirror_extend,
    motor_unit_templates,
    parse_sets,
    peer_available,
    render_table,
    resample_uv,
    score,
    shared_data_dir,
)

DEFAULT_SEED = 20261125
#: Mean twitch rate asked of the placer (fewer fit where there is little rest). ALS ~40/min
#: median on large HD-sEMG grids, benign fasciculation 5-40x lower (docs/evidence.md §S6.6):
#: 15/min on one bipolar foot electrode is a busy, not a quiet, recording.
TWITCH_RATE_PER_MIN = 15.0
#: Backgrounds are lengthened (time-reversed copies) to these durations (s): 3 min of EMG keeps
#: NeuroKit2's per-sample pandas loop to ~15 s a recording.
EMG_DURATION_S = 180.0
ACC_DURATION_S = 120.0
#: Confounder spans count as "active" with this padding on each side (s).
ACTIVE_PAD_S = 0.25
#: The ceiling's false-positive budget: the detection target's limit (issue #2)
CEILING_FP_PER_MIN = 0.5


# --------------------------------------------------------------------------------------------
# building blocks for injected confounders (all in place on µV / g arrays)
# --------------------------------------------------------------------------------------------
def _ramp(n: int, ramp: int) -> FloatArray:
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        env[:ramp], env[n - ramp :] = r, r[::-1]
    return env


def _free_spans(count: int, dur_s: tuple[float, float], total_s: float, taken: list[Span],
                rng: np.random.Generator) -> list[Span]:
    """Random non-overlapping spans >= 2 s from each other, from ``taken`` and from the ends."""
    out: list[Span] = []
    for _ in range(count):
        for _try in range(300):
            d = rng.uniform(*dur_s)
            s = rng.uniform(1.0, total_s - d - 1.0)
            if all(s > e + 2.0 or s + d < b - 2.0 for b, e in taken + out):
                out.append((s, s + d))
                break
    return sorted(out)


def _train(n: int, fs_hz: float, w: FloatArray, rate_hz: float, start: int, stop: int,
           rng: np.random.Generator, jitter: float) -> FloatArray:
    """One motor unit firing at ``rate_hz`` (ISI CV ``jitter``) between two sample indices."""
    out = np.zeros(n)
    t = start + rng.uniform(0, fs_hz / rate_hz)
    while t < stop:
        add_waveform(out, w, int(t))
        t += fs_hz / rate_hz * max(0.3, 1.0 + jitter * rng.standard_normal())
    return out


def add_voluntary(x: FloatArray, fs_hz: float, span: Span, templates: list[FloatArray],
                  rng: np.random.Generator) -> None:
    """Interference pattern of 6-15 real motor units (20-150 µV p2p, 8-20 Hz), recruited and
    de-recruited at staggered times, ramped in and out."""
    a, b = int(span[0] * fs_hz), min(len(x), int(span[1] * fs_hz))
    n = b - a
    seg = np.zeros(n)
    for _ in range(int(rng.integers(6, 16))):
        w = templates[rng.integers(len(templates))] * rng.uniform(20, 150) * rng.choice([-1, 1])
        on, off = int(rng.uniform(0, 0.3) * n), n - int(rng.uniform(0, 0.3) * n)
        seg += _train(n, fs_hz, w, rng.uniform(8, 20), on, off, rng, 0.15)
    x[a:b] += seg * _ramp(n, int(0.2 * fs_hz))


def add_tonic(x: FloatArray, fs_hz: float, span: Span, templates: list[FloatArray],
              rng: np.random.Generator) -> None:
    """One real motor unit firing regularly at 6-12 Hz (ISI CV 10 %), 20-100 µV p2p."""
    a, b = int(span[0] * fs_hz), min(len(x), int(span[1] * fs_hz))
    w = templates[rng.integers(len(templates))] * np.exp(rng.uniform(np.log(20), np.log(100)))
    x[a:b] += _train(b - a, fs_hz, w * rng.choice([-1, 1]), rng.uniform(6, 12), 0, b - a, rng, 0.1)


def add_pop(x: FloatArray, fs_hz: float, span: Span, rng: np.random.Generator) -> None:
    """Electrode pop: an instant step of 200-800 µV decaying over the span (100-300 ms)."""
    a, b = int(span[0] * fs_hz), min(len(x), int(span[1] * fs_hz))
    x[a:b] += rng.choice([-1, 1]) * rng.uniform(200, 800) * np.exp(-np.arange(b - a) / ((b - a) / 3))


def add_motion_emg(x: FloatArray, fs_hz: float, span: Span, rng: np.random.Generator) -> None:
    """Cable/skin motion: 0.5-3 Hz baseline swing of 50-500 µV plus 1-15 Hz wobble."""
    a, b = int(span[0] * fs_hz), min(len(x), int(span[1] * fs_hz))
    n = b - a
    t = np.arange(n) / fs_hz
    swing = rng.uniform(50, 500) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 6.3))
    wob = bandpass(rng.standard_normal(n + 2000), fs_hz, 1.0, 15.0, order=2)[1000:-1000]
    wob *= rng.uniform(10, 60) / (np.std(wob) or 1.0)
    x[a:b] += (swing + wob) * _ramp(n, int(0.2 * fs_hz))


def add_acc_movement(acc_g: FloatArray, fs_hz: float, span: Span, rng: np.random.Generator) -> None:
    """Smooth 0.5-3 Hz limb movement of 50-300 mg per axis."""
    a, b = int(span[0] * fs_hz), min(len(acc_g), int(span[1] * fs_hz))
    t = np.arange(b - a) / fs_hz
    amp = rng.uniform(50, 300) * 1e-3
    for j in range(3):
        acc_g[a:b, j] += amp * rng.uniform(0.3, 1) * np.sin(
            2 * np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, 6.3)) * _ramp(b - a, int(0.2 * fs_hz))


def add_acc_transient(acc_g: FloatArray, fs_hz: float, t_s: float, mg: float,
                      rng: np.random.Generator) -> float:
    """Twitch transient, as ``toetwitch.drivers.simulate`` models it. Returns the accelerometer truth time."""
    from toetwitch.drivers.simulate import add_acc_transient as add

    return add(acc_g, fs_hz, t_s, mg, rng)


def twitch_times(duration_s: float, busy: list[Span], rng: np.random.Generator,
                 rate_per_min: float = TWITCH_RATE_PER_MIN) -> FloatArray:
    """Rest-only twitch times at ``rate_per_min`` *of rest*.

    Allowed: >= ``REST_MARGIN_S`` (1 s) from every busy span and 0.5 s from the ends. The count
    is Poisson with mean ``rate_per_min`` × allowed minutes (so rest is not crowded when a
    recording is mostly active); times uniform over the allowed time, >= 300 ms apart
    (``toetwitch.drivers.simulate`` constants). Sorted, in s.
    """
    from toetwitch.drivers.simulate import MIN_TWITCH_GAP_S, REST_MARGIN_S

    step = 0.001
    grid = np.arange(0.5, duration_s - 0.5, step)
    ok = ~in_spans_padded(grid, busy, REST_MARGIN_S)
    allowed = grid[ok]
    n = int(rng.poisson(rate_per_min * len(allowed) * step / 60.0))
    out: list[float] = []
    for _ in range(50 * (n + 1)):
        if len(out) >= n or len(allowed) == 0:
            break
        t = float(allowed[rng.integers(len(allowed))])
        if all(abs(t - u) >= MIN_TWITCH_GAP_S for u in out):
            out.append(t)
    return np.sort(np.array(out))


def in_spans_padded(t: FloatArray, spans: list[Span], pad_s: float) -> np.ndarray:
    """Which times fall within ``pad_s`` of any span."""
    from bench.common import in_spans

    return in_spans(t, [(s - pad_s, e + pad_s) for s, e in spans])


def inject_emg_twitches(x: FloatArray, fs_hz: float, times_s: FloatArray,
                        templates: list[FloatArray], rng: np.random.Generator,
                        p2p_uv: tuple[float, float] = (20.0, 200.0)) -> tuple[FloatArray, FloatArray]:
    """Add one real MU shape per twitch (random template and polarity, log-uniform p2p) with
    its largest sample on the truth time; returns the (sample-rounded) truth times and each
    twitch's peak-to-peak size (µV)."""
    lo, hi = p2p_uv
    out = np.round(np.asarray(times_s) * fs_hz) / fs_hz
    sizes = np.empty(len(out))
    for k, t in enumerate(out):
        w = templates[rng.integers(len(templates))] * rng.choice([-1, 1])
        sizes[k] = np.exp(rng.uniform(np.log(lo), np.log(hi)))  # templates are 1 µV p2p
        add_waveform(x, w * sizes[k], int(round(t * fs_hz)))
    return out, sizes


# --------------------------------------------------------------------------------------------
# a twitching muscle: a few recurring units, irregular, at any rate (issue #11)
# --------------------------------------------------------------------------------------------
#: Rates of the recurring-unit cases (per minute of rest). Healthy abductor hallucis can exceed
#: 100 fasciculations per minute (detection anchors); 5/min is a quiet benign recording.
UNIT_RATES_PER_MIN = (5.0, 20.0, 60.0, 120.0)
#: Distinct twitches closer than this are one potential to any detector (30 ms merge + the
#: ±20 ms matching tolerance): the generator keeps different units' discharges this far apart.
MIN_UNIT_GAP_S = 0.06
#: A doublet's second discharge follows the first by 40-100 ms (Kleine 2012: 10-110 ms; under
#: 40 ms the two merge into one potential whose peak may be the second's) with this chance.
DOUBLET_PROB = 0.05


def unit_pool_times(duration_s: float, keep_clear: list[Span], rng: np.random.Generator,
                    rate_per_min: float, n_units: int,
                    cv: tuple[float, float] = (0.7, 1.3)) -> tuple[FloatArray, np.ndarray, FloatArray]:
    """Discharge times of ``n_units`` fasciculating units sharing ``rate_per_min`` of rest.

    Each unit fires as a gamma renewal process (ISI CV drawn from ``cv``: 1 is Poisson, every
    value >= 0.7 is irregular as fasciculations are; tonic firing is CV 0.1-0.3); its share of
    the rate is Dirichlet(2). Discharges within ``REST_MARGIN_S`` of a busy span or 0.5 s of the
    ends are dropped (the thinning keeps the irregularity), and one of any two discharges of
    different units closer than ``MIN_UNIT_GAP_S`` is dropped. Each kept discharge becomes a
    doublet with probability ``DOUBLET_PROB``. Returns (times_s sorted, unit index of each,
    doublet interval in s or 0)."""
    from toetwitch.drivers.simulate import REST_MARGIN_S

    share = rng.dirichlet(np.full(n_units, 2.0))
    allowed_s = duration_s - 1.0 - sum(
        max(0.0, min(duration_s, e + REST_MARGIN_S) - max(0.0, s - REST_MARGIN_S)) for s, e in keep_clear)
    # the rate is of rest: scale so that the kept discharges come at rate_per_min of allowed time
    boost = duration_s / max(allowed_s, 1.0)
    times, units = [], []
    for u in range(n_units):
        r = rate_per_min * share[u] * boost / 60.0
        k = 1.0 / rng.uniform(*cv) ** 2  # gamma shape for that CV
        isi = rng.gamma(k, 1.0 / (k * r), size=int(3 * r * duration_s) + 20)
        t = rng.uniform(0, 1.0 / r) + np.cumsum(isi) - isi[0]
        t = t[(t > 0.5) & (t < duration_s - 0.5)]
        times.append(t)
        units.append(np.full(len(t), u))
    t_all, u_all = np.concatenate(times), np.concatenate(units)
    order = np.argsort(t_all, kind="stable")
    t_all, u_all = t_all[order], u_all[order]
    ok = ~in_spans_padded(t_all, keep_clear, REST_MARGIN_S)
    t_all, u_all = t_all[ok], u_all[ok]
    keep = np.ones(len(t_all), bool)
    last = -np.inf
    for i, t in enumerate(t_all.tolist()):
        if t - last < MIN_UNIT_GAP_S:
            keep[i] = False
        else:
            last = t
    t_all, u_all = t_all[keep], u_all[keep]
    doublet = np.where(rng.uniform(size=len(t_all)) < DOUBLET_PROB, rng.uniform(0.04, 0.1, len(t_all)), 0.0)
    # a doublet's second discharge must not run into the next twitch
    nxt = np.append(np.diff(t_all), np.inf)
    doublet[doublet + MIN_UNIT_GAP_S > nxt] = 0.0
    return t_all, u_all, doublet


def inject_unit_pool(x: FloatArray, fs_hz: float, times_s: FloatArray, units: np.ndarray,
                     doublet_s: FloatArray, templates: list[FloatArray], rng: np.random.Generator,
                     p2p_uv: tuple[float, float]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Add each unit's discharges: one real shape, polarity and size per unit (log-uniform in
    ``p2p_uv``), each discharge within ±20 % of the unit's size. Returns the sample-rounded truth
    times (the first discharge of a doublet), each twitch's p2p (µV) and the times of the
    doublets' second discharges (s)."""
    n_units = int(units.max()) + 1 if len(units) else 0
    pick = rng.choice(len(templates), size=n_units, replace=n_units > len(templates))
    shape = [templates[k] * rng.choice([-1, 1]) for k in pick]
    size = np.exp(rng.uniform(np.log(p2p_uv[0]), np.log(p2p_uv[1]), n_units))
    out = np.round(np.asarray(times_s) * fs_hz) / fs_hz
    sizes = np.empty(len(out))
    seconds = []
    for k, (t, u, d) in enumerate(zip(out.tolist(), units.tolist(), doublet_s.tolist(), strict=True)):
        sizes[k] = size[u] * rng.uniform(0.8, 1.2)
        add_waveform(x, shape[u] * sizes[k], int(round(t * fs_hz)))
        if d > 0:
            add_waveform(x, shape[u] * size[u] * rng.uniform(0.8, 1.2), int(round((t + d) * fs_hz)))
            seconds.append(round((t + d) * fs_hz) / fs_hz)
    return out, sizes, np.array(seconds)


def add_low_level(x: FloatArray, fs_hz: float, span: Span, templates: list[FloatArray],
                  rng: np.random.Generator) -> None:
    """Regular low-level firing of a muscle that is not quite relaxed, with slow recruitment
    and de-recruitment: 1-3 real units (15-60 µV p2p) recruited one after another, each firing
    at 5-15 Hz with ISI CV 0.1-0.3 (De Luca's common drive; tonic firing is regular), its rate
    rising from 5 Hz to its own and back over the span."""
    a, b = int(span[0] * fs_hz), min(len(x), int(span[1] * fs_hz))
    n = b - a
    n_units = int(rng.integers(1, 4))
    for j in range(n_units):
        w = templates[rng.integers(len(templates))] * rng.choice([-1, 1]) * np.exp(
            rng.uniform(np.log(15), np.log(60)))
        on = int(n * rng.uniform(0, 0.15) * (j + 1))
        off = n - int(n * rng.uniform(0, 0.15) * (j + 1))
        if off - on < fs_hz:
            continue
        top, cv = rng.uniform(5, 15), rng.uniform(0.1, 0.3)
        t = float(on)
        while t < off:
            add_waveform(x, w, a + int(t))
            frac = min(t - on, off - t) / max(1.0, 0.5 * (off - on))  # 0 at the ends, 1 mid-span
            rate = 5.0 + (top - 5.0) * min(1.0, 2.0 * frac)
            t += fs_hz / rate * max(0.3, 1.0 + cv * rng.standard_normal())


# --------------------------------------------------------------------------------------------
# the scored set
# --------------------------------------------------------------------------------------------
def build_cases(seed: int = DEFAULT_SEED, rate_per_min: float = TWITCH_RATE_PER_MIN) -> list[Case]:
    """All benchmark recordings; [] when the shared data is absent."""
    root = shared_data_dir()
    if root is None:
        return []
    t1k = motor_unit_templates(1000.0)
    t2k = motor_unit_templates(2000.0)
    n_emg = int(EMG_DURATION_S * 1000)
    emg_rest = mirror_extend(load_biosppy_emg(root / "biosppy" / "emg.txt"), n_emg)
    emg_1 = mirror_extend(load_biosppy_emg(root / "biosppy" / "emg_1.txt"), n_emg)
    solo = mirror_extend(
        load_plux_emg(root / "biosignalsnotebooks" / "emg_1000_hz_16_bits_solo.csv"), n_emg)
    cases: list[Case] = []

    def rng_for(i: int) -> np.random.Generator:
        return np.random.default_rng([seed, i])

    def emg_case(i: int, name: str, kind: str, bg: FloatArray, fs_in: float, fs: float,
                 templates: list[FloatArray], confounders: dict[str, int] | None = None,
                 mains_hz: float | None = None, p2p: tuple[float, float] = (20.0, 200.0),
                 with_acc: bool = False, note: str = "", units: tuple[int, int] | None = None,
                 rate: float | None = None) -> Case:
        rng = rng_for(i)
        active, lone = emg_activity_spans(bg, fs_in)  # real activity of the background itself
        x = resample_uv(bg, fs_in, fs).copy()
        dur = len(x) / fs
        # the background's noise at rest: robust σ of its 20-450 Hz band outside its activity
        quiet = ~in_spans(np.arange(len(x)) / fs, active)
        noise_uv = mad_sigma(bandpass(x, fs, 20.0, 450.0)[quiet])
        fs_acc = 100.0
        acc = None
        if with_acc:
            acc = rng.normal(0.0, 1e-3, (int(dur * fs_acc), 3))  # 1 mg floor (AX6/PLUX, docs/evidence.md §S2.4)
            acc[:, 2] += 1.0
        injected: list[Span] = []
        for what, count in (confounders or {}).items():
            lengths = {"voluntary": (1.0, 6.0), "tonic": (2.0, 6.0), "pop": (0.1, 0.3),
                       "motion": (1.0, 5.0), "low_level": (3.0, 15.0)}[what]
            for sp in _free_spans(count, lengths, dur, active + injected, rng):
                injected.append(sp)
                if what == "voluntary":
                    add_voluntary(x, fs, sp, templates, rng)
                elif what == "tonic":
                    add_tonic(x, fs, sp, templates, rng)
                elif what == "pop":
                    add_pop(x, fs, sp, rng)
                elif what == "low_level":
                    add_low_level(x, fs, sp, templates, rng)
                else:
                    add_motion_emg(x, fs, sp, rng)
                    if acc is not None:
                        add_acc_movement(acc, fs_acc, sp, rng)
        busy = merge_spans(active + [(s - ACTIVE_PAD_S, e + ACTIVE_PAD_S) for s, e in injected])
        keep_clear = busy + [(t - 0.5, t + 0.5) for t in lone]  # twitches never next to one
        asked = rate_per_min if rate is None else rate
        unit_of, seconds = None, np.empty(0)
        if units is None:  # one random shape per twitch (the scored set before issue #11)
            truth, sizes = inject_emg_twitches(x, fs, twitch_times(dur, keep_clear, rng, asked),
                                               templates, rng, p2p)
        else:  # a few recurring units, irregular
            t_u, unit_of, dbl = unit_pool_times(dur, keep_clear, rng, asked,
                                                int(rng.integers(units[0], units[1] + 1)))
            truth, sizes, seconds = inject_unit_pool(x, fs, t_u, unit_of, dbl, templates, rng, p2p)
        if acc is not None:
            for t in truth:
                if rng.uniform() < 0.61:  # Terrill: 39 % of EMG leg events move no toe (docs/evidence.md §S0)
                    add_acc_transient(acc, fs_acc, t, rng.uniform(3, 10), rng)
        if mains_hz:
            tt = np.arange(len(x)) / fs
            x += 20.0 * np.sin(2 * np.pi * mains_hz * tt + rng.uniform(0, 6.3))
            x += 6.0 * np.sin(2 * np.pi * 3 * mains_hz * tt + rng.uniform(0, 6.3))
        return Case(name, kind, fs, x, fs_acc if with_acc else None, acc, truth, busy, note=note,
                    extra={"lone_spikes_s": lone, "injected_s": injected,
                           "background_active_s": active, "mains_hz": mains_hz,
                           "templates": templates, "twitch_p2p_uv": sizes,
                           "noise_sigma_uv": noise_uv, "rate_per_min": asked,
                           "confounders": bool(confounders) or bool(mains_hz) or bool(active),
                           "units": None if unit_of is None else int(unit_of.max()) + 1,
                           "doublet_second_s": seconds})

    cases.append(emg_case(0, "biosppy_emg_rest", "rest (real, with real tonic stretches)",
                          emg_rest, 1000, 1000, t1k))
    cases.append(emg_case(1, "plux_solo_voluntary", "rest + real voluntary",
                          solo, 1000, 1000, t1k))
    cases.append(emg_case(2, "biosppy_emg1_activations", "rest + real voluntary",
                          emg_1, 1000, 1000, t1k))
    cases.append(emg_case(3, "voluntary_bursts", "voluntary bursts (real MUs)", emg_rest, 1000,
                          1000, t1k, {"voluntary": 8}))
    cases.append(emg_case(4, "tonic_trains", "tonic trains 6-12 Hz", emg_rest, 1000, 1000, t1k,
                          {"tonic": 8}))
    cases.append(emg_case(5, "motion_emg_acc", "motion artifacts (EMG+acc)", emg_rest, 1000,
                          1000, t1k, {"motion": 6}, with_acc=True))
    cases.append(emg_case(6, "electrode_pops", "electrode pops", emg_rest, 1000, 1000, t1k,
                          {"pop": 10}))
    cases.append(emg_case(7, "mains_50hz", "mains 50 Hz", emg_rest, 1000, 1000, t1k,
                          mains_hz=50.0))
    cases.append(emg_case(8, "mains_60hz", "mains 60 Hz", emg_1, 1000, 1000, t1k, mains_hz=60.0))
    cases.append(emg_case(9, "low_snr_20uv", "low SNR (20 µV on ~4.6 µV)", emg_1, 1000, 1000,
                          t1k, p2p=(20.0, 20.0)))
    cases.append(emg_case(10, "rest_2khz", "2 kHz EMG", emg_rest, 1000, 2000, t2k))
    cases.append(emg_case(11, "solo_2khz", "2 kHz EMG", solo, 1000, 2000, t2k,
                          {"tonic": 3, "pop": 3}))
    # A twitching muscle (issue #11): 2-8 recurring units firing irregularly, with doublets.
    # Quiet rest: BioSPPy emg.txt with its two real tonic stretches cut out of the truth as
    # before; the synthetic-free rest is the mirrored first half of it (no real activity).
    quiet = mirror_extend(emg_rest[: _first_activity(emg_rest, 1000.0)], n_emg)
    for j, r in enumerate(UNIT_RATES_PER_MIN):
        cases.append(emg_case(20 + j, f"units_{r:g}_per_min", f"recurring units {r:g}/min, quiet rest",
                              quiet, 1000, 1000, t1k, units=(2, 8), rate=r))
    cases.append(emg_case(24, "storm_90_per_min", "twitch storm 90/min + voluntary bursts",
                          emg_rest, 1000, 1000, t1k, {"voluntary": 4}, units=(2, 4), rate=90.0))
    cases.append(emg_case(25, "storm_120_per_min_emg1", "twitch storm 120/min, real activations",
                          emg_1, 1000, 1000, t1k, units=(2, 4), rate=120.0))
    cases.append(emg_case(26, "units_low_level_firing", "recurring units 20/min + regular low-level firing",
                          quiet, 1000, 1000, t1k, {"low_level": 6}, units=(2, 8), rate=20.0))
    cases.append(emg_case(27, "storm_low_level_firing", "twitch storm 60/min + regular low-level firing",
                          quiet, 1000, 1000, t1k, {"low_level": 4}, units=(2, 4), rate=60.0))
    cases.append(emg_case(28, "units_low_snr", "recurring units 20/min, 20-70 µV on ~4.6 µV",
                          emg_1, 1000, 1000, t1k, units=(2, 8), rate=20.0, p2p=(20.0, 70.0)))
    # Accelerometer-only recordings on real accelerometer backgrounds.
    accs = [
        (12, "ax6_acc_only", load_ax6_acc(root / "ggir" / "ax6_testfile.csv"), 100.0),
        (13, "plux_sync_acc1_only", load_plux_acc(root / "biosignalsnotebooks" / "sync_acc_1.csv"),
         1000.0),
        (14, "plux_sync_acc2_only", load_plux_acc(root / "biosignalsnotebooks" / "sync_acc_2.csv"),
         1000.0),
    ]
    for i, name, a, fs in accs:
        rng = rng_for(i)
        a = mirror_extend(a, int(ACC_DURATION_S * fs))
        active = acc_activity_spans(a, fs)
        a = a.copy()
        dur = len(a) / fs
        times = twitch_times(dur, active, rng, rate_per_min)
        truth = np.array([add_acc_transient(a, fs, t, rng.uniform(3, 10), rng) for t in times])
        cases.append(Case(name, "accelerometer only", None, None, fs, a, truth, active,
                          tolerance_s=ACC_TOLERANCE_S))
    return cases


def _first_activity(x: FloatArray, fs_hz: float) -> int:
    """Samples before the background's first real activity span (or all of it), minus 1 s."""
    active, _ = emg_activity_spans(x, fs_hz)
    return len(x) if not active else max(int((active[0][0] - 1.0) * fs_hz), int(10 * fs_hz))


# --------------------------------------------------------------------------------------------
# detectors: each takes a Case and returns detection times in s (or None = not applicable)
# --------------------------------------------------------------------------------------------
def detect_toetwitch(case: Case, config=None) -> FloatArray:  # noqa: ANN001
    """toetwitch, exactly as ``toetwitch.pipeline.analyse`` runs it (whole arrays pushed into the
    StreamingAnalyser, then finish); rows of type ``fasciculation``. Also keeps the EMG path's
    rejection log in ``case.extra["rejections"]`` to explain misses."""
    from toetwitch.pipeline import StreamingAnalyser

    sa = StreamingAnalyser(case.fs_emg_hz, case.fs_acc_hz, config, name=case.name)
    if sa.emg is not None and hasattr(sa.emg, "keep_rejections"):
        sa.emg.keep_rejections = True
    sa.push(emg_uv=case.emg_uv, acc_g=case.acc_g)
    ev = sa.finish().events
    if sa.emg is not None:
        case.extra["rejections"] = list(getattr(sa.emg, "rejection_log", []))
    return ev.loc[ev["type"] == "fasciculation", "time_s"].to_numpy(float)


def detect_toetwitch_shown(case: Case, config=None) -> FloatArray:  # noqa: ANN001
    """What a live viewer sees first: the twitches the live display shows while they are
    being checked (``toetwitch.pipeline.run.replay`` with ``on_provisional``, one detector block per
    packet), plus settled twitches that were never shown (accelerometer-only ones)."""
    from toetwitch.drivers import Recording
    from toetwitch.pipeline import DetectorConfig
    from toetwitch.pipeline.run.replay import replay

    cfg = config or DetectorConfig()
    rec = Recording(emg_uv=case.emg_uv, fs_emg_hz=case.fs_emg_hz, acc_g=case.acc_g,
                    fs_acc_hz=case.fs_acc_hz, name=case.name)
    shown: list[float] = []
    result = replay(rec, config=cfg, packet_s=cfg.block_s,
                    on_provisional=lambda df: shown.extend(df["time_s"].tolist()))
    seen = set(shown)
    settled = [t for t in result.twitches["time_s"].tolist() if t not in seen]
    return np.sort(np.array(shown + settled, dtype=float))


def miss_reasons(case: Case, detected_s: FloatArray) -> dict[str, int]:
    """Why toetwitch missed injected twitches: the rejection logged nearest to each missed
    truth (within the tolerance), else ``not_detected`` (never crossed the threshold)."""
    log = case.extra.get("rejections", [])
    t_rej = np.array([t for t, _ in log])
    out: dict[str, int] = {}
    for t in case.truth_s[~found_by_truth(case, detected_s)]:
        reason = "not_detected"
        if len(t_rej):
            k = int(np.argmin(np.abs(t_rej - t)))
            if abs(t_rej[k] - t) <= case.tolerance_s:
                reason = log[k][1]
        out[reason] = out.get(reason, 0) + 1
    return out


def detect_mad5(case: Case) -> FloatArray:
    """Naive: 20-450 Hz, peaks of |x| > 5 σ_MAD, 60 ms merge (accelerometer: 2-30 Hz vector
    magnitude, 150 ms merge)."""
    if case.emg_uv is not None:
        y = np.abs(bandpass(case.emg_uv, case.fs_emg_hz, 20.0, 450.0))
        fs, merge = case.fs_emg_hz, 0.060
    else:
        y = np.linalg.norm(bandpass(case.acc_g, case.fs_acc_hz, 2.0, 30.0), axis=1)
        fs, merge = case.fs_acc_hz, 0.150
    return cluster_peaks(y, 5.0 * mad_sigma(y), int(merge * fs)) / fs


def _ceiling_candidates(case: Case) -> tuple[FloatArray, FloatArray]:
    """Candidate times (s) and matched-filter outputs of :func:`detect_ceiling`."""
    from scipy import signal as ss

    if case.emg_uv is None:  # a decaying 5-30 Hz wave of 100-300 ms in an unknown direction:
        # the energy of the 2-30 Hz band over 60 ms (its phase and direction are unknown)
        fs = case.fs_acc_hz
        e = np.sum(bandpass(case.acc_g, fs, 2.0, 30.0) ** 2, axis=1)
        n = max(1, round(0.060 * fs))
        stat = np.sqrt(np.convolve(e, np.ones(n) / n, mode="same"))
        peaks, _ = ss.find_peaks(stat, distance=max(1, round(0.150 * fs)))
        return peaks / fs, stat[peaks]
    fs = case.fs_emg_hz
    y = bandpass(case.emg_uv, fs, 20.0, 450.0)
    mains = case.extra.get("mains_hz")
    for f in ((mains, 3 * mains) if mains else ()):
        b, a = ss.iirnotch(f, 30.0, fs)
        y = ss.filtfilt(b, a, y)
    stat = np.zeros(len(y))
    for w in case.extra["templates"]:
        w = w / np.linalg.norm(w)
        full = np.abs(np.correlate(y, w, mode="full"))
        lag = len(w) - 1 - int(np.argmax(np.abs(w)))  # output index of the shape's largest sample
        np.maximum(stat, full[lag: lag + len(y)], out=stat)
    peaks, _ = ss.find_peaks(stat, distance=max(1, round(0.030 * fs)))
    return peaks / fs, stat[peaks]


def detect_ceiling(case: Case) -> FloatArray:
    """What a detector could reach with hindsight: an estimate of the attainable, not a peer.

    It knows what the others must guess. On EMG: the 12 real motor-unit shapes the twitches
    were made of (a bank of matched filters, the optimal detector of a known shape in noise,
    after the same 20-450 Hz band and notches at the injected mains lines); on the
    accelerometer: the band and length of the transients (their energy in 2-30 Hz over 60 ms).
    It knows the active spans (every detection inside one is dropped: perfect rejection of
    voluntary, tonic, motion and pop activity) and the truth: the threshold is the lowest that
    keeps this recording's false positives within the target's 0.5 per minute
    (``CEILING_FP_PER_MIN``), so its sensitivity is about the most any detector can find at
    that false-positive rate. Where it finds little, the twitches are not in the signal.
    """
    t, v = _ceiling_candidates(case)
    # hindsight again: a doublet's second discharge is part of its twitch, not a false positive
    seconds = case.extra.get("doublet_second_s", np.empty(0))
    keep = ~in_spans(t, case.active_s + [(s - case.tolerance_s, s + case.tolerance_s) for s in seconds])
    if len(case.truth_s):  # and a known twitch's side lobes (20-60 ms off it) are not another
        d = np.min(np.abs(t[:, None] - case.truth_s[None, :]), axis=1)
        keep &= (d <= case.tolerance_s) | (d > 0.06)
    t, v = t[keep], v[keep]
    # found twitches change only at the values of candidates lying on a truth: try those,
    # highest first, and keep the lowest one within the false-positive budget
    near = np.min(np.abs(t[:, None] - case.truth_s[None, :]), axis=1) <= case.tolerance_s if len(
        case.truth_s) and len(t) else np.zeros(len(t), bool)
    budget = CEILING_FP_PER_MIN * case.duration_s / 60
    best = t[:0]
    for thr in np.unique(v[near])[::-1]:
        d = t[v >= thr]
        if score(case.truth_s, d, case.tolerance_s, case.active_s, case.duration_s,
                 case.extra.get("lone_spikes_s")).fp > budget:
            break
        best = d
    return best


def _interval_peaks(x: FloatArray, on: np.ndarray, off: np.ndarray) -> FloatArray:
    """One detection per [on, off] interval: the index of the largest |x| inside it."""
    out = []
    for a, b in zip(on, off, strict=True):
        a, b = int(a), int(max(b, a)) + 1
        out.append(a + int(np.argmax(np.abs(x[a:b]))))
    return np.array(out, dtype=float)


def detect_neurokit(case: Case) -> FloatArray | None:
    """NeuroKit2 ``emg_process`` defaults; each onset-offset interval is one detection."""
    import neurokit2 as nk

    if case.emg_uv is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sig, info = nk.emg_process(case.emg_uv, sampling_rate=int(case.fs_emg_hz))
    on, off = np.asarray(info["EMG_Onsets"]), np.asarray(info["EMG_Offsets"])
    k = min(len(on), len(off))
    return _interval_peaks(sig["EMG_Clean"].to_numpy(), on[:k], off[:k]) / case.fs_emg_hz


def detect_biosppy(case: Case) -> FloatArray | None:
    """BioSPPy ``emg.emg`` defaults; its ``onsets`` hold up- and down-crossings in turn, so
    consecutive pairs are intervals, each one detection."""
    from biosppy.signals import emg as bemg

    if case.emg_uv is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = bemg.emg(signal=case.emg_uv, sampling_rate=float(case.fs_emg_hz), show=False)
    cross = np.asarray(out["onsets"], dtype=int)
    on, off = cross[0::2], cross[1::2]
    if len(off) < len(on):
        off = np.append(off, len(case.emg_uv) - 1)
    return _interval_peaks(np.asarray(out["filtered"]), on, off) / case.fs_emg_hz


# --------------------------------------------------------------------------------------------
# running and printing
# --------------------------------------------------------------------------------------------
def _fmt(v: float, spec: str = ".2f") -> str:
    return "–" if v != v else format(v, spec)


def table(rows: list[tuple[str, Score | str]], markdown: bool) -> str:
    head = ["detector", "Se", "PPV", "F1", "FP/min", "FP/min active", "TP", "FN", "FP",
            "lone bg"]
    lines = []
    for name, s in rows:
        if isinstance(s, str):
            lines.append([name, s] + [""] * 8)
        else:
            lines.append([name, _fmt(s.sensitivity), _fmt(s.precision), _fmt(s.f1),
                          _fmt(s.fp_per_min), _fmt(s.fp_per_min_active), str(s.tp), str(s.fn),
                          str(s.fp), str(s.lone_spikes)])
    return render_table(head, lines, markdown, rule=True)


def run(seed: int, only: list[str] | None, config_changes: dict[str, object], peers: bool,
        markdown: bool, rate_per_min: float = TWITCH_RATE_PER_MIN, live: bool = True) -> dict:
    from toetwitch.pipeline import DetectorConfig

    cfg = DetectorConfig().with_(**config_changes) if config_changes else None
    t0 = time.perf_counter()
    cases = build_cases(seed, rate_per_min)
    if not cases:
        print("shared data not found (../shared/data): real-data detection cases skipped")
        return {}
    if only:
        cases = [c for c in cases if any(o in c.name or o in c.kind for o in only)]
    print(f"built {len(cases)} recordings in {time.perf_counter() - t0:.1f} s (seed {seed}, "
          f"twitches asked at {rate_per_min:g}/min)"
          + (f"; DetectorConfig changes: {config_changes}" if config_changes else ""))
    detectors: dict[str, Callable[[Case], FloatArray | None] | str] = {
        "toetwitch": lambda c: detect_toetwitch(c, cfg),
        "toetwitch, shown live first": (lambda c: detect_toetwitch_shown(c, cfg)) if live
        else "skipped (--no-live)",
        "naive 5×MAD": detect_mad5,
    }
    ceiling_label = "ceiling (hindsight matched filter)"
    for label, mod, fn in (("NeuroKit2 emg_process", "neurokit2", detect_neurokit),
                           ("BioSPPy emg()", "biosppy", detect_biosppy)):
        if not peers:
            detectors[label] = "skipped (--no-peers)"
        elif peer_available(mod):
            detectors[label] = fn
        else:
            detectors[label] = "not installed"
            print(f"{mod} not installed: its column is empty (pip install '.[bench]')")
    detectors[ceiling_label] = detect_ceiling  # last: not a peer, see detect_ceiling
    per_case: dict[str, dict[str, Score | None]] = {}
    seconds = dict.fromkeys(detectors, 0.0)
    for c in cases:
        per_case[c.name] = {}
        for label, fn in detectors.items():
            if isinstance(fn, str):
                per_case[c.name][label] = None
                continue
            t = time.perf_counter()
            det = fn(c)
            seconds[label] += time.perf_counter() - t
            per_case[c.name][label] = (None if det is None else
                                       score(c.truth_s, det, c.tolerance_s, c.active_s, c.duration_s,
                                             c.extra.get("lone_spikes_s")))
            if label == "toetwitch" and det is not None:
                c.extra["misses"] = miss_reasons(c, det)
            if label in FOUND_LABELS + (ceiling_label,) and det is not None and "twitch_p2p_uv" in c.extra:
                c.extra.setdefault("found", {})[label] = found_by_truth(c, det)
    kinds = list(dict.fromkeys(c.kind for c in cases))
    result: dict = {"seed": seed, "config_changes": config_changes, "kinds": {}, "cases": {}}

    def rows_for(names: list[str]) -> list[tuple[str, Score | str]]:
        rows: list[tuple[str, Score | str]] = []
        for label, fn in detectors.items():
            scores = [per_case[n][label] for n in names if per_case[n][label] is not None]
            if isinstance(fn, str):
                rows.append((label, fn))
            elif not scores:
                rows.append((label, "n/a (EMG only)"))
            else:
                rows.append((label, sum(scores, Score())))
        return rows

    emg_kinds = [k for k in kinds if any(c.kind == k and c.emg_uv is not None for c in cases)]
    groups = {k: [c.name for c in cases if c.kind == k] for k in kinds}
    if len(emg_kinds) < len(kinds):  # peers read EMG only: compare them on the same recordings
        groups["overall, EMG recordings"] = [c.name for c in cases if c.emg_uv is not None]
    groups["overall"] = [c.name for c in cases]
    for kind, names in groups.items():
        sub = [c for c in cases if c.name in names]
        n_truth = sum(len(c.truth_s) for c in sub)
        minutes = sum(c.duration_s for c in sub) / 60
        print(f"\n### {kind}: {len(names)} recording(s), {minutes:.1f} min, {n_truth} twitches "
              f"({', '.join(names) if not kind.startswith('overall') else 'all'})\n")
        rows = rows_for(names)
        print(table(rows, markdown))
        misses: dict[str, int] = {}
        for c in sub:
            for r, k in c.extra.get("misses", {}).items():
                misses[r] = misses.get(r, 0) + k
        if misses:
            print("toetwitch misses by reason: " + ", ".join(f"{r} {k}" for r, k in
                                                            sorted(misses.items())))
        result["kinds"][kind] = {lab: (s if isinstance(s, str) else _score_dict(s))
                                 for lab, s in rows}
        result["kinds"][kind]["toetwitch_misses"] = misses
    for n, d in per_case.items():
        result["cases"][n] = {lab: (None if s is None else _score_dict(s)) for lab, s in d.items()}
    labels = [*FOUND_LABELS, ceiling_label]
    emg_cases = [c for c in cases if c.emg_uv is not None]
    if emg_cases:
        print("\n### per EMG recording: toetwitch beside what a plain threshold finds\n")
        print(case_table(emg_cases, per_case, ceiling_label, markdown))
    by_size = sensitivity_by_size(cases, labels)
    if by_size:
        print("\n### EMG twitches found, by size (peak to peak / the background's noise σ)\n")
        print(size_table(by_size, markdown))
        result["by_size"] = by_size
    by_rate = sensitivity_by_rate(cases, labels)
    if by_rate:
        print("\n### EMG twitches found, by the recording's twitch rate (per minute of rest)\n")
        print(size_table(by_rate, markdown, key="rate"))
        result["by_rate"] = by_rate
    print("\ndetector time over all recordings: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items() if not isinstance(
              detectors[k], str)))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return result


#: Detectors whose per-twitch hits feed the by-size and by-rate tables (with the ceiling).
FOUND_LABELS = ("toetwitch", "naive 5×MAD")


def case_table(cases: list[Case], per_case: dict, ceiling_label: str, markdown: bool) -> str:
    """One row per EMG recording: twitches, toetwitch's Se and FP/min, the naive threshold's
    ("what a plain threshold finds"), the ceiling's Se, and whether it has confounders."""
    head = ["recording", "units", "rate/min", "twitches", "confounders", "toetwitch Se",
            "toetwitch FP/min", "naive Se", "naive FP/min", "ceiling Se"]
    lines = []
    for c in cases:
        d = per_case[c.name]
        t, nv, ce = d.get("toetwitch"), d.get("naive 5×MAD"), d.get(ceiling_label)
        lines.append([c.name, str(c.extra.get("units") or "–"), f"{c.extra.get('rate_per_min', 0):g}",
                      str(len(c.truth_s)), "yes" if c.extra.get("confounders") else "no",
                      _fmt(t.sensitivity) if t else "–", _fmt(t.fp_per_min) if t else "–",
                      _fmt(nv.sensitivity) if nv else "–", _fmt(nv.fp_per_min) if nv else "–",
                      _fmt(ce.sensitivity) if ce else "–"])
    return render_table(head, lines, markdown)


def sensitivity_by_rate(cases: list[Case], labels: list[str]) -> list[dict]:
    """Twitches and the share each detector found, per recording twitch rate (asked, /min)."""
    emg = [c for c in cases if "found" in c.extra]
    rates = sorted({float(c.extra.get("rate_per_min", TWITCH_RATE_PER_MIN)) for c in emg})
    rows = []
    for r in rates:
        sub = [c for c in emg if float(c.extra.get("rate_per_min", TWITCH_RATE_PER_MIN)) == r]
        row: dict = {"rate_per_min": r, "twitches": int(sum(len(c.truth_s) for c in sub))}
        for lab in labels:
            if all(lab in c.extra["found"] for c in sub):
                row[lab] = int(sum(int(c.extra["found"][lab].sum()) for c in sub))
        rows.append(row)
    return rows


#: Twitch size bins for the sensitivity-by-size table: peak to peak in units of noise σ.
SIZE_BINS_SIGMA = (0.0, 10.0, 20.0, 40.0, np.inf)


def found_by_truth(case: Case, detected_s: FloatArray) -> np.ndarray:
    """Per truth, in ``case.truth_s`` order: was it matched by a detection?"""
    order = np.argsort(case.truth_s, kind="stable")
    found = np.zeros(len(order), dtype=bool)
    found[order] = match_events(case.truth_s, detected_s, case.tolerance_s) >= 0
    return found


def sensitivity_by_size(cases: list[Case], labels: list[str]) -> list[dict]:
    """Twitches and the share each detector found, per size bin (p2p / noise σ)."""
    emg = [c for c in cases if "found" in c.extra]
    if not emg:
        return []
    ratio = np.concatenate([c.extra["twitch_p2p_uv"] / c.extra["noise_sigma_uv"] for c in emg])
    rows = []
    for lo, hi in zip(SIZE_BINS_SIGMA[:-1], SIZE_BINS_SIGMA[1:], strict=True):
        inside = (ratio >= lo) & (ratio < hi)
        row: dict = {"from_sigma": lo, "to_sigma": None if hi == np.inf else hi,
                     "twitches": int(inside.sum())}
        for lab in labels:
            if all(lab in c.extra["found"] for c in emg):
                f = np.concatenate([c.extra["found"][lab] for c in emg])
                row[lab] = int(f[inside].sum())
        rows.append(row)
    return rows


def size_table(rows: list[dict], markdown: bool, key: str = "size") -> str:
    labels = [k for k in rows[0] if k not in ("from_sigma", "to_sigma", "twitches", "rate_per_min")]
    head = ["p2p / noise σ" if key == "size" else "twitches per min", "twitches", *labels]
    lines = []
    for r in rows:
        if key == "rate":
            rng = f"{r['rate_per_min']:g}"
        else:
            rng = (f"≥ {r['from_sigma']:g}" if r["to_sigma"] is None
                   else f"{r['from_sigma']:g}–{r['to_sigma']:g}")
        lines.append([rng, str(r["twitches"])] + [
            f"{r[lab]} ({r[lab] / r['twitches']:.0%})" if r["twitches"] else "–" for lab in labels])
    return render_table(head, lines, markdown)


def _score_dict(s: Score) -> dict[str, float]:
    return {"tp": s.tp, "fn": s.fn, "fp": s.fp, "fp_active": s.fp_active,
            "sensitivity": s.sensitivity, "precision": s.precision, "f1": s.f1,
            "fp_per_min": s.fp_per_min, "fp_per_min_active": s.fp_per_min_active,
            "minutes": s.minutes, "active_minutes": s.active_minutes,
            "lone_background_spikes": s.lone_spikes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--rate", type=float, default=TWITCH_RATE_PER_MIN,
                   help="mean injected twitch rate per minute (default %(default)s)")
    p.add_argument("--only", nargs="*", help="recording names or kinds containing these words")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="DetectorConfig changes to try, e.g. threshold_k=6")
    p.add_argument("--no-peers", action="store_true", help="skip NeuroKit2 and BioSPPy")
    p.add_argument("--no-live", action="store_true",
                   help="skip 'shown live first' (a packet-by-packet replay: most of the run time)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--json", type=Path, help="also write the scores as JSON here")
    a = p.parse_args(argv)
    res = run(a.seed, a.only, parse_sets(a.set), not a.no_peers, a.markdown, a.rate, not a.no_live)
    if a.json and res:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
