"""Detector settings, each tied to its source in ``docs/detection.md``.

All durations in seconds or milliseconds, all amplitudes in µV or mg, as the names say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

MainsSetting = Literal["auto", "off", 50, 60]


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of the one detector that batch, replay and live share.

    EMG
    ---
    emg_band_hz : SENIAM/ISEK 20-450 Hz band; the upper edge is kept below 0.45·fs.
    emg_band_order : Butterworth order per band edge (2 = a 4th-order band-pass in two SOS
        sections): higher orders ring for 30+ ms after a potential, which a 5 σ detector
        would count again.
    mains : ``"auto"`` picks 50 or 60 Hz from the first ``mains_probe_s`` of EMG (or none when
        neither stands out), and notches those of its harmonics that stand out in the same
        window; ``50``/``60`` force one (every harmonic notched); ``"off"`` disables the notches.
    block_s : the detector works in fixed blocks aligned to the first sample, which is what makes
        any chunking give the same events. Also the noise-estimate resolution. A potential is
        seen only when its block is complete, so the block adds up to its length to the live
        delay: 0.1 s keeps a twitch on screen within ~0.4 s of the packet that carried it
        (the 250 ms isolation and activity windows are the rest); 0.25 s blocks cost 0.15 s
        more and gave 0.14 fewer false positives per minute on bench/detection.py.
    noise_history_s, noise_quantile : the threshold uses the ``noise_quantile`` of the per-block
        robust σ (median|x|/0.6745, Quiroga 2004) over the previous ``noise_history_s``: the quiet
        parts of a rolling window, so activity does not raise it (SPiQE's noise-responsive ATinc).
        The level is updated every ``noise_update_s``.
    threshold_k : detection threshold in units of σ (Quiroga: 4-5 σ of the typical noise, docs/evidence.md §S6.2;
        6 here because σ is taken from the quietest quarter of blocks, which sits below the typical level).
    min_peak_uv : absolute floor under the threshold.
    merge_ms : crossings closer than this form one potential (peak cluster, 20-60 ms).
    core_ms, min_core_energy_fraction : a motor-unit potential is a compact 5-15 ms wave
        (needle FP 12.6 ± 4.4 ms; surface MUAP core ≈ 8 ms, docs/evidence.md §S2.1), so most of
        the energy of the ±``feature_half_window_ms`` window lies inside some 2·``core_ms``
        stretch; threshold crossings of noise bursts spread theirs (on the sample data most
        background crossings score 0.25-0.7, injected potentials 0.75-1.0).
    post_activity_s, post_activity_min_s : units keep firing for a moment as a muscle relaxes;
        a potential within ``post_activity_s`` after at least ``post_activity_min_s`` of
        sustained envelope activity is that firing, not a fasciculation (AVID's lesson that
        voluntary activity must be excluded before counting). Likewise units recruited in the
        ``pre_activity_s`` before sustained activity starts.
    isolation_ms : Sleutjes 2016: a discharge is isolated when the interval before and after is
        longer than 250 ms; potentials in denser trains are tonic/voluntary firing.
    unit_amplitude_ratio : the isolation rule concerns one unit's discharges; with one surface
        channel, a neighbour more than this factor larger or smaller is another unit.
    unit_window_s, unit_min_repeats, unit_correlation : fasciculations are sporadic; a unit that
        fires again (same shape: waveform correlation >= ``unit_correlation``, size within
        ``unit_amplitude_ratio``) ``unit_min_repeats`` or more times within ``unit_window_s`` is
        firing tonically or voluntarily (template matching as in Kleine 2012 and
        Jahanmiri-Nezhad 2014). Doublets (within ``doublet_ms``) are not repeats. A loose
        correlation (0.6) because small potentials in noise correlate poorly with themselves;
        chosen on bench/detection.py's real motor-unit shapes (EMG F1 0.70 -> 0.76, false
        positives 3.0 -> 1.9 per minute, sensitivity unchanged).
    unit_look_ahead : look for repeats after the potential too (``unit_window_s`` of delay
        before a twitch is reported live); False looks back only, which reports sooner and
        misses the first discharges of a tonic unit.
    doublet_ms : Kleine 2012: the same unit firing twice within 10-110 ms (F-wave-like pairs)
        counts as one fasciculation marked ``doublet``. A second potential in that window smaller
        than ``doublet_min_ratio`` of the first is the first one's after-wave, not a discharge.
    after_wave_ms, doublet_correlation : shape-aware grouping (``rules/grouping.py``, issue
        #11): past ``after_wave_ms`` (the filter's ringing and a potential's late phases) a
        smaller wave is an after-wave only when it has the first potential's shape, and a
        same-size neighbour within ``doublet_ms`` is a doublet partner only when the shapes
        correlate at ``doublet_correlation`` or more (faint pairs: size alone). Another
        unit's twitch 40-110 ms after a potential is then its own twitch.
    unit_shape_ms, unit_lag_ms : a discharge's waveform is kept over ±``unit_shape_ms`` and
        compared at lags up to ±``unit_lag_ms``: a biphasic unit with phases of equal size is
        centred now on one phase, now on the other (3-6 ms apart), which a ±2 ms lag over
        ±8 ms read as two units (correlation ≈ 0 instead of 0.99 on bench/detection.py's
        tonic trains).
    candidate_rules : the rules applied to each isolated discharge, in order; the first that
        holds names the rejection (``pipeline/detect/rules``, docs/detection.md). Known:
        voluntary_activity, after_activity, before_activity, fast_firing, regular_firing,
        faint_repeating_unit, repeating_unit (the rule before issue #11), low_level_firing,
        dense_firing.
    fast_window_s, fast_min_rate_hz : ``fast_firing``: the unit fires at ``fast_min_rate_hz``
        or more within ±``fast_window_s`` (half its discharges matched suffice). Tonic and
        low-level voluntary firing is >= ~5 Hz; fasciculations recur at any rate, but not that
        fast for long. ``fast_window_s`` must not exceed ``unit_window_s``.
    regular_min_intervals, regular_cv_max, regular_min_rate_hz : ``regular_firing``: the
        unit's discharges within ``unit_window_s`` make at least ``regular_min_intervals``
        intervals whose CV is at most ``regular_cv_max`` at a mean rate of at least
        ``regular_min_rate_hz``. Tonic firing has ISI CV 0.1-0.3; a fasciculating unit is
        Poisson-like (CV ≈ 1; with 3 intervals one in 20 reads <= 0.25).
    faint_unit_correlation : ``faint_repeating_unit``: a discharge under
        ``isolation_shape_min_snr`` whose unit, matched at this looser correlation, fires
        ``unit_min_repeats`` more times within ``unit_window_s``. Real resting backgrounds hold
        small units firing on near the threshold; at that SNR shapes are too noisy to measure
        a unit's regularity. On bench/detection.py it halves the false positives on EMG
        recordings (53 -> 27 in 63 min) at the cost of 50 twitches, most in the faint
        recurring-unit case (sensitivity 0.67 -> 0.38): faint recurring units and small real
        units firing on cannot be told apart there (issue #11).
    isolation_same_shape, isolation_shape_min_snr, isolation_min_neighbours : the isolation
        rule rejects a discharge with ``isolation_min_neighbours`` or more same-unit
        neighbours within ``isolation_ms``; "same unit" is a similar size and, when
        ``isolation_same_shape`` and both potentials are at least 2·``isolation_shape_min_snr``
        σ peak to peak, a similar shape too. One neighbour 150 ms away is irregular recurrence
        (a storm), not a train: with 1 the recurring-unit storms of bench/detection.py lost
        60 % of their twitches to this rule.
    train_min_potentials : a burst (potentials each within ``isolation_ms`` of the last) of
        fewer potentials than this is not a train: tonic and voluntary firing go on for
        seconds, while in a storm a few units' twitches cluster by chance (at 90-120 per
        minute, bursts of 3-4 within half a second). Its potentials are candidates, each
        its own twitch unless it is a doublet's second discharge
        (``rules/grouping.short_burst_doublets``); the rules on isolated discharges
        (``fast_firing``, ``dense_firing`` ...) still judge them. 0: every burst is judged
        by ``isolation_min_neighbours`` (before issue #11).
    dense_min_discharges : ``dense_firing``: this many discharges of any unit, over or under the
        threshold, within ``busy_window_s`` on either side (more than 100 ms away) mean the
        muscle is firing at ~5 per second: not at rest. A storm of 120/min averages 2 per second.
    train_cv_max : the tonic-train rule needs its chain's same-size intervals to be regular
        (CV at most this); an irregular chain is a storm of a few units (``inf``: any chain).
    train_by_unit : ``tonic_train`` asks the candidate's own unit (same size and, above the
        noise, same shape, within ``unit_window_s``) for that regularity
        (``rules/unit_trains.py``, issue #11); False: the chain's discharges of its size, as
        before issue #11.
    train_min_rate_hz, train_unit_correlation : by unit, the regular intervals must also be
        fast (mean rate at least ``train_min_rate_hz``: a short stretch of a storm's chain
        reads regular by chance, a tonic unit escaping the 250 ms isolation rule fires at
        3-4 Hz; slower regular units are ``regular_firing``'s), and "the same shape" is a
        loose ``train_unit_correlation`` (a real unit firing among others changes shape as
        their potentials overlap it).
    template_bank, bank_k, bank_match_corr, bank_merge_corr, bank_amplitude_ratio,
    bank_max_units, bank_stale_s : the online template bank (``pipeline/detect/templates.py``,
        issue #11): every confident potential (over the threshold, not an artifact, not
        noise-like) teaches the bank its unit's waveform (joined to a unit at
        ``bank_merge_corr``; at most ``bank_max_units`` units, one unseen for ``bank_stale_s``
        dropped); a later sub-threshold discharge (peak over ``bank_k`` σ, nothing over the
        threshold within ±``feature_half_window_ms``) whose waveform correlates at
        ``bank_match_corr`` or more with a known unit, at a size within
        ``bank_amplitude_ratio`` of that unit's range, becomes a potential like the others
        and meets the same grouping and rules. Off by default (docs/detection.md).
    busy_k, busy_window_s, busy_min_discharges : a fasciculation is a discharge on a silent
        baseline (a relaxed muscle, Sleutjes 2016; Mills 2010). Low-level tonic firing is a
        stream of small discharges, most of them under the detection threshold: a potential
        with ``busy_min_discharges`` or more sub-threshold discharges (peaks between
        ``busy_k`` σ and the detection threshold, more than 100 ms away) within
        ``busy_window_s`` on either side is part of that firing. On Gaussian noise a 4.5 σ
        crossing comes about once every 150 s at 1 kHz, so five in 2 s is never noise.
        The numbers were set on bench/detection.py (seed 20261125) and checked on other seeds.
    train_gap_ms, train_min_groups, train_amplitude_ratio : tonic firing at 1.2-4 Hz escapes the
        250 ms isolation rule; ``train_min_groups`` or more discharges each within
        ``train_gap_ms`` of the last, of similar size (within ``train_amplitude_ratio`` of the
        train's median: one unit firing regularly), are a tonic train (docs/evidence.md §S6.4c;
        BioSPPy's resting file fires tonically at 0.1-0.3 s intervals). Sporadic twitches of
        different units close together are kept.
    max_noise_uv : blocks whose robust σ exceeds this (and are not muscle activity) are
        excluded as too noisy (SPiQE's amplitude exclusion threshold idea, lowered for a
        wearable).
    max_peak_to_peak_uv : larger single potentials are artifacts (no surface FP is this big).
    pop_lf_ratio : electrode pops and motion artifacts carry most of their energy below 15 Hz,
        a surface MUAP almost none: a potential whose 1-15 Hz deflection exceeds this share of
        its 20-450 Hz peak-to-peak is rejected as an artifact.
    flat_ms : runs of identical samples this long mean saturation or signal loss.
    quantised_flat_steps, flat_clip_range_uv : a coarsely quantised signal (a BITalino's 10-bit
        EMG: one step ≈ 3.19 µV over ~1.2 µV of resting noise) holds one code for tens of ms
        at rest. Where a block's noise σ is under ``quantised_flat_steps`` ADC steps (the step
        is read from the samples: their smallest difference, when all differences are whole
        multiples of it), a flat run means clipping or a dead channel only when it fills the
        block or sits at the block's highest or lowest value while the block spans at least
        ``flat_clip_range_uv``. The noise σ there is never taken under the quantisation
        noise, step/√12 (docs/detection.md, "Quantised signals").
    activity_on_uv, activity_on_k, activity_off_uv : AASM/WASM leg-movement rules: onset 8 µV
        above resting EMG, offset when within 2 µV of rest for 0.5 s (envelope = 50 ms RMS).
        Over a resting level above ``activity_on_uv / activity_on_k`` the onset asks
        ``activity_on_k`` × rest instead (a poor contact's noise swings further). It was 3
        (an onset ≈ 13.5 µV on BioSPPy ``emg_1``'s ~3.4 µV of rest), which missed faint bursts
        the AASM rule keeps;
        1, 2 and 0 gave the same figures on bench/limb_movements.py and bench/detection.py
        (docs/bench.md §4), and 1 keeps the AASM 8 µV up to 8 µV of rest.
    activity_window_ms, activity_fraction : a potential sits inside voluntary activity when the
        envelope is "on" for this fraction of the window around it.
    min_activity_s, limb_movement_max_s : spans of 0.5-10 s are limb movements (AASM LM
        duration); longer involuntary spans without foot movement are cramps.
    min_span_on_fraction : a span counts as activity only when the envelope is 'on' for at
        least this share of it: two twitches 0.4 s apart are not a movement.
    span_ringing_free : measure activity spans (limb movements, cramps, active time) on the
        smaller of the notched envelope and the un-notched one less the resting hum's power,
        sub-block by sub-block
        (:func:`toetwitch.pipeline.detect.envelope.ringing_free_envelope`): the mains notches
        ring for ~0.2 s after a burst, which stretched 0.2-0.3 s bursts into 0.55-0.75 s
        "limb movements" (bench/limb_movements.py: all 7 of its false positives; docs/bench.md
        §4). The twitch rules keep the notched envelope. No effect without notches.
    hum_update_s : how often the resting hum's power (the ringing-free envelope's reference, a
        rolling low quantile over the noise window) is updated, in s; mains hum is steady over
        tens of seconds, and updating it as often as the noise level cost as much again.

    Accelerometer
    -------------
    acc_band_hz : gravity/posture removal and twitch band (MMG 5-100 Hz reviews; lowered to 2 Hz
        because a toe twitch is a slower whole-segment movement, capped at 0.45·fs).
    acc_threshold_k, acc_min_mg : transient threshold over the quiet magnitude level.
    acc_merge_ms : samples above threshold within this form one transient.
    acc_move_mg, acc_move_s : sustained movement (envelope above ``acc_move_mg`` for
        ``acc_move_s``) marks the foot as moving: EMG potentials then are motion, not twitches.
    acc_context_s : without EMG, a transient is a twitch only if the foot is still for
        ``acc_context_s`` before and after it (movement in under half of that context).
    acc_twitch_max_mg : without EMG, a brief transient larger than this is a jerk of the foot,
        not a fasciculation: a single fasciculation moves a foot sensor by a few mg at most,
        at or under the ~1 mg noise floor for small units (docs/evidence.md §S2.4), and this is
        twice the level at which sustained motion counts as movement (``acc_move_mg``). On
        bench/detection.py's real accelerometer backgrounds it removed 60 % of the
        accelerometer-only false positives (8.7 → 3.3 per minute) and no twitch.
    fusion_window_ms : an accelerometer transient peaking within this window after an EMG
        potential corroborates it (source ``emg+acc``); Terrill 2013: 39 % of EMG leg events show
        no toe motion, so motion corroborates, never gates.

    Episodes
    --------
    episode_gap_s : twitches closer than this belong to one episode.
    episode_min_twitches : fewer twitches than this do not make an episode.
    plm_min_movements, plm_interval_s : AASM PLM series: >= 4 movements 5-90 s apart.
    """

    emg_band_hz: tuple[float, float] = (20.0, 450.0)
    emg_band_order: int = 2
    mains: MainsSetting = "auto"
    mains_probe_s: float = 2.0
    notch_q: float = 30.0
    block_s: float = 0.1
    noise_history_s: float = 60.0
    noise_quantile: float = 0.25
    noise_update_s: float = 1.0
    hum_update_s: float = 10.0
    threshold_k: float = 6.0
    min_peak_uv: float = 4.0
    merge_ms: float = 30.0
    core_ms: float = 8.0
    min_core_energy_fraction: float = 0.7
    post_activity_s: float = 1.0
    post_activity_min_s: float = 0.2
    pre_activity_s: float = 0.5
    feature_half_window_ms: float = 25.0
    isolation_ms: float = 250.0
    doublet_ms: float = 110.0
    doublet_min_ratio: float = 0.5
    after_wave_ms: float = 50.0
    doublet_correlation: float = 0.9
    unit_amplitude_ratio: float = 1.5
    unit_window_s: float = 2.0
    unit_min_repeats: int = 2
    unit_correlation: float = 0.8
    unit_shape_ms: float = 16.0
    faint_unit_correlation: float = 0.5
    unit_lag_ms: float = 6.0
    unit_look_ahead: bool = True
    fast_window_s: float = 1.0
    fast_min_rate_hz: float = 6.0
    regular_min_intervals: int = 3
    regular_cv_max: float = 0.25
    regular_min_rate_hz: float = 0.5
    isolation_same_shape: bool = True
    isolation_min_neighbours: int = 2
    train_min_potentials: int = 5
    isolation_shape_min_snr: float = 8.0
    template_bank: bool = False
    bank_k: float = 4.0
    bank_match_corr: float = 0.8
    bank_merge_corr: float = 0.9
    bank_amplitude_ratio: float = 1.5
    bank_max_units: int = 16
    bank_stale_s: float = 600.0
    bank_after_s: float = 3.0
    bank_known_unit_correlation: float = 0.9
    candidate_rules: tuple[str, ...] = (
        "voluntary_activity", "after_activity", "before_activity", "fast_firing",
        "regular_firing", "faint_repeating_unit", "low_level_firing", "dense_firing")
    busy_k: float = 4.5
    busy_window_s: float = 1.0
    busy_min_discharges: int = 5
    dense_min_discharges: int = 10
    train_gap_ms: float = 800.0
    train_min_groups: int = 4
    train_amplitude_ratio: float = 1.5
    train_cv_max: float = 0.4
    train_by_unit: bool = True
    train_min_rate_hz: float = 3.0
    train_unit_correlation: float = 0.5
    max_noise_uv: float = 30.0
    max_peak_to_peak_uv: float = 3000.0
    pop_lf_ratio: float = 0.5
    flat_ms: float = 20.0
    quantised_flat_steps: float = 2.0
    flat_clip_range_uv: float = 50.0
    activity_on_uv: float = 8.0
    activity_on_k: float = 1.0
    activity_off_uv: float = 2.0
    envelope_ms: float = 50.0
    activity_window_ms: float = 500.0
    activity_fraction: float = 0.5
    offset_quiet_s: float = 0.5
    min_activity_s: float = 0.5
    min_span_on_fraction: float = 0.5
    span_ringing_free: bool = True
    limb_movement_max_s: float = 10.0
    acc_band_hz: tuple[float, float] = (2.0, 30.0)
    acc_threshold_k: float = 4.0
    acc_min_mg: float = 2.0
    acc_merge_ms: float = 150.0
    acc_move_mg: float = 15.0
    acc_move_s: float = 1.0
    acc_context_s: float = 1.0
    acc_twitch_max_mg: float = 30.0
    fusion_window_ms: tuple[float, float] = (-50.0, 250.0)
    episode_gap_s: float = 30.0
    episode_min_twitches: int = 2
    plm_min_movements: int = 4
    plm_interval_s: tuple[float, float] = (5.0, 90.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> DetectorConfig:
        return replace(self, **changes)
