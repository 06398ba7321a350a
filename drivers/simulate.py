"""Synthetic foot EMG + accelerometer recordings with known truth.

Pure numpy and seeded (``numpy.random.default_rng(seed)``): the same arguments always give
the same recording. Used by tests, benchmarks and ``sample_data/build_samples.py``.

Every modelling choice cites the signal evidence, ``docs/evidence.md``; a section number
such as "§2.1" means its section S2.1.

* Fasciculation potential (FP) shape: Hermite–Rodriguez functions, the classic analytic MUAP
  model (first order = biphasic, second order = triphasic). Needle FPs last 12.6 ± 4.4 ms with
  3.25 ± 1.05 phases, 10.5 % polyphasic (§2.1); a real surface single-MU potential has a core
  of ≈ 8 ms (openhdemg, §2.1). Default: 12 ms window, 3 phases.
* Surface FP amplitude is not published (§2.1, §7); 20–200 µV p2p spans what a 1–2 µV noise
  floor can detect (§5) up to large units.
* Fasciculations are isolated: placed ≥ 300 ms apart (Sleutjes isolation rule: ISI > 250 ms,
  §1.4) and never within 1 s of a confounder, i.e. only at rest.
* Background: band-limited (20–450 Hz, §2.3) Gaussian noise, default 2 µV RMS (PLUX resting
  floor 1.8–2.3 µV, §2.3).
* Confounders: voluntary bursts 1–8 s of band-limited noise at 30–300 µV RMS (PLUX contractions
  reach ~190 µV RMS in the BioSPPy example recording) with accelerometer motion; tonic trains of one MUAP at
  6–12 Hz for 2–6 s (real MU rates 6.8–11 Hz, §2.2); electrode pops (a step of hundreds of µV
  decaying over 100–300 ms); motion (low-frequency baseline swing plus accelerometer movement);
  limb movements 0.5–10 s (AASM/WASM LM duration, §0) with EMG activity and movement.
* Accelerometer: gravity ≈ 1 g on z plus ~1 mg noise per axis (AX6 1.06 mg, PLUX 1.2 mg floors,
  §2.4). A twitch moves the toe only sometimes: Terrill found no toe acceleration in 39 % of
  EMG leg events (§0), so by default 61 % of twitches get a transient of 3–10 mg (single-FP
  size is unknown and expected near the noise floor, §2.4), 5–30 Hz (MMG band, §1.7),
  100–300 ms long (ultrasound twitches 0.2–1 s, §2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from toetwitch.drivers.recording import Recording

#: Kinds used in the truth table.
KINDS = ("fasciculation", "voluntary", "tonic", "pop", "motion", "limb_movement")
#: Truth table columns (``acc_peak_mg`` is an extension: the injected accelerometer transient).
TRUTH_COLUMNS = ["time_s", "kind", "end_s", "peak_to_peak_uv", "acc_peak_mg"]
#: Minimum spacing of simulated fasciculations (> the 250 ms isolation rule).
MIN_TWITCH_GAP_S = 0.3
#: Fasciculations keep this distance from every confounder (they happen at rest).
REST_MARGIN_S = 1.0

FloatArray = NDArray[np.float64]


def _hermite(order: int, x: FloatArray) -> FloatArray:
    """Physicists' Hermite polynomial H_order(x)."""
    h0, h1 = np.ones_like(x), 2 * x
    if order == 0:
        return h0
    for n in range(1, order):
        h0, h1 = h1, 2 * x * h1 - 2 * n * h0
    return h1


def muap_template(fs_hz: float, duration_ms: float = 12.0, phases: int = 3) -> FloatArray:
    """A surface motor-unit action potential shape, 1 µV peak to peak.

    Hermite–Rodriguez function of order ``phases - 1``: ``H_n(t/λ) exp(-(t/λ)²)`` sampled over
    ``duration_ms`` (λ = duration/7, so the tails reach < 1e-5 of the peak), tapered to zero
    at both ends and scaled to 1 µV peak to peak.

    Parameters
    ----------
    fs_hz : float
        Sample rate in Hz.
    duration_ms : float
        Length of the whole waveform in ms (needle FPs 12.6 ± 4.4 ms, docs/evidence.md §S2.1).
    phases : int
        Number of phases, 1–6 (3 typical; 4+ = polyphasic).

    Returns
    -------
    ndarray, shape (round(duration_ms * fs_hz / 1000) | 1,)
        The waveform in µV, odd length, centred on the middle sample.
    """
    if not 1 <= phases <= 6:
        raise ValueError(f"phases must be 1..6, got {phases}")
    n = max(3, int(round(duration_ms * 1e-3 * fs_hz)) | 1)
    t_ms = (np.arange(n) - n // 2) / fs_hz * 1e3
    lam = duration_ms / 7.0
    x = t_ms / lam
    w = _hermite(phases - 1, x) * np.exp(-(x**2))
    w = w * np.hanning(n + 2)[1:-1] ** 0.25  # soft edges, no step at the ends
    w = w - np.linspace(w[0], w[-1], n)
    return w / (w.max() - w.min())


def _random_template(fs_hz: float, rng: np.random.Generator) -> FloatArray:
    """A template with physiological variety: 8–16 ms, mostly 3 phases, either polarity."""
    dur = rng.uniform(8.0, 16.0)
    phases = int(rng.choice([2, 3, 3, 3, 3, 4, 4, 5]))
    sign = rng.choice([-1.0, 1.0])
    return sign * muap_template(fs_hz, dur, phases)


def inject_twitches(
    emg_uv: FloatArray,
    fs_hz: float,
    times_s: Sequence[float] | FloatArray,
    p2p_uv: float | Sequence[float] | FloatArray,
    rng: np.random.Generator | None = None,
    template: FloatArray | None = None,
) -> FloatArray:
    """Add motor-unit potentials to an EMG trace; returns a new array.

    Parameters
    ----------
    emg_uv : ndarray, shape (n,)
        Background EMG in µV (not modified).
    fs_hz : float
        Its sample rate.
    times_s : sequence of float
        Where each potential's largest (absolute) peak lands, in s from the start.
    p2p_uv : float or sequence of float
        Peak-to-peak amplitude of each potential in µV.
    rng : numpy Generator, optional
        When given (and ``template`` is None) each twitch gets its own random shape
        (8–16 ms, 2–5 phases, random polarity); otherwise the default 12-ms triphasic one.
    template : ndarray, optional
        One shape (any scale, normalised here to 1 µV p2p) used for every twitch.

    Returns
    -------
    ndarray, shape (n,)
    """
    out = np.array(emg_uv, dtype=np.float64, copy=True)
    times = np.atleast_1d(np.asarray(times_s, dtype=float))
    amps = np.broadcast_to(np.asarray(p2p_uv, dtype=float), times.shape)
    fixed = None
    if template is not None:
        fixed = np.asarray(template, float)
        fixed = fixed / (fixed.max() - fixed.min())
    elif rng is None:
        fixed = muap_template(fs_hz)
    for t, a in zip(times, amps, strict=True):
        w = fixed if fixed is not None else _random_template(fs_hz, rng)
        _add_at(out, w * a, int(round(t * fs_hz)) - int(np.argmax(np.abs(w))))
    return out


def _add_at(x: FloatArray, w: FloatArray, start: int) -> None:
    """``x[start:start+len(w)] += w``, clipped to the array."""
    a, b = max(start, 0), min(start + len(w), len(x))
    if b > a:
        x[a:b] += w[a - start : b - start]


def _bandlimited(
    n: int, fs_hz: float, lo_hz: float, hi_hz: float, rng: np.random.Generator
) -> FloatArray:
    """Unit-RMS Gaussian noise band-limited to [lo_hz, hi_hz] (FFT brick-wall)."""
    if n == 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    spec[(f < lo_hz) | (f > min(hi_hz, 0.45 * fs_hz))] = 0
    x = np.fft.irfft(spec, n)
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def _ramp_envelope(n: int, ramp: int) -> FloatArray:
    """1 in the middle, raised-cosine ramps of ``ramp`` samples at each end."""
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        env[:ramp], env[n - ramp :] = r, r[::-1]
    return env


def _movement(n: int, fs_hz: float, amp_g: float, rng: np.random.Generator) -> FloatArray:
    """(n, 3) smooth 0.5–3 Hz limb movement of peak ``amp_g`` per axis, ramped in and out."""
    t = np.arange(n) / fs_hz
    out = np.zeros((n, 3))
    for j in range(3):
        f = rng.uniform(0.5, 3.0)
        out[:, j] = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return out * amp_g * _ramp_envelope(n, int(0.2 * fs_hz))[:, None]


def _place_intervals(
    count: int,
    dur_range_s: tuple[float, float],
    duration_s: float,
    taken: list[tuple[float, float]],
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    """Random non-overlapping (start, end) intervals, ≥ 2 s from each other and the ends."""
    placed: list[tuple[float, float]] = []
    for _ in range(count):
        for _attempt in range(200):
            d = rng.uniform(*dur_range_s)
            if duration_s - d - 1.0 <= 1.0:
                break
            s = rng.uniform(1.0, duration_s - d - 1.0)
            if all(s > e + 2.0 or s + d < b - 2.0 for b, e in taken + placed):
                placed.append((s, s + d))
                break
    return placed


def rest_twitch_times(
    rate_per_min: float,
    duration_s: float,
    busy: Sequence[tuple[float, float]],
    rng: np.random.Generator,
) -> FloatArray:
    """Random fasciculation times at rest.

    Poisson count with mean ``rate_per_min * duration_s / 60``; uniform times, at least
    :data:`MIN_TWITCH_GAP_S` apart and :data:`REST_MARGIN_S` away from every ``(start, end)``
    interval in ``busy`` (fewer are placed when little rest is left). Sorted, in s.
    """
    n_target = int(rng.poisson(rate_per_min * duration_s / 60.0))
    accepted: list[float] = []
    tries = 0
    while len(accepted) < n_target and tries < 50 * (n_target + 1):
        tries += 1
        t = rng.uniform(0.1, duration_s - 0.3)
        if any(b - REST_MARGIN_S <= t <= e + REST_MARGIN_S for b, e in busy):
            continue
        if any(abs(t - a) < MIN_TWITCH_GAP_S for a in accepted):
            continue
        accepted.append(t)
    return np.sort(np.array(accepted))


def resting_acc(n: int, rng: np.random.Generator, noise_mg: float = 1.0) -> FloatArray:
    """(n, 3) accelerometer at rest in g: gravity 1 g on z plus Gaussian noise of ``noise_mg``."""
    a = rng.normal(0.0, noise_mg * 1e-3, (n, 3))
    a[:, 2] += 1.0
    return a


def add_acc_twitches(
    acc_g: FloatArray,
    fs_acc_hz: float,
    times_s: Sequence[float] | FloatArray,
    rng: np.random.Generator,
    fraction: float = 0.61,
    peak_mg: float | tuple[float, float] = (3.0, 10.0),
) -> FloatArray:
    """Add twitch transients to ``acc_g`` (in place) at a ``fraction`` of ``times_s``.

    Each transient is a decaying 5–30 Hz oscillation lasting 100–300 ms in a random direction,
    starting 10 ms after the EMG peak (electromechanical delay). Returns the peak of each
    twitch's transient in mg, NaN for twitches that did not move the sensor.
    """
    lo, hi = _range(peak_mg)
    peaks = np.full(len(times_s), np.nan)
    for i, t in enumerate(times_s):
        if rng.uniform() >= fraction:
            continue
        mg = rng.uniform(lo, hi)
        add_acc_transient(acc_g, fs_acc_hz, t, mg, rng)
        peaks[i] = mg
    return peaks


def add_acc_transient(acc_g: FloatArray, fs_hz: float, t_s: float, mg: float,
                      rng: np.random.Generator) -> float:
    """Add one twitch transient in place: a decaying 5-30 Hz oscillation of 100-300 ms in a
    random direction, ``mg`` at its largest, starting 10 ms after the EMG peak at ``t_s``.

    Returns the time (s) of its largest sample.
    """
    dur = rng.uniform(0.1, 0.3)
    f = rng.uniform(5.0, min(30.0, 0.4 * fs_hz))
    k = max(2, int(round(dur * fs_hz)))
    tt = np.arange(k) / fs_hz
    tr = np.sin(2 * np.pi * f * tt) * np.exp(-tt / (dur / 3))
    tr = tr / np.max(np.abs(tr)) * mg * 1e-3
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    onset = int(round((t_s + 0.01) * fs_hz))
    seg = acc_g[onset : onset + k]
    seg += tr[: len(seg), None] * direction
    return (onset + int(np.argmax(np.abs(tr)))) / fs_hz


def add_movement(
    acc_g: FloatArray,
    fs_acc_hz: float,
    start_s: float,
    end_s: float,
    peak_mg: tuple[float, float],
    rng: np.random.Generator,
) -> float:
    """Add a smooth 0.5–3 Hz limb movement between the times (in place); returns its peak in mg."""
    sl = slice(int(round(start_s * fs_acc_hz)), min(len(acc_g), int(round(end_s * fs_acc_hz))))
    n = max(0, sl.stop - sl.start)
    if n == 0:
        return float("nan")
    m = _movement(n, fs_acc_hz, rng.uniform(*peak_mg) * 1e-3, rng)
    acc_g[sl] += m
    return float(np.max(np.abs(m))) * 1e3


def _range(v: float | tuple[float, float]) -> tuple[float, float]:
    return (float(v), float(v)) if np.isscalar(v) else (float(v[0]), float(v[1]))  # type: ignore[index]


def simulate_recording(
    duration_s: float,
    fs_emg_hz: float | None = 1000.0,
    fs_acc_hz: float | None = 100.0,
    *,
    seed: int,
    twitch_rate_per_min: float = 15.0,
    twitch_p2p_uv: float | tuple[float, float] = (20.0, 200.0),
    noise_uv: float = 2.0,
    mains_hz: float | None = None,
    mains_uv: float = 5.0,
    voluntary_bursts: int = 0,
    tonic_trains: int = 0,
    pops: int = 0,
    motion: int = 0,
    limb_movements: int = 0,
    acc: bool = True,
    acc_twitch_mg: float | tuple[float, float] = (3.0, 10.0),
    acc_twitch_fraction: float = 0.61,
    acc_noise_mg: float = 1.0,
    emg: bool = True,
    name: str = "simulated",
) -> tuple[Recording, pd.DataFrame]:
    """Simulate a resting foot recording with fasciculations and confounders at known times.

    Parameters
    ----------
    duration_s : float
        Length in seconds.
    fs_emg_hz, fs_acc_hz : float
        Sample rates of the two streams (None allowed for a stream switched off).
    seed : int
        Seed of ``numpy.random.default_rng``; same seed, same recording.
    twitch_rate_per_min : float
        Mean fasciculation rate over the whole recording (Poisson); fewer are placed when
        confounders leave little rest.
    twitch_p2p_uv : float or (low, high)
        Fasciculation peak-to-peak amplitude in µV, log-uniform in the range.
    noise_uv : float
        RMS of the 20–450 Hz background noise in µV.
    mains_hz, mains_uv : float or None, float
        Optional mains interference (50 or 60 Hz, plus a third harmonic at 30 %), amplitude µV.
    voluntary_bursts, tonic_trains, pops, motion, limb_movements : int
        How many of each confounder to place (non-overlapping, 2 s apart).
    acc, emg : bool
        Which streams to produce (at least one).
    acc_twitch_mg : float or (low, high)
        Peak of a twitch's accelerometer transient in mg.
    acc_twitch_fraction : float
        Share of twitches that move the accelerometer (default 0.61, Terrill §0).
    acc_noise_mg : float
        Accelerometer noise per axis (SD) in mg.
    name : str
        ``Recording.name``.

    Returns
    -------
    recording : Recording
    truth : DataFrame
        One row per injected event, sorted by ``time_s``: ``time_s`` (fasciculation: its EMG
        peak; others: start), ``kind`` (see :data:`KINDS`), ``end_s``, ``peak_to_peak_uv``
        (NaN where it does not apply), ``acc_peak_mg`` (injected accelerometer peak, NaN
        when there was none).
    """
    if not (emg or acc):
        raise ValueError("simulate at least one stream (emg=True or acc=True)")
    if (emg and not fs_emg_hz) or (acc and not fs_acc_hz):
        raise ValueError("a simulated stream needs its sample rate")
    # A stream switched off is still generated (at a default rate) and then dropped, so the
    # other stream is the same whichever streams are kept.
    fs_emg_hz = float(fs_emg_hz or 1000.0)
    fs_acc_hz = float(fs_acc_hz or 100.0)
    rng = np.random.default_rng(seed)
    n_e = int(round(duration_s * fs_emg_hz))
    n_a = int(round(duration_s * fs_acc_hz))
    x = _bandlimited(n_e, fs_emg_hz, 20.0, 450.0, rng) * noise_uv
    t_e = np.arange(n_e) / fs_emg_hz
    if mains_hz:
        x += mains_uv * np.sin(2 * np.pi * mains_hz * t_e + rng.uniform(0, 2 * np.pi))
        x += 0.3 * mains_uv * np.sin(2 * np.pi * 3 * mains_hz * t_e + rng.uniform(0, 2 * np.pi))
    a = resting_acc(n_a, rng, acc_noise_mg)
    rows: list[dict[str, Any]] = []

    def e_slice(s: float, e: float) -> slice:
        return slice(int(round(s * fs_emg_hz)), min(n_e, int(round(e * fs_emg_hz))))

    busy: list[tuple[float, float]] = []
    # Voluntary contractions: band-limited noise bursts with movement.
    for s, e in _place_intervals(voluntary_bursts, (1.0, 8.0), duration_s, busy, rng):
        sl = e_slice(s, e)
        n = sl.stop - sl.start
        burst = _bandlimited(n, fs_emg_hz, 20, 300, rng) * rng.uniform(30, 300)
        burst *= _ramp_envelope(n, int(0.2 * fs_emg_hz))
        x[sl] += burst
        mg = add_movement(a, fs_acc_hz, s, e, (20, 100), rng)
        rows.append(
            dict(time_s=s, kind="voluntary", end_s=e, peak_to_peak_uv=np.ptp(burst), acc_peak_mg=mg)
        )
        busy.append((s, e))
    # Periodic limb movements: shorter, weaker EMG activity with movement (AASM 0.5-10 s).
    for s, e in _place_intervals(limb_movements, (0.5, 10.0), duration_s, busy, rng):
        sl = e_slice(s, e)
        n = sl.stop - sl.start
        burst = _bandlimited(n, fs_emg_hz, 20, 300, rng) * rng.uniform(10, 60)
        burst *= _ramp_envelope(n, int(0.1 * fs_emg_hz))
        x[sl] += burst
        mg = add_movement(a, fs_acc_hz, s, e, (30, 200), rng)
        rows.append(
            dict(
                time_s=s,
                kind="limb_movement",
                end_s=e,
                peak_to_peak_uv=np.ptp(burst),
                acc_peak_mg=mg,
            )
        )
        busy.append((s, e))
    # Tonic firing: one motor unit at 6-12 Hz (isolation rule must reject it).
    for s, e in _place_intervals(tonic_trains, (2.0, 6.0), duration_s, busy, rng):
        rate = rng.uniform(6.0, 12.0)
        isi = 1.0 / rate * (1 + 0.1 * rng.standard_normal(int((e - s) * rate) + 2))
        times = s + np.concatenate([[0.0], np.cumsum(np.clip(isi, 0.05, None))])
        times = times[times < e]
        p2p = float(np.exp(rng.uniform(np.log(20), np.log(100))))
        x[:] = inject_twitches(x, fs_emg_hz, times, p2p, template=_random_template(fs_emg_hz, rng))
        rows.append(
            dict(
                time_s=s,
                kind="tonic",
                end_s=float(times[-1]),
                peak_to_peak_uv=p2p,
                acc_peak_mg=np.nan,
            )
        )
        busy.append((s, float(times[-1])))
    # Electrode pops: a step that decays over 100-300 ms.
    for s, e in _place_intervals(pops, (0.1, 0.3), duration_s, busy, rng):
        sl = e_slice(s, e)
        n = sl.stop - sl.start
        step = rng.choice([-1, 1]) * rng.uniform(200, 800)
        pop = step * np.exp(-np.arange(n) / (n / 3.0))
        x[sl] += pop
        rows.append(
            dict(time_s=s, kind="pop", end_s=e, peak_to_peak_uv=abs(step), acc_peak_mg=np.nan)
        )
        busy.append((s, e))
    # Motion: cable/skin baseline swing plus movement.
    for s, e in _place_intervals(motion, (1.0, 5.0), duration_s, busy, rng):
        sl = e_slice(s, e)
        n = sl.stop - sl.start
        tt = np.arange(n) / fs_emg_hz
        swing = rng.uniform(50, 500) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * tt)
        swing *= _ramp_envelope(n, int(0.2 * fs_emg_hz))
        x[sl] += swing
        mg = add_movement(a, fs_acc_hz, s, e, (50, 300), rng)
        rows.append(
            dict(time_s=s, kind="motion", end_s=e, peak_to_peak_uv=np.ptp(swing), acc_peak_mg=mg)
        )
        busy.append((s, e))

    # Fasciculations at rest.
    lo, hi = _range(twitch_p2p_uv)
    t_tw = rest_twitch_times(twitch_rate_per_min, duration_s, busy, rng)
    t_tw = np.round(t_tw * fs_emg_hz) / fs_emg_hz  # peak on an EMG sample
    p2p = np.exp(rng.uniform(np.log(lo), np.log(hi), len(t_tw)))
    ends = np.empty(len(t_tw))
    for i, (t, amp) in enumerate(zip(t_tw, p2p, strict=True)):
        w = amp * _random_template(fs_emg_hz, rng)
        peak = int(np.argmax(np.abs(w)))
        _add_at(x, w, int(round(t * fs_emg_hz)) - peak)
        ends[i] = t + (len(w) - peak) / fs_emg_hz
    mg = add_acc_twitches(a, fs_acc_hz, t_tw, rng, acc_twitch_fraction, acc_twitch_mg)
    for t, e, amp, m in zip(t_tw, ends, p2p, mg, strict=True):
        rows.append(
            dict(time_s=t, kind="fasciculation", end_s=e, peak_to_peak_uv=amp, acc_peak_mg=m)
        )

    truth = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    truth["peak_to_peak_uv"] = truth["peak_to_peak_uv"].astype(float)
    truth["acc_peak_mg"] = truth["acc_peak_mg"].astype(float)
    truth = truth.sort_values("time_s", kind="stable").reset_index(drop=True)
    rec = Recording(
        emg_uv=x if emg else None,
        fs_emg_hz=fs_emg_hz if emg else None,
        acc_g=a if acc else None,
        fs_acc_hz=fs_acc_hz if acc else None,
        name=name,
        meta={"format": "simulated", "seed": seed},
    )
    return rec, truth
