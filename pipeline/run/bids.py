"""BIDS-style events (docs/contracts.md §8): ``events.tsv`` and its ``events.json`` sidecar.

BIDS' task-events files are tab-separated with ``onset`` and ``duration`` in seconds from the
start of the recording first, then ``trial_type`` and any further columns, each described in a
JSON sidecar (BIDS specification, "Task events"). MNE reads them with ``pandas.read_csv(...,
sep="\\t")`` and builds ``mne.Annotations(onset, duration, trial_type)``; so do EEGLAB's and
FieldTrip's BIDS importers.

* ``onset`` is the event's ``start_s`` (docs/contracts.md §9): where a limb movement or cramp
  begins (the start of its EMG activity span, or the accelerometer movement's onset); a twitch
  lasts milliseconds, so its onset is its peak (``time_s``). Events files written before
  ``start_s`` existed fall back to ``time_s``.
* ``duration`` is ``duration_ms`` / 1000: the potential's length for a twitch (10 % of its peak),
  the movement's length for a limb movement or cramp. ``n/a`` when unknown.
* ``trial_type`` is the event ``type`` (``fasciculation``, ``limb_movement``, ``cramp``, ``other``).
* then every other events column, unchanged (``time_s`` included, so a row keeps the contracted
  time), and ``onset_datetime`` when the recording's start time is known: the wall-clock time
  of the event (ISO-8601, the recorder's local time, like EDF's start time, which has no zone).

Missing values are written ``n/a`` as BIDS asks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

#: Leading columns, in BIDS order.
BIDS_COLUMNS = ("onset", "duration", "trial_type")

#: Descriptions and units of the columns (BIDS sidecar "LongName"/"Description"/"Units").
_COLUMN_DOCS: dict[str, dict[str, Any]] = {
    "onset": {"LongName": "Event onset",
              "Description": "Seconds from the start of the recording to the event's onset: "
                             "where a limb movement or cramp begins (same as start_s); for a "
                             "twitch, which lasts milliseconds, the peak of its EMG potential (of "
                             "the accelerometer transient when there is no EMG).",
              "Units": "s"},
    "duration": {"LongName": "Event duration",
                 "Description": "Length of the potential (above 10 % of its peak) for a twitch; "
                                "of the movement or cramp otherwise.",
                 "Units": "s"},
    "trial_type": {"LongName": "Event type",
                   "Description": "What the event is. Twitch counts and rates mean fasciculation rows.",
                   "Levels": {"fasciculation": "a single muscle twitch",
                              "limb_movement": "a movement of 0.5-10 s, e.g. a periodic limb "
                                               "movement in sleep (AASM rules)",
                              "cramp": "a sustained involuntary contraction",
                              "other": "an event of no other type"}},
    "time_s": {"Description": "The event's time as in events.csv (seconds from the start): a "
                              "twitch's peak; a limb movement's or cramp's envelope peak (EMG) or "
                              "onset (accelerometer alone).",
               "Units": "s"},
    "start_s": {"Description": "Where the event begins, as in events.csv (seconds from the "
                               "start): the onset of a limb movement or cramp; a twitch's peak.",
                "Units": "s"},
    "source": {"Description": "Which stream found the event.",
               "Levels": {"emg": "EMG only", "acc": "accelerometer only (no EMG)",
                          "emg+acc": "EMG, corroborated by the accelerometer"}},
    "type": {"Description": "Same as trial_type (the events.csv column)."},
    "duration_ms": {"Description": "Same as duration, in milliseconds.", "Units": "ms"},
    "peak_to_peak_uv": {"Description": "Peak-to-peak size of the EMG potential.", "Units": "uV"},
    "phases": {"Description": "Phases of the EMG potential (count)."},
    "snr": {"Description": "Half the peak-to-peak size over the noise level (sigma)."},
    "acc_peak_mg": {"Description": "Largest accelerometer deflection near the event.",
                    "Units": "mg"},
    "doublet": {"Description": "The same motor unit fired twice within 110 ms.",
                "Levels": {"True": "a doublet", "False": "a single discharge"}},
    "envelope_peak_uv": {"Description": "For movements and cramps: peak of the 50 ms RMS "
                                        "envelope of the EMG.", "Units": "uV"},
    "onset_datetime": {"Description": "Wall-clock time of the event (ISO-8601): the recording's "
                                      "start time plus onset. Local time of the recorder; EDF "
                                      "start times carry no time zone."},
}


def _start(start_time: str | None) -> datetime | None:
    if not start_time:
        return None
    try:
        return datetime.fromisoformat(str(start_time))
    except ValueError:
        return None


def events_bids(events: pd.DataFrame, start_time: str | None = None) -> pd.DataFrame:
    """The events table in BIDS order: ``onset``, ``duration`` (s), ``trial_type``, then the other
    columns of ``events`` and, when ``start_time`` (ISO-8601) is known, ``onset_datetime``.

    ``events``: an events frame as in docs/contracts.md §2 (one row per event, ``time_s`` in s,
    ``duration_ms`` in ms). Returns a new frame with as many rows.
    """
    from toetwitch.pipeline.detect.stream import event_onsets_s

    onset = event_onsets_s(events)
    duration = (events["duration_ms"].to_numpy(dtype=float) / 1000.0
                if "duration_ms" in events else np.full(len(events), np.nan))
    out = pd.DataFrame({"onset": onset, "duration": duration,
                        "trial_type": events["type"].astype(object).to_numpy()})
    for c in events.columns:
        out[c] = events[c].to_numpy()
    t0 = _start(start_time)
    if t0 is not None:
        # milliseconds: the detector's timing is a sample (0.5-1 ms at EMG rates)
        out["onset_datetime"] = [(t0 + timedelta(seconds=float(t))).isoformat(timespec="milliseconds")
                                 for t in onset]
    return out


def events_tsv_text(events: pd.DataFrame, start_time: str | None = None) -> str:
    """``events.tsv`` content: tab-separated, header row, ``n/a`` for missing values."""
    return events_bids(events, start_time).to_csv(sep="\t", index=False, na_rep="n/a",
                                                  float_format="%.6g", lineterminator="\n")


def events_sidecar(columns: list[str] | tuple[str, ...], start_time: str | None = None,
                   acc_limb_movements: bool = False) -> dict[str, Any]:
    """The ``events.json`` sidecar: one entry per column of ``events.tsv``, plus where the
    events come from. Unknown columns get a plain description so that every column is listed.
    ``acc_limb_movements``: the events hold limb movements found by the accelerometer alone
    (their onset is the movement's start)."""
    side: dict[str, Any] = {}
    for c in columns:
        side[c] = dict(_COLUMN_DOCS.get(c, {"Description": f"toetwitch column {c!r} (see docs)."}))
    if acc_limb_movements and "time_s" in side:
        side["time_s"]["Description"] += (" Here limb movements were found by the accelerometer "
                                          "alone (source acc): their time_s is their onset.")
    if "onset_datetime" in side and start_time:
        side["onset_datetime"]["Description"] += f" Recording start: {start_time}."
    return side


def bids_columns(events: pd.DataFrame, start_time: str | None = None) -> list[str]:
    """The columns :func:`events_bids` gives for these events."""
    cols = [*BIDS_COLUMNS, *events.columns]
    if _start(start_time) is not None:
        cols.append("onset_datetime")
    return cols
