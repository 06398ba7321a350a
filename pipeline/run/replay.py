"""Replay: stream a recording through the live path in packet-sized chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from toetwitch.drivers import Recording
from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.stream import AnalysisResult, StreamingAnalyser

#: Default packet duration: a BLE notification of 244 bytes carries ~100 ms of 1 kHz EMG.
PACKET_S = 0.1
#: ``StreamingAnalyser.hold_s`` of a replay at full speed (without a provisional display):
#: the detector's cost is per call, so it runs on 5 s at a time (same events, bench/throughput.py).
MAX_SPEED_HOLD_S = 5.0


def packets(rec: Recording, packet_s: float = PACKET_S) -> Iterator[tuple[float, np.ndarray | None, np.ndarray | None]]:
    """Yield (end_time_s, emg chunk, acc chunk) covering consecutive ``packet_s`` spans."""
    n_packets = int(np.ceil(rec.duration_s / packet_s)) if rec.duration_s > 0 else 0
    for k in range(n_packets):
        t0, t1 = k * packet_s, (k + 1) * packet_s
        emg = acc = None
        if rec.emg_uv is not None:
            fs = rec.fs_emg_hz or 0.0
            emg = rec.emg_uv[round(t0 * fs): round(t1 * fs)]
        if rec.acc_g is not None:
            fs = rec.fs_acc_hz or 0.0
            acc = rec.acc_g[round(t0 * fs): round(t1 * fs)]
        yield t1, emg, acc


def replay(
    rec: Recording,
    speed: float | None = None,
    config: DetectorConfig | None = None,
    on_events: Callable[[pd.DataFrame], None] | None = None,
    packet_s: float = PACKET_S,
    on_provisional: Callable[[pd.DataFrame], None] | None = None,
    on_withdrawn: Callable[[list[tuple[float, str]]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AnalysisResult:
    """Stream ``rec`` through :class:`StreamingAnalyser` packet by packet.

    ``speed`` is the multiple of real time (None = as fast as possible). ``on_events`` is called
    with each non-empty batch of newly finalised events, as the live monitor reports them;
    ``on_provisional`` / ``on_withdrawn`` with twitches shown before they are settled and
    those later rejected (:meth:`StreamingAnalyser.take_provisional`), as the monitor's
    display shows them.
    """
    sa = StreamingAnalyser(
        rec.fs_emg_hz if rec.emg_uv is not None else None,
        rec.fs_acc_hz if rec.acc_g is not None else None,
        config,
        name=rec.name,
        start_time=rec.start_time,
    )
    sa.provisional = on_provisional is not None or on_withdrawn is not None
    if not speed:  # as fast as possible: no one waits on a packet, run the detector every few s
        sa.hold_s = MAX_SPEED_HOLD_S
    start = clock()
    for t_end, emg, acc in packets(rec, packet_s):
        if speed:
            wait = start + t_end / speed - clock()
            if wait > 0:
                sleep(wait)
        new = sa.push(emg_uv=emg, acc_g=acc)
        if sa.provisional:
            sa.report_early(on_provisional, on_withdrawn)
        if on_events is not None and len(new):
            on_events(new)
    result = sa.finish()
    if sa.provisional:
        sa.report_early(on_provisional, on_withdrawn)
    if on_events is not None and len(sa.flushed_events):
        on_events(sa.flushed_events)
    if "packets" in rec.meta:
        result.summary["packets"] = rec.meta["packets"]
    from toetwitch.pipeline.detect.analysis import source_repairs
    from toetwitch.pipeline.detect.input_guard import merge_repairs

    merge_repairs(result.summary, source_repairs(rec.meta))
    return result
