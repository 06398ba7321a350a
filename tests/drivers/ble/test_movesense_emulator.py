"""The emulated Movesense (GSP) on a real BLE stack (bumble's virtual radio), through bleak's
public API: HELLO -> subscribe -> Acc messages (DATA + DATA_PART2) -> loss from the stamps ->
disconnect -> re-subscribe, with the host's accounting checked against the sensor's truth."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from tests.drivers.ble.wearable_link import acc_recording, run, session
from toetwitch.drivers.ble.client import LinkFailedError, scan
from toetwitch.drivers.ble.emulator import (
    EmulatedMovesense,
    MovesenseConfig,
    VirtualAir,
    bleak_kwargs,
)
from toetwitch.drivers.ble.emulator.wearable import recording_acc_g
from toetwitch.drivers.ble.profiles import movesense as ms
from toetwitch.drivers.ble.profiles import movesense_gsp as gsp
from toetwitch.drivers.ble.profiles.wearable import STANDARD_GRAVITY_MS2

G = STANDARD_GRAVITY_MS2


def first_index(s) -> int:
    """Sensor sample index of the host's sample 0 (a lost first message moves it)."""
    cfg, fs = s.sensor.cfg, s.sensor.stats.rate_hz
    return round((s.decoder.origin_device_s * 1000 - cfg.clock_start_ms) * fs / 1000)


def check_against_truth(s, rec) -> np.ndarray:
    """NaN exactly where the sensor lost samples (between the first and last received), and
    the values it sent, in g (float32 m/s^2 on the air). Returns the NaN mask."""
    st, fs = s.sensor.stats, s.sensor.stats.rate_hz
    i0 = first_index(s)
    truth = st.lost_mask(i0 + len(s.acc))[i0:]
    nan = np.isnan(s.acc[:, 0])
    np.testing.assert_array_equal(nan, truth)
    want = recording_acc_g(rec, fs)[i0: i0 + len(s.acc)]
    np.testing.assert_allclose(s.acc[~nan], want[~nan], rtol=0, atol=1e-6)
    assert s.decoder.stats.samples_lost == truth.sum()
    return nan


def test_scan_finds_the_sensor_by_its_name_and_16_bit_uuid():
    async def go():
        air = VirtualAir()
        sensor = EmulatedMovesense(air, acc_recording(0.5), MovesenseConfig())
        await sensor.start()
        try:
            return await scan(0.5, **bleak_kwargs(air)[0])
        finally:
            await sensor.stop()

    (found,) = run(go())
    assert (found.name, found.profile) == ("Movesense 000000EMU", "movesense")


def test_bleak_public_api_hello_subscribe_stream_unsubscribe():
    """The GSP, spoken with plain bleak calls."""
    rec = acc_recording(1.0)

    async def go():
        air = VirtualAir()
        sensor = EmulatedMovesense(air, rec, MovesenseConfig(speed=None))
        await sensor.start()
        sk, ck = bleak_kwargs(air)
        got: asyncio.Queue[bytes] = asyncio.Queue()
        try:
            dev = await BleakScanner.find_device_by_filter(
                lambda d, ad: (ad.local_name or "").startswith("Movesense"), timeout=5, **sk)
            async with BleakClient(dev, **ck) as client:
                assert client.mtu_size == 158  # the sensor's largest
                await client.start_notify(gsp.NOTIFY_UUID, lambda _c, v: got.put_nowait(bytes(v)))
                await client.write_gatt_char(gsp.WRITE_UUID, gsp.hello_command(7), response=True)
                assert await got.get() == b"\x01\x07Hello"
                await client.write_gatt_char(gsp.WRITE_UUID, b"\x01\x09/Meas/Acc/104", response=True)
                assert await got.get() == bytes([1, 9]) + struct.pack("<H", 200)
                msgs = [await got.get() for _ in range(10)]
                await client.write_gatt_char(gsp.WRITE_UUID, b"\x02\x09", response=True)
                while (v := await got.get())[0] != gsp.RESP_COMMAND_RESULT:
                    msgs.append(v)
                assert v == bytes([1, 9]) + struct.pack("<H", 200)
                await client.write_gatt_char(gsp.WRITE_UUID, b"\x01\x03/Meas/Gyro/104", response=True)
                assert await got.get() == bytes([1, 3]) + struct.pack("<H", 404)
            return msgs
        finally:
            await sensor.stop()

    msgs = run(go())
    decoded = [gsp.decode_acc_message(m) for m in msgs]
    assert all(ref == 9 and len(a) == 8 for ref, _ts, a in decoded)  # 8 samples at 104 Hz
    stamps = np.array([ts for _r, ts, _a in decoded])
    # u32 ms of each message's first sample, on a clock that started before the subscription
    np.testing.assert_array_equal(stamps - 3_600_000, np.round(np.arange(len(msgs)) * 8000 / 104))
    want = (recording_acc_g(rec, 104.0)[: 8 * len(msgs)] * G).astype("<f4")
    np.testing.assert_array_equal(np.concatenate([a for _r, _t, a in decoded]), want)


def test_part2_messages_with_loss_are_reassembled_and_the_loss_counted_exactly():
    """208 Hz: 16 samples = 198 bytes per message, more than one notification (155 bytes):
    every message goes as DATA + DATA_PART2, and losing either part loses the batch."""
    rec = acc_recording(4.0)
    s = run(session(EmulatedMovesense, rec, MovesenseConfig(speed=None, loss=0.05, seed=5),
                    ms.configured(ms.MovesenseSettings(fs_hz=208))))
    st = s.sensor.stats
    assert st.messages_split == st.messages > 0 and st.dropped_random > 0
    nan = check_against_truth(s, rec)
    assert nan.sum() >= 16 * 3 and nan.sum() % 16 == 0  # whole batches
    assert s.decoder.reassembler.lost_batches > 0
    assert s.decoder.stats.loss_measurable and s.decoder.stats.malformed == 0
    assert s.kinds[:2] == ["info", "connected"] and s.kinds[-1] == "stopped"
    # the host unsubscribed on the way out
    assert st.commands[-1] == gsp.unsubscribe_command(ms.ACC_REF)


def test_the_device_clock_maps_to_host_time_and_samples_keep_their_index():
    rec = acc_recording(3.0)
    s = run(session(EmulatedMovesense, rec, MovesenseConfig(speed=4.0), ms.PROFILE))
    assert s.sensor.stats.samples_lost == 0 and not np.isnan(s.acc).any()
    assert len(s.acc) == s.sensor.stats.samples_sent == len(recording_acc_g(rec, 104.0)) // 8 * 8
    # the sensor clock started at 3 600 s; at 4x real time it runs 4x the host's clock
    assert s.decoder.origin_device_s == pytest.approx(3600.0)
    assert s.decoder.clock.n_pairs > 10
    assert s.decoder.clock.to_host(3601.0) - s.decoder.clock.to_host(3600.0) == pytest.approx(0.25, abs=0.05)


def test_reconnects_resubscribe_and_the_link_down_time_shows_as_loss():
    """At 5x real time the sensor clock runs on while the link is down: the stamps show the
    samples measured meanwhile as lost, exactly as many as the sensor says."""
    rec = acc_recording(4.0)
    s = run(session(EmulatedMovesense, rec, MovesenseConfig(speed=5.0, disconnect_every=12),
                    ms.PROFILE))
    st = s.sensor.stats
    assert st.disconnects >= 2 and s.link.drops == st.disconnects
    assert st.subscriptions == st.connections == st.disconnects + 1
    assert s.kinds.count("connected") == st.disconnects + 1
    nan = check_against_truth(s, rec)  # (a loss after the last message received shows nowhere)
    assert nan.sum() > 0


def test_at_max_speed_reconnects_lose_nothing():
    rec = acc_recording(3.0)
    s = run(session(EmulatedMovesense, rec, MovesenseConfig(speed=None, disconnect_every=9, mtu=90),
                    ms.PROFILE))
    st = s.sensor.stats
    assert st.disconnects >= 3 and st.messages_split == st.messages  # 102 B > 87 B
    assert st.samples_lost == 0 and not np.isnan(s.acc).any()
    assert len(s.acc) == st.samples_sent


def test_older_firmware_that_answers_a_subscription_with_data_only():
    s = run(session(EmulatedMovesense, acc_recording(1.0),
                    MovesenseConfig(speed=None, subscribe_status=None), ms.PROFILE))
    assert len(s.acc) == s.sensor.stats.samples_sent > 0


@pytest.mark.parametrize(("status", "hint"), [(507, "no free subscription slot"),
                                              (404, "this firmware has no such resource")])
def test_a_refused_subscription_is_a_clear_error(status, hint):
    with pytest.raises(LinkFailedError, match=f"refused the subscription to /Meas/Acc/104 "
                                              f"\\(status {status}: {hint}"):
        run(session(EmulatedMovesense, acc_recording(0.5),
                    MovesenseConfig(speed=None, subscribe_status=status), ms.PROFILE))


def test_status_byte_order_of_either_firmware_is_read():
    assert ms.http_status(bytes([1, 2, 0xC8, 0x00])) == 200  # u16 LE
    assert ms.http_status(bytes([1, 2, 0x01, 0xFB])) == 507  # the sample firmware's big-endian
    assert ms.http_status(b"\x01\x01Hello") is None


def test_settings_take_only_rates_of_50_hz_or_more():
    with pytest.raises(ValueError, match="52, 104"):
        ms.MovesenseSettings(fs_hz=26)
