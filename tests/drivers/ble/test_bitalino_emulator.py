"""The emulated BITalino on a real BLE stack (bumble's virtual radio), driven through bleak's
public API: scan -> connect -> version -> start -> stream -> loss -> disconnect -> reconnect
-> stop, with the host's accounting checked against what the board says it did."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from toetwitch.drivers import Recording
from toetwitch.drivers.ble.client import LinkItem, SensorLink, scan
from toetwitch.drivers.ble.emulator import (
    BitalinoConfig,
    EmulatedBitalino,
    VirtualAir,
    bleak_kwargs,
)
from toetwitch.drivers.ble.profiles import bitalino as bit
from toetwitch.drivers.ble.profiles import open_decoder


def recording(seconds: float = 3.0, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    return Recording(emg_uv=rng.normal(0, 40, int(seconds * 2000)), fs_emg_hz=2000.0,
                     acc_g=rng.normal(0, 0.05, (int(seconds * 200), 3)) + [0, 0, 1],
                     fs_acc_hz=200.0, name="emu")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


HOST = bit.BitalinoSettings(command_gap_s=0.0)  # the default map: A1 emg, A5 one acc axis
THREE = bit.BitalinoSettings(channels=bit.THREE_AXES, command_gap_s=0.0)


async def session(rec: Recording, cfg: BitalinoConfig, settings=HOST, stop_after: int | None = None):
    """SensorLink (profile bitalino) against an emulated board until the recording ends."""
    air = VirtualAir()
    board = EmulatedBitalino(air, rec, cfg)
    await board.start()
    queue: asyncio.Queue[LinkItem] = asyncio.Queue()
    sk, ck = bleak_kwargs(air)
    link = SensorLink(None, queue, scanner_kwargs=sk, client_kwargs=ck, scan_timeout_s=5,
                      profile=bit.configured(settings))
    task = asyncio.create_task(link.run())
    dec, kinds, out, packets = None, [], {"emg": [], "acc": []}, 0
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 0.3)
            except TimeoutError:
                if board.finished.is_set():
                    link.stop()
                continue
            kinds.append(item.kind)
            if item.kind == "info":
                dec = open_decoder(item.data)
            elif item.kind in ("connected", "disconnected") and dec is not None:
                dec.link_event({"event": item.kind, **(item.detail or {})}, item.host_time_ns / 1e9)
            elif item.kind == "packet":
                packets += 1
                for b in dec.feed(item.data, item.host_time_ns / 1e9):
                    out[b.kind].append(b.values)
                if stop_after is not None and packets >= stop_after:
                    link.stop()
            elif item.kind == "stopped":
                break
        await task
    finally:
        await board.stop()
    return board, link, dec, kinds, {k: np.concatenate(v) for k, v in out.items() if v}


def test_scan_shows_the_board_and_its_profile():
    async def go():
        air = VirtualAir()
        board = EmulatedBitalino(air, recording(0.5), BitalinoConfig(name="BITalino"))
        await board.start()
        try:
            return await scan(1.0, **bleak_kwargs(air)[0])
        finally:
            await board.stop()

    (found,) = run(go())
    assert (found.name, found.profile) == ("BITalino", "bitalino")


def test_bleak_public_api_version_state_start_stream_stop():
    """The board's command protocol, spoken with plain bleak calls."""

    async def go():
        air = VirtualAir()
        board = EmulatedBitalino(air, recording(1.0), BitalinoConfig(speed=None, pack="frame",
                                                                   wiring=bit.THREE_AXES))
        await board.start()
        sk, ck = bleak_kwargs(air)
        try:
            dev = await BleakScanner.find_device_by_filter(
                lambda d, ad: bit.SERVICE_UUID in ad.service_uuids, timeout=5, **sk)
            got = bytearray()
            arrived = asyncio.Event()

            def on_frames(_c, data):
                got.extend(data)
                arrived.set()

            async with BleakClient(dev, **ck) as client:
                props = client.services.get_characteristic(bit.COMMANDS_UUID).properties
                assert "write" in props and "write-without-response" not in props
                await client.start_notify(bit.FRAMES_UUID, on_frames)
                await client.write_gatt_char(bit.COMMANDS_UUID, b"\x07", response=True)
                while b"\n" not in got:
                    arrived.clear()
                    await arrived.wait()
                assert bytes(got) == b"BITalino_v5.2\n"
                got.clear()
                await client.write_gatt_char(bit.COMMANDS_UUID, b"\x0b", response=True)
                while len(got) < 17:
                    arrived.clear()
                    await arrived.wait()
                state = bit.parse_state(bytes(got))
                assert state["battery_raw"] == 600 and state["pwm"] == 0
                got.clear()
                await client.write_gatt_char(bit.COMMANDS_UUID, bit.rate_command(1000), response=True)
                await client.write_gatt_char(bit.COMMANDS_UUID, bit.start_command(0b11101),
                                             response=True)
                while len(got) < 7 * 100:
                    arrived.clear()
                    await arrived.wait()
                await client.write_gatt_char(bit.COMMANDS_UUID, bit.stop_command(), response=True)
                frames = np.frombuffer(bytes(got[: 7 * 100]), np.uint8).reshape(100, 7)
                vals, seq, _dig, ok = bit.decode_frames(frames, 4)
                assert ok.all() and seq.tolist() == [i % 16 for i in range(100)]
                np.testing.assert_array_equal(vals, board.adc[:100])
        finally:
            await board.stop()

    run(go())


@pytest.mark.parametrize("pack", ["pair", "frame", "bytes20"])
def test_stream_with_loss_is_accounted_exactly(pack):
    rec = recording(2.0)
    board, link, dec, kinds, out = run(session(rec, BitalinoConfig(
        speed=None, loss=0.05, seed=3, pack=pack, wiring=bit.THREE_AXES), settings=THREE))
    st = dec.stats
    assert board.stats.frames_produced == len(board.adc) == 2000
    assert st.received == board.stats.frames_sent and st.lost == board.stats.frames_lost
    assert st.lost > 0
    assert len(out["emg"]) == len(out["acc"]) == st.received + st.lost
    ok = ~np.isnan(out["emg"][:, 0])
    np.testing.assert_allclose(out["emg"][ok, 0], bit.emg_uv(board.adc[: len(ok)][ok, 0], 10))
    np.testing.assert_allclose(out["acc"][ok, 2], bit.acc_g(board.adc[: len(ok)][ok, 3], 10))
    assert kinds[:2] == ["info", "connected"] and kinds[-1] == "stopped"
    # the host stopped the board, then the radio sent its 0xFF on disconnect (ignored: idle)
    assert board.stats.commands[-2:] == [bit.CMD_STOP, bit.CMD_STOP_IF_LIVE]


def test_disconnect_stops_the_board_and_the_host_restarts_it_after_reconnecting():
    """The radio sends 0xFF on a drop: the board is idle after the reconnect; the host sets
    the rate and starts again, and sizes the gap (longer than 16 frames) from its clock."""
    rec = recording(2.5)
    board, link, dec, kinds, out = run(session(rec, BitalinoConfig(speed=1.0, disconnect_every=400)))
    assert board.stats.disconnects >= 2 and link.drops == board.stats.disconnects
    assert board.stats.acquisitions == board.stats.disconnects + 1
    assert kinds.count("connected") == board.stats.disconnects + 1
    # each reconnect re-sent the whole handshake: stop-if-live, version, state, rate, start
    starts = [c for c in board.stats.commands if c & 0x03 == 0x01 and c != 0xFF]
    assert len(starts) == board.stats.acquisitions
    st = dec.stats
    assert st.received == board.stats.frames_sent
    # the gaps (tens of ms of reconnecting) are sized by the host clock to within 16 frames a gap
    truth = board.stats.frames_sent + board.stats.frames_lost
    assert abs((st.received + st.lost) - truth) <= 16 * board.stats.disconnects


def test_at_max_speed_reconnects_keep_every_frame_received():
    rec = recording(2.0)
    board, link, dec, _kinds, out = run(session(rec, BitalinoConfig(speed=None, disconnect_every=300)))
    assert board.stats.disconnects >= 2 and dec.restarts == board.stats.disconnects
    assert dec.stats.received == board.stats.frames_sent
    ok = ~np.isnan(out["emg"][:, 0])
    assert ok.sum() == board.stats.frames_sent == len(out["emg"]) - dec.stats.lost
