"""The emulated Polar H10 / Verity Sense on a real BLE stack (bumble's virtual radio), driven
through bleak's public API: feature read -> settings query -> START (FACTOR) -> raw and
delta frames -> loss -> disconnect -> reconnect -> stop, with the host's accounting checked
against what the device says it did."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from toetwitch.drivers import Recording
from toetwitch.drivers.ble.client import LinkItem, SensorLink, find_sensor, scan
from toetwitch.drivers.ble.emulator import (
    EMULATED,
    EmulatedPolar,
    PolarConfig,
    VirtualAir,
    bleak_kwargs,
)
from toetwitch.drivers.ble.emulator.polar import device_units
from toetwitch.drivers.ble.profiles import get_profile, open_decoder, polar, profile_for_services
from toetwitch.drivers.ble.profiles import polar_pmd as pmd
from toetwitch.drivers.errors import RecordingError


def recording(seconds: float = 3.0, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    acc = rng.normal(0, 0.05, (int(seconds * 200), 3)) + [0, 0, 1]
    return Recording(acc_g=acc, fs_acc_hz=200.0, name="emu")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


H10 = polar.PolarSettings("h10", reply_timeout_s=2.0)
VERITY = polar.PolarSettings("verity", reply_timeout_s=2.0)


async def session(rec: Recording, cfg: PolarConfig, settings=H10, mtu: int = 247):
    """SensorLink (a polar profile) against an emulated device until the recording ends."""
    air = VirtualAir()
    dev = EmulatedPolar(air, rec, cfg)
    await dev.start()
    queue: asyncio.Queue[LinkItem] = asyncio.Queue()
    sk, ck = bleak_kwargs(air, mtu=mtu)
    link = SensorLink(None, queue, scanner_kwargs=sk, client_kwargs=ck, scan_timeout_s=5,
                      profile=polar.configured(settings))
    task = asyncio.create_task(link.run())
    dec, kinds, out = None, [], []
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 0.3)
            except TimeoutError:
                if task.done():
                    await task  # the link failed: its error
                if dev.finished.is_set():
                    link.stop()
                continue
            kinds.append(item.kind)
            if item.kind == "info":
                dec = open_decoder(item.data)
            elif item.kind in ("connected", "disconnected") and dec is not None:
                dec.link_event({"event": item.kind, **(item.detail or {})}, item.host_time_ns / 1e9)
            elif item.kind == "packet":
                out += [b.values for b in dec.feed(item.data, item.host_time_ns / 1e9)]
            elif item.kind == "stopped":
                break
        await task
    finally:
        await dev.stop()
    return dev, link, dec, kinds, (np.concatenate(out) if out else np.empty((0, 3)))


def served_g(dev: EmulatedPolar) -> np.ndarray:
    """What the device measured, in g (the truth a lossless session decodes)."""
    return dev._units * dev.stats.factor / 1000.0


def test_both_profiles_share_the_service_and_the_name_tells_them_apart():
    uuids = [pmd.SERVICE_UUID]
    assert profile_for_services(uuids, "Polar H10 1A2B3C4D").name == "polar-h10"
    assert profile_for_services(uuids, "Polar Sense 1A2B3C4D").name == "polar-verity"
    assert profile_for_services(uuids, "Some Other Strap") is None
    assert profile_for_services([polar.HEART_RATE_UUID], "Polar H10 1A2B3C4D").name == "polar-h10"

    async def go():
        air = VirtualAir()
        devs = [EmulatedPolar(air, recording(0.5), PolarConfig(model=m)) for m in ("verity", "h10")]
        for d in devs:
            await d.start()
        try:
            found = await scan(1.0, **bleak_kwargs(air)[0])
            # --device polar-h10 finds the H10, though the Verity Sense serves the same service
            dev, prof = await find_sensor(None, 2.0, get_profile("polar-h10"), **bleak_kwargs(air)[0])
            return found, dev, prof, devs
        finally:
            for d in devs:
                await d.stop()

    found, dev, prof, devs = run(go())
    assert sorted((f.name, f.profile) for f in found) == [
        ("Polar H10 EMU0001", "polar-h10"), ("Polar Sense EMU0001", "polar-verity")]
    assert prof.name == "polar-h10" and dev.address == devs[1].address


def test_bleak_public_api_features_settings_start_factor_frames_stop():
    """The PMD control point, spoken with plain bleak calls; replies split over indications."""
    rec = recording(4.0)

    async def go():
        air = VirtualAir()
        dev = EmulatedPolar(air, rec, PolarConfig(model="verity", speed=None, cp_value_len=9))
        await dev.start()
        sk, ck = bleak_kwargs(air)
        try:
            found = await BleakScanner.find_device_by_filter(
                lambda d, ad: (ad.local_name or "").startswith("Polar Sense"), timeout=5, **sk)
            cp = pmd.CpResponseAssembler()
            replies: asyncio.Queue = asyncio.Queue()
            frames: list[bytes] = []
            got = asyncio.Event()

            def on_cp(_c, value):
                if pmd.decode_measurement_stopped(bytes(value)) is not None:
                    return
                if (r := cp.push(bytes(value))) is not None:
                    replies.put_nowait(r)

            def on_data(_c, value):
                frames.append(bytes(value))
                got.set()

            async with BleakClient(found, **ck) as client:
                props = client.services.get_characteristic(pmd.CONTROL_UUID).properties
                assert {"read", "write", "indicate"} <= set(props)
                await client.start_notify(pmd.CONTROL_UUID, on_cp)
                await client.start_notify(pmd.DATA_UUID, on_data)
                types, sdk = pmd.decode_features(bytes(await client.read_gatt_char(pmd.CONTROL_UUID)))
                assert pmd.MEAS_ACC in types and sdk
                await client.write_gatt_char(pmd.CONTROL_UUID, pmd.get_settings_command(), response=True)
                offer = (await replies.get()).settings()  # 4 settings over 9-byte indications
                assert offer[pmd.SETTING_SAMPLE_RATE] == (52,) and offer[pmd.SETTING_CHANNELS] == (3,)
                await client.write_gatt_char(pmd.CONTROL_UUID, pmd.start_command(104, 16, 8, 3),
                                             response=True)
                refused = await replies.get()  # 104 Hz needs SDK mode
                assert refused.status_name == "invalid sample rate"
                await client.write_gatt_char(pmd.CONTROL_UUID, pmd.start_command(52, 16, 8, 3),
                                             response=True)
                started = await replies.get()
                assert started.ok and started.factor() == pytest.approx(8000 / 32768)
                while len(frames) < 3:
                    got.clear()
                    await got.wait()
                await client.write_gatt_char(pmd.CONTROL_UUID, pmd.stop_command(), response=True)
                assert (await replies.get()).op == pmd.OP_STOP
                return dev, frames, started.factor()
        finally:
            await dev.stop()

    dev, frames, factor = run(go())
    codec = pmd.PolarAccDecoder(52.0, factor)
    blocks = [codec.push(f) for f in frames[:3]]
    first = pmd.parse_frame(frames[0])
    assert first.compressed and first.frame_type == 1  # the Verity Sense's delta frames
    got = np.concatenate([b.acc_g for b in blocks])
    np.testing.assert_allclose(got, served_g(dev)[: len(got)], atol=1e-12)
    # device time: ns since 2000-01-01, the first sample at the configured clock start
    assert blocks[0].t_device_s[0] == pytest.approx(dev.cfg.clock_start_s, abs=1e-6)
    assert np.diff(np.concatenate([b.t_device_s for b in blocks])) == pytest.approx(1 / 52, abs=1e-6)


@pytest.mark.parametrize(("settings", "model", "fs_hz", "compressed"), [
    (H10, "h10", 200.0, False), (VERITY, "verity", 52.0, True),
    (polar.PolarSettings("verity", fs_hz=104, reply_timeout_s=2.0), "verity", 104.0, True),
])
def test_stream_with_loss_is_accounted_exactly(settings, model, fs_hz, compressed):
    rec = recording(12.0)
    dev, link, dec, kinds, out = run(session(rec, PolarConfig(model=model, speed=None, loss=0.08,
                                                              seed=5), settings))
    st, truth = dec.stats, dev.stats
    assert dec.fs_hz == truth.fs_hz == fs_hz and truth.frames_lost > 0
    assert pmd.parse_frame(dev_frames_kind(dev)).compressed == compressed
    assert st.received == truth.frames_sent
    assert st.samples_received == truth.samples_sent
    # every loss a later frame's stamp reveals is NaN at its own sample indices
    assert st.samples_lost == truth.samples_lost_detectable == int(np.isnan(out[:, 0]).sum())
    ok = ~np.isnan(out[:, 0])
    np.testing.assert_allclose(out[ok], served_g(dev)[: len(out)][ok], atol=1e-12)
    assert kinds[:2] == ["info", "connected"] and kinds[-1] == "stopped"
    # the host stopped it, and SDK mode too when the session had switched it on
    stops = [pmd.stop_command(), pmd.stop_command(pmd.MEAS_SDK_MODE)] if fs_hz == 104.0 else [pmd.stop_command()]
    assert truth.commands[-len(stops):] == stops
    assert not dev._sdk_mode


def dev_frames_kind(dev: EmulatedPolar) -> bytes:
    """One frame as the device encodes them at its started settings."""
    return next(dev._frames(0, 244))[2]


def test_reconnects_resume_and_the_time_the_link_was_down_is_loss():
    """The measurement stops with the link; the host starts it again; the device clock ran
    on, so the gap shows in the stamps as lost samples, each at its own index."""
    rec = recording(3.0)
    dev, link, dec, kinds, out = run(session(rec, PolarConfig(speed=None, disconnect_every=5,
                                                              reconnect_gap_s=0.25)))
    truth = dev.stats
    assert truth.disconnects >= 2 and link.drops == truth.disconnects
    assert truth.measurements == truth.disconnects + 1
    assert kinds.count("connected") == truth.disconnects + 1
    starts = [c for c in truth.commands if c[0] == pmd.OP_START]
    assert len(starts) == truth.measurements  # the whole handshake again each time
    assert dec.stats.discontinuities == 0
    assert dec.stats.samples_lost == truth.samples_lost_detectable == int(np.isnan(out[:, 0]).sum())
    assert truth.samples_lost >= 50 * (truth.disconnects - 1)  # 0.25 s at 200 Hz per drop
    ok = ~np.isnan(out[:, 0])
    np.testing.assert_allclose(out[ok], served_g(dev)[: len(out)][ok], atol=1e-12)


@pytest.mark.parametrize(("cfg", "settings", "mtu", "msg"), [
    (PolarConfig(start_status=13), H10, 247, "refused to start the accelerometer at 200 Hz, "
                                             "±8 g: device in charger"),
    (PolarConfig(), H10, 185, "invalid MTU (the link's ATT MTU is 185; Polar devices need at least 232)"),
    (PolarConfig(), polar.PolarSettings("h10", fs_hz=400), 247,
     "offers an accelerometer rate of 25, 50, 100, 200 Hz, not 400"),
    (PolarConfig(), polar.PolarSettings("h10", range_g=16), 247,
     "offers an accelerometer range of 2, 4, 8 g (±), not 16"),
])
def test_bad_replies_are_clear_errors(cfg, settings, mtu, msg):
    with pytest.raises(RecordingError, match="Polar control point") as err:
        run(session(recording(0.5), cfg, settings, mtu=mtu))
    assert msg in str(err.value)


def test_a_recording_without_an_accelerometer_is_refused():
    rec = Recording(emg_uv=np.zeros(1000), fs_emg_hz=1000.0, name="emg-only")
    with pytest.raises(RecordingError, match="emg-only has no accelerometer"):
        EmulatedPolar(VirtualAir(), rec)


def test_the_recording_is_resampled_clipped_and_quantised():
    t = np.arange(400) / 200.0
    acc = np.stack([np.sin(2 * np.pi * t), np.full_like(t, 9.0), np.full_like(t, 0.0123456)], 1)
    units = device_units(acc, 200.0, 52.0, 8, 1.0)
    assert len(units) == 104 and units.dtype == np.int64
    assert (units[5:-5, 1] == 8000).all()  # clipped to the ±8 g range, whole mG
    assert (units[5:-5, 2] == 12).all()
    assert set(EMULATED) >= {"polar-h10", "polar-verity"}
    assert EMULATED["polar-verity"][1](speed=None, loss=0.0, seed=0, disconnect_every=0).model == "verity"
