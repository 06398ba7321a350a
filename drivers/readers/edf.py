"""EDF, EDF+ and BDF recordings (docs/contracts.md §1), read with pyedflib.

* The EMG signal is the first whose label contains ``EMG``; accelerometer axes are signals
  labelled ``ACC X/Y/Z`` or ``Accel X/Y/Z`` (case-insensitive, any separator). Other signals
  are ignored (listed in ``meta["ignored_signals"]``).
* Each signal keeps its own rate from the header. The three axes must share one rate.
* Physical units: µV/uV/mV/V/nV become µV; g/mg and m/s² become g. An unknown unit is an error
  naming the signal.
* The header start date/time becomes ``start_time`` (ISO-8601, local time of the recorder:
  EDF stores no time zone).

Chunks are read with ``EdfReader.readSignal(channel, start, n)``, so only one chunk is in
memory at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.base import (
    Chunk,
    RecordingInfo,
    RecordingSource,
    chunk_bounds,
    n_chunks_for,
    round_rate,
    warn,
)
from toetwitch.drivers.recording import MIN_FS_ACC_HZ, MIN_FS_EMG_HZ, check_rate

G_M_S2 = 9.80665

_EMG_UNITS = {"uv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}
_ACC_UNITS = {
    "g": 1.0,
    "mg": 1e-3,
    "m/s^2": 1 / G_M_S2,
    "m/s2": 1 / G_M_S2,
    "m/s/s": 1 / G_M_S2,
    "ms^-2": 1 / G_M_S2,
    "ms-2": 1 / G_M_S2,
    "m.s-2": 1 / G_M_S2,
}
_ACC_LABEL = re.compile(r"acc(?:el(?:eration|erometer)?)?[\s_\-.:]*([xyz])(?![a-z])", re.I)


def _unit_key(unit: str) -> str:
    return (
        unit.strip().replace("µ", "u").replace("μ", "u").replace("²", "^2").replace(" ", "").lower()
    )


def emg_scale(unit: str, path: object, label: str) -> float:
    """Factor converting an EMG signal's physical unit to µV."""
    try:
        return _EMG_UNITS[_unit_key(unit)]
    except KeyError:
        raise RecordingError(
            f"EMG unit {unit!r} not understood (expected uV, mV or V)", path, f"signal '{label}'"
        ) from None


def acc_scale(unit: str, path: object, label: str) -> float:
    """Factor converting an accelerometer signal's physical unit to g."""
    try:
        return _ACC_UNITS[_unit_key(unit)]
    except KeyError:
        raise RecordingError(
            f"accelerometer unit {unit!r} not understood (expected g, mg or m/s^2)",
            path,
            f"signal '{label}'",
        ) from None


class EdfSource(RecordingSource):
    """An open EDF/EDF+/BDF file. Close it (or use ``with``) when done."""

    def __init__(self, path: str | Path):
        import pyedflib

        self.path = Path(path)
        self.repairs: list[str] = []
        raw = _repairable(self.path)
        if raw is not None:  # complete records readable where edflib refuses the file
            self._f = raw
            self.repairs = raw.repairs
        else:
            try:
                self._f = pyedflib.EdfReader(str(self.path))
            except OSError as e:
                raise RecordingError(f"not a readable EDF/BDF file ({e})", self.path) from None
        try:
            self._setup()
            for line in self.repairs:
                warn(f"{self.path}: {line}")
        except BaseException:
            self._f.close()
            raise

    def _setup(self) -> None:
        f, path = self._f, self.path
        labels = [str(s).strip() for s in f.getSignalLabels()]
        emg_ch: int | None = None
        acc_ch: dict[str, int] = {}
        ignored: list[str] = []
        for ch, label in enumerate(labels):
            m = _ACC_LABEL.search(label)
            if m and m.group(1).lower() not in acc_ch:
                acc_ch[m.group(1).lower()] = ch
            elif "EMG" in label.upper() and emg_ch is None:
                emg_ch = ch
            else:
                ignored.append(label)
        if acc_ch and len(acc_ch) < 3:
            have = ", ".join(labels[c] for c in acc_ch.values())
            missing = ", ".join(a.upper() for a in "xyz" if a not in acc_ch)
            raise RecordingError(f"partial accelerometer: found {have} but no axis {missing}", path)
        if emg_ch is None and not acc_ch:
            raise RecordingError(
                "no EMG or accelerometer signal: expected a label containing 'EMG' or "
                f"'ACC X/Y/Z' / 'Accel X/Y/Z' (labels: {', '.join(labels) or 'none'})",
                path,
            )
        meta: dict[str, Any] = {"path": str(path), "format": self._format()}
        self._emg: tuple[int, float] | None = None
        self._acc: list[int] | None = None
        fs_emg = fs_acc = None
        n_emg = n_acc = 0
        if emg_ch is not None:
            label = labels[emg_ch]
            fs_emg = round_rate(float(f.getSampleFrequency(emg_ch)))
            check_rate(fs_emg, MIN_FS_EMG_HZ, "EMG", f"{path}: signal '{label}'")
            self._emg = (emg_ch, emg_scale(f.getPhysicalDimension(emg_ch), path, label))
            n_emg = int(f.getNSamples()[emg_ch])
            meta["emg_label"] = label
        if acc_ch:
            chans = [acc_ch[a] for a in "xyz"]
            rates = {round_rate(float(f.getSampleFrequency(c))) for c in chans}
            if len(rates) > 1:
                raise RecordingError(
                    "accelerometer axes have different sample rates "
                    f"({', '.join(f'{r:g}' for r in sorted(rates))} Hz)",
                    path,
                )
            fs_acc = rates.pop()
            check_rate(
                fs_acc, MIN_FS_ACC_HZ, "accelerometer", f"{path}: signal '{labels[chans[0]]}'"
            )
            scales = [acc_scale(f.getPhysicalDimension(c), path, labels[c]) for c in chans]
            self._acc = chans
            self._acc_scales = np.array(scales)
            n_acc = int(min(f.getNSamples()[c] for c in chans))
            meta["acc_labels"] = [labels[c] for c in chans]
        if ignored:
            meta["ignored_signals"] = ignored
        meta.update(jitter_ms={}, gaps=[], n_gaps=0)
        if self.repairs:
            meta["repairs"] = list(self.repairs)
        try:
            start_time = f.getStartdatetime().isoformat()
        except (ValueError, OSError):
            start_time = None
        durations = [n / fs for n, fs in ((n_emg, fs_emg), (n_acc, fs_acc)) if fs]
        self.info = RecordingInfo(
            name=path.stem,
            fs_emg_hz=fs_emg,
            fs_acc_hz=fs_acc,
            n_emg=n_emg,
            n_acc=n_acc,
            duration_s=max(durations),
            start_time=start_time,
            meta=meta,
        )

    def _format(self) -> str:
        import pyedflib

        return {
            pyedflib.FILETYPE_EDF: "edf",
            pyedflib.FILETYPE_EDFPLUS: "edf+",
            pyedflib.FILETYPE_BDF: "bdf",
            pyedflib.FILETYPE_BDFPLUS: "bdf+",
        }.get(self._f.filetype, "edf")

    def _read(self, ch: int, start: int, n: int) -> np.ndarray:
        if n <= 0:
            return np.empty(0)
        return np.asarray(self._f.readSignal(ch, start, n), dtype=np.float64)

    def iter_chunks(self, chunk_s: float = 60.0) -> Iterator[Chunk]:
        info = self.info
        k_total = n_chunks_for(info.duration_s, chunk_s)
        eb = chunk_bounds(info.n_emg, info.fs_emg_hz or 1.0, chunk_s, k_total)
        ab = chunk_bounds(info.n_acc, info.fs_acc_hz or 1.0, chunk_s, k_total)
        for k in range(k_total):
            emg = acc = None
            if self._emg is not None:
                ch, scale = self._emg
                emg = self._read(ch, eb[k], eb[k + 1] - eb[k]) * scale
            if self._acc is not None:
                n = ab[k + 1] - ab[k]
                acc = np.empty((n, 3))
                for j, ch in enumerate(self._acc):
                    acc[:, j] = self._read(ch, ab[k], n) * self._acc_scales[j]
            yield Chunk(emg_uv=emg, acc_g=acc, start_s=k * chunk_s)

    def close(self) -> None:
        self._f.close()


def _repairable(path: Path):  # noqa: ANN202 - RawEdfReader | None
    """A :class:`~toetwitch.drivers.readers.edf_repair.RawEdfReader` when the file needs one (record
    count -1 or wrong, truncated, EDF+D), else None (pyedflib reads it, or says why not)."""
    from toetwitch.drivers.readers.edf_repair import RawEdfReader, needs_repair, read_header

    try:
        header = read_header(path)
    except (RecordingError, OSError):
        return None  # let pyedflib judge it (and name the problem)
    if not needs_repair(header):
        return None
    return RawEdfReader(path, header)


def open_edf(path: str | Path) -> EdfSource:
    """Open an EDF/EDF+/BDF recording for chunked reading."""
    return EdfSource(path)


def _header_number(x: float) -> float:
    """Round ``x`` > 0 up to a number whose negative, in fixed-point, fits EDF's 8 characters.

    edflib writes physical limits in fixed-point and truncates to 8 characters, so e.g.
    -7.9e-05 would become -0.00007; pick the most precise value that survives intact.
    """
    for decimals in range(7, -1, -1):
        c = np.ceil(x * 10**decimals) / 10**decimals
        if len(f"{-c:.{decimals}f}") <= 8:
            return float(c)
    return float(np.ceil(x))


def write_edf(
    path: str | Path,
    emg_uv: np.ndarray | None,
    fs_emg_hz: float | None,
    acc_g: np.ndarray | None = None,
    fs_acc_hz: float | None = None,
    *,
    emg_unit: str = "uV",
    acc_unit: str = "g",
    start_time: str | None = None,
    bdf: bool = False,
    acc_label: str = "ACC",
    emg_label: str = "EMG",
) -> None:
    """Write EMG (µV) and/or acceleration (g) as an EDF+ (or BDF+) file with pyedflib.

    Each stream is one signal (``emg_label``; ``acc_label`` + `` X/Y/Z``; EDF+'s typed labels
    ``"EMG EMG"`` and ``"MISC ACC"`` let MNE type them, see ``toetwitch.pipeline.run.edf_writer``) at its own rate, stored in
    ``emg_unit`` / ``acc_unit`` (converted from µV / g). Data records last 1 s, so rates must
    be whole numbers of Hz; streams are padded with zeros to whole records. NaN is written
    as 0 (EDF cannot store it). Used by the sample-data builder and the tests.
    """
    import datetime as dt

    import pyedflib

    streams: list[tuple[str, str, float, np.ndarray]] = []
    if emg_uv is not None:
        scale = 1.0 / emg_scale(emg_unit, path, "EMG")
        streams.append((emg_label, emg_unit, float(fs_emg_hz), np.asarray(emg_uv, float) * scale))
    if acc_g is not None:
        scale = 1.0 / acc_scale(acc_unit, path, "ACC")
        for j, axis in enumerate("XYZ"):
            streams.append(
                (f"{acc_label} {axis}", acc_unit, float(fs_acc_hz), np.asarray(acc_g)[:, j] * scale)
            )
    if not streams:
        raise ValueError("nothing to write: give emg_uv and/or acc_g")
    for _, _, fs, _ in streams:
        if fs != round(fs):
            raise ValueError(f"EDF with 1-s records needs whole-Hz rates, got {fs}")
    n_rec = max(int(np.ceil(len(x) / fs)) for _, _, fs, x in streams)
    ftype = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    dmax = 2**23 - 1 if bdf else 2**15 - 1
    w = pyedflib.EdfWriter(str(path), len(streams), file_type=ftype)
    try:
        data = []
        for ch, (label, unit, fs, x) in enumerate(streams):
            full = np.zeros(n_rec * int(fs))
            full[: len(x)] = np.nan_to_num(x)
            peak = float(np.max(np.abs(full))) if len(full) else 1.0
            peak = _header_number(peak * 1.01) if peak > 0 else 1.0
            w.setSignalHeader(
                ch,
                {
                    "label": label,
                    "dimension": unit,
                    "sample_frequency": int(fs),
                    "physical_max": peak,
                    "physical_min": -peak,
                    "digital_max": dmax,
                    "digital_min": -dmax - 1,
                    "transducer": "",
                    "prefilter": "",
                },
            )
            data.append(full)
        if start_time is not None:
            w.setStartdatetime(dt.datetime.fromisoformat(start_time))
        w.writeSamples(data)
    finally:
        w.close()
