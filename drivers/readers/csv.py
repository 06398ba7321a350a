"""CSV recordings (docs/contracts.md §1).

Header row, then rows sorted by ``time_s``; columns ``time_s``, ``emg_uv``, ``acc_x_g``,
``acc_y_g``, ``acc_z_g`` (either stream may be absent; mixed-rate rows leave the other
stream's cells empty). Line numbers in errors count as a person does: the header is line 1.

:func:`open_csv` (what ``toetwitch analyse`` uses) parses the file in batches twice, once to
learn its rates, length and gaps and once to hand out the chunks, so memory stays flat with the
length of the recording; :func:`read_csv` reads it whole in one pass.

A last line without its newline and with fewer fields than the header (or an unreadable
value) is what a recorder killed mid-write leaves: it is dropped with a
:class:`~toetwitch.drivers.readers.ReaderWarning`, not an error.
"""

from __future__ import annotations

import csv as _csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.base import warn
from toetwitch.drivers.readers.dialect import Dialect, detect, parse_float
from toetwitch.drivers.readers.table import COLUMNS, TableEngine, TableSource, check_header
from toetwitch.drivers.recording import Recording

_ROUND_TRIP: dict[str, str] = (
    {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {})

#: Rows parsed per batch. Arrow's streaming CSV reader keeps a number of blocks read ahead
#: (about 40 MB of a plain five-column file at 65,536 rows a block, 28 MB at 32,768, no faster
#: beyond), so the block size bounds the reader's memory.
BATCH_ROWS = 32_768


def _line(i: int) -> str:
    """0-based data row -> line number as a person counts it (header = line 1)."""
    return f"line {i + 2}"


def _last_line(path: Path) -> tuple[bytes, bool]:
    """The file's last line (without newline) and whether it ended with a newline."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        block = min(size, 1 << 16)
        f.seek(size - block)
        tail = f.read()
    ends_nl = tail.endswith(b"\n")
    body = tail.rstrip(b"\r\n") if ends_nl else tail
    return body.rsplit(b"\n", 1)[-1], ends_nl


def _truncated_last(path: Path, n_header: int, dialect: Dialect) -> bool:
    """True when the last line looks cut off by a recorder that was killed mid-write."""
    last, ends_nl = _last_line(path)
    if ends_nl or not last.strip():
        return False
    fields = next(_csv.reader([last.decode("utf-8", "replace")], delimiter=dialect.sep))
    if len(fields) < n_header:
        return True
    for cell in fields:
        c = cell.strip()
        if c:
            try:
                parse_float(c, dialect)
            except ValueError:
                return True
    return False


def _parser_error(e: Exception, path: Path) -> RecordingError:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
    if m:
        return RecordingError(
            f"{m.group(3)} fields where the header has {m.group(1)}", path, f"line {m.group(2)}"
        )
    return RecordingError(f"cannot parse CSV: {e}", path)


def _engine(path: Path) -> tuple[TableEngine, bool]:
    """The table engine over the file's batches, and whether its cut-off last line is dropped."""
    dialect = detect(path, COLUMNS)  # ';' / tab separators, decimal comma, Capitalised names
    header = list(dialect.header)
    layout = check_header(header, path, "line 1 (header)")
    drop_last = _truncated_last(path, len(header), dialect)
    if drop_last:
        warn(f"{path}: last line is truncated (no newline, incomplete) and was dropped")
    usecols = [c for c in header if c in COLUMNS]
    fast = not drop_last and _arrow_can_read(path, header)

    def batches() -> Iterator[tuple[Any, int]]:
        done = 0  # data rows handed out by the Arrow reader
        if fast:
            try:
                for cols, row0 in _arrow_batches(path, usecols):
                    yield cols, row0
                    done = row0 + len(cols[usecols[0]])
                return
            except _ArrowFallback:
                # Arrow could not parse something (a non-numeric cell, a short row, a blank
                # line, spaces before numbers): the pandas parser below reads the rest, with
                # the same line numbers, and names the line and column of a real error
                pass
        for df, row0 in _pandas_batches():
            if row0 + len(df) <= done:
                continue
            if row0 < done:
                df, row0 = df.iloc[done - row0:], done
            yield df, row0

    def _pandas_batches() -> Iterator[tuple[pd.DataFrame, int]]:
        try:
            with pd.read_csv(
                path,
                skip_blank_lines=False,
                chunksize=BATCH_ROWS,
                encoding="utf-8-sig",
                skipinitialspace=True,
                sep=dialect.sep,
                decimal=dialect.decimal,
                # correctly rounded, like the Arrow reader: a file reads to the same samples
                # whichever reader parses which part (before pandas 3 the default parser can
                # be 1 ulp off; pandas 3 rounds correctly and deprecates the option)
                **_ROUND_TRIP,
            ) as reader:
                row0 = 0
                pending: pd.DataFrame | None = None
                for df in reader:
                    df = df.rename(columns=dialect.canonical)
                    df = df[[c for c in df.columns if str(c).strip() in usecols]]
                    if pending is not None:
                        yield pending, row0
                        row0 += len(pending)
                    pending = df
                if pending is not None:
                    if drop_last:
                        pending = pending.iloc[:-1]
                    yield pending, row0
        except pd.errors.ParserError as e:
            raise _parser_error(e, path) from None
        except UnicodeDecodeError as e:
            raise RecordingError(f"not a UTF-8 text file ({e.reason})", path) from None

    engine = TableEngine(path, "csv", layout, batches, _line)
    engine.total_rows = _estimate_rows(path)  # for progress while a one-pass read runs
    return engine, drop_last




class _ArrowFallback(Exception):
    """The Arrow CSV reader stopped; the pandas reader takes over from the same row."""


def _arrow_can_read(path: Path, header: list[str]) -> bool:
    """Whether the header is plain (no spaces around names, no BOM), so Arrow's column names
    are ours; anything else goes through the pandas reader."""
    with open(path, "rb") as f:
        first = f.readline()
    if first.startswith(b"\xef\xbb\xbf"):
        return False
    raw = next(_csv.reader([first.decode("utf-8", "replace").rstrip("\r\n")]))
    return raw == header and len(set(header)) == len(header)


def _arrow_batches(path: Path, usecols: list[str]) -> Iterator[tuple[dict[str, Any], int]]:
    """Record batches of ``usecols`` as float64 numpy columns, with pyarrow's streaming CSV
    reader (one thread: the batch analysis already uses every core); nulls become NaN."""

    block = max(1 << 14, int(BATCH_ROWS * _line_bytes(path)))  # about BATCH_ROWS rows a batch
    # A Python file object, not the path: given a path (or an Arrow file), the streaming
    # reader reads ahead of the batches handed out and held up to the whole file (90 MB of a
    # 100 MB CSV); through a Python file it holds a bounded number of blocks.
    f = open(path, "rb")  # noqa: SIM115 - closed below, also when Arrow fails
    try:
        yield from _arrow_batches_from(f, usecols, block)
    finally:
        f.close()


def _arrow_batches_from(f: Any, usecols: list[str], block: int) -> Iterator[tuple[dict[str, Any], int]]:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    try:
        reader = pacsv.open_csv(
            f,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=block),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=usecols, column_types={c: pa.float64() for c in usecols}),
        )
    except (pa.ArrowException, OSError, UnicodeDecodeError):
        raise _ArrowFallback() from None
    row0 = 0
    with reader:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, UnicodeDecodeError):
                raise _ArrowFallback() from None
            cols = {n: c.to_numpy(zero_copy_only=False)
                    for n, c in zip(batch.schema.names, batch.columns, strict=True)}
            yield cols, row0
            row0 += batch.num_rows


def _line_bytes(path: Path) -> float:
    """Mean bytes per line of the first 64 KiB (to size batches and estimate progress)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return len(head) / max(head.count(b"\n"), 1)


def _estimate_rows(path: Path) -> int:
    """Data rows, estimated from the file size and the first lines (progress only)."""
    return max(1, round(os.path.getsize(path) / _line_bytes(path)) - 1)


class CsvSource(TableSource):
    """A CSV recording read batch by batch (two parsing passes, memory flat with its length)."""

    def __init__(self, path: str | Path, *, one_pass: bool = False):
        self.path = Path(path)
        engine, drop_last = _engine(self.path)
        super().__init__(engine, self.path.stem, {"dropped_last_line": drop_last},
                         one_pass=one_pass)


def open_csv(path: str | Path, *, one_pass: bool = False) -> CsvSource:
    """Open a CSV recording for chunked reading (``one_pass``: parse it once, see
    ``toetwitch.drivers.readers.table.TableSource``)."""
    return CsvSource(path, one_pass=one_pass)


def read_csv(path: str | Path) -> Recording:
    """Read a whole CSV recording into a :class:`~toetwitch.drivers.Recording` in one parsing pass."""
    path = Path(path)
    engine, drop_last = _engine(path)
    scan = engine.scan(keep=True)
    meta = {"path": str(path), **scan.meta, "dropped_last_line": drop_last}
    return Recording(
        emg_uv=scan.emg_uv,
        fs_emg_hz=scan.fs_emg_hz,
        acc_g=scan.acc_g,
        fs_acc_hz=scan.fs_acc_hz,
        name=path.stem,
        start_time=None,
        meta=meta,
    )
