"""CSV dialects: the separator, the decimal mark and the spelling of the column names.

Spreadsheets save "CSV" in several dialects. Read as they are (docs/data-formats.md):

* separator ``,`` (the documented one), ``;`` (European Excel, where ``,`` is the decimal
  mark) or a tab; the separator is the one of these that splits the header into the most
  columns;
* decimal comma (``0,73``) when the separator is not ``,`` and the data rows use one;
* column names in any case, with surrounding spaces or a UTF-8 byte-order mark
  (``Time_s``, ``EMG_uV`` → ``time_s``, ``emg_uv``).

:func:`detect` reads only the first lines. The CSV reader applies the result; everything
else about the file is checked as usual.
"""

from __future__ import annotations

import csv as _csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from toetwitch.drivers.errors import RecordingError

#: Separators tried, the documented one first (it wins ties).
SEPARATORS = (",", ";", "\t")
#: Data lines looked at to decide on a decimal comma.
SNIFF_LINES = 50
_DECIMAL_COMMA = re.compile(r"(?:^|[^\d,])-?\d+,\d+(?:[eE][-+]?\d+)?(?:$|[^\d,])")


@dataclass(frozen=True)
class Dialect:
    """How one CSV file is written. ``known`` maps lower-case names to the canonical ones;
    ``header`` is the header with canonical spellings."""

    sep: str = ","
    decimal: str = "."
    known: dict[str, str] = field(default_factory=dict)
    header: tuple[str, ...] = ()

    def canonical(self, name: object) -> str:
        """The canonical spelling of a header name (any case, spaces, BOM)."""
        s = str(name).strip().lstrip("\ufeff").strip()
        return self.known.get(s.lower(), s)

    def describe(self) -> str:
        """A few words for notes: ``';'-separated, decimal comma``."""
        sep = {",": "','", ";": "';'", "\t": "tab"}[self.sep]
        return f"{sep}-separated" + (", decimal comma" if self.decimal == "," else "")


def _split(line: str, sep: str) -> list[str]:
    return next(_csv.reader([line], delimiter=sep))


def detect(path: str | Path, known: tuple[str, ...]) -> Dialect:
    """The dialect of the CSV file at ``path``; ``known`` are the canonical column names.

    Raises :class:`RecordingError` for an empty file or one that is not UTF-8 text.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            sample = [f.readline() for _ in range(SNIFF_LINES)]
    except UnicodeDecodeError as e:
        raise RecordingError(
            f"not a UTF-8 text file (undecodable byte at offset {e.start}); save it as UTF-8 CSV",
            path,
        ) from None
    if not first.strip():
        raise RecordingError("empty file: no header row", path, "line 1")
    first = first.rstrip("\r\n")
    sep = max(SEPARATORS, key=lambda s: (len(_split(first, s)), -SEPARATORS.index(s)))
    header = [c.strip().lstrip("\ufeff") for c in _split(first, sep)]
    decimal = "."
    if sep != "," and any(_DECIMAL_COMMA.search(line) for line in sample if line.strip()):
        decimal = ","
    lower = {k.lower(): k for k in known}
    return Dialect(sep=sep, decimal=decimal, known=lower,
                   header=tuple(lower.get(c.lower(), c) for c in header))


def parse_float(text: str, dialect: Dialect) -> float:
    """One cell as a number in ``dialect`` (raises ValueError like ``float``)."""
    t = text.strip()
    if dialect.decimal == ",":
        t = t.replace(",", ".")
    return float(t)
