"""EDF/BDF files that pyedflib refuses but whose complete data records are readable.

edflib (under pyedflib) rejects a file whose header does not match its size, and every
EDF+D (discontinuous) file. Three of those are common and lose nothing when read here:

* **record count -1**: the EDF value while a recording is still being written; a recorder
  that died leaves it. The complete records in the file are read.
* **wrong record count / truncated file**: the count in the header and the file size
  disagree (a copy cut short, a recorder killed mid-record). The complete records are read;
  an incomplete last record is dropped.
* **EDF+D / BDF+D**: records carry their own start time (the first time-keeping annotation
  of each record). Records are placed at their time and the time between them is lost
  samples (NaN), as gaps are everywhere in toetwitch. Records that start off the record
  grid, overlap or go back in time are refused with a message saying so.

Each repair is listed in ``repairs`` and warned about by :class:`~toetwitch.drivers.readers.edf.EdfSource`.

:func:`check_header` reads the fixed header (no data) and says whether the file needs this
reader; :class:`RawEdfReader` offers the part of ``pyedflib.EdfReader``'s interface that the
EDF reader uses (``readSignal`` in physical units, per signal).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toetwitch.drivers.errors import RecordingError

#: pyedflib's FILETYPE_* values (so the EDF reader's format names work with either reader).
FILETYPE_EDF, FILETYPE_EDFPLUS, FILETYPE_BDF, FILETYPE_BDFPLUS = 0, 1, 2, 3
ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")


@dataclass(frozen=True)
class EdfHeader:
    """The fixed and per-signal header fields of an EDF/BDF file (all signals, annotations
    included). Shapes: per-signal tuples have ``ns`` entries."""

    bdf: bool
    plus: bool
    discontinuous: bool
    n_records_declared: int
    record_s: float
    header_bytes: int
    labels: tuple[str, ...]
    dims: tuple[str, ...]
    pmin: tuple[float, ...]
    pmax: tuple[float, ...]
    dmin: tuple[int, ...]
    dmax: tuple[int, ...]
    nsamp: tuple[int, ...]
    startdate: str
    starttime: str
    file_bytes: int

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.bdf else 2

    @property
    def record_bytes(self) -> int:
        return sum(self.nsamp) * self.bytes_per_sample

    @property
    def complete_records(self) -> int:
        """Whole data records the file holds (whatever the header says)."""
        data = self.file_bytes - self.header_bytes
        return max(data // self.record_bytes, 0) if self.record_bytes else 0


def _field(raw: bytes, path: Path, what: str) -> str:  # noqa: ARG001 - same signature as _number
    """A header field as text. EDF asks for ASCII, but recorders write e.g. 'µV' in Latin-1:
    decode as Latin-1, which never fails."""
    return raw.decode("latin-1").strip()


def _number(text: str, path: Path, what: str, kind: type = float) -> float:
    try:
        return kind(float(text)) if kind is int else float(text)
    except ValueError:
        raise RecordingError(f"EDF header field '{what}' is {text!r}, not a number", path, "header") from None


def read_header(path: str | Path) -> EdfHeader:
    """Parse the header of an EDF/BDF file; a malformed one raises :class:`RecordingError`."""
    path = Path(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        fixed = f.read(256)
        if len(fixed) < 256:
            raise RecordingError("not an EDF/BDF file (shorter than its 256-byte header)", path)
        bdf = fixed[:8] == b"\xffBIOSEMI"
        if not bdf and fixed[:8] != b"0       ":
            raise RecordingError("not an EDF/BDF file (the first 8 bytes are not '0' or BIOSEMI)", path, "header")
        ns = int(_number(_field(fixed[252:256], path, "number of signals"), path, "number of signals", int))
        if not 0 < ns <= 4096:
            raise RecordingError(f"EDF header gives {ns} signals", path, "header")
        sig = f.read(256 * ns)
    if len(sig) < 256 * ns:
        raise RecordingError("EDF header is cut short (the signal headers are incomplete)", path, "header")

    def cols(start: int, width: int, what: str) -> list[str]:
        base = start * ns
        return [_field(sig[base + i * width: base + (i + 1) * width], path, what) for i in range(ns)]

    labels = cols(0, 16, "label")
    dims = cols(16 + 80, 8, "physical dimension")
    pmin = [_number(x, path, "physical minimum") for x in cols(16 + 80 + 8, 8, "physical minimum")]
    pmax = [_number(x, path, "physical maximum") for x in cols(16 + 80 + 16, 8, "physical maximum")]
    dmin = [int(_number(x, path, "digital minimum", int)) for x in cols(16 + 80 + 24, 8, "digital minimum")]
    dmax = [int(_number(x, path, "digital maximum", int)) for x in cols(16 + 80 + 32, 8, "digital maximum")]
    nsamp = [int(_number(x, path, "samples per record", int)) for x in cols(16 + 80 + 40 + 80, 8, "samples per record")]
    reserved = _field(fixed[192:236], path, "reserved")
    n_rec_text = _field(fixed[236:244], path, "number of data records")
    try:
        n_rec = int(n_rec_text)
    except ValueError:
        n_rec = -1  # blank or garbage: treat like "still recording" and count the records
    record_s = _number(_field(fixed[244:252], path, "record duration"), path, "record duration")
    if not record_s > 0:
        raise RecordingError(f"EDF record duration {record_s:g} s is not positive", path, "header")
    if any(n < 0 for n in nsamp) or sum(nsamp) == 0:
        raise RecordingError("EDF header gives no samples per data record", path, "header")
    return EdfHeader(
        bdf=bdf,
        plus=reserved.startswith(("EDF+", "BDF+")),
        discontinuous=reserved.startswith(("EDF+D", "BDF+D")),
        n_records_declared=n_rec,
        record_s=record_s,
        header_bytes=256 * (ns + 1),
        labels=tuple(labels),
        dims=tuple(dims),
        pmin=tuple(pmin),
        pmax=tuple(pmax),
        dmin=tuple(dmin),
        dmax=tuple(dmax),
        nsamp=tuple(nsamp),
        startdate=_field(fixed[168:176], path, "start date"),
        starttime=_field(fixed[176:184], path, "start time"),
        file_bytes=size,
    )


def needs_repair(h: EdfHeader) -> list[str]:
    """What about this file pyedflib would refuse but this module reads (empty: nothing)."""
    out = []
    complete = h.complete_records
    data = h.file_bytes - h.header_bytes
    if h.n_records_declared == -1:
        out.append(f"header gives the record count as -1 (the file was still being written); "
                   f"read the {complete} complete data records")
    elif h.n_records_declared != complete or data != complete * h.record_bytes:
        if h.n_records_declared > complete:
            out.append(f"header says {h.n_records_declared} data records but the file holds "
                       f"{complete} complete ones (truncated); read those")
        elif h.n_records_declared < complete:
            out.append(f"header says {h.n_records_declared} data records but the file holds "
                       f"{complete}; read all {complete}")
    extra = data - complete * h.record_bytes
    if extra > 0:
        out.append(f"an incomplete last data record ({extra} bytes) dropped")
    if h.discontinuous:
        out.append("EDF+D (discontinuous): records placed at their start times, the time "
                   "between them marked as lost samples")
    return out


def _onsets(h: EdfHeader, raw: np.ndarray, path: Path) -> np.ndarray:
    """Start time (s) of each record of an EDF+D file, from its first time-keeping annotation."""
    ann = [i for i, lab in enumerate(h.labels) if lab in ANNOTATION_LABELS]
    if not ann:
        raise RecordingError("EDF+D file without an annotation signal: the record times are unknown", path, "header")
    bps = h.bytes_per_sample
    off = sum(h.nsamp[: ann[0]]) * bps
    width = h.nsamp[ann[0]] * bps
    onsets = np.empty(len(raw))
    for r in range(len(raw)):
        text = bytes(raw[r, off: off + width]).split(b"\x14", 1)[0]
        try:
            onsets[r] = float(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise RecordingError("EDF+D record has no readable start time", path, f"data record {r + 1}") from None
    return onsets


class RawEdfReader:
    """A minimal stand-in for ``pyedflib.EdfReader`` over a file it refuses (see module doc).

    Signal indices exclude annotation signals, as pyedflib's do. ``readSignal`` returns
    physical values; in an EDF+D file the samples between records are NaN.
    """

    def __init__(self, path: str | Path, header: EdfHeader | None = None):
        self.path = Path(path)
        h = self.header = header or read_header(self.path)
        self.repairs = needs_repair(h)
        n = h.complete_records
        if n == 0:
            raise RecordingError("EDF file holds no complete data record", self.path)
        self._raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=h.header_bytes,
                              shape=(n, h.record_bytes))
        self._sig = [i for i, lab in enumerate(h.labels) if lab not in ANNOTATION_LABELS]
        if h.discontinuous:
            onsets = _onsets(h, self._raw, self.path)
            slots_f = (onsets - onsets[0]) / h.record_s
            slots = np.round(slots_f).astype(np.int64)
            if np.any(np.abs(slots_f - slots) > 1e-6) :
                raise RecordingError(
                    "EDF+D records start off the record grid (not a whole number of record "
                    "durations apart); toetwitch cannot place their samples", self.path)
            if np.any(np.diff(slots) < 1):
                r = int(np.flatnonzero(np.diff(slots) < 1)[0]) + 2
                raise RecordingError("EDF+D record overlaps the one before or goes back in time",
                                     self.path, f"data record {r}")
            self._slots = slots
        else:
            self._slots = np.arange(n)
        self._slot_record = np.full(int(self._slots[-1]) + 1, -1, dtype=np.int64)
        self._slot_record[self._slots] = np.arange(n)
        self.datarecords_in_file = n
        self.filetype = (FILETYPE_BDFPLUS if h.plus else FILETYPE_BDF) if h.bdf else (
            FILETYPE_EDFPLUS if h.plus else FILETYPE_EDF)

    # -- the pyedflib.EdfReader calls the EDF reader makes
    def getSignalLabels(self) -> list[str]:  # noqa: N802 - pyedflib's names
        return [self.header.labels[i] for i in self._sig]

    def getSampleFrequency(self, ch: int) -> float:  # noqa: N802
        return self.header.nsamp[self._sig[ch]] / self.header.record_s

    def getPhysicalDimension(self, ch: int) -> str:  # noqa: N802
        return self.header.dims[self._sig[ch]]

    def getNSamples(self) -> np.ndarray:  # noqa: N802
        slots = len(self._slot_record)
        return np.array([self.header.nsamp[i] * slots for i in self._sig])

    def getStartdatetime(self) -> dt.datetime:  # noqa: N802
        d, t = self.header.startdate, self.header.starttime
        dd, mm, yy = (int(x) for x in d.split("."))
        hh, mi, ss = (int(x) for x in t.split("."))
        return dt.datetime(1900 + yy if yy >= 85 else 2000 + yy, mm, dd, hh, mi, ss)

    def readSignal(self, ch: int, start: int = 0, n: int | None = None) -> np.ndarray:  # noqa: N802
        h = self.header
        i = self._sig[ch]
        per = h.nsamp[i]
        total = per * len(self._slot_record)
        n = total - start if n is None else n
        stop = min(start + n, total)
        out = np.full(max(stop - start, 0), np.nan)
        if stop <= start:
            return out
        s0, s1 = start // per, (stop - 1) // per + 1
        recs = self._slot_record[s0:s1]
        have = recs >= 0
        if have.any():
            bps = h.bytes_per_sample
            off = sum(h.nsamp[:i]) * bps
            block = np.asarray(self._raw[recs[have], off: off + per * bps])
            dig = _digital(block, h.bdf).reshape(-1, per)
            gain = (h.pmax[i] - h.pmin[i]) / (h.dmax[i] - h.dmin[i]) if h.dmax[i] != h.dmin[i] else 1.0
            phys = (dig - h.dmin[i]) * gain + h.pmin[i]
            full = np.full((s1 - s0, per), np.nan)
            full[have] = phys
            out[:] = full.reshape(-1)[start - s0 * per: stop - s0 * per]
        return out

    def close(self) -> None:
        self._raw = None  # type: ignore[assignment]


def _digital(block: np.ndarray, bdf: bool) -> np.ndarray:
    """Little-endian 16-bit (EDF) or 24-bit (BDF) two's-complement samples as float64."""
    b = np.ascontiguousarray(block)
    if not bdf:
        return b.view("<i2").astype(np.float64)
    b = b.reshape(*b.shape[:-1], -1, 3).astype(np.int32)
    v = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    v = np.where(v >= 1 << 23, v - (1 << 24), v)
    return v.reshape(b.shape[0], -1).astype(np.float64)
