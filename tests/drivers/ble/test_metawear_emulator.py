"""The emulated MetaWear / MetaMotion on a real BLE stack (bumble's virtual radio), through
bleak's public API: Device Information -> module discovery -> connection parameters ->
accelerometer config / subscribe / enable / start -> data -> stop sequence; loss the host
cannot see, and reconnects."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from tests.drivers.ble.wearable_link import acc_recording, run, session
from toetwitch.drivers.ble.client import LinkFailedError, scan
from toetwitch.drivers.ble.emulator import (
    EmulatedMetaWear,
    MetaWearConfig,
    VirtualAir,
    bleak_kwargs,
)
from toetwitch.drivers.ble.emulator.wearable import recording_acc_g
from toetwitch.drivers.ble.profiles import metawear as mw
from toetwitch.drivers.ble.profiles import metawear_session as mws


def raw_lsb(rec, odr_hz: float, range_g: int) -> np.ndarray:
    """What the board's accelerometer reads: the recording at the ODR, in int16 LSB."""
    return np.clip(np.round(recording_acc_g(rec, odr_hz) * mw.LSB_PER_G[range_g]), -32768, 32767)


def test_scan_shows_the_board_and_its_profile():
    async def go():
        air = VirtualAir()
        board = EmulatedMetaWear(air, acc_recording(0.5), MetaWearConfig())
        await board.start()
        try:
            return await scan(0.5, **bleak_kwargs(air)[0])
        finally:
            await board.stop()

    (found,) = run(go())
    # beside the 128-bit service UUID, 8 bytes of the name fit in the advertisement
    assert (found.name, found.profile) == ("MetaWear", "metawear")


@pytest.mark.parametrize("imu", ["BMI160", "BMI270"])
def test_bleak_public_api_discovery_config_start_stream_stop(imu):
    """The SDK's byte sequence, spoken with plain bleak calls."""
    rec = acc_recording(1.0)
    impl = mw.IMPL_BMI160 if imu == "BMI160" else mw.IMPL_BMI270

    async def go():
        air = VirtualAir()
        board = EmulatedMetaWear(air, rec, MetaWearConfig(speed=None, imu=imu))
        await board.start()
        sk, ck = bleak_kwargs(air)
        got: asyncio.Queue[bytes] = asyncio.Queue()
        try:
            dev = await BleakScanner.find_device_by_filter(
                lambda d, ad: mw.SERVICE_UUID in ad.service_uuids, timeout=5, **sk)
            async with BleakClient(dev, **ck) as client:
                props = client.services.get_characteristic(mw.COMMAND_UUID).properties
                assert "write-without-response" in props
                model = await client.read_gatt_char(mw.DIS_UUIDS[1])
                await client.start_notify(mw.NOTIFY_UUID, lambda _c, v: got.put_nowait(bytes(v)))
                infos = {}
                for cmd in mw.discovery_commands():
                    await client.write_gatt_char(mw.COMMAND_UUID, cmd, response=False)
                    infos[cmd[0]] = mw.decode_module_info(await got.get())
                for cmd in mw.start_sequence(impl, 200.0, 4, packed=False):
                    await client.write_gatt_char(mw.COMMAND_UUID, cmd, response=False)
                data = [await got.get() for _ in range(50)]
                for cmd in mw.stop_sequence(impl):
                    await client.write_gatt_char(mw.COMMAND_UUID, cmd, response=False)
            return bytes(model), infos, data
        finally:
            await board.stop()

    model, infos, data = run(go())
    assert model == b"5" and len(infos) == 25
    assert infos[3].implementation == impl and infos[3].revision == 1
    assert not infos[0x16].present and infos[0x11].present  # no humidity; settings
    assert all(len(v) == 8 and v[:2] == b"\x03\x04" for v in data)  # one sample each
    got = np.concatenate([mw.decode_acc_notification(v, impl, 4) for v in data])
    np.testing.assert_array_equal(got * mw.LSB_PER_G[4], raw_lsb(rec, 200.0, 4)[:50])


def test_the_session_handshake_follows_the_sdk_and_streams_packed_data():
    rec = acc_recording(2.0)
    s = run(session(EmulatedMetaWear, rec, MetaWearConfig(speed=None), mws.PROFILE))
    st = s.sensor.stats
    cmds = st.commands
    assert cmds[:25] == mw.discovery_commands() and st.discovery_reads == 25
    assert cmds[25] == mw.connection_parameters_command(7.5, 7.5, 0, 6000.0)
    assert cmds[26:30] == mw.start_sequence(mw.IMPL_BMI160, 100.0, 8, packed=True)
    assert cmds[30:] == mw.stop_sequence(mw.IMPL_BMI160, packed=True)
    assert (st.odr_hz, st.range_g) == (100.0, 8)
    assert s.decoder.info.stream("acc").fs_hz == 100.0
    want = raw_lsb(rec, 100.0, 8)
    assert len(s.acc) == st.samples_sent == len(want) // 3 * 3
    np.testing.assert_array_equal(s.acc * 4096.0, want[: len(s.acc)])
    assert s.decoder.stats.received == st.notifications == len(s.acc) // 3  # packed: 3 per packet
    # no device clock: device time is the sample index / ODR, mapped to host arrivals
    assert s.decoder.origin_device_s == 0.0 and s.decoder.clock.n_pairs > 0


def test_lost_notifications_cannot_be_seen_and_the_summary_says_so():
    rec = acc_recording(3.0)
    s = run(session(EmulatedMetaWear, rec, MetaWearConfig(speed=None, loss=0.1, seed=2),
                    mws.PROFILE))
    st = s.sensor.stats
    assert st.dropped_random > 0 and st.samples_lost == 3 * st.dropped_random
    # the samples after a lost notification just move up: no NaN, nothing to count
    assert not np.isnan(s.acc).any() and len(s.acc) == st.samples_sent
    summary = s.decoder.stats.as_summary()
    assert summary["loss_measurable"] is False
    assert summary["lost"] is None and summary["samples_lost"] is None
    assert summary["loss_fraction"] is None
    assert s.decoder.stats.link_text() == "loss unmeasurable"


def test_unpacked_data_on_a_board_whose_accelerometer_has_no_packed_mode():
    rec = acc_recording(1.0)
    s = run(session(EmulatedMetaWear, rec, MetaWearConfig(speed=None, imu="BMI270", acc_revision=0),
                    mws.configured(mws.MetaWearSettings(odr_hz=50.0, range_g=16))))
    st = s.sensor.stats
    assert mw.subscribe_command(mw.IMPL_BMI270, packed=False) in st.commands
    assert (st.odr_hz, st.range_g) == (50.0, 16)
    assert s.decoder.stats.received == st.notifications == len(s.acc) == 50
    np.testing.assert_array_equal(s.acc * 2048.0, raw_lsb(rec, 50.0, 16))


def test_disconnect_and_reconnect_resume_streaming():
    rec = acc_recording(3.0)
    s = run(session(EmulatedMetaWear, rec, MetaWearConfig(speed=None, disconnect_every=30),
                    mws.PROFILE))
    st = s.sensor.stats
    assert st.disconnects >= 2 and s.link.drops == st.disconnects
    # every connection ran the whole handshake and started the accelerometer again
    assert st.starts == st.connections == st.disconnects + 1
    assert st.discovery_reads == 25 * st.connections
    assert s.kinds.count("connected") == st.connections
    # faster than real time no time passes while the link is down, and none is estimated
    assert len(s.acc) == st.samples_sent == st.samples_produced
    assert s.decoder.stats.samples_gap_estimated == 0
    np.testing.assert_array_equal(s.acc * 4096.0, raw_lsb(rec, 100.0, 8)[: len(s.acc)])


def test_in_real_time_the_samples_a_reconnect_cost_are_sized_from_the_host_clock():
    """The board is stopped while its link is down; with no clock of its own, the host sizes
    the gap from arrival times, so the events after a reconnect keep their times."""
    rec = acc_recording(3.0)
    s = run(session(EmulatedMetaWear, rec, MetaWearConfig(speed=1.0, disconnect_every=40),
                    mws.PROFILE))
    st = s.sensor.stats
    assert st.disconnects >= 2 and len(st.skipped) >= 1
    nan = np.isnan(s.acc[:, 0])
    assert (~nan).sum() == st.samples_sent
    assert s.decoder.stats.samples_gap_estimated == int(nan.sum())
    # to within a few samples (10 ms each) of arrival jitter per reconnect
    assert abs(int(nan.sum()) - st.samples_skipped) <= 3 * st.disconnects
    raw = raw_lsb(rec, 100.0, 8)
    taken = np.ones(len(raw), bool)
    for first, count in st.skipped:
        taken[first:first + count] = False
    np.testing.assert_array_equal(s.acc[~nan] * 4096.0, raw[taken][: st.samples_sent])


def test_settings_take_only_the_rates_toetwitch_streams_at():
    with pytest.raises(ValueError, match="50, 100, 200"):
        mws.MetaWearSettings(odr_hz=25.0)
    with pytest.raises(ValueError, match="ranges"):
        mws.MetaWearSettings(range_g=3)


class OlderBoard(EmulatedMetaWear):
    """A MetaWear R: its accelerometer is an MMA8452Q (implementation 0)."""

    def module_info(self, module_id: int) -> mw.ModuleInfo:
        if module_id == mw.MODULE_ACCELEROMETER:
            return mw.ModuleInfo(module_id, 0, 0)
        return super().module_info(module_id)


def test_a_board_with_another_accelerometer_is_refused_clearly():
    with pytest.raises(LinkFailedError, match="has the MMA8452Q accelerometer \\(implementation 0\\); "
                                              "toetwitch drives the BMI160 and BMI270"):
        run(session(OlderBoard, acc_recording(0.5), MetaWearConfig(speed=None), mws.PROFILE))
