"""Resume: a recording's outputs are up to date when its bytes, the detector configuration
and the toetwitch version match the fingerprint written beside them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from toetwitch.pipeline.run.jobs import (
    MARKER_NAME,
    MARKER_VERSION,
    OUTPUT_FILES,
    BatchJob,
    SourceFingerprint,
)
from toetwitch.pipeline.run.tables import _write_text_atomic


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (bounded memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fingerprint_file(path: str | Path) -> SourceFingerprint:
    st = os.stat(path)
    return SourceFingerprint(st.st_size, st.st_mtime_ns, file_sha256(path))


def config_fingerprint(config: Any = None) -> str:
    """SHA-256 of the detector configuration (the default one for None) and toetwitch version.

    Outputs made with another configuration or another toetwitch version are not up to date.
    """
    if config is None:
        try:
            from toetwitch import pipeline

            cls = getattr(pipeline, "DetectorConfig", None)
            config = cls() if cls is not None else None
        except Exception:  # noqa: BLE001 - a missing default only weakens the fingerprint
            config = None
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        payload: Any = dataclasses.asdict(config)
    elif isinstance(config, dict) or config is None:
        payload = config
    else:
        payload = repr(config)
    text = json.dumps(
        {"config": payload, "toetwitch_version": _version()}, sort_keys=True, default=repr
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toetwitch")
    except PackageNotFoundError:
        return "0+unknown"


def is_up_to_date(source: str | Path, folder: Path, config_sha256: str) -> bool:
    """True when ``folder`` holds complete outputs made from this file's current content.

    Compares the stored fingerprint: same configuration and toetwitch version, same file size,
    and either the same modification time or (when only the time changed: a copy, a ``touch``)
    the same SHA-256 of the file's bytes. In that last case the stored time is refreshed so the
    next check is cheap again.
    """
    marker_path = folder / MARKER_NAME
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        st = os.stat(source)
    except (OSError, ValueError):
        return False
    if not all((folder / f).is_file() for f in OUTPUT_FILES):
        return False
    if marker.get("marker_version") != MARKER_VERSION or marker.get("config_sha256") != config_sha256:
        return False
    if marker.get("size_bytes") != st.st_size:
        return False
    if marker.get("mtime_ns") == st.st_mtime_ns:
        return True
    try:
        same = marker.get("sha256") == file_sha256(source)
    except OSError:
        return False
    if same:
        marker["mtime_ns"] = st.st_mtime_ns
        try:
            _write_text_atomic(marker_path, json.dumps(marker, indent=2) + "\n")
        except OSError:  # read-only output folder: still up to date, just slower next time
            pass
    return same


def _marker(job: BatchJob, fp: SourceFingerprint, config_sha256: str) -> dict[str, Any]:
    return {
        "marker_version": MARKER_VERSION,
        "source": str(Path(job.path).resolve()),
        "size_bytes": fp.size_bytes,
        "mtime_ns": fp.mtime_ns,
        "sha256": fp.sha256,
        "config_sha256": config_sha256,
        "toetwitch_version": _version(),
    }


def _drop_stale(job: BatchJob, folder: Path, cfg_sha: str) -> None:
    """Remove outputs of an earlier run that no longer match the (now failing) file."""
    if folder.is_dir() and not is_up_to_date(job.path, folder, cfg_sha):
        shutil.rmtree(folder, ignore_errors=True)


def _read_summary(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
