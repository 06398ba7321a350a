"""A whole live link (bleak's public API through SensorLink) against an emulated
accelerometer wearable, for the Movesense and MetaWear tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toetwitch.drivers import Recording
from toetwitch.drivers.ble.client import LinkItem, SensorLink
from toetwitch.drivers.ble.emulator import VirtualAir, bleak_kwargs
from toetwitch.drivers.ble.profiles import DeviceProfile, open_decoder


def acc_recording(seconds: float = 4.0, fs_hz: float = 100.0, seed: int = 0) -> Recording:
    """Gravity on z, 10 mg noise and a slow sway on x (so resampling has a shape to keep)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs_hz)
    t = np.arange(n) / fs_hz
    acc = rng.normal(0, 0.01, (n, 3)) + [0.0, 0.0, 1.0]
    acc[:, 0] += 0.2 * np.sin(2 * np.pi * 0.5 * t)
    return Recording(acc_g=acc, fs_acc_hz=fs_hz, name="emu")


@dataclass
class Session:
    sensor: Any
    link: SensorLink
    decoder: Any
    kinds: list[str] = field(default_factory=list)
    acc: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    info: bytes = b""


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 60))


async def session(sensor_cls: type, rec: Recording, cfg: Any, profile: DeviceProfile,
                  stop_after: int | None = None) -> Session:
    """SensorLink (``profile``) against an emulated sensor until the recording ends (or
    ``stop_after`` packets), decoding as the live session does."""
    air = VirtualAir()
    sensor = sensor_cls(air, rec, cfg)
    await sensor.start()
    queue: asyncio.Queue[LinkItem] = asyncio.Queue()
    sk, ck = bleak_kwargs(air)
    link = SensorLink(None, queue, scanner_kwargs=sk, client_kwargs=ck, scan_timeout_s=5,
                      profile=profile)
    task = asyncio.create_task(link.run())
    out = Session(sensor, link, None)
    blocks: list[np.ndarray] = []
    packets = 0
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 0.1)
            except TimeoutError:
                if task.done():
                    break  # the link failed: awaiting it below raises why
                if sensor.finished.is_set():
                    link.stop()
                continue
            out.kinds.append(item.kind)
            if item.kind == "info":
                out.info = item.data
                out.decoder = open_decoder(item.data)
            elif item.kind in ("connected", "disconnected") and out.decoder is not None:
                out.decoder.link_event({"event": item.kind, **(item.detail or {})},
                                       item.host_time_ns / 1e9)
            elif item.kind == "packet":
                packets += 1
                blocks += [b.values for b in out.decoder.feed(item.data, item.host_time_ns / 1e9)]
                if stop_after is not None and packets >= stop_after:
                    link.stop()
            elif item.kind == "stopped":
                break
        await task
    finally:
        await sensor.stop()
    if blocks:
        out.acc = np.concatenate(blocks)
    return out
