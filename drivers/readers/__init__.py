"""Recording file readers (docs/contracts.md §1): CSV, Parquet, EDF/EDF+/BDF, OpenSignals and the raw
packet log.

::

    from toetwitch.drivers.readers import read_recording, open_recording

    rec = read_recording("night.edf")            # whole file -> toetwitch.drivers.Recording
    with open_recording("night.edf") as src:     # chunked, bounded memory
        print(src.info.fs_emg_hz, src.info.duration_s)
        for chunk in src.iter_chunks(60.0):
            ...                                  # chunk.emg_uv (k,), chunk.acc_g (j, 3)

Readers are registered by file suffix as ``"module:function"`` strings and imported only
when used. Every bad input raises :class:`toetwitch.drivers.RecordingError` naming the file, where in
it, and what is wrong; repairs (gaps filled with NaN, a truncated last line dropped) emit a
:class:`ReaderWarning`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.base import (
    ArraySource,
    Chunk,
    ReaderWarning,
    RecordingInfo,
    RecordingSource,
    not_found,
)
from toetwitch.drivers.recording import Recording

__all__ = [
    "RECORDING_SUFFIXES",
    "ArraySource",
    "Chunk",
    "ReaderWarning",
    "RecordingInfo",
    "RecordingSource",
    "TRUTH_SUFFIX",
    "is_recording_file",
    "open_recording",
    "read_recording",
    "register_reader",
]

#: Ground-truth tables beside sample recordings (``x.truth.csv``) are not recordings.
TRUTH_SUFFIX = ".truth.csv"

#: suffix -> "module:function" returning a RecordingSource for a path.
_OPENERS: dict[str, str] = {
    ".csv": "toetwitch.drivers.readers.csv:open_csv",
    ".parquet": "toetwitch.drivers.readers.parquet:open_parquet",
    ".edf": "toetwitch.drivers.readers.edf:open_edf",
    ".bdf": "toetwitch.drivers.readers.edf:open_edf",
    ".txt": "toetwitch.drivers.readers.opensignals:open_opensignals",  # OpenSignals (PLUX)
    ".h5": "toetwitch.drivers.readers.opensignals:open_opensignals",
}
#: Written by the live monitor; its reader lives with the BLE code.
_PACKET_LOG = (".ttlog", "toetwitch.drivers.ble.packetlog:open_packet_log")


def _module_available(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (its parent package may be)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def register_reader(suffix: str, target: str) -> None:
    """Register ``target`` (``"package.module:function"``) as the opener for ``suffix``.

    The function takes a path and returns a :class:`RecordingSource`.
    """
    suffix = suffix.lower()
    if not suffix.startswith("."):
        suffix = "." + suffix
    _OPENERS[suffix] = target
    global RECORDING_SUFFIXES
    RECORDING_SUFFIXES = tuple(sorted(_OPENERS))


if _module_available(_PACKET_LOG[1].split(":")[0]):
    _OPENERS[_PACKET_LOG[0]] = _PACKET_LOG[1]

#: Suffixes a folder search picks up (lower case; ``.ttlog`` only when its reader exists).
RECORDING_SUFFIXES: tuple[str, ...] = tuple(sorted(_OPENERS))


def is_recording_file(path: str | Path) -> bool:
    """True when a folder search should pick up ``path`` as a recording.

    Matches :data:`RECORDING_SUFFIXES` (case-insensitive) and skips ground-truth tables
    (``*.truth.csv``) and hidden files (``.name``).
    """
    name = Path(path).name
    low = name.lower()
    if name.startswith(".") or low.endswith(TRUTH_SUFFIX):
        return False
    if Path(low).suffix == ".txt":  # only OpenSignals text files, not any notes or licences
        from toetwitch.drivers.readers.opensignals import looks_like_opensignals

        return looks_like_opensignals(path)
    return Path(low).suffix in RECORDING_SUFFIXES


def _opener(path: Path):
    suffix = path.suffix.lower()
    target = _OPENERS.get(suffix)
    if target is None and suffix == _PACKET_LOG[0]:
        raise RecordingError(
            "packet logs (.ttlog) need the BLE package (toetwitch.drivers.ble.packetlog), which is not "
            "installed in this build",
            path,
        )
    if target is None:
        raise RecordingError(
            f"unknown recording format {suffix or '(no suffix)'!r}: toetwitch reads "
            f"{', '.join(RECORDING_SUFFIXES)}",
            path,
        )
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def open_recording(path: str | Path, *, one_pass: bool = False) -> RecordingSource:
    """Open a recording for chunked reading (use as a context manager).

    EDF/BDF, Parquet and CSV are read chunk by chunk from disk (memory flat with length).
    ``one_pass``: a reader that can (CSV, Parquet) parses the file once, while the chunks are
    read, instead of once to count and check it and once more for the chunks; its ``header``
    has the rates at once and its ``info`` is complete after the chunks (see
    ``toetwitch.drivers.readers.table.TableSource``). Others ignore it.
    """
    path = Path(path)
    if not path.is_file():
        raise not_found(path)
    opener = _opener(path)
    if one_pass and "one_pass" in inspect.signature(opener).parameters:
        return opener(path, one_pass=True)
    return opener(path)


def read_recording(path: str | Path) -> Recording:
    """Read a whole recording file (any format of docs/contracts.md §1) into a :class:`Recording`."""
    path = Path(path)
    if not path.is_file():
        raise not_found(path)
    if path.suffix.lower() == ".csv":
        from toetwitch.drivers.readers.csv import read_csv

        return read_csv(path)
    with open_recording(path) as src:
        return src.read()
