"""Export the journal's tables (CSV or Parquet) for a clinician.
"""

from __future__ import annotations

import os
from pathlib import Path

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.store.journal import Journal
from toetwitch.pipeline.store.schema import TABLES


def export_tables(journal: Journal, out_dir: Path, fmt: str = "csv") -> list[tuple[Path, int]]:
    """Write every table of :data:`TABLES` to ``out_dir/TABLE.csv`` or ``.parquet``.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    Returns ``[(path, rows), ...]``.
    """
    if fmt not in ("csv", "parquet"):
        raise UserError(f"unknown export format {fmt!r}: use csv or parquet", 2)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder", 2)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder {out_dir}: {exc.strerror or exc}", 1) from exc
    written = []
    for table in TABLES:
        df = journal.read_table(table)
        path = out_dir / f"{table}.{fmt}"
        tmp = out_dir / f".{table}.{fmt}.tmp"
        try:
            if fmt == "csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UserError(f"cannot write {path}: {exc.strerror or exc}", 1) from exc
        written.append((path, len(df)))
    return written
