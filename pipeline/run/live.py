"""The live session: BLE packets in, twitches out, raw packet log written as it goes.

:class:`LiveSession` consumes :class:`toetwitch.drivers.ble.client.LinkItem` objects (from a real
sensor or the emulated one): it appends every notification to the packet log first (so a
crash loses nothing already received), decodes it, and feeds the decoded samples to the one
detector, :class:`toetwitch.pipeline.StreamingAnalyser`, one detector block at a time (``block_s``,
by default the detector's own 0.1 s): the detector sees a potential only when its block is
complete, so pushing more at once only adds delay, and at 10 pushes a second the per-call
filter overhead (~50-80 µs per ``sosfilt`` call) stays negligible (docs/evidence.md §B4).

A twitch is shown as soon as the rules that look back have passed it (about 0.4 s after its
packet) through ``on_provisional``; the rules that look ahead settle it about 2 s later: it
then comes through ``on_events`` like every other event, or through ``on_withdrawn``.

:func:`run_monitor` wires a :class:`~toetwitch.drivers.ble.client.SensorLink` (and, with ``emulate``,
an :class:`~toetwitch.drivers.ble.emulator.EmulatedSensor` on a virtual radio) to a session and runs
until the sensor's stream ends, the link is given up, or :meth:`LiveSession.request_stop`.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toetwitch.drivers.ble.client import LinkItem, SensorLink
from toetwitch.drivers.ble.decoding import SessionDecoder
from toetwitch.drivers.ble.packetlog import PacketLogWriter, start_time_of
from toetwitch.drivers.ble.profiles import DeviceProfile, get_profile, profile_of_description
from toetwitch.drivers.recording import Recording
from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.stream import AnalysisResult, StreamingAnalyser
from toetwitch.pipeline.log import logger


@dataclass
class LiveSession:
    """Log, decode and analyse one live session.

    Parameters
    ----------
    name : str
        Session name (summary ``recording`` and output folder).
    log : PacketLogWriter or None
        Where raw packets go (None = no log).
    profile : DeviceProfile
        The sensor's profile; set from the session description (the first ``"info"``
        item), which names it.
    config : DetectorConfig, optional
    block_s : float, optional
        Seconds of signal per detector call (default: the detector's block).
    on_events : callable, optional
        Called with each non-empty DataFrame of newly settled events.
    on_provisional : callable, optional
        Called with each non-empty DataFrame of twitches shown before they are settled
        (:meth:`toetwitch.pipeline.StreamingAnalyser.take_provisional`).
    on_withdrawn : callable, optional
        Called with a list of ``(time_s, reason)`` of shown twitches the later rules rejected.
    lsl : toetwitch.pipeline.run.lsl.LslPublisher, optional
        Also publish the decoded streams and the events as LSL outlets.
    on_start : callable, optional
        Called once with the analyser when the session description has said which streams
        the sensor sends (``monitor`` then says what an accelerometer alone can count).
    """

    name: str
    log: PacketLogWriter | None = None
    profile: DeviceProfile = field(default_factory=lambda: get_profile("toetwitch-v1"))
    config: DetectorConfig | None = None
    block_s: float | None = None
    on_events: Callable[[pd.DataFrame], None] | None = None
    on_provisional: Callable[[pd.DataFrame], None] | None = None
    on_withdrawn: Callable[[list[tuple[float, str]]], None] | None = None
    lsl: Any = None
    on_start: Callable[[StreamingAnalyser], None] | None = None
    decoder: SessionDecoder | None = None
    analyser: StreamingAnalyser | None = None
    ended: bool = False
    connects: int = 0
    drops: int = 0
    started_ns: int = field(default_factory=time.perf_counter_ns)
    _pending: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"emg": [], "acc": []})
    _pending_n: dict[str, int] = field(default_factory=lambda: {"emg": 0, "acc": 0})
    #: keep each decoded block's arrival time for :meth:`arrival_of` (latency measurement;
    #: off by default, as it grows with the session)
    keep_arrivals: bool = False
    _arrivals: dict[str, tuple[list[int], list[int]]] = field(
        default_factory=lambda: {"emg": ([], []), "acc": ([], [])}
    )
    _twitches: int = 0
    _limb_movements: int = 0
    _checking: set[float] = field(default_factory=set)  # shown, not settled yet
    _fs: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.block_s is None:
            self.block_s = (self.config or DetectorConfig()).block_s

    # -- input ----------------------------------------------------------------------------
    def handle(self, item: LinkItem) -> None:
        """Take one item from the link. Cheap; pushes to the detector when a block is full."""
        if item.kind == "packet":
            if self.log is not None:
                self.log.write_packet(item.data, item.host_time_ns)
            if self.decoder is None:
                logger.warning("a packet arrived before the device info; skipped")
                return
            for block in self.decoder.feed(item.data, item.host_time_ns / 1e9):
                if self.lsl is not None:
                    self._publish(block)
                self._pending[block.kind].append(block.values)
                self._pending_n[block.kind] += len(block.values)
                if self.keep_arrivals:
                    ends, times = self._arrivals[block.kind]
                    ends.append(block.start_index + len(block.values))
                    times.append(item.arrival_ns)
            if self.decoder.ended:
                self.ended = True
            if self._block_full():
                self.flush()
        elif item.kind == "info":
            self._start(item)
        elif item.kind in ("connected", "disconnected"):
            if item.kind == "connected":
                self.connects += 1
            else:
                self.drops += 1
                self.flush()  # what arrived before the drop is analysed now
            event = {"event": item.kind, **(item.detail or {})}
            if self.log is not None:
                self.log.write_event(event, item.host_time_ns)
            if self.decoder is not None:  # replay of the log feeds the decoder the same
                self.decoder.link_event(event, item.host_time_ns / 1e9)

    def _start(self, item: LinkItem) -> None:
        if self.decoder is not None:
            return  # same device again (reconnect): keep the session
        # the session description names its profile (v1 Info, or a host-written one)
        self.profile = profile_of_description(item.data)
        self.decoder = self.profile.new_decoder(item.data)
        info = self.decoder.info
        emg, acc = info.stream("emg"), info.stream("acc")
        if (emg is None or emg.channels < 1) and (acc is None or acc.channels < 3):
            from toetwitch.drivers.errors import RecordingError

            raise RecordingError("the sensor offers neither an EMG nor a 3-axis accelerometer stream")
        if emg is not None:
            self._fs["emg"] = emg.fs_hz
        if acc is not None and acc.channels >= 3:
            self._fs["acc"] = acc.fs_hz
        self.analyser = StreamingAnalyser(
            self._fs.get("emg"), self._fs.get("acc"), self.config, name=self.name
        )
        self.analyser.provisional = self.on_provisional is not None or self.on_withdrawn is not None
        if self.on_start is not None:
            self.on_start(self.analyser)
        if self.lsl is not None:
            self.lsl.start(self._fs.get("emg"), self._fs.get("acc"),
                           source_id=str((item.detail or {}).get("address", "")))
        if self.log is not None:
            self.log.write_info(item.data, item.host_time_ns)
            from toetwitch.pipeline import __version__

            self.log.write_event(
                {"event": "session", "name": self.name, "profile": self.profile.name,
                 "toetwitch_version": __version__, **(item.detail or {})},
                item.host_time_ns,
            )

    def _publish(self, block: Any) -> None:
        dec = self.decoder
        if (not self.lsl.has_origin and dec is not None and dec.origin_device_s is not None
                and dec.clock.n_pairs):  # to_host fits the clock pairs: not once per packet
            self.lsl.set_origin(dec.clock.to_host(dec.origin_device_s))
        self.lsl.push(block.kind, block.start_index, block.values)

    def _block_full(self) -> bool:
        kind = "emg" if "emg" in self._fs else "acc"
        return self._pending_n[kind] >= self.feed_s * self._fs[kind]

    @property
    def feed_s(self) -> float:
        """Seconds of signal per detector call."""
        assert self.block_s is not None  # set in __post_init__
        return self.block_s

    def flush(self) -> pd.DataFrame:
        """Push whatever is pending into the detector; report and return new events."""
        if self.analyser is None:
            return pd.DataFrame()
        emg = acc = None
        if self._pending["emg"] and "emg" in self._fs:
            emg = np.concatenate(self._pending["emg"])[:, 0]
        if self._pending["acc"] and "acc" in self._fs:
            acc = np.concatenate(self._pending["acc"])[:, :3]
        for k in self._pending:
            self._pending[k] = []
            self._pending_n[k] = 0
        if emg is None and acc is None:
            return pd.DataFrame()
        new = self.analyser.push(emg_uv=emg, acc_g=acc)
        self._report_provisional()
        self._report(new)
        return new

    def _report_provisional(self) -> None:
        """Show newly seen twitches, and say which of those shown the later rules rejected."""
        assert self.analyser is not None
        if not self.analyser.provisional:
            return
        shown, gone = self.analyser.report_early(self.on_provisional, self.on_withdrawn)
        self._checking.update(shown["time_s"].tolist())
        self._checking.difference_update(t for t, _ in gone)

    def _report(self, new: pd.DataFrame) -> None:
        if not len(new):
            return
        self._twitches += int((new["type"] == "fasciculation").sum())
        self._limb_movements += int((new["type"] == "limb_movement").sum())
        if self._checking:
            self._checking.difference_update(new["time_s"].tolist())
        if self.lsl is not None:
            self.lsl.events(new)
        if self.on_events is not None:
            self.on_events(new)

    def arrival_of(self, kind: str, t_s: float) -> int | None:
        """Arrival time (``LinkItem.arrival_ns``) of the packet that carried the sample at
        ``t_s`` seconds of stream ``kind``, or None if unknown (or ``keep_arrivals`` is off)."""
        if kind not in self._fs:
            return None
        ends, times = self._arrivals[kind]
        i = bisect.bisect_right(ends, int(t_s * self._fs[kind]))
        return times[i] if i < len(times) else None

    # -- status ---------------------------------------------------------------------------
    @property
    def twitches(self) -> int:
        return self._twitches

    def seconds_seen(self) -> float:
        if self.analyser is None:
            return 0.0
        if "emg" in self._fs:
            return self.analyser.n_emg_in / self._fs["emg"]
        return self.analyser.n_acc_in / self._fs["acc"]

    def status_line(self, connected: bool = True) -> str:
        """``12:03  twitches 14  ·  3.2/min  ·  link 98.7 % (5 lost)  ·  connected``."""
        secs = self.seconds_seen()
        rate = self._twitches / (secs / 60) if secs >= 10 else None
        stats = self.decoder.stats if self.decoder else None
        link = "-" if stats is None else stats.link_text()
        checking = f" (+{len(self._checking)} checking)" if self._checking else ""
        # accelerometer alone: limb movements are what it counts best (EMG lines unchanged)
        acc_only = "acc" in self._fs and "emg" not in self._fs
        return (
            f"{int(secs // 60):02d}:{int(secs % 60):02d}  "
            + ("visible " if acc_only else "") + f"twitches {self._twitches}{checking}  ·  "
            + (f"{rate:.1f}/min" if rate is not None else "-/min")
            + (f"  ·  limb movements {self._limb_movements}" if acc_only else "")
            + f"  ·  link {link}  ·  {'connected' if connected else 'reconnecting'}"
        )

    # -- end ------------------------------------------------------------------------------
    def packet_summary(self) -> dict[str, Any]:
        """The ``packets`` block of the summary (architecture.md), plus link events."""
        assert self.decoder is not None
        out = self.decoder.stats.as_summary()
        out["disconnects"] = self.drops
        return out

    def finish(self) -> AnalysisResult:
        """Flush, finish the detector, add ``packets`` to the summary, close the log."""
        if self.analyser is None or self.decoder is None:
            if self.log is not None:
                self.log.close({"event": "end", "packets": None})
            from toetwitch.pipeline.errors import UserError

            raise UserError("the sensor sent nothing (no device info was received)", 1)
        self.flush()
        self.analyser.start_time = start_time_of(self.decoder)
        result = self.analyser.finish()
        self._report_provisional()  # withdrawals that only the end of the stream settled
        if len(self.analyser.flushed_events):
            self._report(self.analyser.flushed_events)
        summary = dict(result.summary)
        summary["start_time"] = self.analyser.start_time
        summary["packets"] = self.packet_summary()
        result = dataclasses.replace(result, summary=summary)
        if self.log is not None:
            self.log.close({"event": "end", "packets": summary["packets"]})
        return result


@dataclass
class MonitorOutcome:
    """What :func:`run_monitor` returns."""

    result: AnalysisResult
    session: LiveSession
    sensor_stats: Any = None  # toetwitch.drivers.ble.emulator.SensorStats when emulated
    interrupted: bool = False


def import_emulator() -> Any:
    """The :mod:`toetwitch.drivers.ble.emulator` module; :class:`UserError` if bumble is missing."""
    try:
        from toetwitch.drivers.ble import emulator
    except ImportError as exc:
        from toetwitch.pipeline.errors import UserError

        raise UserError(
            f"the emulated sensor (--emulate) needs the bumble BLE stack ({exc}): "
            "pip install 'toetwitch[emulator]'",
            1,
        ) from None
    return emulator


async def run_monitor(
    session: LiveSession,
    target: str | None = None,
    *,
    emulate: Recording | None = None,
    sensor_config: Any = None,
    scan_timeout_s: float = 10.0,
    max_reconnects: int | None = None,
    on_status: Callable[[str], None] | None = None,
    status_every_s: float = 1.0,
    handle_sigint: bool = True,
    profile: DeviceProfile | None = None,
) -> MonitorOutcome:
    """Run one live session to its end (stream END, Ctrl-C, or the link given up).

    With ``emulate``, an emulated sensor of ``profile`` (default the open profile:
    :class:`~toetwitch.drivers.ble.emulator.EmulatedSensor`; ``bitalino``:
    :class:`~toetwitch.drivers.ble.emulator.EmulatedBitalino`, ``sensor_config`` its config) serving
    that recording is put on a fresh virtual radio and the link runs through bleak's API on
    it. ``profile`` (with its settings) is the profile the link speaks; None takes the one
    the sensor advertises.
    """
    queue: asyncio.Queue[LinkItem] = asyncio.Queue()
    sensor = None
    scanner_kwargs: dict[str, Any] = {}
    client_kwargs: dict[str, Any] = {}
    if emulate is not None:
        emu = import_emulator()
        air = emu.VirtualAir()
        kind = profile.name if profile is not None else "toetwitch-v1"
        sensor_cls, config_cls = emu.EMULATED[kind]
        sensor = sensor_cls(air, emulate, sensor_config or config_cls())
        await sensor.start()
        scanner_kwargs, client_kwargs = emu.bleak_kwargs(air)
        target = target or sensor.address
    link = SensorLink(
        target, queue, scanner_kwargs=scanner_kwargs, client_kwargs=client_kwargs,
        scan_timeout_s=scan_timeout_s, max_reconnects=max_reconnects, profile=profile,
    )
    interrupted = False
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        link.stop()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts hard

    sigint = False
    if handle_sigint:
        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            sigint = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            pass
    link_task = asyncio.create_task(link.run())
    last_status = 0.0
    try:
        while True:
            get = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({get, link_task}, timeout=session.feed_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                item = get.result()
                session.handle(item)
                if item.kind == "stopped":
                    break
                if session.ended:
                    link.stop()
            else:
                get.cancel()
                session.flush()  # nothing arrived for a block: analyse what is pending
                if link_task.done() and queue.empty():
                    break
                if sensor is not None and sensor.finished.is_set() and queue.empty():
                    link.stop()  # the emulated recording is over (a BITalino never says so)
            if on_status is not None and time.monotonic() - last_status >= status_every_s:
                last_status = time.monotonic()
                on_status(session.status_line(link.connected))
        await link_task  # re-raises a link failure
    finally:
        if sigint:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        if not link_task.done():
            link.stop()
            link_task.cancel()
            try:
                await link_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if sensor is not None:
            await sensor.stop()
    result = session.finish()
    return MonitorOutcome(result, session, sensor.stats if sensor else None, interrupted)


def default_log_path(name: str, out_dir: Path | None) -> Path:
    """``DIR/<name>.ttlog`` with ``--out``, else ``./<name>.ttlog``; never an existing file."""
    base = (out_dir or Path.cwd()) / f"{name}.ttlog"
    k = 1
    path = base
    while path.exists():
        k += 1
        path = base.with_name(f"{name}-{k}.ttlog")
    return path
