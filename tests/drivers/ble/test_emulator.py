"""The emulated sensor on a real BLE stack (bumble's virtual radio), driven through bleak's API.

scan -> connect -> stream -> loss -> disconnect -> reconnect -> stop, with the host's
accounting checked against what the sensor says it did.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakGATTProtocolError
from bleak_retry_connector import establish_connection

from toetwitch.drivers import Recording
from toetwitch.drivers.ble import profile_v1 as pv1
from toetwitch.drivers.ble.client import (
    LinkFailedError,
    LinkItem,
    SensorLink,
    SensorNotFoundError,
    find_sensor,
    scan,
)
from toetwitch.drivers.ble.codec import Decoder, parse_packet
from toetwitch.drivers.ble.emulator import (
    BumbleClient,
    BumbleScanner,
    EmulatedSensor,
    SensorConfig,
    VirtualAir,
    bleak_kwargs,
    choose_format,
)


def recording(seconds: float = 4.0, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    return Recording(
        emg_uv=rng.normal(0, 5, int(seconds * 1000)),
        fs_emg_hz=1000.0,
        acc_g=np.round(rng.normal(0, 0.01, (int(seconds * 100), 3)) * 1e4) / 1e4,
        fs_acc_hz=100.0,
        name="emu",
    )


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def stream_session(rec: Recording, cfg: SensorConfig, mtu: int = 247):
    """Run SensorLink against an emulated sensor until its END packet; decode everything."""
    air = VirtualAir()
    sensor = EmulatedSensor(air, rec, cfg)
    await sensor.start()
    queue: asyncio.Queue[LinkItem] = asyncio.Queue()
    sk, ck = bleak_kwargs(air, mtu=mtu)
    link = SensorLink(None, queue, scanner_kwargs=sk, client_kwargs=ck, scan_timeout_s=5)
    task = asyncio.create_task(link.run())
    dec, kinds, out = None, [], {"emg": [], "acc": []}
    sizes = set()
    try:
        while True:
            item = await queue.get()
            kinds.append(item.kind)
            if item.kind == "info":
                dec = Decoder(pv1.decode_info(item.data))
            elif item.kind == "packet":
                sizes.add(len(item.data))
                for b in dec.feed(item.data, item.host_time_ns / 1e9):
                    out[b.kind].append(b.values)
                if dec.ended:
                    link.stop()
            elif item.kind == "stopped":
                break
        await task
    finally:
        await sensor.stop()
    return sensor, link, dec, kinds, {k: np.concatenate(v) for k, v in out.items()}, sizes


def test_scan_lists_the_sensor_by_service_with_name_and_rssi():
    async def go():
        air = VirtualAir()
        sensor = EmulatedSensor(air, recording(1.0), SensorConfig(name="TT-LEFT"))
        await sensor.start()
        try:
            raw = await BleakScanner.discover(timeout=0.3, return_adv=True,
                                              service_uuids=[pv1.SERVICE_UUID],
                                              backend=BumbleScanner, air=air)
            found = await scan(0.3, backend=BumbleScanner, air=air)
            return sensor, raw, found
        finally:
            await sensor.stop()

    sensor, raw, found = run(go())
    (dev, adv), = raw.values()
    assert adv.local_name == "TT-LEFT" and pv1.SERVICE_UUID in adv.service_uuids
    assert dev.address == sensor.address
    assert [(s.name, s.address, s.profile) for s in found] == [("TT-LEFT", sensor.address, "toetwitch-v1")]
    assert found[0].rssi < 0


def test_stream_with_loss_disconnect_and_resume_is_accounted_exactly():
    rec = recording(6.0)
    cfg = SensorConfig(speed=None, loss=0.05, seed=4, disconnect_after=(60, 150), lost_on_disconnect=5)
    sensor, link, dec, kinds, out, _ = run(stream_session(rec, cfg))
    truth = sensor.stats
    # two unsolicited drops, each followed by a reconnect that resumed the session
    assert truth.disconnects == 2 and link.drops == 2
    assert kinds.count("connected") == 3 and kinds.count("disconnected") == 2
    assert truth.starts == [pv1.START_NEW, pv1.START_RESUME, pv1.START_RESUME]
    s = dec.stats
    assert truth.dropped_random > 0 and truth.dropped_link_down == 10
    assert s.lost == truth.lost
    assert s.received == truth.sent and s.duplicated == 0
    assert s.received + s.lost == truth.produced
    # every stream keeps its full length; lost samples are NaN, the rest bit-exact
    emg, acc = out["emg"][:, 0], out["acc"]
    assert len(emg) == len(rec.emg_uv) and len(acc) == len(rec.acc_g)
    ok = ~np.isnan(emg)
    np.testing.assert_array_equal(emg[ok], rec.emg_uv[ok])
    assert int((~ok).sum()) == s.samples_lost_by_stream["emg"] > 0
    ok_acc = ~np.isnan(acc).any(axis=1)
    np.testing.assert_array_equal(acc[ok_acc], rec.acc_g[ok_acc])


@pytest.mark.parametrize("mtu", [23, 65])
def test_packets_fill_the_negotiated_mtu(mtu):
    rec = recording(1.0)
    sensor, _, dec, _, out, sizes = run(stream_session(rec, SensorConfig(speed=None), mtu=mtu))
    assert max(sizes) <= mtu - 3
    assert dec.stats.lost == 0 and len(out["emg"]) == len(rec.emg_uv)
    np.testing.assert_array_equal(out["emg"][:, 0], rec.emg_uv)


def test_paced_stream_arrives_complete():
    rec = recording(1.0)
    sensor, _, dec, _, out, _ = run(stream_session(rec, SensorConfig(speed=10.0)))
    assert dec.stats.lost == 0 and sensor.stats.sent == dec.stats.received
    np.testing.assert_array_equal(out["acc"], rec.acc_g)


def test_bleak_public_api_against_the_sensor():
    """The calls a person would write with bleak: nothing toetwitch-specific on the host side."""

    async def go():
        air = VirtualAir()
        rec = recording(8.0)
        sensor = EmulatedSensor(air, rec, SensorConfig(speed=None, name="TT-API"))
        await sensor.start()
        got: list[bytes] = []
        dropped = asyncio.Event()
        enough = asyncio.Event()

        def on_data(_char, data: bytearray) -> None:
            got.append(bytes(data))
            if len(got) == 20:
                enough.set()

        try:
            dev = await BleakScanner.find_device_by_filter(
                lambda d, ad: pv1.SERVICE_UUID in ad.service_uuids, timeout=5,
                service_uuids=[pv1.SERVICE_UUID], backend=BumbleScanner, air=air)
            client = await establish_connection(
                BleakClient, dev, dev.name, disconnected_callback=lambda _c: dropped.set(),
                max_attempts=2, backend=BumbleClient, air=air)
            info = pv1.decode_info(await client.read_gatt_char(pv1.INFO_UUID))
            assert client.mtu_size == 247
            with pytest.raises(BleakGATTProtocolError):
                await client.write_gatt_char(pv1.CONTROL_UUID, b"\x7f", response=True)
            await client.start_notify(pv1.DATA_UUID, on_data)
            await client.write_gatt_char(pv1.CONTROL_UUID, pv1.start_command(), response=True)
            await enough.wait()
            await sensor.drop_link()  # radio link lost
            await dropped.wait()
            assert not client.is_connected
            n_before = len(got)
            # reconnect with a fresh device and client, as bleak advises, and resume
            dev = await BleakScanner.find_device_by_address(sensor.address, timeout=5,
                                                            backend=BumbleScanner, air=air)
            client = await establish_connection(BleakClient, dev, dev.name, max_attempts=2,
                                                backend=BumbleClient, air=air)
            await client.start_notify(pv1.DATA_UUID, on_data)
            await client.write_gatt_char(pv1.CONTROL_UUID, pv1.start_command(mode=pv1.START_RESUME),
                                         response=True)
            await sensor.finished.wait()
            await client.write_gatt_char(pv1.CONTROL_UUID, pv1.stop_command(), response=True)
            await client.stop_notify(pv1.DATA_UUID)
            await client.disconnect()
            return info, got, n_before, sensor.stats
        finally:
            await sensor.stop()

    info, got, n_before, stats = run(go())
    assert info.stream("emg").fs_hz == 1000.0 and info.stream("acc").channels == 3
    seqs = [parse_packet(p).seq for p in got]
    assert seqs == list(range(len(seqs)))  # resumed where it stopped: no gap, no restart
    assert n_before >= 20 and stats.starts == [pv1.START_NEW, pv1.START_RESUME]
    assert parse_packet(got[-1]).stream_id == pv1.STREAM_STATUS


def test_link_given_up_keeps_what_was_received():
    """The sensor vanishes for good: the supervisor retries, then says so; nothing is lost."""

    async def go():
        air = VirtualAir()
        sensor = EmulatedSensor(air, recording(6.0), SensorConfig(speed=None))
        await sensor.start()
        queue: asyncio.Queue[LinkItem] = asyncio.Queue()
        sk, ck = bleak_kwargs(air, timeout_s=1.0)
        link = SensorLink(None, queue, scanner_kwargs=sk, client_kwargs=ck, scan_timeout_s=0.2,
                          max_reconnects=2, backoff_s=(0.01, 0.02))
        task = asyncio.create_task(link.run())
        packets = 0
        while packets < 30:
            item = await queue.get()
            packets += item.kind == "packet"
        await sensor.stop()  # switched off mid-stream: it will not be found again
        with pytest.raises(LinkFailedError, match="after 2 attempts"):
            await task
        kinds = []
        while not queue.empty():
            kinds.append(queue.get_nowait().kind)
        return packets, kinds, link

    packets, kinds, link = run(go())
    assert packets == 30 and "disconnected" in kinds and link.drops == 1
    assert link.target is not None  # it looked for the same sensor, not any sensor


def test_absent_sensor_gives_up_quickly_and_clearly():
    async def go():
        air = VirtualAir()
        with pytest.raises(SensorNotFoundError, match="toetwitch scan"):
            await find_sensor("TT-NOWHERE", 0.2, backend=BumbleScanner, air=air)
        with pytest.raises(BleakDeviceNotFoundError):
            await BleakClient(_ghost(air), backend=BumbleClient, timeout=0.3).connect()

    run(go())


def _ghost(air: VirtualAir):
    from bleak.backends.device import BLEDevice

    return BLEDevice("D0:00:00:00:99:99", "ghost", {"air": air})


def test_auto_format_is_lossless_and_compact():
    rng = np.random.default_rng(2)
    assert choose_format(np.round(rng.normal(0, 30, 500) * 100) / 100, "emg", 1) == ("i16", 0.01)
    assert choose_format(np.round(rng.normal(0, 1, (50, 3)) * 1e5) / 1e5, "acc", 3) == ("i24", 1e-5)
    assert choose_format(rng.normal(0, 1, 100).astype(np.float32), "emg", 1) == ("f32", 1.0)
    assert choose_format(rng.normal(0, 1, 100), "emg", 1) == ("f64", 1.0)
