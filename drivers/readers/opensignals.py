"""OpenSignals recordings (PLUX: BITalino, biosignalsplux): ``.txt`` and ``.h5``.

* ``.txt``: ``# OpenSignals Text File Format``, then ``# {JSON header}`` (one object per
  device, keyed by its MAC address: ``sensor``, ``label``, ``column``, ``resolution``,
  ``sampling rate``, ``device``, ``date``, ``time``), ``# EndOfHeader``, then tab-separated
  raw ADC values, the devices' columns side by side.
* ``.h5`` (needs h5py: ``pip install 'toetwitch[opensignals]'``): one group per device
  (attributes as the text header), raw values in ``raw/channel_N`` with ``sensor`` and
  ``label`` attributes.

Channels whose sensor is ``EMG`` become the EMG stream and ``XYZ``/``ACC``/``cACC`` the
accelerometer (three channels: x, y, z in file order; one channel: one axis, the others
0 g). Other labels (``RAW``, or to choose between several) are mapped with ``channels``
(``--channels``): ``{"A1": "emg", "CH3": "acc_x"}``, keys being a channel's label, its
``A<n>``/``CH<n>`` port name, or ``DEVICE/LABEL`` to pick a device. A file with several
devices is read when the mapped or automatic channels all belong to one device, and
refused otherwise, listing the devices.

Raw values become µV and g with PLUX's transfer functions (biosignalsnotebooks
``raw_to_phy``), by device family and each channel's resolution:

* EMG: ``(ADC / 2^n − 1/2) · VCC / G`` — BITalino (r)evolution VCC 3.3 V, G 1009;
  BITalino (v1) 3.3 V, 1008; biosignalsplux family 3.0 V, 1000.
* ACC: ``2 (ADC − Cmin) / (Cmax − Cmin) − 1`` g — BITalino Cmin/Cmax 400/608 at 10 bit,
  biosignalsplux 28000/38000 at 16 bit, each scaled to the channel's resolution.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.base import ArraySource, RecordingSource
from toetwitch.drivers.recording import Recording

MAGIC = "# OpenSignals Text File Format"
BITALINO_REV = ("bitalino_rev", "bitalino_riot", "bitalino (r)evolution", "bitalino revolution")
BITALINO_V1 = ("bitalino",)
#: device family -> (VCC V, EMG gain, ACC Cmin, Cmax, at the calibration's resolution in bits)
_FAMILY = {
    "bitalino_rev": (3.3, 1009.0, 400.0, 608.0, 10),
    "bitalino": (3.3, 1008.0, 400.0, 608.0, 10),
    "plux": (3.0, 1000.0, 28000.0, 38000.0, 16),
}
ACC_SENSORS = ("XYZ", "ACC", "CACC", "ACCX", "ACCY", "ACCZ")
STREAMS = ("emg", "acc_x", "acc_y", "acc_z")


def looks_like_opensignals(path: str | Path) -> bool:
    """Whether a ``.txt`` file starts like an OpenSignals text file (for folder searches)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)).decode("ascii", "replace") == MAGIC
    except OSError:
        return False


def family(device: str) -> str:
    d = str(device).strip().lower()
    if d in BITALINO_REV or d.startswith("bitalino_r"):
        return "bitalino_rev"
    if d in BITALINO_V1:
        return "bitalino"
    return "plux"


def emg_uv(adc: np.ndarray, bits: int, device: str) -> np.ndarray:
    vcc, gain, *_ = _FAMILY[family(device)]
    return (np.asarray(adc, dtype=np.float64) / 2.0**bits - 0.5) * vcc / gain * 1e6


def acc_g(adc: np.ndarray, bits: int, device: str) -> np.ndarray:
    _vcc, _gain, cmin, cmax, cal_bits = _FAMILY[family(device)]
    s = 2.0 ** (bits - cal_bits)
    return 2.0 * (np.asarray(adc, dtype=np.float64) - cmin * s) / ((cmax - cmin) * s) - 1.0


class _Channel:
    __slots__ = ("device", "family", "label", "port", "sensor", "bits", "fs_hz", "data")

    def __init__(self, device: str, fam: str, label: str, port: int, sensor: str, bits: int,
                 fs_hz: float, data: Any):
        self.device, self.family, self.label, self.port = device, fam, label, port
        self.sensor, self.bits, self.fs_hz, self.data = sensor, bits, fs_hz, data

    def names(self) -> set[str]:
        """Names ``--channels`` may use for this channel (upper case)."""
        n = {self.label.upper(), f"A{self.port}", f"CH{self.port}"}
        return n | {f"{self.device.upper()}/{x}" for x in n}


def _iso(date: str | None, time: str | None) -> str | None:
    try:
        y, mo, d = (int(x) for x in str(date).split("-"))
        h, mi, s = str(time).split(":")
        sec = float(s)
        return (f"{y:04d}-{mo:02d}-{d:02d}T{int(h):02d}:{int(mi):02d}:"
                f"{int(sec):02d}.{round((sec % 1) * 1000):03d}")
    except (ValueError, TypeError):
        return None


def _text_channels(path: Path) -> tuple[list[_Channel], dict[str, Any]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
        if first != MAGIC:
            raise RecordingError(
                f"unknown recording format '.txt': toetwitch reads a .txt file only when it is "
                f"an OpenSignals text file, and this one's line 1 is not {MAGIC!r}", path,
                "line 1")
        line = fh.readline()
        try:
            header = json.loads(line.lstrip("#").strip())
        except json.JSONDecodeError as exc:
            raise RecordingError(f"the JSON header is unreadable ({exc.msg})", path, "line 2") from None
        n_header = 2
        for line in fh:
            n_header += 1
            if line.startswith("# EndOfHeader"):
                break
        else:
            raise RecordingError("no '# EndOfHeader' line", path)
        try:
            table = np.loadtxt(fh, dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise RecordingError(f"a sample line is not tab-separated numbers ({exc})", path,
                                 f"after line {n_header}") from None
    if not isinstance(header, dict) or not header:
        raise RecordingError("the JSON header lists no device", path, "line 2")
    chans, col = [], 0
    for mac, dev in header.items():
        cols = list(dev.get("column", []))
        sensors, labels = list(dev.get("sensor", [])), list(dev.get("label", []))
        res, ports = list(dev.get("resolution", [])), list(dev.get("channels", []))
        fs = float(dev.get("sampling rate", 0))
        fam = family(dev.get("device", ""))
        lead = len(cols) - len(labels)  # nSeq, DI (and more digital columns) come first
        for k, label in enumerate(labels):
            j = col + lead + k
            if j >= table.shape[1]:
                raise RecordingError(f"the header names column {label!r} of device {mac}, but "
                                     f"the samples have only {table.shape[1]} columns", path)
            chans.append(_Channel(mac, fam, str(label), int(ports[k]) if k < len(ports) else k + 1,
                                  str(sensors[k]) if k < len(sensors) else "RAW",
                                  int(res[k]) if k < len(res) else 16, fs, table[:, j]))
        col += len(cols)
    first_dev = next(iter(header.values()))
    return chans, {"date": first_dev.get("date"), "time": first_dev.get("time"),
                   "devices": {m: d.get("device") for m, d in header.items()}}


def _h5_channels(path: Path) -> tuple[list[_Channel], dict[str, Any]]:
    try:
        import h5py
    except ImportError:
        raise RecordingError("reading OpenSignals .h5 files needs h5py: install it with "
                             "pip install 'toetwitch[opensignals]'", path) from None
    chans: list[_Channel] = []
    meta: dict[str, Any] = {"devices": {}}
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RecordingError(f"not a readable HDF5 file ({exc})", path) from None
    with f:
        for mac, grp in f.items():
            if not isinstance(grp, h5py.Group) or "raw" not in grp:
                continue
            a = grp.attrs
            fam = family(_s(a.get("device", "")))
            meta["devices"][mac] = _s(a.get("device", ""))
            meta.setdefault("date", _s(a.get("date")))
            meta.setdefault("time", _s(a.get("time")))
            ports = [int(x) for x in np.atleast_1d(a.get("channels", []))]
            res = [int(x) for x in np.atleast_1d(a.get("resolution", []))]
            fs = float(a.get("sampling rate", 0))
            for k, port in enumerate(ports):
                ds = grp["raw"].get(f"channel_{port}")
                if ds is None:
                    raise RecordingError(f"device {mac} lists channel {port}, which has no data",
                                         path, f"group {mac}/raw")
                chans.append(_Channel(mac, fam, _s(ds.attrs.get("label", f"CH{port}")), port,
                                      _s(ds.attrs.get("sensor", "RAW")),
                                      res[k] if k < len(res) else 16, fs,
                                      np.asarray(ds[:, 0], dtype=np.float64)))
    if not chans:
        raise RecordingError("no OpenSignals device group with raw channels", path)
    return chans, meta


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else ("" if v is None else str(v))


def _auto(chans: list[_Channel], path: Path) -> dict[int, str]:
    """Channel index -> stream from the sensor labels (EMG; XYZ/ACC/cACC). Labelled sensors
    on several devices are ambiguous: refused, listing them."""
    out: dict[int, str] = {}
    emg = [i for i, c in enumerate(chans) if c.sensor.upper().startswith("EMG")]
    acc = [i for i, c in enumerate(chans) if c.sensor.upper() in ACC_SENSORS]
    if len({chans[i].device for i in emg + acc}) > 1:
        raise RecordingError(
            f"the file holds {len({c.device for c in chans})} devices with EMG or ACC "
            f"sensors; pick one device's channels with --channels DEVICE/LABEL=emg,... "
            f"(the file has {_listing(chans)})", path)
    if emg:
        out[emg[0]] = "emg"
    for i, axis in zip(acc, ("acc_x", "acc_y", "acc_z"), strict=False):
        out[i] = axis
    return out


def _mapped(chans: list[_Channel], channels: dict[str, str], path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for key, stream in channels.items():
        k = key.strip().upper()
        if stream not in STREAMS:
            raise RecordingError(f"--channels: unknown stream {stream!r}; use {', '.join(STREAMS)}",
                                 path)
        hits = [i for i, c in enumerate(chans) if k in c.names()]
        if not hits:
            raise RecordingError(f"--channels: no channel called {key!r}; the file has "
                                 f"{_listing(chans)}", path)
        if len({chans[i].device for i in hits}) > 1:
            raise RecordingError(f"--channels: {key!r} names a channel of several devices; "
                                 f"write DEVICE/{key} (the file has {_listing(chans)})", path)
        out[hits[0]] = stream
    return out


def _listing(chans: list[_Channel]) -> str:
    return "; ".join(f"{c.device}/{c.label} ({c.sensor}, {c.bits} bit)" for c in chans)


def read_opensignals(path: str | Path, channels: dict[str, str] | None = None) -> Recording:
    """Read an OpenSignals ``.txt`` or ``.h5`` file into a :class:`Recording` (µV, g)."""
    path = Path(path)
    if path.suffix.lower() == ".h5":
        chans, meta = _h5_channels(path)
    else:
        chans, meta = _text_channels(path)
    pick = _mapped(chans, channels, path) if channels else _auto(chans, path)
    if not pick:
        raise RecordingError("no channel is labelled EMG or ACC/XYZ; say which is which with "
                             f"--channels (e.g. --channels CH1=emg); the file has "
                             f"{_listing(chans)}", path)
    devices = {chans[i].device for i in pick}
    if len(devices) > 1:
        raise RecordingError(f"the file holds {len(meta['devices'])} devices and the channels "
                             f"used belong to {len(devices)} of them ({', '.join(sorted(devices))});"
                             f" pick one device's channels with --channels DEVICE/LABEL=emg,... "
                             f"(the file has {_listing(chans)})", path)
    emg = acc = None
    fs_emg = fs_acc = None
    used = {}
    for i, stream in pick.items():
        c = chans[i]
        used[stream] = f"{c.device}/{c.label}"
        if stream == "emg":
            emg, fs_emg = emg_uv(c.data, c.bits, c.family), c.fs_hz
    axes = [(STREAMS.index(s) - 1, chans[i]) for i, s in pick.items() if s.startswith("acc")]
    if axes:
        fs_acc = axes[0][1].fs_hz
        acc = np.zeros((len(axes[0][1].data), 3))
        for j, c in axes:
            acc[:, j] = acc_g(c.data, c.bits, c.family)
    return Recording(
        emg_uv=emg, fs_emg_hz=fs_emg, acc_g=acc, fs_acc_hz=fs_acc,
        name=path.name[: -len(path.suffix)],
        start_time=_iso(meta.get("date"), meta.get("time")),
        meta={"path": str(path), "format": "opensignals", "channels": used,
              "devices": meta["devices"],
              "resolution_bits": {s: chans[i].bits for i, s in pick.items()},
              "acc_axes": len(axes)},
    )


def open_opensignals(path: str | Path, channels: dict[str, str] | None = None) -> RecordingSource:
    """An OpenSignals file as a :class:`RecordingSource` (read whole: they are
    session-sized). ``channels`` defaults to ``TOETWITCH_CHANNELS`` (what ``--channels``
    sets for the readers)."""
    import os

    if channels is None and os.environ.get("TOETWITCH_CHANNELS"):
        channels = parse_channels(os.environ["TOETWITCH_CHANNELS"])
    return ArraySource(read_opensignals(path, channels))


def parse_channels(text: str) -> dict[str, str]:
    """``"CH1=emg,A3=acc_x"`` -> ``{"CH1": "emg", "A3": "acc_x"}`` (``ValueError`` if bad)."""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, sep, stream = item.rpartition("=")
        if not sep or not key:
            raise ValueError(f"--channels item {item!r} is not NAME=STREAM (e.g. CH1=emg)")
        out[key.strip()] = stream.strip().lower()
    return out


@contextlib.contextmanager
def channel_map(text: str | None) -> Iterator[None]:
    """Within the block, OpenSignals files are read with the ``--channels`` map ``text``
    (through ``TOETWITCH_CHANNELS``, so worker processes started inside see it too);
    ``ValueError`` if it is malformed."""
    import os

    if not text:
        yield
        return
    parse_channels(text)
    old = os.environ.get("TOETWITCH_CHANNELS")
    os.environ["TOETWITCH_CHANNELS"] = text
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TOETWITCH_CHANNELS", None)
        else:
            os.environ["TOETWITCH_CHANNELS"] = old
