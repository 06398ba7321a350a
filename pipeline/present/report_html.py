"""The report a person wants to read: matplotlib figures in one self-contained HTML page.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display)
and inlined as base64 PNG; the page carries its own CSS and a Content-Security-Policy that
forbids every network request, so it opens the same offline, from a USB stick or an e-mail.

Building blocks (pure, testable one by one):

* ``signal_figure(rec, result)`` — the band-passed EMG (or the accelerometer's dynamic
  magnitude) of a recording, an overview and a window around the densest twitches, with the
  detected events marked at their ``time_s``;
* ``daily_figure(daily)`` — twitches per day and the rate at rest;
* ``time_of_day_figure(cells)`` — a date x clock-hour heatmap of twitches (grey = not recorded);
* ``episodes_figure(episodes)`` — when episodes happened, sized by their twitches;
* ``causes_figure(assessment)`` — the latest assessment's causes as bars;
* ``night_view(result)`` / ``night_view_svg(view)`` — the night view: the whole recording as a
  timeline, each limb movement a bar, periodic (PLM) series highlighted, with the limb
  movements and the PLM index per hour (inline SVG: no image, no script);
* :func:`build_report` gathers them from a journal and/or one recording,
  :func:`render_html` writes the page, :func:`write_report` writes the files.
"""

from __future__ import annotations

import base64
import html
import io
import os
import string
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from toetwitch.pipeline.errors import UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from toetwitch.pipeline.store.journal import Journal

#: Shown when no assessment carries its own disclaimer.
DEFAULT_DISCLAIMER = "toetwitch informs; it does not diagnose."
#: Always shown after the disclaimer.
REPORT_NOTE = (
    "Twitch counts come from a home sensor and can be wrong. Benign muscle twitching is very "
    "common. If you are worried, or twitching comes with weakness, numbness, or trouble walking, "
    "speaking, swallowing or breathing, see a doctor. Do not stop a prescribed medicine without "
    "talking to the doctor who prescribed it."
)

#: Banner colour of each escalation level (the words come from the knowledge base:
#: :func:`toetwitch.models.level_words`, :func:`toetwitch.models.cause_names`).
LEVEL_COLOURS = {"self_care": "#2e7d32", "routine": "#1565c0", "soon": "#ef6c00", "urgent": "#c62828"}
#: The page skeleton (``string.Template``: ``$name`` placeholders), beside this module.
TEMPLATE = "report_template.html"


def _level_title(level: str) -> str:
    from toetwitch.models import level_words

    return level_words().get(level, (level,))[0]


def _cause_name(label: Any) -> str:
    from toetwitch.models import cause_names

    return cause_names().get(label, str(label))


EVENT_STYLE = {  # type -> (colour, marker, label)
    "fasciculation": ("#d62728", "v", "twitch (fasciculation)"),
    "limb_movement": ("#1f77b4", "s", "limb movement"),
    "cramp": ("#9467bd", "D", "cramp"),
    "other": ("#7f7f7f", "o", "other event"),
}
#: Zoom window of the signal figure, s.
ZOOM_WINDOW_S = 10.0
#: EMG display band, Hz (surface-EMG band, SENIAM/ISEK).
EMG_BAND_HZ = (20.0, 450.0)
DPI = 110


@dataclass(frozen=True)
class ReportFigure:
    """One figure: ``name`` (file stem), ``title``, ``caption`` (plain words) and ``png`` bytes."""

    name: str
    title: str
    caption: str
    png: bytes


@dataclass
class ReportContent:
    """Everything the page shows; built by :func:`build_report`."""

    generated_at: str
    journal_path: str | None = None
    recording_name: str | None = None
    recording_summary: dict[str, Any] | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: dict[str, ReportFigure] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it is empty
    daily: pd.DataFrame | None = None
    episodes: pd.DataFrame | None = None
    assessment: dict[str, Any] | None = None
    night: NightView | None = None


@dataclass(frozen=True)
class NightView:
    """What the night view draws: the recording's limb movements on its timeline.

    ``onsets_s``/``durations_s`` per movement (s from the start; ``time_s`` of the events, the
    onset for accelerometer movements, the peak for EMG ones); ``series`` the (first, last)
    movement indices of each PLM series; ``duration_s`` the recording's length; ``start_time``
    ISO-8601 or None; the per-hour figures and ``source`` (``emg``/``acc``) from the summary.
    """

    onsets_s: np.ndarray
    durations_s: np.ndarray
    series: list[tuple[int, int]]
    duration_s: float
    start_time: str | None
    limb_movements_per_h: float | None
    plm_index_per_h: float | None
    source: str | None


# --------------------------------------------------------------------------- figure helpers


def _new_figure(width_in: float, height_in: float, nrows: int = 1, **kw: Any) -> tuple[MplFigure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False, **kw)[:, 0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, alpha=0.25, linewidth=0.6)
    return fig, axes


def _png(fig: MplFigure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def bandpass_for_display(x_uv: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = EMG_BAND_HZ) -> np.ndarray:
    """Zero-phase band-pass of EMG for display (shape as ``x_uv``; NaN gaps stay NaN).

    Zero-phase (``sosfiltfilt``) so that marked peaks line up with the trace; the detector's
    causal filter is not needed for a picture.
    """
    from scipy import signal

    x = np.asarray(x_uv, dtype=float)
    lo, hi = band_hz[0], min(band_hz[1], 0.45 * fs_hz)
    nan = ~np.isfinite(x)
    filled = np.where(nan, 0.0, x)
    if len(x) < 64:
        return filled - filled.mean() if len(x) else filled
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=fs_hz, output="sos")
    y = signal.sosfiltfilt(sos, filled, padlen=min(len(x) - 1, 3 * (2 * len(sos) + 1)))
    y[nan] = np.nan
    return y


def acc_dynamic_mg(acc_g: np.ndarray, fs_hz: float) -> np.ndarray:
    """Magnitude of acceleration with gravity and posture removed (1 Hz high-pass), in mg."""
    from scipy import signal

    a = np.asarray(acc_g, dtype=float)
    nan = ~np.isfinite(a).all(axis=1)
    filled = np.where(np.isfinite(a), a, 0.0)
    if len(a) >= 32:
        sos = signal.butter(2, 1.0, btype="highpass", fs=fs_hz, output="sos")
        filled = signal.sosfiltfilt(sos, filled, axis=0, padlen=min(len(a) - 1, 15))
    mag = np.linalg.norm(filled, axis=1) * 1000.0
    mag[nan] = np.nan
    return mag


def densest_window(times_s: np.ndarray, duration_s: float, window_s: float = ZOOM_WINDOW_S,
                   avoid_s: np.ndarray | None = None) -> tuple[float, float]:
    """``(start_s, end_s)`` of the ``window_s`` window holding the most events ``times_s``
    (less two per event in ``avoid_s``, e.g. movements that would dwarf the twitches), inside
    ``[0, duration_s]``; the start of the recording without events."""
    window_s = min(window_s, duration_s) if duration_s > 0 else window_s
    t = np.sort(np.asarray(times_s, dtype=float))
    t = t[np.isfinite(t)]
    if len(t) == 0:
        return 0.0, window_s
    avoid = np.sort(np.asarray(avoid_s if avoid_s is not None else [], dtype=float))
    # candidate windows start at each event; score = events inside - 2 * avoided inside
    ends = t + window_s
    n_in = np.searchsorted(t, ends) - np.arange(len(t))
    n_avoid = np.searchsorted(avoid, ends) - np.searchsorted(avoid, t)
    i = int(np.argmax(n_in - 2 * n_avoid))
    centre = (t[i] + t[i + n_in[i] - 1]) / 2.0
    start = float(np.clip(centre - window_s / 2.0, 0.0, max(duration_s - window_s, 0.0)))
    return start, start + window_s


def _envelope(t: np.ndarray, y: np.ndarray, bins: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max per bin so a long trace draws fast and still shows every spike."""
    n = len(y)
    if n <= 2 * bins:
        return t, y, y
    edges = np.linspace(0, n, bins + 1).astype(int)
    with np.errstate(invalid="ignore"):
        lo = np.array([np.nanmin(y[a:b]) if np.isfinite(y[a:b]).any() else np.nan
                       for a, b in zip(edges[:-1], edges[1:], strict=True)])
        hi = np.array([np.nanmax(y[a:b]) if np.isfinite(y[a:b]).any() else np.nan
                       for a, b in zip(edges[:-1], edges[1:], strict=True)])
    return t[edges[:-1]], lo, hi


def _mark_events(ax: Any, events: pd.DataFrame, t0: float, t1: float, y_mark: float) -> None:
    if events is None or len(events) == 0:
        return
    for kind, (colour, marker, label) in EVENT_STYLE.items():
        sel = events[(events["type"] == kind) & (events["time_s"] >= t0) & (events["time_s"] <= t1)]
        if len(sel):
            ax.scatter(sel["time_s"], np.full(len(sel), y_mark), marker=marker, s=28, color=colour,
                       label=f"{label} ({len(sel)})", zorder=3, clip_on=False)


def signal_figure(rec: Any, result: Any) -> ReportFigure:
    """The recording with detected events marked: an overview and a zoomed window.

    ``rec`` is a :class:`toetwitch.drivers.Recording`; ``result`` anything with an ``events`` DataFrame.
    EMG is band-passed 20-450 Hz; without EMG the accelerometer's dynamic magnitude (mg) is shown.
    """
    events = getattr(result, "events", None)
    events = events if events is not None else pd.DataFrame(columns=["time_s", "type"])
    if rec.emg_uv is not None:
        y = bandpass_for_display(rec.emg_uv, rec.fs_emg_hz)
        fs, unit, what = rec.fs_emg_hz, "µV", "EMG, band-passed 20-450 Hz"
    else:
        y = acc_dynamic_mg(rec.acc_g, rec.fs_acc_hz)
        fs, unit, what = rec.fs_acc_hz, "mg", "movement (acceleration without gravity)"
    t = np.arange(len(y)) / fs
    duration = len(y) / fs
    is_twitch = (events["type"] == "fasciculation").to_numpy() if len(events) else np.zeros(0, bool)
    all_t = events["time_s"].to_numpy(float) if len(events) else np.zeros(0)
    twitch_t = all_t[is_twitch]
    magnitude = rec.emg_uv is None  # a magnitude is never negative: no empty lower half
    # peak-to-peak of each twitch (EMG only): both panels make room for the twitches
    has_p2p = not magnitude and "peak_to_peak_uv" in events and len(twitch_t)
    twitch_p2p = events.loc[is_twitch, "peak_to_peak_uv"].to_numpy(float) if has_p2p else None
    z0, z1 = densest_window(twitch_t if len(twitch_t) else all_t, duration, avoid_s=all_t[~is_twitch])
    fig, (ax_all, ax_zoom) = _new_figure(10, 6.6, nrows=2)
    te, lo, hi = _envelope(t, y)
    if lo is hi:
        ax_all.plot(te, lo, color="#444", linewidth=0.5)
    else:
        ax_all.fill_between(te, lo, hi, color="#444", linewidth=0.3, step="post")
    finite = y[np.isfinite(y)]
    top = float(np.nanpercentile(np.abs(finite), 99.9)) * 1.15 if finite.size else 1.0
    if twitch_p2p is not None:
        # sparse twitches sit above the 99.9th percentile: make room for them, not for artefacts
        p2p = twitch_p2p[np.isfinite(twitch_p2p)]
        if p2p.size:
            top = min(max(top, 0.6 * float(p2p.max())), float(np.abs(finite).max()) * 1.05)
    top = top if top > 0 else 1.0
    ax_all.set_ylim(-0.05 * top if magnitude else -top, top * 1.15)
    _mark_events(ax_all, events, 0.0, duration, top * 1.05)
    ax_all.axvspan(z0, z1, color="#ffcc80", alpha=0.35, zorder=0, label="zoomed below")
    ax_all.set_xlim(0, duration)
    ax_all.set_title(f"Whole recording: {what}", loc="left", fontsize=11)
    ax_all.set_ylabel(unit)
    ax_all.set_xlabel("time from start (s)")
    handles, labels = ax_all.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=4, frameon=False)

    i0, i1 = int(z0 * fs), min(int(np.ceil(z1 * fs)) + 1, len(y))
    seg = y[i0:i1][np.isfinite(y[i0:i1])]
    ztop = float(np.abs(seg).max()) * 1.1 if seg.size and np.abs(seg).max() > 0 else top
    if twitch_p2p is not None:
        # scale to the twitches in view, not to a burst of movement that would flatten them
        in_view = twitch_p2p[(twitch_t >= z0) & (twitch_t <= z1)]
        in_view = in_view[np.isfinite(in_view)]
        if in_view.size:
            ztop = min(ztop, max(0.8 * float(in_view.max()), 5.0))
    ax_zoom.plot(t[i0:i1], y[i0:i1], color="#333", linewidth=0.6)
    ax_zoom.set_ylim(-0.05 * ztop if magnitude else -ztop, ztop * 1.2)  # larger activity is cut off
    _mark_events(ax_zoom, events, z0, z1, ztop * 1.1)
    ax_zoom.set_xlim(z0, z1)
    ax_zoom.set_title(f"{z1 - z0:.0f} s with the most twitches", loc="left", fontsize=11)
    ax_zoom.set_ylabel(unit)
    ax_zoom.set_xlabel("time from start (s)")
    n_tw = len(twitch_t)
    caption = (f"{n_tw} twitch{'es' if n_tw != 1 else ''} detected in {duration / 60:.1f} minutes. "
               "Each red triangle marks one detected twitch; the lower panel enlarges the shaded part.")
    return ReportFigure("signal", "The signal with detected twitches", caption, _png(fig))


#: Longer spans of days are drawn as a row of recorded days rather than a calendar axis.
MAX_CALENDAR_SPAN_DAYS = 45


def _day_axis(days: Any) -> tuple[np.ndarray, Any, bool]:
    """x positions for YYYY-MM-DD strings and a function that formats an axis for them.

    A calendar axis (gaps show days without recordings) while the span is at most
    :data:`MAX_CALENDAR_SPAN_DAYS`; beyond that one slot per distinct day, so a few recordings
    months apart do not shrink to hairlines. Returns ``(x, format_axis, is_calendar)``.
    """
    import matplotlib.dates as mdates

    d = np.array([np.datetime64(str(v)[:10], "D") for v in days])
    span = int((d.max() - d.min()).astype(int)) if len(d) else 0
    if span <= MAX_CALENDAR_SPAN_DAYS:
        def fmt(ax: Any) -> None:
            pad = np.timedelta64(1, "D")
            ax.set_xlim(d.min() - pad, d.max() + pad)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
            ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=10))
        return d, fmt, True
    uniq = np.unique(d)
    x = np.searchsorted(uniq, d).astype(float)

    def fmt_slots(ax: Any) -> None:
        step = max(1, int(np.ceil(len(uniq) / 12)))
        ticks = np.arange(0, len(uniq), step)
        ax.set_xticks(ticks, [str(uniq[i].astype("datetime64[D]").item().strftime("%d %b %y")) for i in ticks],
                      fontsize=8)
        ax.set_xlim(-0.7, len(uniq) - 0.3)
    return x, fmt_slots, False


def daily_figure(daily: pd.DataFrame) -> ReportFigure | None:
    """Bars of twitches per recorded day and the rate at rest (dots, right axis)."""
    rec = daily[daily["recordings"] > 0]
    if rec.empty:
        return None
    x, format_axis, calendar = _day_axis(rec["day"])
    fig, (ax,) = _new_figure(10, 3.6)
    bars = ax.bar(x, rec["twitches"], width=0.8, color="#e57373", label="twitches that day")
    if len(rec) <= 31:
        ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_ylabel("twitches per day")
    ax2 = ax.twinx()
    ax2.plot(x, rec["rate_per_min_rest"], "o-" if calendar else "o", color="#37474f", markersize=4,
             linewidth=1, label="per minute at rest")
    ax2.set_ylabel("twitches per minute at rest")
    ax2.set_ylim(bottom=0)
    ax2.spines[["top"]].set_visible(False)
    format_axis(ax)
    ax.set_title("Twitches per day", loc="left", fontsize=11)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, frameon=False)
    caption = ("Bars: twitches counted on each day with a recording (a session counts on the day it "
               "started). Dots: twitches per minute while resting, which does not depend on how long you "
               "recorded. " + ("Days without bars had no recording." if calendar else
                               "Only days with a recording are shown, side by side."))
    return ReportFigure("twitches_per_day", "Twitches per day", caption, _png(fig))


def time_of_day_cells(journal: Journal, max_days: int = 31) -> pd.DataFrame:
    """Twitches per calendar date and clock hour, NaN where nothing was recorded.

    Sessions whose clock time was only estimated from a file's modification time are left out:
    their hours would be guesses.

    Returns a DataFrame indexed by date (YYYY-MM-DD, the ``max_days`` latest with a
    recording), 24 columns 0..23.
    """
    sessions = journal.query("SELECT start_time, duration_s FROM sessions"
                             " WHERE start_time_source != 'file_mtime'")
    twitches = journal.query(
        "SELECT substr(t.wall_time, 1, 10), t.hour, count(*) FROM twitches t"
        " JOIN sessions s ON s.id = t.session_id WHERE t.type = 'fasciculation'"
        " AND t.wall_time IS NOT NULL AND s.start_time_source != 'file_mtime' GROUP BY 1, 2")
    covered: set[tuple[str, int]] = set()
    for start_text, duration_s in sessions:
        start = datetime.fromisoformat(start_text)
        end = start + timedelta(seconds=float(duration_s or 0.0))
        slot = start.replace(minute=0, second=0, microsecond=0)
        while slot < end or slot == start.replace(minute=0, second=0, microsecond=0):
            covered.add((slot.date().isoformat(), slot.hour))
            slot += timedelta(hours=1)
    days = sorted({d for d, _ in covered} | {d for d, _, _ in twitches})[-max_days:]
    cells = pd.DataFrame(np.nan, index=days, columns=range(24))
    for d, h in covered:
        if d in cells.index:
            cells.loc[d, h] = 0.0
    for d, h, n in twitches:
        if d in cells.index:
            cells.loc[d, int(h)] = float(n)
    return cells


def time_of_day_figure(cells: pd.DataFrame) -> ReportFigure | None:
    """Heatmap: rows = dates, columns = clock hours, colour = twitches; grey = not recorded."""
    if cells.empty or not np.isfinite(cells.to_numpy()).any():
        return None
    from matplotlib import colormaps

    data = cells.to_numpy(dtype=float)
    cmap = colormaps["YlOrRd"].with_extremes(bad="#e0e0e0")
    fig, (ax,) = _new_figure(10, 1.6 + 0.28 * len(cells))
    ax.grid(False)
    vmax = max(float(np.nanmax(data)), 1.0)
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap=cmap, vmin=0, vmax=vmax,
                   interpolation="nearest")
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}:00" for h in range(0, 24, 2)], fontsize=8)
    ax.set_yticks(range(len(cells)), [date.fromisoformat(d).strftime("%a %d %b") for d in cells.index],
                  fontsize=8)
    ax.set_xlabel("time of day")
    ax.set_title("When twitches happen", loc="left", fontsize=11)
    fig.colorbar(im, ax=ax, label="twitches in that hour", shrink=0.9)
    caption = ("Each row is a date, each column an hour of the day; darker means more twitches. "
               "Grey hours were not recorded, so they say nothing either way.")
    return ReportFigure("time_of_day", "Time of day", caption, _png(fig))


def journal_episodes(journal: Journal) -> pd.DataFrame:
    """The journal's episodes with ``time_estimated`` (the session's clock came from a file's
    modification time)."""
    eps = journal.read_table("episodes")
    rows = journal.query("SELECT id, start_time_source = 'file_mtime' FROM sessions")
    estimated = {sid: bool(flag) for sid, flag in rows}
    eps["time_estimated"] = [estimated.get(sid, False) for sid in eps["session_id"]]
    return eps


def episodes_figure(episodes: pd.DataFrame) -> ReportFigure | None:
    """Episodes by date (x) and time of day (y), dot size ~ twitches, colour ~ rate per minute.

    Episodes whose time was estimated (``time_estimated`` true) are left out.
    """
    ep = episodes.dropna(subset=["wall_start"]) if "wall_start" in episodes else episodes.iloc[0:0]
    if "time_estimated" in ep:
        ep = ep[~ep["time_estimated"].astype(bool)]
    if ep.empty:
        return None
    wall = pd.to_datetime(ep["wall_start"])
    x, format_axis, _ = _day_axis(wall.dt.strftime("%Y-%m-%d"))
    hour = (wall.dt.hour + wall.dt.minute / 60.0).to_numpy()
    tw = ep["twitches"].fillna(1).to_numpy(float)
    rate = ep["rate_per_min"].fillna(0).to_numpy(float)
    fig, (ax,) = _new_figure(10, 3.4)
    sc = ax.scatter(x, hour, s=20 + 12 * np.sqrt(tw), c=rate, cmap="viridis", alpha=0.8,
                    edgecolors="white", linewidths=0.5)
    fig.colorbar(sc, ax=ax, label="twitches per minute in the episode", shrink=0.9)
    ax.set_ylim(24, 0)
    ax.set_yticks(range(0, 25, 4), [f"{h:02d}:00" for h in range(0, 25, 4)])
    format_axis(ax)
    ax.set_ylabel("time of day")
    ax.set_title("Episodes (bursts of twitches)", loc="left", fontsize=11)
    caption = ("Each dot is one episode, a burst of twitches close together: when it started, how many "
               "twitches it held (dot size) and how fast they came (colour).")
    return ReportFigure("episodes", "Episodes", caption, _png(fig))


def causes_figure(assessment: dict[str, Any]) -> ReportFigure | None:
    """Horizontal bars of the assessment's causes (most likely on top)."""
    causes = [c for c in (assessment.get("causes") or []) if c.get("probability") is not None][:8]
    if not causes:
        return None
    labels = [_cause_name(c["cause"]) for c in causes][::-1]
    p = np.array([float(c["probability"]) for c in causes])[::-1] * 100
    fig, (ax,) = _new_figure(8, 0.9 + 0.42 * len(causes))
    bars = ax.barh(labels, p, color="#5c6bc0")
    ax.bar_label(bars, [f"{v:.0f}%" for v in p], fontsize=8, padding=3)
    ax.set_xlim(0, max(100.0, float(p.max()) * 1.15))
    ax.set_xlabel("how likely, given your answers and recordings (%)")
    ax.set_title("Likely causes", loc="left", fontsize=11)
    caption = "The model's estimate of each cause; it is a guide for talking to a doctor, not a diagnosis."
    return ReportFigure("causes", "Likely causes", caption, _png(fig))


def night_view(result: Any) -> NightView | None:
    """The night view of an analysis result, or None when it holds no limb movement."""
    from toetwitch.pipeline.detect.episodes import plm_series
    from toetwitch.pipeline.detect.stream import event_onsets_s

    events = result.events
    lms = events[events["type"] == "limb_movement"] if len(events) else events
    if not len(lms):
        return None
    s = dict(getattr(result, "summary", {}) or {})
    cfg = s.get("config") or {}
    t = event_onsets_s(lms)  # onsets (AASM)
    d = lms["duration_ms"].to_numpy(float) / 1000.0 if "duration_ms" in lms else np.zeros(len(t))
    interval = tuple(cfg.get("plm_interval_s", (5.0, 90.0)))
    series = plm_series(t, (float(interval[0]), float(interval[1])), int(cfg.get("plm_min_movements", 4)))
    dur = float(s.get("duration_s") or 0.0)
    return NightView(t, np.nan_to_num(d), series, max(dur, float(np.max(t + np.nan_to_num(d)))),
                     s.get("start_time"), s.get("limb_movements_per_h"), s.get("plm_index_per_h"),
                     s.get("limb_movement_source"))


def _tick_step_s(duration_s: float) -> float:
    """A round axis step giving 4-12 ticks over ``duration_s``."""
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800):
        if duration_s / step <= 12:
            return float(step)
    return 21600.0


def night_view_svg(view: NightView, width: int = 940, height: int = 130) -> str:
    """The timeline as inline SVG: one bar per limb movement (``class="lm"``, ``lm plm`` when
    it belongs to a PLM series), a band behind each series (``class="plm-series"``), clock
    times (or elapsed time) along the bottom."""
    left, right, top, bar_h = 28, 28, 22, 56
    span = max(view.duration_s, 1e-9)
    x = lambda t: left + (width - left - right) * float(t) / span  # noqa: E731
    in_series = np.zeros(len(view.onsets_s), bool)
    parts = [f'<svg id="night-view" xmlns="http://www.w3.org/2000/svg" width="100%" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="limb movements over the recording">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{bar_h}" fill="#f5f5f5"/>',
             f'<text x="{left}" y="11" font-size="11" fill="#616161">'
             f'{"clock time" if _start_of(view) else "time from the start"}</text>']
    for a, b in view.series:
        in_series[a: b + 1] = True
        x0 = x(view.onsets_s[a])
        x1 = x(view.onsets_s[b] + view.durations_s[b])
        parts.append(f'<rect class="plm-series" x="{x0:.1f}" y="{top - 8}" width="{max(x1 - x0, 2):.1f}" '
                     f'height="{bar_h + 16}" fill="#ffe0b2" rx="3"><title>periodic series: '
                     f'{b - a + 1} movements</title></rect>')
    for k, (t, d) in enumerate(zip(view.onsets_s.tolist(), view.durations_s.tolist(), strict=True)):
        cls, colour = ("lm plm", "#e65100") if in_series[k] else ("lm", "#1f77b4")
        parts.append(f'<rect class="{cls}" x="{x(t):.1f}" y="{top}" width="{max(x(t + d) - x(t), 1.5):.1f}" '
                     f'height="{bar_h}" fill="{colour}"><title>{_e(_clock(view, t))}: limb movement, '
                     f'{d:.1f} s</title></rect>')
    step = _tick_step_s(span)
    for t in np.arange(0.0, span + 1e-9, step):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + bar_h}" y2="{top + bar_h + 5}" '
                     f'stroke="#757575"/><text x="{x(t):.1f}" y="{top + bar_h + 18}" font-size="11" '
                     f'text-anchor="middle" fill="#424242">{_e(_clock(view, float(t)))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _start_of(view: NightView) -> datetime | None:
    try:
        return datetime.fromisoformat(view.start_time) if view.start_time else None
    except ValueError:
        return None


def _clock(view: NightView, t_s: float) -> str:
    """Clock time ``HH:MM`` when the start is known, else the time from the start (``12 min``,
    ``1 h 30``)."""
    start = _start_of(view)
    if start is not None:
        return (start + timedelta(seconds=t_s)).strftime("%H:%M")
    if t_s < 3600 and view.duration_s < 3 * 3600:
        return f"{t_s / 60:.0f} min" if t_s >= 60 or t_s == 0 else f"{t_s:.0f} s"
    h, m = int(t_s // 3600), int(t_s % 3600 // 60)
    return f"{h} h {m:02d}" if m else f"{h} h"


def _night_view_html(content: ReportContent) -> str:
    view = content.night
    if view is None:
        return ""
    from toetwitch.pipeline.present.capability import ACTIGRAPHY_CAVEAT

    n = len(view.onsets_s)
    plms = sum(b - a + 1 for a, b in view.series)
    figures = [("limb movements", str(n)), ("periodic series", str(len(view.series))),
               ("movements in a series", str(plms))]
    if view.limb_movements_per_h is not None:
        figures.append(("limb movements per hour", f"{float(view.limb_movements_per_h):.1f}"))
    if view.plm_index_per_h is not None:
        figures.append(("PLM index per hour", f"{float(view.plm_index_per_h):.1f}"))
    facts = "".join(f'<li><span class="v">{_e(v)}</span><span class="k">{_e(k)}</span></li>'
                    for k, v in figures)
    by = {"acc": "the accelerometer", "emg": "the EMG"}.get(view.source or "", "the sensor")
    caption = (f"The whole recording from left to right; each bar is a limb movement found by {by} "
               "(0.5-10 s), orange ones belong to a periodic series (4 or more, 5-90 s apart onset "
               "to onset, as the AASM scores periodic limb movements). The PLM index counts the "
               "movements in a series per hour of usable recording, not of sleep.")
    note = (f'<p class="note" id="night-caveat">{_e(ACTIGRAPHY_CAVEAT[0].upper() + ACTIGRAPHY_CAVEAT[1:])}.</p>'
            if view.source == "acc" else "")
    return (f'<section id="night"><h2>Night view: limb movements</h2><ul class="facts" id="night-facts">'
            f"{facts}</ul><figure>{night_view_svg(view)}<figcaption>{_e(caption)}</figcaption></figure>"
            f"{note}</section>")


# --------------------------------------------------------------------------- assembling


def build_report(journal: Journal | None, rec: Any = None, result: Any = None, *,
                 today: date | None = None, days: int | None = None) -> ReportContent:
    """Gather the report's facts and figures from a journal and/or one analysed recording.

    Either may be absent (``journal`` None when no journal exists yet; ``rec``/``result`` None
    without ``--recording``); each empty section gets a note saying why.
    """
    from toetwitch.pipeline.store.queries import daily_table, trend_of

    today = today or date.today()
    content = ReportContent(generated_at=datetime.now().strftime("%d %B %Y, %H:%M"))
    if rec is not None and result is not None:
        content.recording_name = getattr(rec, "name", None)
        content.recording_summary = dict(getattr(result, "summary", {}) or {})
        content.figures["signal"] = signal_figure(rec, result)
        content.night = night_view(result)
        events = result.events
        n = int((events["type"] == "fasciculation").sum()) if len(events) else 0
        content.facts.append(("Twitches in this recording", str(n)))
        dur = rec.duration_s
        content.facts.append(("Recording length", f"{dur / 60:.1f} min"))
        rate = content.recording_summary.get("twitches_per_min_rest")
        if rate is not None and np.isfinite(float(rate)):
            content.facts.append(("Per minute at rest (this recording)", f"{float(rate):.2f}"))
    else:
        content.notes["signal"] = ("No recording chosen: run 'toetwitch report --recording FILE ...' "
                                   "to see a signal with its twitches marked.")
    if journal is None:
        for section in ("twitches_per_day", "time_of_day", "episodes", "assessment"):
            content.notes[section] = "No journal yet: analyse recordings to build up a history."
        return content

    from toetwitch.pipeline.store.features import longitudinal_features

    content.journal_path = str(journal.path)
    daily = daily_table(journal, days=days, today=today)
    content.daily = daily
    recorded = daily[daily["recordings"] > 0]
    feats = longitudinal_features(journal.path, today=today)
    if not recorded.empty:
        slope, words = trend_of(recorded)
        content.facts += [
            ("Days recorded", str(len(recorded))),
            ("Twitches recorded in all", str(int(recorded["twitches"].sum()))),
            ("Trend (rate at rest)", words if words == "not enough days"
             else f"{words} ({slope:+.2f} per min, per day)"),
        ]
    if feats["days_since_first_twitch"] is not None:
        content.facts += [
            ("First twitch recorded", f"{feats['days_since_first_twitch']} days ago"),
            ("Days with twitching, last 14", str(feats["days_with_twitching_last_14"])),
        ]
    fig = daily_figure(daily)
    if fig:
        content.figures[fig.name] = fig
    else:
        content.notes["twitches_per_day"] = "No recordings in the journal yet."
    fig = time_of_day_figure(time_of_day_cells(journal))
    if fig:
        content.figures[fig.name] = fig
    else:
        content.notes["time_of_day"] = "No recordings with a known time of day yet."
    eps = journal_episodes(journal)
    if days is not None and not eps.empty:
        first = (today - timedelta(days=days - 1)).isoformat()
        eps = eps[eps["day"] >= first]
    content.episodes = eps
    fig = episodes_figure(eps)
    if fig:
        content.figures[fig.name] = fig
    else:
        content.notes["episodes"] = "No episodes recorded yet."
    content.assessment = journal.latest_assessment()
    if content.assessment:
        fig = causes_figure(content.assessment)
        if fig:
            content.figures[fig.name] = fig
    else:
        content.notes["assessment"] = ("No assessment yet: run 'toetwitch assess' to weigh likely causes "
                                       "and see when to see a doctor.")
    return content





def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(fig: ReportFigure) -> str:
    b64 = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{_e(fig.name)}"><img alt="{_e(fig.title)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _section(content: ReportContent, key: str, heading: str, extra: str = "") -> str:
    body = _img(content.figures[key]) if key in content.figures else ""
    if key in content.notes:
        body += f'<p class="note">{_e(content.notes[key])}</p>'
    return f'<section id="{_e(key)}"><h2>{_e(heading)}</h2>{body}{extra}</section>'


def _daily_table_html(daily: pd.DataFrame | None, max_rows: int = 14) -> str:
    if daily is None or daily.empty:
        return ""
    rows = []
    for r in daily.tail(max_rows).iloc[::-1].to_dict("records"):
        rec = r["recordings"] > 0
        rate = r["rate_per_min_rest"]
        day = date.fromisoformat(r["day"]).strftime("%a %d %b %Y")
        recorded = f"{r['recorded_min']:.0f} min" if rec else "-"
        twitches = str(r["twitches"]) if rec else "-"
        rate_text = "-" if not rec or not np.isfinite(rate) else f"{rate:.2f}"
        episodes = str(r["episodes"]) if rec else "-"
        esc = r["escalation"] if isinstance(r["escalation"], str) else ""
        level = _level_title(esc) if esc else ""
        rows.append(f"<tr><td>{_e(day)}</td><td>{_e(recorded)}</td><td class='tw'>{_e(twitches)}</td>"
                    f"<td>{_e(rate_text)}</td><td>{_e(episodes)}</td><td>{_e(level)}</td></tr>")
    return ("<table id='daily-table'><thead><tr><th>day</th><th>recorded</th><th>twitches</th>"
            "<th>per min at rest</th><th>episodes</th><th>assessment</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _episodes_table_html(eps: pd.DataFrame | None, max_rows: int = 10) -> str:
    if eps is None or eps.empty:
        return ""
    eps = eps.sort_values("wall_start", na_position="first").tail(max_rows).iloc[::-1]
    rows = []
    any_estimated = False
    for r in eps.to_dict("records"):
        when = datetime.fromisoformat(r["wall_start"]).strftime("%a %d %b, %H:%M") if r["wall_start"] else "-"
        if r.get("time_estimated") and r["wall_start"]:
            when += " *"
            any_estimated = True
        med = r.get("median_peak_to_peak_uv")
        length = f"{(r['duration_s'] or 0):.0f} s"
        per_min = f"{(r['rate_per_min'] or 0):.1f}"
        size = "-" if med is None or not np.isfinite(med) else f"{med:.0f} µV"
        rows.append(f"<tr><td>{_e(when)}</td><td>{_e(length)}</td><td>{_e(r['twitches'])}</td>"
                    f"<td>{_e(per_min)}</td><td>{_e(size)}</td></tr>")
    return ("<p>The latest episodes:</p><table id='episodes-table'><thead><tr><th>started</th><th>length</th>"
            "<th>twitches</th><th>per minute</th><th>typical size</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>"
            + ("<p class='note'>* No clock time in the recording: the time is estimated from the file's "
               "date, so it is left out of the time-of-day pictures.</p>" if any_estimated else ""))


def _assessment_html(content: ReportContent) -> str:
    a = content.assessment
    parts = ['<section id="assessment"><h2>Latest assessment</h2>']
    if not a:
        parts.append(f'<p class="note">{_e(content.notes.get("assessment", ""))}</p></section>')
        return "".join(parts)
    esc = a.get("escalation") or {}
    level = esc.get("level")
    from toetwitch.models import level_words

    title, words = level_words().get(level, (str(level or "No level given"), ""))
    colour = LEVEL_COLOURS.get(level, "#546e7a")
    when = a.get("recorded_at")
    if when:
        parts.append(f"<p class='sub'>Made on {_e(datetime.fromisoformat(when).strftime('%d %B %Y, %H:%M'))}.</p>")
    parts.append(f'<div class="level" style="background:{colour}"><strong>{_e(title)}</strong>{_e(words)}</div>')
    reasons = [r.get("message") for r in esc.get("reasons") or [] if isinstance(r, dict) and r.get("message")]
    if reasons:
        parts.append("<p>Why:</p><ul>" + "".join(f"<li>{_e(m)}</li>" for m in reasons) + "</ul>")
    if "causes" in content.figures:
        parts.append(_img(content.figures["causes"]))
    causes = a.get("causes") or []
    if causes:
        items = []
        for c in causes[:5]:
            why = "; ".join(str(w) for w in (c.get("why") or [])[:3])
            p = c.get("probability")
            items.append(f"<li><strong>{_e(_cause_name(c.get('cause')))}</strong>"
                         + (f" ({float(p) * 100:.0f}%)" if p is not None else "")
                         + (f": {_e(why)}" if why else "") + "</li>")
        parts.append("<ol id='causes-list'>" + "".join(items) + "</ol>")
    advice = a.get("advice") or []
    if advice:
        parts.append("<h3>What may help</h3><ul id='advice'>"
                     + "".join(f"<li>{_e(x)}</li>" for x in advice) + "</ul>")
    unanswered = a.get("unanswered_red_flags") or []
    if unanswered:
        parts.append("<p>Questions not answered that could change this advice:</p><ul>"
                     + "".join(f"<li>{_e(x)}</li>" for x in unanswered) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


def _capability_html(content: ReportContent) -> str:
    """What an accelerometer alone can count, for a recording without EMG (one wording:
    :mod:`toetwitch.pipeline.present.capability`)."""
    from toetwitch.pipeline.present.capability import summary_capability_lines

    lines = summary_capability_lines(content.recording_summary or {})
    return "".join(f'<p class="note capability">{_e(line[0].upper() + line[1:])}.</p>' for line in lines)


def render_html(content: ReportContent) -> str:
    """The whole page as one string: inline CSS, inline images, no scripts, no network."""
    disclaimer = (content.assessment or {}).get("disclaimer") or DEFAULT_DISCLAIMER
    facts = "".join(f'<li><span class="v">{_e(v)}</span><span class="k">{_e(k)}</span></li>'
                    for k, v in content.facts)
    source = []
    if content.recording_name:
        source.append(f"recording <strong>{_e(content.recording_name)}</strong>")
    if content.journal_path:
        source.append(f"journal {_e(content.journal_path)}")
    sections = [
        _section(content, "signal", "The signal with detected twitches", _capability_html(content)) if (
            "signal" in content.figures or "signal" in content.notes) else "",
        _night_view_html(content),
        _section(content, "twitches_per_day", "Twitches per day", _daily_table_html(content.daily)),
        _section(content, "time_of_day", "Time of day"),
        _section(content, "episodes", "Episodes", _episodes_table_html(content.episodes)),
        _assessment_html(content),
    ]
    from importlib import resources

    template = resources.files("toetwitch.pipeline.present").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return string.Template(template).substitute(
        generated_at=_e(content.generated_at),
        source=" from " + ", ".join(source) if source else "",
        disclaimer=_e(disclaimer),
        note=_e(REPORT_NOTE),
        facts=facts or '<li class="note">Nothing recorded yet.</li>',
        sections="".join(sections),
    )


def write_report(content: ReportContent, html_path: Path | None, png_dir: Path | None = None) -> list[Path]:
    """Write the page to ``html_path`` (atomically) and each figure to ``png_dir/NAME.png``.

    Returns the paths written.
    """
    written: list[Path] = []
    try:
        if html_path is not None:
            html_path = Path(html_path)
            html_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = html_path.with_name(f".{html_path.name}.tmp")
            tmp.write_text(render_html(content), encoding="utf-8")
            os.replace(tmp, html_path)
            written.append(html_path)
        if png_dir is not None:
            png_dir = Path(png_dir)
            png_dir.mkdir(parents=True, exist_ok=True)
            for fig in content.figures.values():
                p = png_dir / f"{fig.name}.png"
                p.write_bytes(fig.png)
                written.append(p)
    except OSError as exc:
        raise UserError(f"cannot write the report: {exc.strerror or exc} ({exc.filename})", 1) from exc
    return written
