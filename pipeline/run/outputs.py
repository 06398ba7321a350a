"""Write the analyse files of docs/contracts.md §2 (events.csv, episodes.csv, summary.json) and §8
(events.tsv + events.json, BIDS-style: :mod:`toetwitch.pipeline.run.bids`)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from toetwitch.pipeline.detect.stream import AnalysisResult


def write_outputs(result: AnalysisResult, out_dir: str | Path) -> Path:
    """Write the files into ``out_dir`` (created). Each file is written to a temporary
    name and renamed, so a killed process never leaves a half-written file."""
    from toetwitch.pipeline.run.bids import bids_columns, events_sidecar, events_tsv_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "events.csv", result.events.to_csv(index=False, float_format="%.6g"))
    start = result.summary.get("start_time")
    _atomic_write(out / "events.tsv", events_tsv_text(result.events, start))
    ev = result.events
    acc_lms = bool(len(ev)) and bool(((ev["type"] == "limb_movement") & (ev["source"] == "acc")).any())
    sidecar = events_sidecar(bids_columns(ev, start), start, acc_limb_movements=acc_lms)
    _atomic_write(out / "events.json", json.dumps(sidecar, indent=2) + "\n")
    _atomic_write(out / "episodes.csv", result.episodes.to_csv(index=False, float_format="%.6g"))
    _atomic_write(out / "summary.json", json.dumps(to_json(result.summary), indent=2) + "\n")
    return out


def to_json(obj: Any) -> Any:
    """numpy scalars/NaN -> plain JSON values (NaN and inf become null)."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
