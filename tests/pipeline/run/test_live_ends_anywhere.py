"""The live path ends cleanly at any moment (issue: every input a device produces).

One real emulated session (bumble's virtual radio, with two forced disconnects) is captured
as the link items a monitor receives. A fresh :class:`toetwitch.pipeline.run.live.LiveSession` is then fed
every prefix that matters: 0 s of data (device info only), 0.1, 1 and 2 s, and a cut right
after a disconnect (the session ends while reconnecting). Each must end with a summary that
accounts for every second, and a packet log that replays to the same twitches and duration.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest

from toetwitch.drivers import Recording
from toetwitch.drivers.ble.client import LinkItem, SensorLink
from toetwitch.drivers.ble.emulator import EmulatedSensor, SensorConfig, VirtualAir, bleak_kwargs
from toetwitch.drivers.ble.packetlog import PacketLogWriter
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.run.live import LiveSession


def _recording(seconds: float = 3.0) -> Recording:
    rng = np.random.default_rng(12)
    return Recording(
        emg_uv=np.round(rng.normal(0, 4, int(seconds * 1000)) * 10) / 10,
        fs_emg_hz=1000.0,
        acc_g=np.round(rng.normal(0, 0.002, (int(seconds * 100), 3)) * 1e4) / 1e4 + [0, 0, 1.0],
        fs_acc_hz=100.0,
        name="emu",
    )


async def _capture(rec: Recording, cfg: SensorConfig) -> list[LinkItem]:
    air = VirtualAir()
    sensor = EmulatedSensor(air, rec, cfg)
    await sensor.start()
    queue: asyncio.Queue[LinkItem] = asyncio.Queue()
    sk, ck = bleak_kwargs(air)
    link = SensorLink(None, queue, scanner_kwargs=sk, client_kwargs=ck, scan_timeout_s=5)
    task = asyncio.create_task(link.run())
    items: list[LinkItem] = []
    ended = False
    try:
        while True:
            item = await queue.get()
            items.append(item)
            if item.kind == "packet" and not ended and item.data and _is_end(item, items):
                ended = True
                link.stop()
            if item.kind == "stopped":
                break
        await task
    finally:
        await sensor.stop()
    return items


def _is_end(item: LinkItem, items: list[LinkItem]) -> bool:
    from toetwitch.drivers.ble import profile_v1 as pv1
    from toetwitch.drivers.ble.codec import Decoder

    info = next(i for i in items if i.kind == "info")
    dec = Decoder(pv1.decode_info(info.data))
    for i in items:
        if i.kind == "packet":
            dec.feed(i.data, i.host_time_ns / 1e9)
    return dec.ended


@pytest.fixture(scope="module")
def session_items() -> list[LinkItem]:
    cfg = SensorConfig(speed=None, disconnect_after=(8, 20))
    return asyncio.run(asyncio.wait_for(_capture(_recording(), cfg), 60))


def _cut_after_seconds(items: list[LinkItem], seconds: float) -> list[LinkItem]:
    """The items up to the first packet whose EMG reaches ``seconds`` of signal."""
    from toetwitch.drivers.ble import profile_v1 as pv1
    from toetwitch.drivers.ble.codec import Decoder

    info = next(i for i in items if i.kind == "info")
    dec = Decoder(pv1.decode_info(info.data))
    n = 0
    for k, it in enumerate(items):
        if it.kind == "packet":
            for b in dec.feed(it.data, it.host_time_ns / 1e9):
                if b.kind == "emg":
                    n = max(n, b.start_index + len(b.values))
        if seconds == 0 and it.kind == "info":
            return items[: k + 1]
        if seconds > 0 and n >= seconds * 1000:
            return items[: k + 1]
    return items


def _run_prefix(items: list[LinkItem], tmp_path, name: str):
    log = tmp_path / f"{name}.ttlog"
    session = LiveSession(name, PacketLogWriter(log))
    for it in items:
        if it.kind in ("stopped",):
            continue
        session.handle(it)
    return session.finish(), log


def _accounted(s: dict) -> None:
    total = s["time_rest_s"] + s["time_active_s"] + s["time_artifact_s"] + s["time_not_analysed_s"]
    assert total == pytest.approx(s["duration_s"], abs=2e-3)


@pytest.mark.parametrize("seconds", [0.0, 0.1, 1.0, 2.0])
def test_session_ends_after_any_amount_of_data(session_items, tmp_path, seconds, capsys):
    result, log = _run_prefix(_cut_after_seconds(session_items, seconds), tmp_path, f"s{seconds:g}")
    s = result.summary
    assert s["duration_s"] == pytest.approx(seconds, abs=0.15)
    _accounted(s)
    assert s["packets"]["lost"] == 0
    out = tmp_path / "replayed"
    code = main(["replay", str(log), "--speed", "max", "--out", str(out), "--no-journal", "-q"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if seconds == 0:
        # no sample at all: one clean line naming the log, not an analysis of nothing
        assert code == 1 and err.count("\n") == 1 and str(log) in err, err
        return
    assert code == 0, err
    again = json.loads((out / log.stem / "summary.json").read_text())
    assert again["duration_s"] == s["duration_s"]
    assert again["twitches"] == s["twitches"]
    _accounted(again)


def test_session_ends_while_reconnecting(session_items, tmp_path, capsys):
    k = next(i for i, it in enumerate(session_items) if it.kind == "disconnected")
    result, log = _run_prefix(session_items[: k + 1], tmp_path, "down")
    s = result.summary
    assert s["packets"]["disconnects"] == 1
    assert 0 < s["duration_s"] < 3.0
    _accounted(s)
    out = tmp_path / "replayed"
    assert main(["replay", str(log), "--speed", "max", "--out", str(out), "--no-journal", "-q"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    again = json.loads((out / "down" / "summary.json").read_text())
    assert again["duration_s"] == s["duration_s"]
    ev = pd.read_csv(out / "down" / "events.csv")
    assert len(ev) == len(result.events)
