"""The one detector: :class:`StreamingAnalyser` joins the EMG and accelerometer paths.

Batch analysis (:func:`toetwitch.pipeline.analyse`), replay and the live monitor all push samples into
this class; batch simply pushes everything at once. Decisions depend only on samples inside
fixed windows, so the final events do not depend on how the samples were chunked.

Limb movements: with EMG, activity spans of the EMG envelope (``time_s`` at the envelope's
peak); without EMG, :class:`~toetwitch.pipeline.detect.acc_limb_movements.AccLimbMovementDetector`
on the accelerometer samples pushed here (``time_s`` at the movement's onset: the AASM periodic
series are measured onset to onset). docs/contracts.md §9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from toetwitch.pipeline.detect.acc_limb_movements import (
    AccLimbMovementDetector,
    limb_movement_config,
)
from toetwitch.pipeline.detect.acc_path import AccPath
from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.emg_path import FLAG_FLAT, FLAG_NAN, EmgPath
from toetwitch.pipeline.detect.episodes import episodes_table, plm_series
from toetwitch.pipeline.detect.input_guard import InputGuard
from toetwitch.pipeline.detect.rules.motion import is_jerk, is_motion
from toetwitch.pipeline.log import logger

EVENT_COLUMNS = [
    "time_s",
    "source",
    "type",
    "duration_ms",
    "peak_to_peak_uv",
    "phases",
    "snr",
    "acc_peak_mg",
    "doublet",
    "envelope_peak_uv",
    "start_s",
]


@dataclass(frozen=True)
class AnalysisResult:
    """What an analysis gives: events (one row per twitch or movement, ``EVENT_COLUMNS``),
    episodes (``toetwitch.pipeline.detect.episodes.EPISODE_COLUMNS``) and the session summary dict."""

    events: pd.DataFrame
    episodes: pd.DataFrame
    summary: dict[str, Any]

    @property
    def twitches(self) -> pd.DataFrame:
        """Rows of type ``fasciculation`` (what twitch counts and rates mean)."""
        return self.events[self.events["type"] == "fasciculation"]


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_s": pd.Series(dtype=float),
            # str: object before pandas 3, its string dtype from 3 on, as events_frame infers
            "source": pd.Series(dtype=str),
            "type": pd.Series(dtype=str),
            "duration_ms": pd.Series(dtype=float),
            "peak_to_peak_uv": pd.Series(dtype=float),
            "phases": pd.Series(dtype="Int64"),
            "snr": pd.Series(dtype=float),
            "acc_peak_mg": pd.Series(dtype=float),
            "doublet": pd.Series(dtype=bool),
            "envelope_peak_uv": pd.Series(dtype=float),
            "start_s": pd.Series(dtype=float),
        }
    )


_EMPTY = _empty_events()


_FLOAT_COLUMNS = ("time_s", "duration_ms", "peak_to_peak_uv", "snr", "acc_peak_mg", "envelope_peak_uv",
                  "start_s")
#: blocks per slice of the end-of-recording time accounting (bounds its temporaries)
_ACCOUNT_SLICE = 65_536


def event_onsets_s(events: pd.DataFrame) -> np.ndarray:
    """Where each event begins, in s (``start_s``; events files written before that column
    existed give ``time_s``). Shape (len(events),)."""
    return events["start_s" if "start_s" in events else "time_s"].to_numpy(dtype=float)


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> events DataFrame with the documented columns and dtypes, sorted by time.

    Built column by column from typed arrays: the live path calls this on every push, and
    letting pandas infer and then cast each column cost milliseconds per call.
    """
    if not rows:
        return _EMPTY
    rows = sorted(rows, key=lambda r: (r["time_s"], r["type"]))  # stable, like mergesort
    cols: dict[str, Any] = {}
    for c in EVENT_COLUMNS:
        values = [r[c] for r in rows]
        if c in _FLOAT_COLUMNS:
            cols[c] = np.array(values, dtype=float)
        elif c == "phases":
            cols[c] = pd.array(values, dtype="Int64")
        elif c == "doublet":
            cols[c] = np.array(values, dtype=bool)
        else:  # text: filled in place (no Series per column: half the cost of a small
            # frame); pandas 3 infers its string dtype from it, as _empty_events declares
            cols[c] = np.empty(len(values), dtype=object)
            cols[c][:] = values
    return pd.DataFrame(cols, columns=EVENT_COLUMNS, copy=False)


class StreamingAnalyser:
    """Feed samples as they come; get twitches as soon as they are certain.

    Parameters
    ----------
    fs_emg_hz, fs_acc_hz : float or None
        Sample rates of the streams present (None = stream absent).
    config : DetectorConfig, optional
    name : str
        Recording or session name for the summary.
    start_time : str, optional
        ISO-8601 wall-clock time of the first sample (for the night fraction).
    """

    def __init__(
        self,
        fs_emg_hz: float | None,
        fs_acc_hz: float | None,
        config: DetectorConfig | None = None,
        name: str = "live",
        start_time: str | None = None,
    ):
        if fs_emg_hz is None and fs_acc_hz is None:
            raise ValueError("StreamingAnalyser needs at least one stream (EMG or accelerometer)")
        self.cfg = config or DetectorConfig()
        self.name = name
        self.start_time = start_time
        self.emg = EmgPath(float(fs_emg_hz), self.cfg) if fs_emg_hz else None
        self.acc = AccPath(float(fs_acc_hz), self.cfg) if fs_acc_hz else None
        if self.acc is not None and self.emg is not None:
            self.acc.keep_transients = False  # with EMG, motion is read from the magnitude
        #: without EMG, limb movements come from the accelerometer's own limb-movement rules
        #: (:mod:`toetwitch.pipeline.detect.acc_limb_movements`); with EMG the EMG decides them
        self.acc_lm = (AccLimbMovementDetector(float(fs_acc_hz), limb_movement_config(self.cfg))
                       if self.acc is not None and self.emg is None else None)
        self._lm_found: list[tuple[int, int, float, float]] = []
        self._lm_spans_s: list[tuple[float, float]] = []  # recent ones, for the twitch rule
        self.n_emg_in = 0
        self.n_acc_in = 0
        self.guard = InputGuard(name)  # impossible values (inf, 1e308) -> lost, counted
        self._rows: list[dict[str, Any]] = []
        self._pending_fasc: list[tuple[Any, float]] = []
        self._pending_spans: list[Any] = []
        self._provisional: list[Any] = []  # shown-but-unsettled twitches not yet taken
        self._low_level_firing_s = 0.0
        #: collect provisional twitches for :meth:`take_provisional` (a live display turns
        #: this on; batch analysis has no use for them)
        self.provisional = False
        #: seconds of signal :meth:`push` may hold before running the detector on it all at
        #: once. 0 (the default, what a live display needs): every complete detector block is
        #: analysed in the push that completes it. Replaying or checking a log as fast as
        #: possible sets e.g. 2 s: the detector's cost is per call (~2 ms), not per sample, so
        #: 100-ms packets then cost about what one batch call does. Results never change (the
        #: detector is chunk-invariant); settled events come out up to ``hold_s`` later in
        #: signal time. Ignored while ``provisional`` is on: a display that shows twitches
        #: before they settle gets them block by block, as live.
        self.hold_s = 0.0
        self._held: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._held_n = [0, 0]
        self._finished: AnalysisResult | None = None
        self._progress = (0, 0, 0)
        self.rejected: dict[str, int] = {}
        self.voluntary_spans_s: list[tuple[float, float]] = []
        self.movement_spans_s: list[tuple[float, float, str]] = []

    # ------------------------------------------------------------------ input
    def push(self, emg_uv: np.ndarray | None = None, acc_g: np.ndarray | None = None) -> pd.DataFrame:
        """Feed new samples of either stream (NaN = lost). Returns events finalised now
        (an empty frame, shared and read-only, when there are none)."""
        if self._finished is not None:
            raise RuntimeError("push() after finish()")
        if emg_uv is not None and len(emg_uv):
            if self.emg is None:
                raise ValueError("EMG samples pushed but the analyser was made without fs_emg_hz")
            self._feed(0, self.guard.emg(emg_uv))
            self.n_emg_in += len(emg_uv)
        if acc_g is not None and len(acc_g):
            if self.acc is None:
                raise ValueError("accelerometer samples pushed but the analyser was made without fs_acc_hz")
            self._feed(1, self.guard.acc(acc_g))
            self.n_acc_in += len(acc_g)
        if self._holding():
            return _EMPTY
        progress = (self.emg.n_done if self.emg else 0, self.acc.n_done if self.acc else 0,
                    self.acc_lm.blocks_done if self.acc_lm else 0)
        if progress == self._progress:  # no new complete block: nothing can have changed
            return _EMPTY
        self._progress = progress
        return self._resolve(final=False)

    def finish(self) -> AnalysisResult:
        """Flush every pending decision and return the whole result."""
        if self._finished is not None:
            return self._finished
        self._release()
        if self.emg is not None:
            self.emg.finish()
        if self.acc is not None:
            self.acc.finish()
        if self.acc_lm is not None:
            self._lm_found.extend(self.acc_lm.finish())
        #: events that only the end of the stream settled (live paths report these last)
        self.flushed_events = self._resolve(final=True)
        events = events_frame(self._rows)
        fasc = events[events["type"] == "fasciculation"]
        episodes = episodes_table(fasc, self.cfg.episode_gap_s, self.cfg.episode_min_twitches)
        self._finished = AnalysisResult(events, episodes, self._summary(events, episodes))
        return self._finished

    def _feed(self, stream: int, x: np.ndarray) -> None:
        """Samples of stream 0 (EMG) or 1 (accelerometer) into its path, or held (``hold_s``)."""
        if self.hold_s > 0 and not self.provisional:
            self._held[stream].append(np.array(x, dtype=np.float64))  # a copy: callers reuse buffers
            self._held_n[stream] += len(x)
        else:
            self._to_path(stream, x)

    def _to_path(self, stream: int, x: np.ndarray) -> None:
        if stream == 0:
            assert self.emg is not None
            self.emg.push(x)
            return
        assert self.acc is not None
        self.acc.push(x)
        if self.acc_lm is not None:
            self._lm_found.extend(self.acc_lm.push(x))

    def _holding(self) -> bool:
        """True while less than ``hold_s`` of signal is held; else hands it all to the paths."""
        if not (self._held[0] or self._held[1]):
            return False
        held_s = max(self._held_n[0] / self.emg.fs_hz if self.emg else 0.0,
                     self._held_n[1] / self.acc.fs_hz if self.acc else 0.0)
        if held_s < self.hold_s:
            return True
        self._release()
        return False

    def _release(self) -> None:
        for stream, path in ((0, self.emg), (1, self.acc)):
            held = self._held[stream]
            if held and path is not None:
                self._to_path(stream, np.concatenate(held) if len(held) > 1 else held[0])
            held.clear()
            self._held_n[stream] = 0

    def take_provisional(self) -> pd.DataFrame:
        """Twitches seen but not settled yet, for a live display (``EVENT_COLUMNS``).

        An isolated EMG discharge is shown once it passes every rule that looks back (about
        250 ms after it, the isolation and activity windows); the rules that look ahead (the
        same unit firing again within ``unit_window_s``, a tonic chain, activity starting,
        movement on the accelerometer) settle it later: it then comes out of :meth:`push`
        with the same ``time_s``, or :meth:`take_withdrawn` names it. ``source`` is ``emg``
        and ``acc_peak_mg`` NaN here (the accelerometer is read when it is settled). Each
        twitch is returned once; none without EMG (accelerometer-only twitches are settled
        by their own context window).
        """
        if self.emg is None or not self._provisional:
            return _EMPTY
        shown, self._provisional = self._provisional, []
        return events_frame([self._twitch_row(f, "emg", np.nan) for f in shown])

    def report_early(
        self,
        on_provisional: Callable[[pd.DataFrame], None] | None = None,
        on_withdrawn: Callable[[list[tuple[float, str]]], None] | None = None,
    ) -> tuple[pd.DataFrame, list[tuple[float, str]]]:
        """Take the newly shown and the newly withdrawn twitches (:meth:`take_provisional`,
        :meth:`take_withdrawn`), hand each non-empty lot to its callback, and return both."""
        shown = self.take_provisional()
        if on_provisional is not None and len(shown):
            on_provisional(shown)
        gone = self.take_withdrawn()
        if on_withdrawn is not None and gone:
            on_withdrawn(gone)
        return shown, gone

    def take_withdrawn(self) -> list[tuple[float, str]]:
        """(time_s, reason) of provisionally shown twitches rejected since the last call."""
        if self.emg is None:
            return []
        out, self.emg.withdrawn = self.emg.withdrawn, []
        return [(peak / self.emg.fs_hz, reason) for peak, reason in out]

    def events_so_far(self) -> pd.DataFrame:
        return events_frame(self._rows)

    @property
    def seconds_in(self) -> float:
        """Length of signal pushed so far (s): the longer of the two streams."""
        return max(
            (self.n_emg_in / self.emg.fs_hz) if self.emg else 0.0,
            (self.n_acc_in / self.acc.fs_hz) if self.acc else 0.0,
        )

    @property
    def samples_seen(self) -> dict[str, int]:
        return {"emg": self.n_emg_in, "acc": self.n_acc_in}

    # ------------------------------------------------------------------ decisions
    def _resolve(self, final: bool) -> pd.DataFrame:
        new: list[dict[str, Any]] = []
        if self.emg is not None:
            if self.provisional and not final:  # before take_ready can settle them: each is shown first
                self._provisional.extend(self.emg.take_provisional())
            self._pending_fasc.extend(self.emg.take_ready(final))
            self._pending_spans.extend(self.emg.take_spans())
            new += self._resolve_fasciculations(final)
            new += self._resolve_spans(final)
        elif self.acc is not None:
            new += self._resolve_acc_limb_movements()  # first: the twitch rule reads their spans
            new += self._resolve_acc_only(final)
        if self.acc is not None:
            horizon = self.acc.t_done_s - 2 * self.cfg.activity_window_ms / 1000
            if self.emg is not None:
                pend = [f.peak / self.emg.fs_hz for f, _ in self._pending_fasc]
                pend += [self.emg.sub_time_s(s.start_sub) for s in self._pending_spans]
                horizon = min([horizon, self.emg.earliest_pending_s(), *pend])
            self.acc.trim(max(horizon - 1.0, 0.0))
        self._rows.extend(new)
        return events_frame(new)

    def _resolve_fasciculations(self, final: bool) -> list[dict[str, Any]]:
        assert self.emg is not None
        out = []
        half = self.cfg.activity_window_ms / 2000
        lo_ms, hi_ms = self.cfg.fusion_window_ms
        while self._pending_fasc:
            f, _frac = self._pending_fasc[0]
            t = f.peak / self.emg.fs_hz
            acc_peak, corroborated = np.nan, False
            if self.acc is not None:
                if not (final or self.acc.available(t + max(half, hi_ms / 1000))):
                    break
                if is_motion(self.acc.moving_fraction(t - half, t + half), self.cfg):
                    self._pending_fasc.pop(0)
                    self.emg.reject_candidate(f, "motion")
                    continue
                acc_peak, corroborated = self.acc.peak_in(t + lo_ms / 1000, t + hi_ms / 1000)
            self._pending_fasc.pop(0)
            out.append(self._twitch_row(f, "emg+acc" if corroborated else "emg", acc_peak))
        return out

    def _twitch_row(self, f: Any, source: str, acc_peak_mg: float) -> dict[str, Any]:
        """The events row of an EMG twitch (a :class:`toetwitch.pipeline.detect.emg_path.Fasciculation`)."""
        assert self.emg is not None
        fs = self.emg.fs_hz
        return {"time_s": f.peak / fs, "source": source, "type": "fasciculation",
                "duration_ms": f.duration_n / fs * 1000, "peak_to_peak_uv": f.p2p_uv,
                "phases": f.phases, "snr": f.snr, "acc_peak_mg": acc_peak_mg,
                "doublet": f.doublet, "envelope_peak_uv": np.nan,
                "start_s": f.peak / fs}  # a twitch lasts milliseconds: its onset is its peak

    def _resolve_spans(self, final: bool) -> list[dict[str, Any]]:
        assert self.emg is not None
        out = []
        while self._pending_spans:
            span = self._pending_spans[0]
            t0 = self.emg.sub_time_s(span.start_sub)
            t1 = self.emg.sub_time_s(span.end_sub)
            moving, acc_peak, corroborated = 0.0, np.nan, False
            if self.acc is not None:
                if not (final or self.acc.available(t1)):
                    break
                moving = self.acc.moving_fraction(t0, t1)
                acc_peak, corroborated = self.acc.peak_in(t0, t1)
            self._pending_spans.pop(0)
            dur = t1 - t0
            kind = self._span_kind(dur, moving)
            if kind is None:
                self.voluntary_spans_s.append((t0, t1))
                continue
            self.movement_spans_s.append((t0, t1, kind))
            out.append(
                {
                    "time_s": self.emg.sub_time_s(span.peak_sub) + self.emg.sub_seconds() / 2,
                    "source": "emg+acc" if corroborated else "emg",
                    "type": kind,
                    "duration_ms": dur * 1000,
                    "peak_to_peak_uv": np.nan,
                    "phases": None,
                    "snr": np.nan,
                    "acc_peak_mg": acc_peak,
                    "doublet": False,
                    "envelope_peak_uv": span.peak_env_uv,
                    "start_s": t0,
                }
            )
        return out

    def _span_kind(self, dur_s: float, moving_fraction: float) -> str | None:
        """limb_movement for 0.5-10 s (AASM LM); longer: cramp if the foot stays still, else
        voluntary activity (None: not an event, counted as active time)."""
        if dur_s <= self.cfg.limb_movement_max_s:
            return "limb_movement"
        if self.acc is None or moving_fraction < 0.2:
            return "cramp"
        return None

    def _resolve_acc_only(self, final: bool) -> list[dict[str, Any]]:
        assert self.acc is not None
        out = []
        fs = self.acc.fs_hz
        half = self.cfg.acc_context_s
        while self.acc.transients:
            tr = self.acc.transients[0]
            t = tr.peak / fs
            if not (final or (self.acc.available(t + half) and self._lm_settled(t + half))):
                break
            self.acc.transients.pop(0)
            dur = (tr.end - tr.start + 1) / fs
            if dur < self.cfg.min_activity_s:
                if is_motion(self.acc.moving_fraction(t - half, t + half), self.cfg):
                    self.rejected["motion"] = self.rejected.get("motion", 0) + 1
                    continue
                # the turn at either end of a limb movement is that movement, not a twitch:
                # the foot is not still within acc_context_s of it
                self._lm_spans_s = [sp for sp in self._lm_spans_s if sp[1] + half >= t]
                if any(a - half <= t <= b + half for a, b in self._lm_spans_s):
                    self.rejected["in_limb_movement"] = self.rejected.get("in_limb_movement", 0) + 1
                    continue
                if is_jerk(tr.peak_mg, self.cfg):
                    self.rejected["jerk"] = self.rejected.get("jerk", 0) + 1
                    continue
            else:
                # longer than a twitch: activity (limb movements without EMG are the
                # accelerometer limb-movement rules' to decide: _resolve_acc_limb_movements)
                self.voluntary_spans_s.append((tr.start / fs, (tr.end + 1) / fs))
                continue
            out.append(
                {
                    "time_s": t,
                    "source": "acc",
                    "type": "fasciculation",
                    "duration_ms": dur * 1000,
                    "peak_to_peak_uv": np.nan,
                    "phases": None,
                    "snr": np.nan,
                    "acc_peak_mg": tr.peak_mg,
                    "doublet": False,
                    "envelope_peak_uv": np.nan,
                    "start_s": t,
                }
            )
        return out

    def _resolve_acc_limb_movements(self) -> list[dict[str, Any]]:
        """Events rows of the limb movements the accelerometer detector decided since the last
        call. ``time_s`` is the movement's onset (the AASM PLM intervals run onset to onset),
        ``duration_ms`` onset to offset, ``acc_peak_mg`` its largest block activity."""
        assert self.acc is not None
        fs = self.acc.fs_hz
        out = []
        for start, end, peak_mg, _deg in self._lm_found:
            self.movement_spans_s.append((start / fs, end / fs, "limb_movement"))
            self._lm_spans_s.append((start / fs, end / fs))
            out.append({"time_s": start / fs, "source": "acc", "type": "limb_movement",
                        "duration_ms": (end - start) / fs * 1000, "peak_to_peak_uv": np.nan,
                        "phases": None, "snr": np.nan, "acc_peak_mg": peak_mg,
                        "doublet": False, "envelope_peak_uv": np.nan, "start_s": start / fs})
        self._lm_found = []
        return out

    def _lm_settled(self, t_s: float) -> bool:
        """Has the limb-movement detector decided every movement that could start by ``t_s``?
        (It has read past ``t_s`` and no movement begun by then is still open.) Waiting for
        this keeps the twitch rule above independent of how the samples were chunked."""
        return self.acc_lm is None or self.acc_lm.settled_s() > t_s

    # ------------------------------------------------------------------ summary
    def _summary(self, events: pd.DataFrame, episodes: pd.DataFrame) -> dict[str, Any]:
        from toetwitch.pipeline import __version__

        cfg = self.cfg
        state, reasons, block_s, noise = self._time_accounting()
        rest_s = float((state == 0).sum() * block_s)
        active_s = float((state == 1).sum() * block_s)
        artifact_s = float((state == 2).sum() * block_s)
        fasc = events[events["type"] == "fasciculation"]
        lms = events[events["type"] == "limb_movement"]
        duration = self.seconds_in
        rejected = dict(self.rejected)
        if self.emg is not None:
            for k, v in self.emg.rejected.items():
                rejected[k] = rejected.get(k, 0) + v
        # AASM: periodic series are measured onset to onset
        series = plm_series(lms["start_s"].to_numpy(dtype=float), cfg.plm_interval_s, cfg.plm_min_movements)
        emg_noise = noise.get("emg")
        acc_noise = noise.get("acc")
        grade = "good"
        if emg_noise is not None and emg_noise > 10 or artifact_s > 0.2 * max(duration, 1e-9):
            grade = "fair"
        if emg_noise is not None and emg_noise > cfg.max_noise_uv or artifact_s > 0.5 * max(duration, 1e-9):
            grade = "poor"
        summary: dict[str, Any] = {
            "toetwitch_version": __version__,
            "recording": self.name,
            "streams": "+".join(s for s, p in (("emg", self.emg), ("acc", self.acc)) if p is not None),
            "fs_emg_hz": self.emg.fs_hz if self.emg else None,
            "fs_acc_hz": self.acc.fs_hz if self.acc else None,
            "start_time": self.start_time,
            "duration_s": round(duration, 3),
            "duration_analysed_s": round(rest_s + active_s + artifact_s, 3),
            #: the end shorter than one analysis block (and the part of the longer stream
            #: past the shorter): rest + active + artifact + not analysed = duration
            "time_not_analysed_s": round(max(duration - (rest_s + active_s + artifact_s), 0.0), 3),
            "time_rest_s": round(rest_s, 3),
            "time_active_s": round(active_s, 3),
            "time_artifact_s": round(artifact_s, 3),
            #: part of time_active_s: stretches of low-level motor-unit firing (DetectorConfig.busy_*)
            "time_low_level_firing_s": round(self._low_level_firing_s, 3),
            "artifact_reasons": {k: round(v, 3) for k, v in sorted(reasons.items())},
            #: seconds of samples that were lost (NaN), by stream: the signal_loss reason
            #: counts the 0.1-s blocks holding them, which are not analysed
            "samples_lost_s": self._samples_lost_s(),
            "twitches": int(len(fasc)),
            "twitches_per_min_rest": round(len(fasc) / (rest_s / 60), 3) if rest_s > 0 else None,
            "twitches_by_source": {s: int((fasc["source"] == s).sum()) for s in ("emg", "acc", "emg+acc")},
            "doublets": int(fasc["doublet"].sum()) if len(fasc) else 0,
            "median_peak_to_peak_uv": (
                round(float(np.nanmedian(fasc["peak_to_peak_uv"])), 2)
                if len(fasc) and fasc["peak_to_peak_uv"].notna().any() else None
            ),
            "limb_movements": int(len(lms)),
            "cramps": int((events["type"] == "cramp").sum()),
            "plm_series": len(series),
            **self._limb_movement_summary(len(lms), series, rest_s + active_s),
            "episodes": int(len(episodes)),
            "episodes_per_hour": round(len(episodes) / (duration / 3600), 3) if duration > 0 else None,
            "night_fraction": self._night_fraction(fasc["time_s"].to_numpy(dtype=float)),
            "rejected": dict(sorted(rejected.items())),
            "signal_quality": {
                "emg_noise_uv": None if emg_noise is None else round(emg_noise, 3),
                "acc_noise_mg": None if acc_noise is None else round(acc_noise, 3),
                "mains_hz": self.emg.mains_hz if self.emg else None,
                "mains_notches_hz": list(self.emg.notches_hz) if self.emg else [],
                "grade": grade,
            },
            "config": _jsonable(cfg.to_dict()),
            #: what was repaired or dropped on the way in (one line each; readers add theirs)
            "repairs": self.guard.repairs(),
        }
        return summary

    def _samples_lost_s(self) -> dict[str, float]:
        rates = {"emg": self.emg.fs_hz if self.emg else None, "acc": self.acc.fs_hz if self.acc else None}
        return {k: round(n / rates[k], 3) for k, n in sorted(self.guard.lost.items()) if rates.get(k)}

    def _limb_movement_summary(self, n_lms: int, series: list[tuple[int, int]],
                               emg_valid_s: float) -> dict[str, Any]:
        """``limb_movement_source``, ``limb_movements_per_h``, ``plm_index_per_h`` (movements in
        a PLM series per hour) and ``lm_rejected`` (candidates not scored, by reason).

        Hours are those of usable data: without EMG the accelerometer detector's valid time
        (gaps out), with EMG the time at rest or active (artifact out). Recording time, not
        sleep time: neither stream scores sleep."""
        if self.emg is not None:
            source: str | None = "emg"
            valid_s = emg_valid_s
            rejected = {"long": len(self.voluntary_spans_s)} if self.voluntary_spans_s else {}
        elif self.acc_lm is not None:
            source = "acc"
            valid_s = self.acc_lm.valid_s
            rejected = dict(self.acc_lm.rejected)
        else:  # no stream that scores limb movements
            return {"limb_movement_source": None, "limb_movements_per_h": None,
                    "plm_index_per_h": None, "lm_rejected": {}}
        hours = valid_s / 3600.0
        plms = sum(b - a + 1 for a, b in series)
        return {"limb_movement_source": source,
                "limb_movements_per_h": round(n_lms / hours, 3) if hours > 0 else None,
                "plm_index_per_h": round(plms / hours, 3) if hours > 0 else None,
                "lm_rejected": dict(sorted(rejected.items()))}

    def _time_accounting(self) -> tuple[np.ndarray, dict[str, float], float, dict[str, float]]:
        """Per block: 0 rest, 1 active, 2 artifact; artifact seconds by reason; median noise."""
        cfg = self.cfg
        noise: dict[str, float] = {}
        reasons: dict[str, float] = {}
        if self.emg is not None:
            sig, thr_sig, flags = self.emg.records()
            bs = self.emg.block_n / self.emg.fs_hz
            n = len(sig)
            state = np.zeros(n, dtype=np.int8)
            spans = [(a, b) for a, b, _ in self.movement_spans_s] + self.voluntary_spans_s
            for a, b in spans:
                state[blocks_overlapping(n, bs, a, b)] = 1
            if self.acc is not None:
                _, rms, _ = self.acc.records()
                if len(rms):
                    ab = self.acc.block_n / self.acc.fs_hz
                    # in slices: whole-recording index temporaries cost ~30 MB for 24 h
                    for s in range(0, n, _ACCOUNT_SLICE):
                        t_block = np.arange(s, min(s + _ACCOUNT_SLICE, n)) * bs
                        idx = np.minimum((t_block / ab).astype(np.int64), len(rms) - 1)
                        state[s: s + len(t_block)][rms[idx] > cfg.acc_move_mg] = 1
            low_level = self.emg.low_level_firing_blocks() & (state == 0)
            self._low_level_firing_s = float(low_level.sum() * bs)
            state[low_level] = 1  # not rest: twitches there cannot be told from that firing
            lost = (flags & FLAG_NAN) > 0
            flat = ((flags & FLAG_FLAT) > 0) & ~lost
            noisy = (thr_sig > cfg.max_noise_uv) & (state == 0) & ~lost & ~flat
            for name, m in (("signal_loss", lost), ("saturation_or_flatline", flat), ("noisy", noisy)):
                if m.any():
                    reasons[name] = float(m.sum() * bs)
            state[lost | flat | noisy] = 2
            good = sig[(state == 0)]
            if len(good):
                noise["emg"] = float(np.median(good))
            elif len(sig):
                noise["emg"] = float(np.nanmedian(thr_sig)) if np.isfinite(thr_sig).any() else float("nan")
            if self.acc is not None:
                level, _, _ = self.acc.records()
                if len(level):
                    noise["acc"] = float(np.median(level))
            return state, reasons, bs, noise
        assert self.acc is not None
        level, rms, nan = self.acc.records()
        bs = self.acc.block_n / self.acc.fs_hz
        n = len(level)
        state = np.zeros(n, dtype=np.int8)
        state[rms > cfg.acc_move_mg] = 1
        for a, b, *_ in [*self.movement_spans_s, *self.voluntary_spans_s]:
            state[blocks_overlapping(n, bs, a, b)] = 1
        if nan.any():
            reasons["signal_loss"] = float(nan.sum() * bs)
        state[nan] = 2
        if len(level):
            noise["acc"] = float(np.median(level[state == 0])) if (state == 0).any() else float(np.median(level))
        return state, reasons, bs, noise

    def _night_fraction(self, times_s: np.ndarray) -> float | None:
        """Share of twitches between 22:00 and 07:00 local recording time (None if unknown)."""
        if not self.start_time or len(times_s) == 0:
            return None
        try:
            t0 = datetime.fromisoformat(self.start_time)
        except ValueError:
            logger.warning("start_time %r is not ISO-8601; night fraction left out", self.start_time)
            return None
        hours = np.array([(t0 + timedelta(seconds=float(t))).hour for t in times_s])
        return round(float(((hours >= 22) | (hours < 7)).mean()), 3)


def blocks_overlapping(n: int, block_s: float, a_s: float, b_s: float) -> slice:
    """The blocks (block ``i`` covers ``[i·block_s, (i+1)·block_s)``, ``n`` of them) that
    overlap the span ``(a_s, b_s)``: ``i·block_s + block_s > a_s`` and ``i·block_s < b_s``,
    evaluated in the same floating point as the whole-array comparison, without building it."""
    lo = min(max(int(np.floor(a_s / block_s)) - 1, 0), n)
    while lo < n and not lo * block_s + block_s > a_s:
        lo += 1
    while lo > 0 and (lo - 1) * block_s + block_s > a_s:
        lo -= 1
    hi = min(max(int(np.ceil(b_s / block_s)) + 1, 0), n)
    while hi > 0 and not (hi - 1) * block_s < b_s:
        hi -= 1
    while hi < n and hi * block_s < b_s:
        hi += 1
    return slice(lo, max(lo, hi))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
