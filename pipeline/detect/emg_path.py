"""The EMG half of the detector: filter, noise, potentials, trains, activity spans.

Stateful only where it must be: :class:`EmgPath` re-blocks incoming samples into fixed blocks
aligned to the first sample and runs the pure steps of :mod:`toetwitch.pipeline.detect.potentials` on every
group of complete blocks. Every decision depends only on samples inside fixed windows, so the
events are the same whatever chunks the samples arrive in (tested with chunk sizes 1 .. whole).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.envelope import (
    activity_flags,
    block_hum_power,
    ringing_free_envelope,
)
from toetwitch.pipeline.detect.filters import (
    StreamingSOS,
    cascade,
    design_bandpass,
    design_notches,
    detect_mains,
    mains_harmonics,
    white_noise_gain,
)
from toetwitch.pipeline.detect.potentials import (
    FloatArray,
    Growing,
    RollingLevel,
    at_least_similar,
    block_rms,
    block_sigma,
    carry_clusters,
    cluster_indices,
    first_argmax,
    flat_runs_mask,
    has_run,
    potential_features_many,
    quantisation_step,
    runs,
    same_unit_neighbours,
    shape_similarity,
    shape_similarity_many,
    shape_similarity_pairs,
    small_discharges,
    windows_around,
)
from toetwitch.pipeline.detect.rules import candidate_rules, first_rejection
from toetwitch.pipeline.detect.rules.activity import in_voluntary_activity
from toetwitch.pipeline.detect.rules.artifacts import (
    FLAG_FLAT,
    FLAG_NAN,
    artifact_reason,
    noise_like,
)
from toetwitch.pipeline.detect.rules.grouping import (
    doublet_partner,
    is_after_wave,
    short_burst_doublets,
)
from toetwitch.pipeline.detect.rules.isolation import (
    same_shape_or_unsure_pairs,
    tonic_train_members,
)
from toetwitch.pipeline.detect.rules.low_level import busy_blocks, count_near, count_near_many
from toetwitch.pipeline.detect.rules.unit_firing import is_fast_firing, is_regular_firing
from toetwitch.pipeline.detect.rules.unit_trains import unit_train_members
from toetwitch.pipeline.detect.templates import TemplateBank

#: The rules that ask :meth:`EmgPath.unit_discharges`.
UNIT_RULES = frozenset({"fast_firing", "regular_firing", "faint_repeating_unit", "repeating_unit"})
#: Candidates whose unit matches are computed in one array pass (bounds its memory).
MATCH_CHUNK = 256

#: 1-15 Hz: where pops and motion artifacts live and surface MUAPs do not.
LF_BAND_HZ = (1.0, 15.0)


def _append(buf: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``buf`` followed by ``new``; no copy when ``buf`` is empty (``new`` is ours already)."""
    return np.concatenate([buf, new]) if len(buf) else new


@dataclass
class Potential:
    """One detected EMG potential (peak cluster). Sample indices are absolute."""

    start: int
    end: int
    peak: int
    p2p_uv: float = np.nan
    duration_n: float = np.nan
    phases: int = 0
    lf_p2p_uv: float = np.nan
    sigma_uv: float = np.nan
    core_fraction: float = np.nan
    artifact: str | None = None
    shape: FloatArray | None = None  # ±core window around the peak, for unit matching


@dataclass
class Fasciculation:
    """An isolated potential (or doublet) waiting for its activity/motion checks."""

    peak: int
    p2p_uv: float
    duration_n: float
    phases: int
    snr: float
    doublet: bool
    shape: FloatArray | None = None
    #: provisional display: None = not looked at yet, True = shown, False = not shown
    shown: bool | None = None


@dataclass
class Span:
    """A stretch of EMG activity (AASM onset/offset rules), in envelope sub-block units."""

    start_sub: int
    end_sub: int  # exclusive
    peak_sub: int
    peak_env_uv: float
    on_subs: int = 0


@dataclass
class EmgPath:
    fs_hz: float
    cfg: DetectorConfig
    # derived sizes (samples)
    block_n: int = field(init=False)
    subs_per_block: int = field(init=False)
    sub_n: int = field(init=False)

    def __post_init__(self) -> None:
        cfg, fs = self.cfg, self.fs_hz
        self.block_n = max(8, round(cfg.block_s * fs))
        self.subs_per_block = max(1, round(cfg.block_s * 1000 / cfg.envelope_ms))
        self.sub_n = self.block_n // self.subs_per_block
        self.hist_n = max(1, round(cfg.noise_history_s / cfg.block_s))
        self.level_every = max(1, round(cfg.noise_update_s / cfg.block_s))
        ms = fs / 1000.0
        self.merge_n = max(1, round(cfg.merge_ms * ms))
        self.core_n = max(1, round(cfg.core_ms * ms))
        self.half_n = max(2, round(cfg.feature_half_window_ms * ms))
        self.iso_n = round(cfg.isolation_ms * ms)
        self.doublet_n = round(cfg.doublet_ms * ms)
        self.after_wave_n = round(cfg.after_wave_ms * ms)
        self.chain_n = round(cfg.train_gap_ms * ms)
        self.unit_n = round(cfg.unit_window_s * fs)
        self.unit_lag_n = max(1, round(cfg.unit_lag_ms * ms))
        #: half-width of the waveform kept per discharge for unit matching (<= half_n)
        self.shape_n = min(max(1, round(cfg.unit_shape_ms * ms)), self.half_n)
        self.busy_n = round(cfg.busy_window_s * fs)
        self.busy_gap_n = round(0.1 * fs)  # a potential's own side waves are not neighbours
        # samples after a potential that the pre-activity check reads
        self.pre_n = round((cfg.pre_activity_s + cfg.post_activity_min_s + 2 * cfg.envelope_ms / 1000) * fs
                           ) if cfg.pre_activity_s > 0 else 0
        #: signal a discharge's look-ahead rules need after it (+ half_n: the sub-threshold
        #: discharges in their windows need their features too)
        self.settle_n = max(self.unit_n if cfg.unit_look_ahead else 0, self.pre_n, self.busy_n) + self.half_n
        self.flat_n = max(3, round(cfg.flat_ms * ms))
        self.act_half_subs = max(1, round(cfg.activity_window_ms / 2 / cfg.envelope_ms))
        self.quiet_subs = max(1, round(cfg.offset_quiet_s * 1000 / cfg.envelope_ms))
        #: sub-blocks of 'on' envelope that make sustained activity (``post_activity_min_s``)
        self.sustained_subs = max(1, round(cfg.post_activity_min_s * 1000 / cfg.envelope_ms))
        self.probe_n = round(cfg.mains_probe_s * fs) if cfg.mains == "auto" else 0
        self.mains_hz: float | None = None if cfg.mains in ("auto", "off") else float(cfg.mains)
        #: frequencies the mains notches remove: every harmonic when the mains is forced, those
        #: that stand out in the probe when it is detected
        self.notches_hz: list[float] = (
            [] if self.mains_hz is None else mains_harmonics(self.mains_hz, fs, cfg.emg_band_hz[1]))
        self.filters_ready = cfg.mains != "auto"
        self._bp: StreamingSOS | None = None
        #: the mains notches, after the band-pass (None: no notch)
        self._notch: StreamingSOS | None = None
        self._lf: StreamingSOS | None = None
        self.noise_gain = 1.0  # white-noise gain of the EMG filter, set with the filter
        if self.filters_ready:
            self._design()
        self.pending = np.empty(0)
        self.n_in = 0
        self.n_done = 0
        self.last_valid = 0.0
        self.have_valid = False
        self.noise_level = RollingLevel(cfg.noise_quantile, self.hist_n, self.level_every)
        #: the mains hum's power at rest (µV²), for the activity spans (ringing_free_envelope)
        #: (once every hum_update_s: mains hum is steady over tens of seconds, and this
        #: second rolling quantile cost as much as the noise level's)
        self.hum_level = RollingLevel(cfg.noise_quantile, self.hist_n,
                                      max(1, round(cfg.hum_update_s / cfg.block_s)))
        # whole-recording block records (compact: 3 numbers per block)
        self.block_sigma = Growing()
        self.block_thr_sigma = Growing()
        self.block_flags = Growing(np.uint8)
        #: sub-threshold discharges per block (for time at rest vs low-level firing)
        self.block_small = Growing(np.uint16)
        # recent buffers for features and activity checks
        self.buf_start = 0
        self.y_buf = np.empty(0)
        self.lf_buf = np.empty(0)
        self.env_start = 0  # sub-block index of env_buf[0]
        self.env_buf = np.empty(0)
        self.on_buf = np.empty(0, dtype=bool)
        # potentials waiting for features / train grouping
        self.open_cluster: tuple[int, int] | None = None
        self.unfeatured: list[Potential] = []
        self.burst: list[Potential] = []
        # closed bursts whose gaps are <= train_gap: (last peak, max p2p, Fasciculation or None)
        self.chain: list[tuple[int, float, Fasciculation | None]] = []
        self.ready: list[Fasciculation] = []  # isolated, waiting for activity window
        # recent discharges for the unit-firing rules, in peak order: peak (sample index),
        # p2p (µV) and shape of each (parallel lists: bisect on the peaks needs no key)
        self.discharge_peaks: list[int] = []
        self.discharge_p2p: list[float] = []
        self.discharge_shapes: list[FloatArray] = []
        #: unit matches per (candidate, look-ahead), shared by the unit-firing rules; valid
        #: while the discharges above stay as they are (emptied by _process and _trim)
        self._unit_memo: dict[tuple[int, bool], tuple] = {}
        #: unit_discharges answers per (candidate, look-ahead, correlation), the same lifetime
        self._unit_found: dict[tuple[int, bool, float], list[int]] = {}
        #: neighbour counts per peak (sub-threshold, over-threshold) for the busy-window
        #: rules, computed for all the candidates decided at once; the same lifetime
        self._near_memo: dict[int, tuple[int, int]] = {}
        #: recent sub-threshold discharges (peak sample index of each), for the low-level
        #: firing rule; those whose window is filtered also carry p2p and shape, so that a
        #: unit firing on under the threshold is recognised by the repeating-unit rule
        self.small = np.empty(0, np.int64)
        self.small_featured = 0  # self.small[:small_featured] have p2p and shape
        self.small_p2p = np.empty(0)
        self.small_shape = np.empty((0, 2 * self.shape_n + 1))
        #: the online template bank (cfg.template_bank) and the sub-threshold discharges
        #: (over bank_k σ, peak sample index each) waiting to be asked of it
        self.bank = TemplateBank(
            2 * self.shape_n + 1, self.unit_lag_n, cfg.bank_max_units, cfg.bank_merge_corr,
            cfg.bank_match_corr, cfg.bank_amplitude_ratio, round(cfg.bank_stale_s * fs)
        ) if cfg.template_bank else None
        self.bank_pending = np.empty(0, np.int64)
        #: measured sub-threshold discharges waiting for the bank: peaks, p2p (µV), waveforms
        #: (k, 2·shape_n + 1), threshold σ (µV), duration (samples) and phases
        self.bank_asks: tuple[np.ndarray, ...] = (
            np.empty(0, np.int64), np.empty(0), np.empty((0, 2 * self.shape_n + 1)), np.empty(0), np.empty(0),
            np.empty(0, np.int64))
        #: accepted twitches (peak, waveform, p2p) not yet taught to the bank, in peak order
        self.bank_learn: list[tuple[int, FloatArray, float]] = []
        #: found by the bank, waiting for the rules; accepted twitches held back so that
        #: twitches leave in peak order
        self.bank_ready: list[Fasciculation] = []
        self.bank_hold: list[tuple[Fasciculation, float]] = []
        self.bank_after_n = round(cfg.bank_after_s * fs)
        self.bank_last_found = -(1 << 62)  # peak of the last discharge the bank found
        #: the rules on isolated discharges, in the order ``cfg.candidate_rules`` names them
        self.rules = candidate_rules(cfg.candidate_rules)
        #: does a rule compare a candidate with its unit's other discharges?
        self.uses_units = bool(UNIT_RULES & set(cfg.candidate_rules))
        self.uses_busy = bool({"low_level_firing", "dense_firing"} & set(cfg.candidate_rules))
        self.rejected: dict[str, int] = {}
        #: (peak, reason) of provisionally shown discharges that the look-ahead rules rejected
        self.withdrawn: list[tuple[int, str]] = []
        #: a live display takes provisional twitches (set by the first :meth:`take_provisional`):
        #: then a discharge the bank found is decided only once it has been looked at, so that
        #: it is offered for display before it is counted
        self.shows_provisional = False
        #: (time_s, reason) of rejected potentials, for inspection and the report's signal plot
        self.keep_rejections = False
        self.rejection_log: list[tuple[float, str]] = []
        # activity spans
        self.span_open = False
        self.span_start = 0
        self.span_last_end = 0
        self.span_on_subs = 0
        self.span_peak_sub = 0
        self.span_peak_env = 0.0
        self.closed_spans: list[Span] = []
        self.all_spans: list[Span] = []

    # ------------------------------------------------------------------ set-up
    def _design(self) -> None:
        cfg = self.cfg
        band = design_bandpass(cfg.emg_band_hz, self.fs_hz, cfg.emg_band_order)
        notches = design_notches(self.notches_hz, self.fs_hz, cfg.notch_q)
        sos = cascade(band, notches)
        # two filters, not one cascade: the activity envelope also reads the band-passed EMG
        # before the notches (ringing_free_envelope)
        self._bp = StreamingSOS(band)
        self._notch = StreamingSOS(notches) if len(notches) else None
        self._lf = StreamingSOS(design_bandpass(LF_BAND_HZ, self.fs_hz, 2))
        self.noise_gain = white_noise_gain(sos, self.fs_hz)
        self.filters_ready = True

    # ------------------------------------------------------------------ input
    def push(self, x_uv: FloatArray) -> None:
        x = np.asarray(x_uv, dtype=np.float64).ravel()
        if len(x):
            # whole blocks are read straight from x (nothing keeps them); only what waits for
            # the next push is copied, so that the caller may reuse its array
            self.pending = np.concatenate([self.pending, x]) if len(self.pending) else x
            self.n_in += len(x)
        self._process(final=False)
        if np.may_share_memory(self.pending, x):
            self.pending = self.pending.copy()

    def finish(self) -> None:
        self._process(final=True)

    @property
    def t_done_s(self) -> float:
        """Time up to which samples have been processed."""
        return self.n_done / self.fs_hz

    def _process(self, final: bool) -> None:
        self._unit_memo, self._unit_found, self._near_memo = {}, {}, {}  # discharges may change
        if not self.filters_ready:
            if len(self.pending) < self.probe_n and not final:
                return
            probe = self.pending[: self.probe_n]
            self.mains_hz, self.notches_hz = detect_mains(
                probe[np.isfinite(probe)], self.fs_hz, self.cfg.emg_band_hz[1])
            self._design()
        nb = len(self.pending) // self.block_n
        if nb:
            x = self.pending[: nb * self.block_n]
            self.pending = self.pending[nb * self.block_n:]
            self._process_blocks(x)
        if nb or final:  # decisions can only change when blocks were added or at the end
            self._advance(final)

    # ------------------------------------------------------------------ blocks
    def _process_blocks(self, x: FloatArray) -> None:
        assert self._bp is not None and self._lf is not None
        bn = self.block_n
        flags = np.zeros(len(x) // bn, dtype=np.uint8)
        # one reduction finds out whether any sample is lost (NaN: the minimum is NaN)
        nan = np.isnan(x) if len(x) and np.isnan(x.min()) else None
        if nan is not None:
            flags |= np.where(nan.reshape(-1, bn).any(axis=1), FLAG_NAN, 0).astype(np.uint8)
            x = self._fill_gaps(x, nan)
        elif len(x):
            self.last_valid, self.have_valid = float(x[-1]), True
        y = self._bp(x)
        env_band = None  # the envelope before the notches, for the activity spans
        if self._notch is not None:
            if self.cfg.span_ringing_free:
                env_band = block_rms(y, self.sub_n, self.subs_per_block, bn)
            y = self._notch(y)
        env = block_rms(y, self.sub_n, self.subs_per_block, bn)  # 50 ms RMS per sub-block
        lf = self._lf(x)
        sig, coarse = self._block_noise(x, y)
        flat = flat_runs_mask(np.where(nan, np.nan, x) if nan is not None else x, bn, self.flat_n,
                              coarse, self.cfg.flat_clip_range_uv)
        flags |= np.where(flat, FLAG_FLAT, 0).astype(np.uint8)
        sig_usable = np.where(flags == 0, sig, np.nan)
        thr_sigma = self.noise_level(sig_usable)
        hum = None  # the resting hum's power, for the activity spans
        if env_band is not None:  # here, while few whole-chunk arrays are held
            hum = self.hum_level(np.where(flags == 0, block_hum_power(env, env_band, self.subs_per_block),
                                          np.nan))
        self.block_sigma.append(sig)
        self.block_thr_sigma.append(thr_sigma)
        self.block_flags.append(flags)
        thr = np.maximum(self.cfg.threshold_k * thr_sigma, self.cfg.min_peak_uv)
        thr = np.where(flags == 0, thr, np.inf)  # no detection inside gaps or clipping
        ay = np.abs(y)  # once, for the detections and the sub-threshold discharges
        cand = np.flatnonzero(ay.reshape(-1, bn) > thr[:, None]) + self.n_done
        low = np.where(flags == 0, self.cfg.busy_k * thr_sigma, np.inf)  # none in gaps or clipping
        small = small_discharges(y, thr, low, bn, self.merge_n, abs_y=ay)
        self.small = _append(self.small, small + self.n_done)
        self.block_small.append(np.bincount(small // bn, minlength=len(flags)).astype(np.uint16))
        if self.bank is not None:  # candidates for the template bank, decided in _advance
            low_b = np.where(flags == 0, self.cfg.bank_k * thr_sigma, np.inf)
            self.bank_pending = _append(
                self.bank_pending, small_discharges(y, thr, low_b, bn, self.merge_n, abs_y=ay) + self.n_done)
        # activity flags per sub-block
        rest = np.repeat(thr_sigma, self.subs_per_block)
        on, above_off = activity_flags(env, rest, self.cfg)
        sub0 = (self.n_done // bn) * self.subs_per_block
        if env_band is not None and hum is not None:
            # a span lasts as long as the burst itself, not the notches' ringing after it; the
            # twitch rules keep the notched envelope (on_buf): what they were measured with
            env_span = ringing_free_envelope(env, env_band, np.repeat(hum, self.subs_per_block))
            span_on, span_above_off = activity_flags(env_span, rest, self.cfg)
            self._spans(span_above_off, span_on, env_span, sub0)
        else:
            self._spans(above_off, on, env, sub0)
        self.env_buf = _append(self.env_buf, env)
        self.on_buf = _append(self.on_buf, on)
        self.y_buf = _append(self.y_buf, y)
        self.lf_buf = _append(self.lf_buf, lf)
        self.n_done += len(x)
        self._clusters(cand)

    def _block_noise(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, np.ndarray]:
        """Per block: robust noise σ (µV) and whether the signal is coarsely quantised there.

        ``x`` is the raw (gap-filled) signal, ``y`` the filtered one, whole blocks of each.
        An ADC with a step ``q`` adds quantisation noise of σ ``q``/√12 (Widrow's additive
        model). When the signal's own noise is under a step the quantised baseline sits on two
        or three codes, median|y|/0.6745 reads far below the real noise (most filtered samples
        are near zero between code changes: 0.3-0.5 µV for ~1.1 µV of noise on a BITalino),
        and code changes flood the sub-threshold and detection levels. The σ is therefore
        never taken under q/√6 times the filter's white-noise gain: the quantisation noise
        plus the noise under one step that the codes cannot resolve, taken at the same level
        (q/√12 alone still let code changes pass for sub-threshold discharges; bench.md §3).
        A signal not quantised, or finely (a step far under its noise), keeps its σ bit for
        bit. A block is coarsely quantised when its σ is under
        ``quantised_flat_steps`` steps: its resting baseline may then hold a code for tens of
        ms, which is not a flatline (:func:`flat_runs_mask`). Both are block-local.
        """
        sig = block_sigma(y, self.block_n)
        # a step under this changes neither the floor nor `coarse` (0.999: rounding margin)
        bound = sig * (0.999 * min(np.sqrt(6.0) / self.noise_gain, 1.0 / self.cfg.quantised_flat_steps))
        step = quantisation_step(x, self.block_n, bound)
        coarse = sig < self.cfg.quantised_flat_steps * step
        # quantisation noise q/√12 plus the signal's own noise under one step, which the codes
        # cannot resolve, taken at the same level: √(q²/12 + q²/12) = q/√6, then filtered
        return np.maximum(sig, step * (self.noise_gain / np.sqrt(6.0))), coarse

    def _fill_gaps(self, x: FloatArray, nan: np.ndarray) -> FloatArray:
        """Hold the last valid value across lost samples so the filters see no step."""
        idx = np.where(~nan, np.arange(len(x)), -1)
        np.maximum.accumulate(idx, out=idx)
        prev = self.last_valid if self.have_valid else 0.0
        filled = np.where(idx >= 0, x[np.maximum(idx, 0)], prev)
        if (~nan).any():
            self.last_valid, self.have_valid = float(x[np.flatnonzero(~nan)[-1]]), True
        return filled

    def _clusters(self, cand: np.ndarray) -> None:
        starts, ends, self.open_cluster = carry_clusters(
            *cluster_indices(cand, self.merge_n), self.open_cluster, self.merge_n, self.n_done
        )
        peaks = first_argmax(self.y_buf, starts - self.buf_start, ends - self.buf_start, absolute=True
                             ) + self.buf_start
        self.unfeatured.extend(Potential(s, e, p) for s, e, p in zip(
            starts.tolist(), ends.tolist(), peaks.tolist(), strict=True))

    # ------------------------------------------------------------------ spans
    def _spans(self, above_off: np.ndarray, on: np.ndarray, env: FloatArray, sub0: int) -> None:
        """AASM-style activity spans: onset when 'on', end after ``offset_quiet_s`` below 'off'."""
        rs, re_ = runs(above_off)
        # per run, in one pass each: its 'on' sub-blocks and its envelope peak (the first of
        # equal ones, as np.argmax); the spans themselves are decided run by run
        on_count = np.concatenate([[0], np.cumsum(on, dtype=np.int64)])
        n_on = (on_count[re_] - on_count[rs]).tolist()
        peak_at = first_argmax(env, rs, re_ - 1)
        peak_val = env[peak_at].tolist()
        for s, e, n, k, peak_env in zip((rs + sub0).tolist(), (re_ + sub0).tolist(), n_on,
                                       (peak_at + sub0).tolist(), peak_val, strict=True):
            if self.span_open and s - self.span_last_end >= self.quiet_subs:
                self._close_span()
            if not self.span_open:
                self.span_open, self.span_start = True, s
                self.span_on_subs = n
                self.span_peak_env, self.span_peak_sub = peak_env, k
            else:
                self.span_on_subs += n
                if peak_env > self.span_peak_env:
                    self.span_peak_env, self.span_peak_sub = peak_env, k
            self.span_last_end = e
        n_subs = sub0 + len(above_off)
        if self.span_open and n_subs - self.span_last_end >= self.quiet_subs:
            self._close_span()

    def _close_span(self) -> None:
        self.span_open = False
        span = Span(self.span_start, self.span_last_end, self.span_peak_sub, self.span_peak_env,
                    self.span_on_subs)
        n_subs = span.end_sub - span.start_sub
        sub_s = self.sub_n / self.fs_hz
        if n_subs * sub_s >= self.cfg.min_activity_s and span.on_subs >= self.cfg.min_span_on_fraction * n_subs:
            self.closed_spans.append(span)
            self.all_spans.append(span)

    def sub_seconds(self) -> float:
        return self.sub_n / self.fs_hz

    def sub_time_s(self, sub: int) -> float:
        """Start time of envelope sub-block ``sub``."""
        block, k = divmod(sub, self.subs_per_block)
        return (block * self.block_n + k * self.sub_n) / self.fs_hz

    # ------------------------------------------------------------------ decisions
    def _advance(self, final: bool) -> None:
        if final and self.span_open:
            self._close_span()
        if final and self.open_cluster is not None:
            s, e = self.open_cluster
            seg = self.y_buf[s - self.buf_start: e + 1 - self.buf_start]
            self.unfeatured.append(Potential(s, e, s + int(np.argmax(np.abs(seg)))))
            self.open_cluster = None
        # 1. features, once the window after the peak has been filtered (peaks are in order)
        k = len(self.unfeatured) if final else bisect.bisect_left(
            self.unfeatured, self.n_done - self.half_n, key=lambda p: p.peak)
        batch, self.unfeatured = self.unfeatured[:k], self.unfeatured[k:]
        self._features(batch)
        self._feature_small(final)
        if self.bank is not None:
            self._bank_step(final)
        for p in batch:
            if p.artifact is None and noise_like(p.core_fraction, self.cfg):
                self.reject("noise_like", at=[p.peak])  # not a discharge: breaks no isolation
                continue
            self._group(p)
        # 2. close the current burst, then the train chain, once no potential can join them
        if self.burst and (final or not self._can_follow(self.burst[-1].peak, self.iso_n)):
            self._close_burst()
        if self.chain and not self.burst and (final or not self._can_follow(self.chain[-1][0], self.chain_n)):
            self._flush_chain()
        self._trim()

    def _can_follow(self, last: int, gap_n: int) -> bool:
        """Could a potential still appear within ``gap_n`` samples after ``last``?"""
        nxt = self.unfeatured[0].peak if self.unfeatured else None
        open_start = self.open_cluster[0] if self.open_cluster else None
        if (open_start is not None and open_start <= last + gap_n) or (nxt is not None and nxt <= last + gap_n):
            return True
        return self.n_done <= last + gap_n + self.merge_n

    def _features(self, batch: list[Potential]) -> None:
        """Waveform features and artifact labels of potentials whose windows are filtered."""
        if not batch:
            return
        peaks = np.array([p.peak for p in batch], dtype=np.int64)
        idx = peaks - self.buf_start
        p2p, dur, phases, lf_p2p, core = potential_features_many(
            self.y_buf, self.lf_buf, idx, self.half_n, self.core_n)
        blocks = peaks // self.block_n
        flags_all, thr_all = self.block_flags.view()[blocks], self.block_thr_sigma.view()[blocks]
        cfg, sn = self.cfg, self.shape_n
        # the shapes of the potentials whose ±shape_n window is in the buffer, in one gather
        inside = (idx >= sn) & (idx + sn < len(self.y_buf))
        windows = windows_around(self.y_buf, idx, sn) if inside.all() else None
        for j, (i, p, a, d, ph, lfa, c, flags, thr_sigma) in enumerate(zip(
                idx.tolist(), batch, p2p.tolist(), dur.tolist(), phases.tolist(), lf_p2p.tolist(),
                core.tolist(), flags_all.tolist(), thr_all.tolist(), strict=True)):
            p.p2p_uv, p.duration_n, p.phases, p.lf_p2p_uv, p.core_fraction = a, d, ph, lfa, c
            p.shape = windows[j] if windows is not None else self.y_buf[max(i - sn, 0): i + sn + 1].copy()
            p.sigma_uv = thr_sigma
            p.artifact = artifact_reason(flags, a, lfa, thr_sigma, cfg)

    def _bank_step(self, final: bool) -> None:
        """Measure the sub-threshold discharges (over ``bank_k`` σ) whose windows are filtered
        and keep those standing alone (nothing over the threshold within
        ±``feature_half_window_ms``) in :attr:`bank_asks`, for :meth:`_ask_bank`."""
        pend = self.bank_pending
        horizon = self.n_done - self.half_n
        if self.open_cluster is not None:  # a potential may still peak from its start on
            horizon = min(horizon, self.open_cluster[0])
        k = len(pend) if final else int(np.searchsorted(pend, horizon))
        cand, self.bank_pending = pend[:k], pend[k:]
        if not len(cand):
            return
        idx = cand - self.buf_start
        ok = (idx >= self.half_n) & (idx + self.half_n < len(self.y_buf))
        cand, idx = cand[ok], idx[ok]
        w = windows_around(self.y_buf, idx, self.half_n)
        blocks = cand // self.block_n
        sigma = self.block_thr_sigma.view()[blocks]
        flags = self.block_flags.view()[blocks]
        thr = np.maximum(self.cfg.threshold_k * sigma, self.cfg.min_peak_uv)
        p2p, dur, phases, lf_p2p, core = potential_features_many(
            self.y_buf, self.lf_buf, idx, self.half_n, self.core_n)
        # not part of a potential over the threshold, compact (not noise-like), no pop
        ok = ((np.abs(w).max(axis=1) <= thr) & (flags == 0) & (core >= self.cfg.min_core_energy_fraction)
              & (lf_p2p <= self.cfg.pop_lf_ratio * p2p))
        if not ok.any():
            return
        new = (cand[ok], p2p[ok], windows_around(self.y_buf, idx[ok], self.shape_n), sigma[ok],
               dur[ok], phases[ok])
        self.bank_asks = tuple(np.concatenate([a, b]) for a, b in zip(self.bank_asks, new, strict=True))

    def _earliest_regular(self) -> int:
        """Sample index before which no over-threshold candidate is undecided."""
        k = self.n_done
        for p in self.unfeatured[:1] + self.burst[:1]:
            k = min(k, p.start)
        if self.open_cluster is not None:
            k = min(k, self.open_cluster[0])
        return min([k, *[f.peak for f in self.ready[:1]], *[c[0] - self.doublet_n for c in self.chain[:1]]])

    def _teach_bank(self, before: int) -> None:
        """Teach the bank the accepted twitches peaking before sample ``before``, in peak order."""
        assert self.bank is not None
        learn = self.bank_learn
        k = 0
        while k < len(learn) and learn[k][0] < before:
            self.bank.learn(*learn[k])
            k += 1
        del learn[:k]

    def _ask_bank(self, until: int | None) -> None:
        """Ask the bank about the waiting sub-threshold discharges peaking before ``until``
        (all when None), which every over-threshold candidate before them has been decided.

        A discharge at peak ``c`` meets the bank as taught the accepted twitches peaking before
        ``c - bank_after_s`` (:meth:`_teach_bank`), whatever the chunking: the regular
        candidates and these discharges meet the bank in one peak order. Found ones wait in
        :attr:`bank_ready` for the rules."""
        assert self.bank is not None
        peaks, p2p, shapes, sigma, dur, phases = self.bank_asks
        if not len(peaks):
            return
        after = self.bank_after_n
        n = len(peaks) if until is None else int(np.searchsorted(peaks, until))
        if n == 0:
            return
        learn = self.bank_learn
        done = 0
        found = np.zeros(n, dtype=bool)
        while done < n:
            # teach the twitches before the next ask's horizon, then ask all up to the next one
            self._teach_bank(int(peaks[done]) - after)
            upto = n if not learn else min(n, int(np.searchsorted(peaks, learn[0][0] + after, side="right")))
            upto = max(upto, done + 1)
            found[done:upto] = self.bank.match(peaks[done:upto], shapes[done:upto], p2p[done:upto])
            done = upto
        for i in np.flatnonzero(found).tolist():
            if peaks[i] - self.bank_last_found <= self.merge_n:  # one discharge cut by a block edge
                continue
            self.bank_last_found = int(peaks[i])
            snr = float(p2p[i] / 2 / sigma[i]) if sigma[i] > 0 else np.inf
            self.bank_ready.append(Fasciculation(int(peaks[i]), float(p2p[i]), float(dur[i]), int(phases[i]),
                                                 snr, False, shapes[i].copy()))
        self.bank_asks = tuple(a[n:] for a in self.bank_asks)

    def _decide_bank(self, final: bool) -> list[tuple[Fasciculation, float]]:
        """The found sub-threshold discharges whose windows are in, through the same rules."""
        due: list[tuple[Fasciculation, float]] = []
        known = self.known_until()
        for f in self.bank_ready:
            if self.shows_provisional and not final and f.shown is None:
                break  # not offered for display yet (take_provisional, before the next take_ready)
            frac = self.activity_fraction(f.peak, final)
            if frac is None or not (final or known > f.peak + self.settle_n):
                break
            due.append((f, frac))
        del self.bank_ready[: len(due)]
        out = []
        dp = self.discharge_peaks
        for f, frac in due:
            # isolated: no potential over the threshold within isolation_ms (all are seen)
            near = bisect.bisect_right(dp, f.peak + self.iso_n) > bisect.bisect_left(dp, f.peak - self.iso_n)
            reason = "train" if near else first_rejection(self.rules, self, f, frac)
            if reason is None:
                out.append((f, frac))
                continue
            if f.shown:
                self.withdrawn.append((f.peak, "bank_" + reason))
            if self.keep_rejections:  # never detected otherwise: logged, not counted
                self.rejection_log.append((f.peak / self.fs_hz, "bank_" + reason))
        return out

    def _feature_small(self, final: bool) -> None:
        """Size and shape of the sub-threshold discharges whose windows are filtered."""
        k0 = self.small_featured
        k1 = len(self.small) if final else int(np.searchsorted(self.small, self.n_done - self.half_n))
        if k1 <= k0:
            return
        idx = self.small[k0:k1] - self.buf_start
        w = windows_around(self.y_buf, idx, self.half_n)
        self.small_p2p = _append(self.small_p2p, w.max(axis=1) - w.min(axis=1))
        self.small_shape = np.concatenate([self.small_shape, windows_around(self.y_buf, idx, self.shape_n)])
        self.small_featured = k1

    def _group(self, p: Potential) -> None:
        if self.burst:
            prev = self.burst[-1]
            if p.peak - prev.peak > self.iso_n:
                self._close_burst()
            elif p.artifact is None and is_after_wave(p, prev, p.peak - prev.peak, self.after_wave_n,
                                                      self.doublet_n, self.unit_lag_n, self.cfg):
                # the previous potential's after-wave (filter ringing), not a discharge: not a
                # rejection of anything (not counted), but logged for inspection
                if self.keep_rejections:
                    self.rejection_log.append((p.peak / self.fs_hz, "after_wave"))
                return
        if not self.burst and self.chain and p.peak - self.chain[-1][0] > self.chain_n:
            self._flush_chain()
        self.burst.append(p)
        if p.artifact is None and p.shape is not None:
            self.discharge_peaks.append(p.peak)
            self.discharge_p2p.append(p.p2p_uv)
            self.discharge_shapes.append(p.shape)

    def _close_burst(self) -> None:
        """Decide a closed burst: potentials whose neighbours are all more than 250 ms away.

        The isolation rule is about one motor unit's inter-discharge intervals (Sleutjes 2016).
        A single surface channel cannot sort units, so "the same unit" is approximated by size:
        a neighbour within ``unit_amplitude_ratio`` of a potential's peak-to-peak may be the same
        unit; a much smaller or larger one is another unit and does not break isolation. A
        burst of fewer than ``train_min_potentials`` is not a train (:meth:`_close_short_burst`).
        """
        burst, self.burst = self.burst, []
        bad = next((p.artifact for p in burst if p.artifact), None)
        if bad:
            self.reject(bad, len(burst), at=[p.peak for p in burst])
            self.chain.append((burst[-1].peak, max(p.p2p_uv for p in burst), None))
            return
        if len(burst) == 1:  # the common case: a lone potential is isolated by definition
            p = burst[0]
            self.chain.append((p.peak, p.p2p_uv, self._fasciculation(p, p, doublet=False)))
            self.chain.sort(key=lambda c: c[0])
            return
        if len(burst) < self.cfg.train_min_potentials:
            self._close_short_burst(burst)
            return
        peaks = np.array([p.peak for p in burst])
        p2p = np.array([p.p2p_uv for p in burst])
        alike = None
        if self.cfg.isolation_same_shape:
            shapes, sigma = [p.shape for p in burst], np.array([p.sigma_uv for p in burst])

            def alike(i: np.ndarray, j: np.ndarray) -> np.ndarray:
                return same_shape_or_unsure_pairs(shapes, p2p, sigma, i, j, self.unit_lag_n, self.cfg)
        n_same, partner = same_unit_neighbours(
            peaks, p2p, self.iso_n, self.cfg.unit_amplitude_ratio, alike=alike)
        used = [False] * len(burst)
        n_same, partner, at = n_same.tolist(), partner.tolist(), peaks.tolist()  # Python scalars
        for i in range(len(burst)):
            if used[i]:
                continue
            j = partner[i]  # -1 (none) reads the last, as the array did; doublet needs j > i
            doublet = (
                n_same[i] == 1 and n_same[j] == 1 and j > i
                and doublet_partner(burst[i], burst[j], at[j] - at[i], self.doublet_n,
                                    self.unit_lag_n, self.cfg)
            )
            if n_same[i] < self.cfg.isolation_min_neighbours or doublet:
                group = [burst[i]] + ([burst[j]] if doublet else [])
                used[i] = True
                if doublet:
                    used[j] = True
                    if self.keep_rejections:  # one twitch with the first: logged for inspection
                        self.rejection_log.append((burst[j].peak / self.fs_hz, "doublet_partner"))
                big = max(group, key=lambda p: p.p2p_uv)
                self.chain.append((group[-1].peak, big.p2p_uv,
                                   self._fasciculation(burst[i], big, doublet)))
        rest = [p for k, p in enumerate(burst) if not used[k]]
        if rest:
            self.reject("train", len(rest), at=[p.peak for p in rest])
            self.chain.append((rest[-1].peak, max(p.p2p_uv for p in rest), None))
        self.chain.sort(key=lambda c: c[0])

    def _close_short_burst(self, burst: list[Potential]) -> None:
        """A burst of fewer than ``train_min_potentials`` potentials is not a train: each
        potential is a candidate twitch, doublets paired (:func:`short_burst_doublets`)."""
        partner = short_burst_doublets(burst, self.doublet_n, self.unit_lag_n, self.cfg)
        second = set(partner[partner >= 0].tolist())
        for i, p in enumerate(burst):
            if i in second:
                if self.keep_rejections:  # one twitch with the first: logged for inspection
                    self.rejection_log.append((p.peak / self.fs_hz, "doublet_partner"))
                continue
            j = int(partner[i])
            group = [p] + ([burst[j]] if j >= 0 else [])
            big = max(group, key=lambda q: q.p2p_uv)
            self.chain.append((group[-1].peak, big.p2p_uv, self._fasciculation(p, big, j >= 0)))
        self.chain.sort(key=lambda c: c[0])

    @staticmethod
    def _fasciculation(first: Potential, big: Potential, doublet: bool) -> Fasciculation:
        """A candidate twitch at ``first``'s peak, sized by the larger potential of a doublet."""
        return Fasciculation(
            peak=first.peak,
            p2p_uv=big.p2p_uv,
            duration_n=first.duration_n,
            phases=first.phases,
            snr=float(big.p2p_uv / 2 / big.sigma_uv) if big.sigma_uv > 0 else np.inf,
            doublet=doublet,
            shape=first.shape,
        )

    def _flush_chain(self) -> None:
        """Decide the isolated discharges of a closed chain: tonic train or fasciculations."""
        chain, self.chain = self.chain, []
        cands = [f for _, _, f in chain if f is not None]
        if self.cfg.train_by_unit:
            tonic = self._unit_trains(chain)
        else:
            tonic = tonic_train_members([a for _, a, _ in chain], [f.p2p_uv for f in cands],
                                        self.cfg, [k for k, _, _ in chain])
        for f, is_tonic in zip(cands, tonic.tolist(), strict=True):
            if is_tonic:
                self.reject_candidate(f, "tonic_train")
            else:
                self.ready.append(f)

    def _unit_trains(self, chain: list[tuple[int, float, Fasciculation | None]]) -> np.ndarray:
        """``tonic_train`` by unit (:func:`unit_train_members`) for the candidates of a closed
        chain, in chain order. A candidate is timed at its (first) discharge, a rejected train
        at its last."""
        peaks = np.array([c[0] if c[2] is None else c[2].peak for c in chain], dtype=np.int64)
        order = np.argsort(peaks, kind="stable")
        fs = [chain[k][2] for k in order.tolist()]
        clear = np.array([f is not None and 2.0 * f.snr >= 2.0 * self.cfg.isolation_shape_min_snr
                          for f in fs])
        rows = np.array([k for k, f in enumerate(fs) if f is not None], dtype=np.int64)
        tonic_sorted = unit_train_members(
            peaks[order], np.array([chain[k][1] for k in order.tolist()]),
            [None if f is None else f.shape for f in fs], clear, rows, self.unit_n,
            self.unit_lag_n, self.fs_hz, self.cfg)
        # back to chain order of the candidates
        tonic_of = {int(order[r]): bool(t) for r, t in zip(rows.tolist(), tonic_sorted.tolist(), strict=True)}
        return np.array([tonic_of[k] for k, c in enumerate(chain) if c[2] is not None], dtype=bool)

    def reject_candidate(self, f: Fasciculation, reason: str) -> None:
        """Reject an isolated discharge; note it as withdrawn if it was shown provisionally."""
        self.reject(reason, at=[f.peak])
        if f.shown:
            self.withdrawn.append((f.peak, reason))

    def reject(self, reason: str, n: int = 1, at: list[int] | None = None) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + n
        if self.keep_rejections and at:
            self.rejection_log.extend((i / self.fs_hz, reason) for i in at)

    def activity_fraction(self, peak: int, final: bool) -> float | None:
        """Share of envelope sub-blocks 'on' within ±activity_window/2 of ``peak``.

        None when the window has not been processed yet (and the stream has not ended).
        """
        sub = self.sub_of(peak)
        lo, hi = sub - self.act_half_subs, sub + self.act_half_subs + 1
        n_subs = (self.n_done // self.block_n) * self.subs_per_block
        if hi > n_subs and not final:
            return None
        lo_i, hi_i = max(lo, self.env_start) - self.env_start, min(hi, n_subs) - self.env_start
        seg = self.on_buf[lo_i:hi_i]
        return np.count_nonzero(seg) / len(seg) if len(seg) else 0.0  # = seg.mean(), bit for bit

    def _earliest_pending(self) -> int:
        """Sample index before which no undecided potential starts (n_done when none)."""
        k = self.n_done
        for p in self.unfeatured[:1] + self.burst[:1]:
            k = min(k, p.start)
        if self.open_cluster is not None:
            k = min(k, self.open_cluster[0])
        # a chain entry is keyed by its group's last peak; a doublet's first potential sits before
        k = min([k, *[f.peak for f in self.ready[:1]], *[c[0] - self.doublet_n for c in self.chain[:1]]])
        if self.bank is not None:
            k = min([k, self._bank_waiting(), *[f.peak for f, _ in self.bank_hold[:1]]])
        return k

    def earliest_pending_s(self) -> float:
        """Time of the earliest potential or activity span not yet decided (or now)."""
        t = self._earliest_pending() / self.fs_hz
        if self.span_open:
            t = min(t, self.sub_time_s(self.span_start))
        return t

    def before_activity(self, peak: int) -> bool:
        """Does sustained activity (``post_activity_min_s`` of 'on' sub-blocks) start within
        ``pre_activity_s`` after this potential? Units are recruited before the envelope rises."""
        if self.cfg.pre_activity_s <= 0:
            return False
        env_ms = self.cfg.envelope_ms
        sub = self.sub_of(peak)
        lo = sub + self.act_half_subs + 1  # the activity window already covers the nearer part
        hi = sub + round(self.cfg.pre_activity_s * 1000 / env_ms) + 1
        lo_i = max(lo, self.env_start) - self.env_start
        seg = self.on_buf[lo_i: max(hi + self.sustained_subs, self.env_start) - self.env_start]
        return has_run(seg, self.sustained_subs, start_before=hi - lo)

    def known_until(self) -> int:
        """Every discharge peaking before this sample index has been seen."""
        k = self.n_done
        if self.unfeatured:
            k = min(k, self.unfeatured[0].peak)
        if self.open_cluster is not None:
            k = min(k, self.open_cluster[0])
        return k

    def unit_repeats(self, f: Fasciculation, look_ahead: bool | None = None,
                     min_corr: float | None = None) -> int:
        """How many other discharges of the same unit (same shape, similar size) fire within
        ``unit_window_s`` of this one."""
        return len(self.unit_discharges(f, look_ahead, min_corr))

    def faint_unit_corr(self, f: Fasciculation) -> float:
        """The correlation at which ``faint_repeating_unit`` matches ``f``'s unit: the loose
        ``faint_unit_correlation``, or ``bank_known_unit_correlation`` when the template bank
        knows ``f``'s unit (its shape is then known better than its own noisy waveform)."""
        if self.bank is not None and f.shape is not None and len(self.bank) and self.bank.match(
                np.array([f.peak]), f.shape[None, :], np.array([f.p2p_uv]))[0]:
            return self.cfg.bank_known_unit_correlation
        return self.cfg.faint_unit_correlation

    def unit_firing_rejects(self, f: Fasciculation, look_ahead: bool | None = None) -> bool:
        """Does the unit-firing rule in ``cfg.candidate_rules`` reject ``f`` (looking ahead or
        not)? For the live display, which looks back only."""
        names = self.cfg.candidate_rules
        if "fast_firing" in names and is_fast_firing(
                self.unit_discharges(f, look_ahead), f.peak, self.fs_hz, self.cfg):
            return True
        if "regular_firing" in names and is_regular_firing(
                [f.peak, *self.unit_discharges(f, look_ahead)], self.fs_hz, self.cfg):
            return True
        # the rule's own correlation: with the bank, bank_known_unit_correlation when the bank
        # as it stands knows f's unit (as the settled rule will, mostly)
        faint_corr = self.faint_unit_corr(f)
        if "faint_repeating_unit" in names and f.snr < self.cfg.isolation_shape_min_snr and (
                self.unit_repeats(f, look_ahead, faint_corr) >= self.cfg.unit_min_repeats):
            return True
        return "repeating_unit" in names and self.unit_repeats(f, look_ahead) >= self.cfg.unit_min_repeats

    def unit_discharges(self, f: Fasciculation, look_ahead: bool | None = None,
                        min_corr: float | None = None) -> list[int]:
        """Peaks (sample indices) of the other discharges of ``f``'s unit (same shape,
        similar size, over or under the threshold, doublets excepted) within
        ``unit_window_s`` of it, in no particular order."""
        if f.shape is None:
            return []
        corr = self.cfg.unit_correlation if min_corr is None else min_corr
        ahead = self.cfg.unit_look_ahead if look_ahead is None else look_ahead
        found = self._unit_found.get((id(f), ahead, corr))
        if found is not None:
            return list(found)
        peaks, sims, exact = self._unit_candidates(f, ahead)  # (keeps f alive: its id is its own)
        found = [k for k, same in zip(peaks, at_least_similar(sims, corr, exact).tolist(), strict=True)
                 if same] if peaks else []
        self._unit_found[(id(f), ahead, corr)] = found
        return list(found)

    def _unit_candidates(self, f: Fasciculation, ahead: bool
                         ) -> tuple[list[int], FloatArray, Callable[[int], float]]:
        """The discharges that may be ``f``'s unit by time and size: within ``unit_window_s``
        of it (before only, unless ``ahead``), not its doublet partner, p2p within
        ``unit_amplitude_ratio`` of its own. Returns their peaks (those over the threshold
        first, each part in peak order), their shape similarity to ``f`` (computed for all at
        once, to ~1e-14) and the exact :func:`shape_similarity` of the k-th, for
        :func:`at_least_similar`. Memoised: the unit-firing rules ask it of one candidate
        up to three times."""
        key = (id(f), ahead)
        hit = self._unit_memo.get(key)
        if hit is not None:
            return hit[1]
        assert f.shape is not None
        r = self.cfg.unit_amplitude_ratio
        first, last = f.peak - self.unit_n, f.peak + (self.unit_n if ahead else 0)
        dp, dsz = self.discharge_peaks, self.discharge_p2p
        peaks: list[int] = []
        rows: list[FloatArray] = []
        for k in range(bisect.bisect_left(dp, first), bisect.bisect_right(dp, last)):
            if abs(dp[k] - f.peak) <= self.doublet_n or not (f.p2p_uv / r <= dsz[k] <= f.p2p_uv * r):
                continue
            peaks.append(dp[k])
            rows.append(self.discharge_shapes[k])
        # the same unit firing on under the detection threshold (sub-threshold discharges)
        lo, hi = np.searchsorted(self.small[: self.small_featured], [first, last + 1]).tolist()
        if hi > lo:
            d = np.abs(self.small[lo:hi] - f.peak)
            p2p = self.small_p2p[lo:hi]
            ok = np.flatnonzero((d > self.doublet_n) & (p2p >= f.p2p_uv / r) & (p2p <= f.p2p_uv * r))
            peaks += self.small[lo + ok].tolist()
            rows.extend(self.small_shape[lo + ok])
        a, lag = f.shape, self.unit_lag_n

        def exact(k: int) -> float:
            return shape_similarity(a, rows[k], lag)

        if len(rows) > 2 and all(len(b) == len(a) for b in rows):
            sims = shape_similarity_many(a, np.array(rows), lag)
        else:  # none, one or two (most candidates: one by one is quicker), or a cut window
            sims = np.array([exact(k) for k in range(len(rows))])
        out = (peaks, sims, exact)
        self._unit_memo[key] = (f, out)  # f kept alive: its id stays its own
        return out

    def _match_units(self, fs: list[Fasciculation], ahead: bool) -> None:
        """:meth:`_unit_candidates` of many candidates at once, into its memo: the same
        peaks, similarities (to ~1e-14) and exact similarities, from one vectorised pass per
        :data:`MATCH_CHUNK` candidates (pairs formed by searchsorted, as
        :func:`same_unit_neighbours` does) instead of one small pass each. A waveform cut by
        the buffer's edge sends its chunk through :meth:`_unit_candidates` one by one."""
        w = 2 * self.shape_n + 1
        for c0 in range(0, len(fs), MATCH_CHUNK):
            chunk = [f for f in fs[c0: c0 + MATCH_CHUNK]
                     if f.shape is not None and (id(f), ahead) not in self._unit_memo]
            if chunk:
                self._match_chunk(chunk, ahead, w)

    def _match_chunk(self, fs: list[Fasciculation], ahead: bool, w: int) -> None:
        """One chunk of :meth:`_match_units` (``w``: the whole waveform's length)."""
        peak = np.array([f.peak for f in fs], dtype=np.int64)
        size = np.array([f.p2p_uv for f in fs])
        r, lag = self.cfg.unit_amplitude_ratio, self.unit_lag_n
        first, last = peak - self.unit_n, peak + (self.unit_n if ahead else 0)
        dp = np.array(self.discharge_peaks, dtype=np.int64)
        lo, hi = np.searchsorted(dp, first), np.searchsorted(dp, last, side="right")
        k0, k1 = (int(lo.min()), int(hi.max())) if len(dp) else (0, 0)
        if (any(len(f.shape) != w for f in fs)  # type: ignore[arg-type]
                or any(len(b) != w for b in self.discharge_shapes[k0:k1])):
            for f in fs:
                self._unit_candidates(f, ahead)
            return
        small = self.small[: self.small_featured]
        s_lo, s_hi = np.searchsorted(small, first), np.searchsorted(small, last + 1)

        def pairs(lo: np.ndarray, hi: np.ndarray, at: np.ndarray, sz: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
            """(candidate, item) of the items lo..hi-1 of each candidate that may be its unit
            by time and size, candidate by candidate, items in order."""
            n = np.maximum(hi - lo, 0)
            c = np.repeat(np.arange(len(fs)), n)
            k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n - lo, n)
            keep = ((np.abs(at[k] - peak[c]) > self.doublet_n)
                    & (sz[k] >= size[c] / r) & (sz[k] <= size[c] * r))
            return c[keep], k[keep]

        oc, ok = pairs(lo, hi, dp, np.array(self.discharge_p2p))
        sc, sk = pairs(s_lo, s_hi, small, self.small_p2p)
        shapes_f = np.array([f.shape for f in fs])
        over = np.array(self.discharge_shapes[k0:k1]).reshape(k1 - k0, w)
        o_sims = shape_similarity_pairs(shapes_f[oc], over[ok - k0], lag)
        s_sims = shape_similarity_pairs(shapes_f[sc], self.small_shape[sk], lag)
        o_at = np.searchsorted(oc, np.arange(len(fs) + 1)).tolist()  # pairs are by candidate
        s_at = np.searchsorted(sc, np.arange(len(fs) + 1)).tolist()
        o_peaks, s_peaks = dp[ok].tolist(), small[sk].tolist()
        for i, f in enumerate(fs):
            oa, ob, sa, sb = o_at[i], o_at[i + 1], s_at[i], s_at[i + 1]
            rows_o, rows_s = ok[oa:ob] - k0, sk[sa:sb]

            def exact(k: int, a: FloatArray = shapes_f[i], rows_o: np.ndarray = rows_o,
                      rows_s: np.ndarray = rows_s) -> float:
                b = over[rows_o[k]] if k < len(rows_o) else self.small_shape[rows_s[k - len(rows_o)]]
                return shape_similarity(a, b, lag)

            out = (o_peaks[oa:ob] + s_peaks[sa:sb], np.concatenate([o_sims[oa:ob], s_sims[sa:sb]]), exact)
            self._unit_memo[(id(f), ahead)] = (f, out)

    def _count_neighbours(self, peaks: np.ndarray) -> None:
        """:meth:`small_around` and the over-threshold part of :meth:`discharges_around` for
        many peaks at once (:func:`count_near_many`), into their memo."""
        small = count_near_many(self.small[: self.small_featured], peaks, self.busy_n, self.busy_gap_n)
        over = count_near_many(np.array(self.discharge_peaks, dtype=np.int64), peaks, self.busy_n,
                               self.busy_gap_n)
        self._near_memo.update(zip(peaks.tolist(), zip(small.tolist(), over.tolist(), strict=True),
                                   strict=True))

    def small_around(self, peak: int) -> int:
        """Sub-threshold discharges within ``busy_window_s`` of ``peak`` (but over 100 ms away)."""
        hit = self._near_memo.get(peak)
        if hit is not None:
            return hit[0]
        return count_near(self.small[: self.small_featured], peak, self.busy_n, self.busy_gap_n)

    def discharges_around(self, peak: int) -> int:
        """Discharges of any unit, over the threshold or under it, within ``busy_window_s`` of
        ``peak`` (but over 100 ms away)."""
        hit = self._near_memo.get(peak)
        if hit is not None:
            return hit[1] + hit[0]
        dp = self.discharge_peaks
        lo = bisect.bisect_left(dp, peak - self.busy_n)
        hi = bisect.bisect_right(dp, peak + self.busy_n)
        over = 0
        if hi > lo:  # those in the window less those within busy_gap_n (peaks are sorted)
            g = min(self.busy_gap_n, self.busy_n)
            near = bisect.bisect_right(dp, peak + g) - bisect.bisect_left(dp, peak - g) if g >= 0 else 0
            over = hi - lo - near
        return over + self.small_around(peak)

    def sub_of(self, i: int) -> int:
        """Envelope sub-block holding sample ``i``."""
        return (i // self.block_n) * self.subs_per_block + min((i % self.block_n) // self.sub_n, self.subs_per_block - 1)

    def after_activity(self, peak: int) -> bool:
        """Was there sustained activity (a run of 'on' sub-blocks of at least
        ``post_activity_min_s``) ending within ``post_activity_s`` before this potential?"""
        env_ms = self.cfg.envelope_ms
        sub = self.sub_of(peak)
        lo = sub - round(self.cfg.post_activity_s * 1000 / env_ms)
        hi = sub - self.act_half_subs  # the activity window already covers the nearer part
        lo_i, hi_i = max(lo, self.env_start) - self.env_start, max(hi, self.env_start) - self.env_start
        return has_run(self.on_buf[lo_i:hi_i], self.sustained_subs)

    def take_ready(self, final: bool) -> list[tuple[Fasciculation, float]]:
        """Isolated potentials whose activity window is complete, with their activity fraction."""
        due: list[tuple[Fasciculation, float]] = []  # rejecting one changes none of these tests
        known = self.known_until()
        for f in self.ready:
            frac = self.activity_fraction(f.peak, final)
            if frac is None or not (final or known > f.peak + self.settle_n):
                break
            due.append((f, frac))
        del self.ready[: len(due)]
        if self.uses_units and due:  # the unit-firing rules' shape comparisons, all at once
            self._match_units([f for f, _ in due], self.cfg.unit_look_ahead)
        if self.uses_busy and due:  # and the busy-window rules' neighbour counts
            self._count_neighbours(np.array([f.peak for f, _ in due], dtype=np.int64))
        out = []
        for f, frac in due:
            if self.bank is not None:  # the bank as it stood at f: asked and taught in peak order
                self._ask_bank(f.peak)
                self._teach_bank(f.peak - self.bank_after_n)
            reason = first_rejection(self.rules, self, f, frac)
            if reason is not None:
                self.reject_candidate(f, reason)
            else:
                out.append((f, frac))
                if self.bank is not None and f.shape is not None and len(f.shape) == 2 * self.shape_n + 1:
                    self.bank_learn.append((f.peak, f.shape, f.p2p_uv))
        if self.bank is not None:
            out = self._with_bank(out, final)
        self._trim()
        return out

    def _with_bank(self, out: list[tuple[Fasciculation, float]], final: bool
                   ) -> list[tuple[Fasciculation, float]]:
        """Teach the bank the accepted twitches, ask it, decide what it found, and release
        the twitches of both kinds in peak order (those no waiting discharge can precede)."""
        self._ask_bank(None if final else self._earliest_regular())
        found = self._decide_bank(final)
        hold = sorted(self.bank_hold + out + found, key=lambda q: q[0].peak)
        first = self._bank_waiting()
        k = len(hold) if final else bisect.bisect_left(hold, first, key=lambda q: q[0].peak)
        self.bank_hold = hold[k:]
        return hold[:k]

    def _bank_waiting(self) -> int:
        """Sample index before which the bank has nothing left to find (n_done when idle)."""
        k = self.n_done
        if len(self.bank_pending):
            k = min(k, int(self.bank_pending[0]))
        if len(self.bank_asks[0]):
            k = min(k, int(self.bank_asks[0][0]))
        if self.bank_ready:
            k = min(k, self.bank_ready[0].peak)
        return k

    def take_provisional(self) -> list[Fasciculation]:
        """Isolated discharges that pass every rule looking back, before the rules that look
        ahead (a unit firing again, a tonic chain, activity starting) have settled them.

        For the live display only: each is returned once, as soon as its activity window is
        in; later it is either returned by :meth:`take_ready` (same peak) or listed in
        :attr:`withdrawn`. Which discharges are shown does not depend on the chunking.
        The template bank's finds (cfg.template_bank) are offered the same way, and wait
        for this look before they are decided (:attr:`shows_provisional`). With the bank,
        the faint-unit check reads the bank as it stands, which may depend on the chunking
        (what is counted does not).
        """
        self.shows_provisional = True
        out = []
        cands = self.ready + [f for _, _, f in self.chain if f is not None]
        dp = self.discharge_peaks
        for bank, group in ((False, cands), (True, self.bank_ready)):
            for f in group:
                if f.shown is not None:
                    continue
                frac = self.activity_fraction(f.peak, final=False)
                if frac is None:
                    continue
                # a bank find (the bank is asked only once every potential before it is
                # decided): also no potential over the threshold within isolation_ms before it
                f.shown = not ((bank and bisect.bisect_left(dp, f.peak) > bisect.bisect_left(dp, f.peak - self.iso_n))
                               or in_voluntary_activity(frac, self.cfg) or self.after_activity(f.peak)
                               or self.unit_firing_rejects(f, look_ahead=False))
                if f.shown:
                    out.append(f)
        out.sort(key=lambda f: f.peak)  # the bank's finds among the others
        return out

    def take_spans(self) -> list[Span]:
        spans, self.closed_spans = self.closed_spans, []
        return spans

    # ------------------------------------------------------------------ bookkeeping
    def _trim(self) -> None:
        """Drop buffered samples no pending decision can need."""
        self._unit_memo, self._unit_found, self._near_memo = {}, {}, {}  # discharges may change
        keep_from = self.n_done - (self.iso_n + self.half_n + self.merge_n + self.block_n)
        for p in self.unfeatured[:1] + self.burst[:1]:
            keep_from = min(keep_from, p.start - self.half_n)
        if self.open_cluster is not None:
            keep_from = min(keep_from, self.open_cluster[0] - self.half_n)
        if self.small_featured < len(self.small):
            keep_from = min(keep_from, int(self.small[self.small_featured]) - self.half_n)
        if len(self.bank_pending):
            keep_from = min(keep_from, int(self.bank_pending[0]) - self.half_n)
        keep_from = max(keep_from, self.buf_start)
        cut = keep_from - self.buf_start
        if cut > 4 * self.block_n:
            self.y_buf = self.y_buf[cut:].copy()
            self.lf_buf = self.lf_buf[cut:].copy()
            self.buf_start = keep_from
        # envelope: keep what activity windows of pending potentials need
        first_peak = self._earliest_pending()
        oldest = first_peak - self.unit_n - 1
        gone = bisect.bisect_left(self.discharge_peaks, oldest)
        if gone:
            del self.discharge_peaks[:gone], self.discharge_p2p[:gone], self.discharge_shapes[:gone]
        k = min(int(np.searchsorted(self.small, first_peak - max(self.busy_n, self.unit_n) - 1)),
                self.small_featured)
        if k > 1024:
            self.small = self.small[k:].copy()
            self.small_p2p = self.small_p2p[k:].copy()
            self.small_shape = self.small_shape[k:].copy()
            self.small_featured -= k
        keep_sub = self.sub_of(first_peak) - round(self.cfg.post_activity_s * 1000 / self.cfg.envelope_ms) - 2
        cut_s = keep_sub - self.env_start
        if cut_s > 8 * self.subs_per_block:
            self.env_buf = self.env_buf[cut_s:].copy()
            self.on_buf = self.on_buf[cut_s:].copy()
            self.env_start = keep_sub

    def records(self) -> tuple[FloatArray, FloatArray, np.ndarray]:
        """Per-block σ, threshold σ and flags for the whole recording."""
        return self.block_sigma.view(), self.block_thr_sigma.view(), self.block_flags.view()

    def low_level_firing_blocks(self) -> np.ndarray:
        """Per block: is it inside low-level firing (the rule of :meth:`small_around`: at least
        ``busy_min_discharges`` sub-threshold discharges within ``busy_window_s``)?"""
        half = round(self.cfg.busy_window_s * self.fs_hz / self.block_n)
        return busy_blocks(self.block_small.view(), half, self.cfg.busy_min_discharges)
