"""A batch's files: each recording's folder committed atomically, and the summary tables.
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from toetwitch.pipeline.log import logger
from toetwitch.pipeline.run.jobs import (
    FAILURES_CSV,
    MARKER_NAME,
    STAGING_NAME,
    STATUS_FAILED,
    SUMMARY_CSV,
    SUMMARY_PARQUET,
    TABLE_COLUMNS,
    JobOutcome,
    Writer,
)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _default_writer(result: Any, folder: Path) -> None:
    from toetwitch.pipeline.run.outputs import write_outputs

    write_outputs(result, folder)


def _edf_writer(result: Any, folder: Path) -> None:
    """The default files plus ``<name>.edf`` (``analyse --write-edf``, docs/contracts.md §8): an EDF+
    copy of the source with the events as annotations (:mod:`toetwitch.pipeline.run.edf_writer`)."""
    from toetwitch.pipeline.run.edf_writer import write_annotated_edf

    _default_writer(result, folder)
    name = _output_name.get() or folder.name
    try:
        write_annotated_edf(result.summary["source_path"], result.events, folder / f"{name}.edf")
    except ValueError as exc:  # a rate EDF records cannot hold: say so, keep the other files
        logger.warning("%s: cannot write %s.edf (%s); the other outputs are written",
                       result.summary.get("source_path"), name, exc)


#: The output name of the recording being written (``commit_outputs`` sets it for the writer).
_output_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("_output_name", default=None)


def commit_outputs(out_dir: Path, name: str, result: Any, marker: dict[str, Any], writer: Writer) -> Path:
    """Write one recording's outputs into ``out_dir/name`` all at once.

    Writes into a staging folder inside ``out_dir`` (same file system), adds the fingerprint
    last, then swaps the folder into place; the previous folder, if any, is moved aside first
    and removed after. A crash at any point leaves either the old complete folder, nothing (the
    next ``resume`` re-analyses), or the new complete folder.
    """
    staging = out_dir / STAGING_NAME
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=staging))
    final = out_dir / name
    old: Path | None = None
    token = _output_name.set(name)
    try:
        writer(result, tmp)
        _write_text_atomic(tmp / MARKER_NAME, json.dumps(marker, indent=2) + "\n")
        if final.exists() or final.is_symlink():
            old = staging / f"{name}.old.{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _output_name.reset(token)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def flatten_summary(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with ``.`` (``signal_quality.grade``) and lists by position, from 0
    (``config.emg_band_hz.0``, ``config.emg_band_hz.1``): one value per cell (tidy tables).

    An empty list gives no column (``signal_quality.mains_notches_hz.0`` is then empty)."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        k = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                flat.update(flatten_summary(value, prefix=f"{k}."))
            else:
                flat[k] = None
        elif isinstance(value, list | tuple):
            flat.update(flatten_summary({str(i): v for i, v in enumerate(value)}, prefix=f"{k}."))
        else:
            flat[k] = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    return flat


def summary_table(outcomes: Iterable[JobOutcome]) -> pd.DataFrame:
    """One row per recording: ``name``, ``path``, ``status``, ``error``, then the summary keys.

    Nested summary keys are flattened with ``.``; keys only some recordings have (an artifact
    reason, packet statistics) are empty elsewhere. Columns are typed (nullable integers,
    booleans, strings) so the Parquet file keeps the types.
    """
    rows = []
    for o in outcomes:
        row: dict[str, Any] = {"name": o.job.name, "path": o.job.path, "status": o.status, "error": o.error}
        if o.summary:
            for k, v in flatten_summary(o.summary).items():
                row.setdefault(k, v)
        rows.append(row)
    columns: list[str] = list(TABLE_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    data = {c: _typed_column([row.get(c) for row in rows]) for c in columns}
    return pd.DataFrame(data, columns=columns)


def _typed_column(values: list[Any]) -> pd.Series:
    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    if not present:
        return pd.Series([None] * len(values), dtype="object")
    if all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")
    if all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype="string")
    return pd.Series([None if v is None else str(v) for v in values], dtype="string")


def write_tables(outcomes: Sequence[JobOutcome], out_dir: Path) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.parquet`` and ``failures.csv`` into ``out_dir`` atomically."""
    table = summary_table(outcomes)
    failures = pd.DataFrame(
        {
            "name": [o.job.name for o in outcomes if o.status == STATUS_FAILED],
            "path": [o.job.path for o in outcomes if o.status == STATUS_FAILED],
            "error": [o.error for o in outcomes if o.status == STATUS_FAILED],
        },
        columns=["name", "path", "error"],
    )
    paths = {
        "summary_csv": out_dir / SUMMARY_CSV,
        "summary_parquet": out_dir / SUMMARY_PARQUET,
        "failures_csv": out_dir / FAILURES_CSV,
    }
    _write_text_atomic(paths["summary_csv"], table.to_csv(index=False, lineterminator="\n"))
    _write_text_atomic(paths["failures_csv"], failures.to_csv(index=False, lineterminator="\n"))
    tmp = out_dir / f".{SUMMARY_PARQUET}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, paths["summary_parquet"])
    finally:
        tmp.unlink(missing_ok=True)
    return paths
