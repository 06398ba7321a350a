"""``analyse --write-edf`` (docs/contracts.md §8): an EDF+ copy of a recording with its events as
EDF+ annotations, labelled so that EDF-reading tools type the channels.

Channel labels follow the EDF+ convention "type, space, name" (EDF+ specification, "standard
texts": ``EEG Fpz-Cz``, ``EMG RAT``): ``EMG EMG`` for the EMG and ``MISC ACC X``/``Y``/``Z`` for the
accelerometer. MNE-Python applies that convention when asked: ``mne.io.read_raw_edf(path,
infer_types=True)`` types the first as ``emg`` (channel ``EMG``) and the axes as ``misc``
(``ACC X`` ...); MNE has no accelerometer type, ``misc`` is its type for such signals. With
MNE's default ``infer_types=False`` every EDF channel reads as EEG whatever its label; no label
can change that. EDFbrowser shows the labels and physical units as written. toetwitch's own
reader accepts these labels (``EMG`` in the label; ``ACC X/Y/Z``), so the copy analyses to the
same events.

Every event becomes one annotation: onset = ``time_s``, duration = ``duration_ms`` / 1000,
description = the event type (``fasciculation``, ``limb_movement``, ``cramp``). Signals are
stored in µV and g at the recording's own rates, 16-bit (EDF); lost samples (NaN) are written
as 0, which EDF cannot tell from a real zero, so the gaps are also annotated
(``signal lost``). Memory stays bounded: the source is read in chunks twice (once for the
physical range each channel's header needs, once to write).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Labels (EDF+ "type name", at most 16 characters).
EMG_LABEL = "EMG EMG"
ACC_LABELS = ("MISC ACC X", "MISC ACC Y", "MISC ACC Z")
#: Description of an annotation marking lost samples (NaN in the source, 0 in the EDF).
LOST_LABEL = "signal lost"
#: EDF stores 16-bit samples.
_DMAX = 2**15 - 1


def _header_number(x: float) -> float:
    from toetwitch.drivers.readers.edf import _header_number as h

    return h(x)


def _lost_spans(x: np.ndarray, start: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges of NaN runs in ``x`` (any shape (n,) or (n, 3)), offset by start."""
    nan = np.isnan(x) if x.ndim == 1 else np.isnan(x).any(axis=1)
    if not nan.any():
        return []
    d = np.diff(np.concatenate([[0], nan.view(np.int8), [0]]))
    return [(start + int(a), start + int(b)) for a, b in zip(np.flatnonzero(d == 1),
                                                            np.flatnonzero(d == -1), strict=True)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def write_annotated_edf(source_path: str | Path, events: pd.DataFrame, out_path: str | Path,
                        chunk_s: float = 60.0) -> Path:
    """Write ``out_path``: the recording at ``source_path`` (any format of docs/contracts.md §1) as EDF+,
    with ``events`` (an events frame, docs/contracts.md §2) as annotations.

    The file is written under a temporary name and renamed. Raises ``ValueError`` when a rate
    cannot be stored in EDF records (no record length of at most 60 s holds a whole number of
    its samples).
    """
    import pyedflib

    from toetwitch.drivers.readers import ReaderWarning, open_recording

    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        with warnings.catch_warnings():
            # the analysis already reported what the reader repaired (gaps, a cut-off last line)
            warnings.simplefilter("ignore", ReaderWarning)
            _write(source_path, events, tmp, chunk_s, pyedflib, open_recording)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)
    return out_path


def _write(source_path: str | Path, events: pd.DataFrame, tmp: Path, chunk_s: float,
           pyedflib: Any, open_recording: Any) -> None:
    from toetwitch.pipeline.detect.stream import event_onsets_s

    with open_recording(source_path) as src:
        info = src.info
        # pass 1: the physical range of each channel (EDF headers need it before any sample)
        peak = np.zeros(4)
        for ch in src.iter_chunks(chunk_s):
            if ch.emg_uv is not None and len(ch.emg_uv) and np.isfinite(ch.emg_uv).any():
                peak[0] = max(peak[0], float(np.nanmax(np.abs(ch.emg_uv))))
            if ch.acc_g is not None and len(ch.acc_g) and np.isfinite(ch.acc_g).any():
                peak[1:] = np.maximum(peak[1:], np.nanmax(np.abs(ch.acc_g), axis=0))
        streams: list[tuple[str, str, float, int]] = []  # label, unit, fs, index into peak
        if info.fs_emg_hz:
            streams.append((EMG_LABEL, "uV", float(info.fs_emg_hz), 0))
        if info.fs_acc_hz:
            streams += [(lab, "g", float(info.fs_acc_hz), 1 + j) for j, lab in enumerate(ACC_LABELS)]
        w = pyedflib.EdfWriter(str(tmp), len(streams), file_type=pyedflib.FILETYPE_EDFPLUS)
        try:
            for i, (label, unit, fs, k) in enumerate(streams):
                p = _header_number(peak[k] * 1.01) if peak[k] > 0 else 1.0
                w.setSignalHeader(i, {"label": label, "dimension": unit, "sample_frequency": fs,
                                      "physical_max": p, "physical_min": -p,
                                      "digital_max": _DMAX, "digital_min": -_DMAX - 1,
                                      "transducer": "", "prefilter": ""})
            if info.start_time:
                from datetime import datetime

                try:
                    w.setStartdatetime(datetime.fromisoformat(info.start_time))
                except ValueError:
                    pass
            spr = [w.get_smp_per_record(i) for i in range(len(streams))]
            rec_s = spr[0] / streams[0][2]
            n_records = max(1, math.ceil(info.duration_s / rec_s - 1e-9))
            n_events = len(events)
            lost: list[tuple[float, float]] = []
            # edflib keeps at most one annotation per record and annotation signal
            w.set_number_of_annotation_signals(min(64, 2 + math.ceil(n_events / n_records)))
            _write_samples(w, src, streams, spr, n_records, chunk_s, lost)
            for t, d, kind in zip(event_onsets_s(events),  # where each begins
                                  events["duration_ms"].to_numpy(dtype=float) / 1000.0,
                                  events["type"].astype(str), strict=True):
                w.writeAnnotation(float(t), float(d) if d == d else -1, str(kind))
            for a, b in lost:
                w.writeAnnotation(a, b - a, LOST_LABEL)
        finally:
            w.close()


def _write_samples(w: Any, src: Any, streams: list[tuple[str, str, float, int]], spr: list[int],
                   n_records: int, chunk_s: float,
                   lost: list[tuple[float, float]]) -> None:
    """Pass 2: the samples, record by record (EDF interleaves the channels per record)."""
    info = src.info
    has_emg = bool(info.fs_emg_hz)
    bufs: list[np.ndarray] = [np.empty(0) for _ in streams]
    written = 0
    pos = {"emg": 0, "acc": 0}
    spans: dict[str, list[tuple[int, int]]] = {"emg": [], "acc": []}

    def flush(final: bool) -> None:
        nonlocal written
        k = min(len(b) // n for b, n in zip(bufs, spr, strict=True))
        if final:
            k = max(n_records - written, 0)
            for i, n in enumerate(spr):  # pad the last record (EDF records are whole)
                need = k * n - len(bufs[i])
                if need > 0:
                    bufs[i] = np.concatenate([bufs[i], np.zeros(need)])
        if k <= 0:
            return
        block = np.hstack([bufs[i][: k * n].reshape(k, n) for i, n in enumerate(spr)])
        for row in block:
            if w.blockWritePhysicalSamples(np.ascontiguousarray(row)) < 0:
                raise OSError("pyedflib could not write a data record")
        for i, n in enumerate(spr):
            bufs[i] = bufs[i][k * n:]
        written += k

    for ch in src.iter_chunks(chunk_s):
        parts: list[np.ndarray] = []
        if has_emg and ch.emg_uv is not None:
            spans["emg"] += _lost_spans(ch.emg_uv, pos["emg"])
            pos["emg"] += len(ch.emg_uv)
            parts.append(np.nan_to_num(ch.emg_uv))
        if info.fs_acc_hz and ch.acc_g is not None:
            spans["acc"] += _lost_spans(ch.acc_g, pos["acc"])
            pos["acc"] += len(ch.acc_g)
            a = np.nan_to_num(ch.acc_g)
            parts += [a[:, 0], a[:, 1], a[:, 2]]
        bufs = [np.concatenate([b, p]) for b, p in zip(bufs, parts, strict=True)]
        flush(final=False)
    flush(final=True)
    for key, fs in (("emg", info.fs_emg_hz), ("acc", info.fs_acc_hz)):
        if fs:
            lost += [(a / fs, b / fs) for a, b in _merge(spans[key])]
    lost.sort()
