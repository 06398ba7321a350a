"""Batch entry points. Both run the streaming detector: one detector for every path."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.input_guard import merge_repairs
from toetwitch.pipeline.detect.stream import AnalysisResult, StreamingAnalyser

if TYPE_CHECKING:
    from toetwitch.drivers import Recording


def analyse(rec: Recording, config: DetectorConfig | None = None) -> AnalysisResult:
    """Detect twitches, movements and episodes in a whole :class:`toetwitch.drivers.Recording`.

    The same :class:`~toetwitch.pipeline.detect.stream.StreamingAnalyser` as replay and the live monitor, fed
    the whole arrays at once.
    """
    sa = StreamingAnalyser(rec.fs_emg_hz if rec.emg_uv is not None else None,
                           rec.fs_acc_hz if rec.acc_g is not None else None,
                           config, name=rec.name, start_time=rec.start_time)
    sa.push(emg_uv=rec.emg_uv, acc_g=rec.acc_g)
    result = sa.finish()
    _add_source_meta(result, rec.meta)
    return result


def analyse_source(source, config: DetectorConfig | None = None, chunk_s: float = 60.0,  # noqa: ANN001
                   progress: Callable[[float], None] | None = None) -> AnalysisResult:
    """Analyse a :class:`toetwitch.drivers.readers.RecordingSource` chunk by chunk (bounded memory).

    Gives the same result as :func:`analyse` on the whole recording. ``progress``, if given,
    is called after each chunk with the share of the recording analysed so far (0-1].
    """
    # header, not info: a one-pass source (open_recording(..., one_pass=True)) learns its
    # length while the chunks are read, and reading info first would cost a whole extra pass
    info = getattr(source, "header", None) or source.info
    sa = StreamingAnalyser(info.fs_emg_hz, info.fs_acc_hz, config, name=info.name,
                           start_time=info.start_time)
    share = getattr(source, "fraction_read", None)
    for chunk in source.iter_chunks(chunk_s):
        sa.push(emg_uv=chunk.emg_uv, acc_g=chunk.acc_g)
        if progress is not None:
            if info.duration_s > 0:
                progress(min(sa.seconds_in / info.duration_s, 1.0))
            elif share is not None and (f := share()) is not None:
                progress(f)
    result = sa.finish()
    _add_source_meta(result, dict(source.info.meta))  # complete once the chunks are read
    return result


def source_repairs(meta: dict) -> list[str]:
    """What a reader repaired or dropped (``meta["repairs"]``, gaps, a cut-off last line)."""
    lines = [str(x) for x in meta.get("repairs", [])]
    if meta.get("n_gaps"):
        lost = sum(g.get("missing_s", 0.0) for g in meta.get("gaps", []))
        lines.append(f"{meta['n_gaps']} gap(s) in the timestamps filled with lost samples"
                     + (f" ({lost:.3g} s listed)" if lost else ""))
    if meta.get("dropped_last_line"):
        lines.append("truncated last line dropped")
    return lines


def _add_source_meta(result: AnalysisResult, meta: dict) -> None:
    """Copy reader/packet provenance that the summary contract asks for."""
    merge_repairs(result.summary, source_repairs(meta))
    if "packets" in meta:
        result.summary["packets"] = meta["packets"]
    if meta.get("path"):
        result.summary["source_path"] = str(meta["path"])
    if meta.get("format"):
        result.summary["source_format"] = meta["format"]
