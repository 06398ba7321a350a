"""Parquet recordings: the CSV columns (docs/contracts.md §1) in a Parquet file.

Read in record batches with ``pyarrow.parquet.ParquetFile.iter_batches`` so a long recording
is never fully in memory (:class:`~toetwitch.drivers.readers.table.TableSource`: one pass to infer
rates, count samples and find gaps, a second that yields the chunks).
Missing cells are nulls (or NaN). Errors name the data row (1-based, header not counted).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers.table import COLUMNS, TableEngine, TableSource, check_header

#: Rows per record batch (~2.6 MB of float64 for the five columns: per-batch costs stay small
#: beside the decoding, memory stays flat).
BATCH_ROWS = 65_536
#: Bytes per buffered read of a column chunk (streams a row group instead of loading it whole).
READ_BUFFER_BYTES = 1 << 20


def _row(i: int) -> str:
    return f"row {i + 1}"


class ParquetSource(TableSource):
    """A Parquet recording read batch by batch."""

    def __init__(self, path: str | Path, *, one_pass: bool = False):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path)
        try:
            # pre_buffer off and a bounded read buffer: with pyarrow's default pre-buffering
            # iter_batches keeps every row group it has read cached until the file closes
            # (memory grew with the recording: 1 h 390 MB, 6 h 690 MB of RSS); buffered
            # reads keep one row group's pages at a time.
            self._file = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
        except (pa.ArrowException, OSError) as e:
            raise RecordingError(f"not a readable Parquet file ({e})", self.path) from None
        try:
            names = list(self._file.schema_arrow.names)
            layout = check_header(names, self.path, "columns")
            self._columns = [c for c in names if c.strip() in COLUMNS]
            self._time = _time_kind(self._file.schema_arrow, self.path)
            self._t_first: int | None = None  # first timestamp (ns), for datetime time_s
            if self._file.metadata.num_rows == 0:
                raise RecordingError("empty recording: no rows", self.path)
            engine = TableEngine(self.path, "parquet", layout, self._batches, _row)
            engine.total_rows = self._file.metadata.num_rows
            datetime = self._time is not None and self._time[0] == "timestamp"
            super().__init__(engine, self.path.stem,
                             {"time_column": "datetime"} if datetime else None, one_pass=one_pass)
        except BaseException:
            self._file.close()
            raise

    def _batches(self) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        import pyarrow as pa

        row0 = 0
        try:
            for batch in self._file.iter_batches(batch_size=BATCH_ROWS, columns=self._columns,
                                                 use_threads=False):
                # column by column into numpy (nulls become NaN), no DataFrame: to_pandas
                # would consolidate the columns into one 2-D block (a copy), and a DataFrame
                # per batch costs more than the parsing
                cols = {n: (self._seconds(c) if n.strip() == "time_s" and self._time
                            else c.to_numpy(zero_copy_only=False))
                        for n, c in zip(batch.schema.names, batch.columns, strict=True)}
                yield cols, row0
                row0 += batch.num_rows
        except pa.ArrowException as e:
            raise RecordingError(f"cannot read Parquet data ({e})", self.path) from None
        finally:
            # Arrow's allocator keeps freed pages for reuse; hand them back after each pass
            # (~60 MB that would otherwise sit under the whole analysis).
            pa.default_memory_pool().release_unused()

    def _start_time(self) -> str | None:
        """The first timestamp of a datetime ``time_s`` (ISO-8601, with its zone if it has one)."""
        if not (self._time and self._time[0] == "timestamp" and self._t_first is not None):
            return None
        schema = self._file.schema_arrow
        names = [n.strip() for n in schema.names]
        tz = getattr(schema.field(schema.names[names.index("time_s")]).type, "tz", None)
        ts = pd.Timestamp(self._t_first, unit="ns")
        return (ts.tz_localize("UTC").tz_convert(tz) if tz else ts).isoformat()

    def _seconds(self, col):  # noqa: ANN001, ANN202 - pyarrow array -> float64 seconds
        """A datetime / duration ``time_s`` as seconds (datetimes: from the first sample).

        Integer arithmetic up to the subtraction: nanoseconds since 1970 do not fit a float."""
        import numpy as np
        import pyarrow as pa

        ticks = col.cast(pa.int64())
        valid = ~np.asarray(ticks.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        raw = ticks.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if self._time[0] == "timestamp":
            if self._t_first is None:
                if not valid.any():
                    return np.full(len(raw), np.nan)
                self._t_first = int(raw[valid][0]) * int(_NS_PER_UNIT[self._time[1]])
            raw = raw * int(_NS_PER_UNIT[self._time[1]]) - self._t_first
        else:
            raw = raw * int(_NS_PER_UNIT[self._time[1]])
        out = raw.astype(np.float64) / 1e9
        out[~valid] = np.nan
        return out

    def close(self) -> None:
        self._file.close()


#: nanoseconds per unit of an Arrow timestamp/duration
_NS_PER_UNIT = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}


def _time_kind(schema, path: Path) -> tuple[str, str] | None:  # noqa: ANN001
    """("timestamp" | "duration", unit) when ``time_s`` is not a number, else None.

    A datetime column is read as seconds from its first sample; any other non-numeric type
    is refused, naming it."""
    import pyarrow as pa

    names = [n.strip() for n in schema.names]
    if "time_s" not in names:
        return None
    t = schema.field(schema.names[names.index("time_s")]).type
    if pa.types.is_timestamp(t):
        return "timestamp", t.unit
    if pa.types.is_duration(t):
        return "duration", t.unit
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t):
        return None
    raise RecordingError(
        f"column 'time_s' has type {t}; it must hold seconds (numbers) or datetimes",
        path, "columns")


def open_parquet(path: str | Path, *, one_pass: bool = False) -> ParquetSource:
    """Open a Parquet recording for chunked reading (``one_pass``: see ``TableSource``)."""
    return ParquetSource(path, one_pass=one_pass)
