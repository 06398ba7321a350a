"""The person-readable twitch report printed on the terminal."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from toetwitch.pipeline.detect.stream import AnalysisResult
from toetwitch.pipeline.present.capability import is_acc_only, summary_capability_lines


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


#: Without EMG a twitch is only seen when it moves the toe, and small foot movements look alike:
#: on bench/detection.py's real accelerometer backgrounds toetwitch finds 6 % of 3-10 mg
#: twitches with 3.3 false ones per minute, and even a detector told the answers finds none
#: at 0.5 false ones per minute (the bench's ceiling, docs/bench.md).
ACC_ONLY_NOTE = ("   note: accelerometer only: twitches are counted when they move the toe, so small ones are\n"
                 "         missed and brief foot movements can be counted; with EMG the counts are far\n"
                 "         more reliable.")


def render_summary(result: AnalysisResult, name: str | None = None) -> str:
    """A short report of one recording: twitches, rate at rest, episodes, signal quality."""
    s: dict[str, Any] = result.summary
    name = name or s.get("recording", "recording")
    q = s.get("signal_quality", {})
    rate = s.get("twitches_per_min_rest")
    lines = [
        f"== {name}  ({s.get('streams')}, {_fmt_s(s.get('duration_s'))})",
        # without EMG a twitch is one the accelerometer saw move the toe, not a fasciculation
        f"   {'visible twitches' if is_acc_only(s.get('streams')) else 'twitches (fasciculations)'}: "
        f"{s['twitches']}"
        + (f"  ·  {rate:.1f} per minute at rest" if rate is not None else "  ·  no time at rest"),
    ]
    by = s.get("twitches_by_source", {})
    if s["twitches"]:
        parts = [f"{v} {k}" for k, v in by.items() if v]
        extra = f", {s['doublets']} doublets" if s.get("doublets") else ""
        amp = s.get("median_peak_to_peak_uv")
        amp_s = f", median size {amp:.0f} µV" if amp is not None else ""
        lines.append(f"   seen by: {', '.join(parts)}{extra}{amp_s}")
    lines.append(
        f"   episodes: {s['episodes']}"
        + (f" (gap rule {s['config']['episode_gap_s']:g} s)" if "config" in s else "")
        + f"  ·  limb movements: {s['limb_movements']}  ·  cramps: {s['cramps']}"
        + (f"  ·  periodic series: {s['plm_series']}" if s.get("plm_series") else "")
    )
    if (s.get("limb_movement_source") == "acc" and s.get("limb_movements")
            and s.get("limb_movements_per_h") is not None):  # EMG reports are unchanged
        lines.append(
            f"   limb movements (accelerometer): {s['limb_movements_per_h']:.1f} per hour"
            + (f"  ·  PLM index {s['plm_index_per_h']:.1f} per hour"
               if s.get("plm_index_per_h") is not None else "")
        )
    for _, ep in result.episodes.head(5).iterrows():
        lines.append(
            f"     #{int(ep['episode'])}: {ep['start_s']:.0f}-{ep['end_s']:.0f} s, "
            f"{int(ep['twitches'])} twitches, {ep['rate_per_min']:.1f}/min"
        )
    if len(result.episodes) > 5:
        lines.append(f"     ... and {len(result.episodes) - 5} more (episodes.csv)")
    lines.append(
        f"   time: at rest {_fmt_s(s['time_rest_s'])}, active {_fmt_s(s['time_active_s'])}"
        + (f" (low-level firing {_fmt_s(s['time_low_level_firing_s'])})"
           if s.get("time_low_level_firing_s") else "")
        + ", "
        f"artifact {_fmt_s(s['time_artifact_s'])}"
        + (
            " (" + ", ".join(f"{k.replace('_', ' ')} {_fmt_s(v)}" for k, v in s["artifact_reasons"].items()) + ")"
            if s.get("artifact_reasons")
            else ""
        )
    )
    lost_s = max((s.get("samples_lost_s") or {}).values(), default=0.0)
    if lost_s and (s.get("artifact_reasons") or {}).get("signal_loss"):
        # the blocks holding a gap are not analysed: say how much signal was really lost
        lines.append(f"   signal loss: {_fmt_s(lost_s)} of samples lost; the 0.1-s blocks "
                     "holding them are not analysed")
    rej = s.get("rejected") or {}
    if rej:
        lines.append(
            "   not counted: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in rej.items())
        )
    qual = [f"signal quality {q.get('grade', '?')}"]
    if q.get("emg_noise_uv") is not None:
        qual.append(f"EMG noise {q['emg_noise_uv']:.1f} µV")
    if q.get("acc_noise_mg") is not None:
        qual.append(f"accelerometer noise {q['acc_noise_mg']:.1f} mg")
    qual.append(f"mains {q['mains_hz']:g} Hz removed" if q.get("mains_hz") else "no mains hum found")
    lines.append("   " + ", ".join(qual))
    pk = s.get("packets")
    if pk and pk.get("loss_measurable", True) is False:
        lines.append(f"   link: {pk.get('received', 0)} packets; loss unmeasurable (this sensor's "
                     "stream carries no counter or clock)")
    elif pk:
        lines.append(
            f"   link: {pk.get('received', 0)} packets, {pk.get('lost', 0)} lost "
            f"({100 * (pk.get('loss_fraction') or 0):.1f} %), {pk.get('duplicated', 0)} duplicated"
        )
    for line in s.get("repairs") or []:  # what the input needed (a bad cell, a gap, a cut record)
        lines.append(f"   repaired: {line}")
    if rate is not None and s["time_rest_s"] < 120:
        lines.append("   note: under 2 minutes at rest; the rate is rough (Mills, Zhou: 2 min for 5 twitches).")
    for line in summary_capability_lines(s):  # accelerometer alone: what it can and cannot see
        lines.append(textwrap.fill(f"note: {line}.", 95, initial_indent="   ",
                                   subsequent_indent="         "))
    if s.get("streams") == "acc":
        lines.append(ACC_ONLY_NOTE)
    return "\n".join(lines)


def render_event(row: Any) -> str:
    """One live/replay line for a newly reported event."""
    extra = ""
    if row["type"] == "fasciculation":
        if row["peak_to_peak_uv"] == row["peak_to_peak_uv"]:  # not NaN
            extra = f" {row['peak_to_peak_uv']:.0f} µV"
        if row["doublet"]:
            extra += " doublet"
    else:
        extra = f" {row['duration_ms'] / 1000:.1f} s"
    return f"  {row['time_s']:9.3f} s  {row['type']:<14} {row['source']:<8}{extra}"


#: Why a twitch shown while it was being checked was not counted after all.
WITHDRAWN_REASONS = {
    "repeating_unit": "the same unit fired again: tonic firing, not a twitch",
    "tonic_train": "part of a regular train of discharges",
    "before_activity": "a muscle contraction started right after it",
    "after_activity": "it followed a muscle contraction",
    "voluntary_activity": "inside a muscle contraction",
    "motion": "the foot was moving",
}


def render_withdrawn(time_s: float, reason: str) -> str:
    """One live line for a shown twitch that the later rules rejected."""
    why = WITHDRAWN_REASONS.get(reason, reason.replace("_", " "))
    return f"  {time_s:9.3f} s  {'not counted':<14} {'':<8} ({why})"


class LiveDisplay:
    """What ``monitor`` and ``replay`` print while a session runs.

    Settled events (``events``) print one line each. With ``provisional`` on, a twitch is
    printed as soon as it is seen, marked ``(checking)`` (``shown``); if the later rules
    reject it a ``not counted`` line follows (``withdrawn``); when it is settled it is not
    printed again. ``before_line`` runs before every line (the monitor clears its status
    line there).
    """

    def __init__(self, provisional: bool, quiet: bool = False,
                 before_line: Callable[[], None] | None = None):
        self.provisional = provisional and not quiet
        self.quiet = quiet
        self.before_line = before_line
        self._checking: set[float] = set()

    def _print(self, line: str) -> None:
        if self.before_line is not None:
            self.before_line()
        print(line, flush=True)

    def events(self, events: Any) -> None:
        if self.quiet:
            return
        for _, row in events.iterrows():
            if row["time_s"] in self._checking:
                self._checking.discard(row["time_s"])
                continue
            self._print(render_event(row))

    def shown(self, events: Any) -> None:
        for _, row in events.iterrows():
            self._checking.add(row["time_s"])
            self._print(render_event(row) + "  (checking)")

    def withdrawn(self, items: list[tuple[float, str]]) -> None:
        for t, reason in items:
            self._checking.discard(t)
            self._print(render_withdrawn(t, reason))

    def callbacks(self) -> dict[str, Any]:
        """``on_events``, ``on_provisional`` and ``on_withdrawn`` for a live session or replay."""
        return {
            "on_events": self.events,
            "on_provisional": self.shown if self.provisional else None,
            "on_withdrawn": self.withdrawn if self.provisional else None,
        }


def provisional_wanted(setting: str, quiet: bool) -> bool:
    """``--provisional on|off|auto``: auto shows twitches early when stdout is a terminal."""
    import sys

    return not quiet and (setting == "on" or (setting == "auto" and sys.stdout.isatty()))
