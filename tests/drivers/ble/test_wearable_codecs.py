"""Accelerometer-wearable codecs: Polar PMD, Movesense GSP, MetaWear.

Literal byte vectors come from the public protocol sources named in each test: the Polar BLE SDK
(its ``AccDataTest.kt`` unit-test frames and widely used start commands), the Movesense GATT
SensorData Protocol specification and sample client, and the MetaWear C++ SDK.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toetwitch.drivers.ble.profiles import metawear as mw
from toetwitch.drivers.ble.profiles import movesense_gsp as gsp
from toetwitch.drivers.ble.profiles import polar_pmd as pmd
from toetwitch.drivers.ble.profiles.wearable import STANDARD_GRAVITY_MS2
from toetwitch.drivers.errors import RecordingError

H = bytes.fromhex

i16_samples = arrays(np.int64, st.tuples(st.integers(1, 120), st.just(3)),
                     elements=st.integers(-32768, 32767))


# --------------------------------------------------------------------------------------------
# Polar PMD
# --------------------------------------------------------------------------------------------
def test_polar_start_and_stop_commands_match_the_published_bytes():
    # widely used PMD start commands (Polar BLE SDK docs / third-party clients)
    assert pmd.start_command(200, 16, 8) == H("02 02 00 01 C8 00 01 01 10 00 02 01 08 00")
    assert pmd.start_command(52, 16, 8, channels=3) == H(
        "02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")
    assert pmd.start_command(130, 14, 0, measurement=pmd.MEAS_ECG)[:10] == H(
        "02 00 00 01 82 00 01 01 0E 00")
    assert pmd.stop_command() == H("03 02")
    assert pmd.get_settings_command() == H("01 02")
    cmd = pmd.decode_command(pmd.start_command(200, 16, 8))
    assert (cmd.op, cmd.measurement, cmd.recording_type) == (pmd.OP_START, pmd.MEAS_ACC, 0)
    assert cmd.settings == {0: (200,), 1: (16,), 2: (8,)}


def test_polar_feature_read_of_an_h10():
    # H10 reads 0f 05 00: ECG and ACC (Polar BLE SDK, PmdFeature)
    types, sdk = pmd.decode_features(H("0f 05 00"))
    assert types == {pmd.MEAS_ECG, pmd.MEAS_ACC} and not sdk
    assert pmd.encode_features({pmd.MEAS_ECG, pmd.MEAS_ACC}) == H("0f 05 00")
    with pytest.raises(RecordingError, match="0x0F"):
        pmd.decode_features(H("f0 02"))


def test_polar_raw_type1_frame_from_the_sdk_unit_test():
    # Polar BLE SDK AccDataTest "process acc raw data frame type 1" (first two samples)
    value = H("02 00 94 35 77 00 00 00 00 01") + H("F7 FF FF FF E7 03 F8 FF FE FF E5 03")
    frame = pmd.parse_frame(value)
    assert frame.timestamp_ns == 2_000_000_000 and not frame.compressed
    assert pmd.acc_frame_mg(frame).tolist() == [[-9, -1, 999], [-8, -2, 997]]
    assert pmd.encode_frame(frame) == value


SDK_COMPRESSED_TYPE0 = H(
    "71 07 F0 6A 9E 8D 0A 38 BE 5C BE BA 2F 96 B3 EE 4B E5 AD FB 42 B9 EB BE 4C FE BA 2F 92 BF EE "
    "4B E4 B1 FB 12 B9 EC BD 3C 3E BB 2F 8F D3 DE 4B E3 B5 F7 D2 B8 ED BD 30 7E 7B 2F 8B E3 CE 8B "
    "E2 BA F7 A2 B8 EE BC 20 BE 7B 2F 88 F3 CE CB E1 BD EF 52 F8 EF BC 18 FE 3B 2F 84 03 BF CB E0 "
    "C2 EF 32 B8 F0 BB 04 4E BC 2E 81 13 AF 0B E0 C6 EF F2 F7 F1 B9 FC 7D BC 2E 7D 27 9F 4B DF CA "
    "EB C2 F7 F2 B8 EC CD 7C 2E 7B 37 8F 4B DE CE E3 92 F7 F3 B8 E0 0D FD 2D 77 4B 7F CB DD D2 DF "
    "62 37 F5 B7 D4 4D BD 2D 74 5B 6F CB DC D7 D7 32 37 F6 B5 C8 8D 7D 2D 71 6B 4F 4B DC DC D3 F2 "
    "36 F7 B4 BC DD FD 2C 6F 7B 3F 4B DB E0 CF D2 36 F8 B2 B0 2D BE 2C 6C 8F 1F CB DA E3 C7 A2 76 F9")


def test_polar_compressed_type0_frame_from_the_sdk_unit_test():
    # Polar BLE SDK AccDataTest "process acc compressed data type 0": reference sample
    # (1905, 27376, -29282), 56 deltas of 10 bits, the first (+190, -105, -85); FACTOR 2.44e-4
    # (type 0 is in g), all within ±8 g.
    frame = pmd.parse_frame(H("02 00 94 35 77 00 00 00 00 80") + SDK_COMPRESSED_TYPE0)
    assert frame.compressed and frame.frame_type == 0
    raw = pmd.decode_delta(frame.content, 3, 16)
    assert raw.shape == (57, 3)
    assert raw[0].tolist() == [1905, 27376, -29282]
    assert raw[1].tolist() == [1905 + 190, 27376 - 105, -29282 - 85]
    mg = pmd.acc_frame_mg(frame, factor=2.44e-4)
    assert np.trunc(mg[0]).tolist() == [int(2.44e-4 * v * 1000) for v in (1905, 27376, -29282)]
    assert np.abs(mg).max() <= 8000
    # our encoder picks the narrowest width per block, so bytes may differ; values may not
    assert np.array_equal(pmd.decode_delta(pmd.encode_delta(raw, 16), 3, 16), raw)


def test_polar_compressed_type1_frame_and_times_from_the_sdk_unit_test():
    # Polar BLE SDK AccDataTest "process acc compressed data type 1": ref (-15, 20, 1008), one
    # 6-bit delta (-5, -3, 0); previous stamp 100 ns, this one 101 ns -> times 100.5 and 101
    frame = pmd.parse_frame(H("02 65 00 00 00 00 00 00 00 81 F1 FF 14 00 F0 03 06 01 7B 0F 08"))
    assert pmd.acc_frame_mg(frame).tolist() == [[-15, 20, 1008], [-20, 17, 1008]]
    t = pmd.sample_times_ns(frame.timestamp_ns, 2, 52.0, previous_ns=100)
    assert np.round(t).tolist() == [100.0, 101.0]  # the SDK rounds half to even too


@settings(max_examples=60, deadline=None)
@given(x=i16_samples, block=st.integers(1, 255))
def test_polar_delta_round_trip(x, block):
    enc = pmd.encode_delta(x, 16, block_samples=block)
    assert np.array_equal(pmd.decode_delta(enc, 3, 16), x)


@settings(max_examples=40, deadline=None)
@given(x=arrays(np.int64, st.tuples(st.integers(1, 40), st.just(3)),
                elements=st.integers(-(1 << 23), (1 << 23) - 1)),
       width=st.sampled_from([1, 2, 3]))
def test_polar_raw_round_trip(x, width):
    lim = 1 << (8 * width - 1)
    x = np.clip(x, -lim, lim - 1)
    assert np.array_equal(pmd.decode_raw(pmd.encode_raw(x, width), width), x)


@settings(max_examples=40, deadline=None)
@given(rate=st.sampled_from([25, 50, 100, 200]), res=st.integers(8, 24),
       rng=st.sampled_from([2, 4, 8, 16]), factor=st.floats(0.0001220703125, 2.0, width=32))
def test_polar_settings_and_cp_reply_round_trip(rate, res, rng, factor):
    params = pmd.encode_settings({0: (rate,), 1: (res,), 2: (rng,), 5: (factor,)})
    assert pmd.decode_settings(params) == {0: (rate,), 1: (res,), 2: (rng,), 5: (factor,)}
    parts = pmd.encode_cp_response(pmd.OP_START, pmd.MEAS_ACC, 0, params, max_value_len=9)
    assert len(parts) > 1 and all(len(p) <= 9 for p in parts)
    asm = pmd.CpResponseAssembler()
    got = [asm.push(p) for p in parts]
    assert got[:-1] == [None] * (len(parts) - 1)
    assert got[-1].ok and got[-1].factor() == factor and got[-1].settings()[0] == (rate,)


def test_polar_cp_error_reply_and_measurement_stopped():
    resp = pmd.CpResponseAssembler().push(
        pmd.encode_cp_response(pmd.OP_START, pmd.MEAS_ACC, pmd.STATUS_INVALID_MTU)[0])
    assert not resp.ok and resp.status_name == "invalid MTU" and resp.factor() == 1.0
    assert pmd.decode_measurement_stopped(H("01 02")) == (pmd.MEAS_ACC,)
    assert pmd.decode_measurement_stopped(H("f0 02 02 00 00")) is None


def test_polar_bad_bytes_raise_clear_errors():
    with pytest.raises(RecordingError, match="shorter than its 10-byte header"):
        pmd.parse_frame(H("02 00 01"))
    with pytest.raises(RecordingError, match="does not fit"):
        pmd.decode_delta(H("01 00 02 00 03 00 0a 38 be"), 3, 16)
    with pytest.raises(RecordingError, match="not a whole number"):
        pmd.acc_frame_mg(pmd.parse_frame(H("02 00 00 00 00 00 00 00 00 01 01 02 03")))
    with pytest.raises(RecordingError, match="unknown setting type"):
        pmd.decode_settings(H("09 01 00"))


@settings(max_examples=30, deadline=None)
@given(x=i16_samples, compressed=st.booleans(), drop=st.integers(0, 5),
       fs=st.sampled_from([25.0, 52.0, 100.0, 200.0]))
def test_polar_frames_round_trip_with_times_and_loss(x, compressed, drop, fs):
    t0 = 700_000_000_000_000_000  # ~22 years after 2000 in ns
    frames = pmd.encode_acc_frames(x, fs, t0, max_value_len=60, compressed=compressed)
    assert all(len(f) <= 60 for _, f in frames)
    lost_k = drop if 0 < drop < len(frames) - 1 else None
    dec = pmd.PolarAccDecoder(fs)
    blocks = [dec.push(f) for k, (_, f) in enumerate(frames) if k != lost_k]
    bounds = [i for i, _ in frames] + [len(x)]
    kept = np.concatenate([np.arange(bounds[k], bounds[k + 1]) for k in range(len(frames))
                           if k != lost_k])
    got = np.concatenate([b.acc_g for b in blocks])
    np.testing.assert_allclose(got * 1000, x[kept], rtol=1e-12, atol=1e-9)
    n_lost = 0 if lost_k is None else bounds[lost_k + 1] - bounds[lost_k]
    # a lost frame shows in the stamps once it spans more than the decoder's slack
    detectable = lost_k is None or n_lost > 0.25 * (bounds[lost_k + 2] - bounds[lost_k + 1]) + 0.5
    if lost_k is None:
        assert dec.lost_samples == 0
    elif detectable:
        assert dec.lost_samples == n_lost
    t = np.concatenate([b.t_device_s for b in blocks])
    if detectable:
        # sample times sit on the nominal grid (float64 seconds since 2000: ~0.1 µs resolution)
        np.testing.assert_allclose(t, t0 / 1e9 + kept / fs, atol=1e-6, rtol=0)
    else:
        # a loss within the rate tolerance cannot be told from a slow clock: the next frame's
        # samples are spread up to its stamp (the SDK's rule), still in order and on the stamps
        assert np.all(np.diff(t) > 0)
        ends = [bounds[k + 1] - 1 for k in range(len(frames)) if k != lost_k]
        np.testing.assert_allclose(t[np.searchsorted(kept, ends)], t0 / 1e9 + np.array(ends) / fs,
                                   atol=1e-6, rtol=0)


@settings(max_examples=20, deadline=None)
@given(x=arrays(np.int64, st.tuples(st.integers(1, 60), st.just(3)),
                elements=st.integers(-8000, 8000)))
def test_polar_compressed_frames_with_a_factor(x):
    # the START reply's FACTOR scales compressed samples (Polar BLE SDK, AccData type 1)
    factor = 0.5
    x = x * 2  # exactly representable after dividing by the factor
    frames = pmd.encode_acc_frames(x, 100.0, 10**15, 80, compressed=True, factor=factor)
    dec = pmd.PolarAccDecoder(100.0, factor)
    got = np.concatenate([dec.push(f).acc_g for _, f in frames])
    np.testing.assert_allclose(got * 1000, x, rtol=0, atol=1e-9)


def test_polar_clock_reset_is_a_discontinuity_not_loss():
    x = np.zeros((20, 3), np.int64)
    a = pmd.encode_acc_frames(x, 100.0, 10**15, 70, compressed=False)
    b = pmd.encode_acc_frames(x, 100.0, 10**12, 70, compressed=False)  # clock went back
    dec = pmd.PolarAccDecoder(100.0)
    for _, f in a:
        dec.push(f)
    blk = dec.push(b[0][1])
    assert blk.discontinuity and blk.lost_samples == 0 and dec.discontinuities == 1


# --------------------------------------------------------------------------------------------
# Movesense GSP
# --------------------------------------------------------------------------------------------
def test_movesense_commands_match_the_specification():
    # GSP spec: [cmd][ref][path ASCII, no NUL]; HELLO reply "Hello" (sample firmware)
    assert gsp.subscribe_command(99, gsp.acc_path(104)) == b"\x01\x63/Meas/Acc/104"
    assert gsp.unsubscribe_command(99) == H("02 63")
    assert gsp.hello_command(1) == H("00 01")
    assert gsp.hello_reply(1) == b"\x01\x01Hello"
    cmd = gsp.decode_command(gsp.subscribe_command(7, "/Meas/Acc/208"))
    assert (cmd.cmd, cmd.ref, gsp.rate_from_path(cmd.path)) == (gsp.CMD_SUBSCRIBE, 7, 208)
    assert gsp.decode_command_result(gsp.encode_command_result(7, 507)) == (7, 507)
    with pytest.raises(ValueError, match="not one of"):
        gsp.acc_path(100)
    with pytest.raises(RecordingError, match="not a Movesense accelerometer path"):
        gsp.rate_from_path("/Meas/ECG/250")


def test_movesense_acc_message_layout():
    # acc.yaml + sample client: u32 LE ms timestamp, then n × 3 float32 m/s²; n = (len − 6)/12
    msg = gsp.encode_acc_message(5, 0x01020304, np.array([[0.0, 0.0, STANDARD_GRAVITY_MS2]]))
    assert msg[:6] == H("02 05 04 03 02 01") and len(msg) == 18
    ref, ts, acc = gsp.decode_acc_message(msg)
    assert (ref, ts) == (5, 0x01020304) and acc[0, 2] == pytest.approx(9.80665, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), mtu=st.sampled_from([23, 158, 247]), seed=st.integers(0, 99))
def test_movesense_part2_reassembly_round_trip(n, mtu, seed):
    rng = np.random.default_rng(seed)
    acc = rng.normal(0, 5, (n, 3)).astype("<f4").astype(float)
    msg = gsp.encode_acc_message(3, 123456, acc)
    room = mtu - 3
    if len(msg) > 2 * room - 2:
        with pytest.raises(ValueError, match="more than two"):
            gsp.split_message(msg, room)
        return
    parts = gsp.split_message(msg, room)
    assert len(parts) == (1 if len(msg) <= room else 2) and all(len(p) <= room for p in parts)
    for max_len in (room, None):
        asm = gsp.GspReassembler(max_len)
        out = [m for p in parts for m in asm.push(p)] + asm.flush()
        assert out == [msg] and asm.lost_batches == 0
    assert np.array_equal(gsp.decode_acc_message(msg)[2], acc)


def test_movesense_lost_part_loses_the_batch_and_is_counted():
    room = 50
    msgs = [gsp.encode_acc_message(3, 1000 * k, np.full((6, 3), float(k))) for k in range(3)]
    parts = [gsp.split_message(m, room) for m in msgs]
    assert all(len(p) == 2 for p in parts)
    asm = gsp.GspReassembler(room)
    stream = parts[0] + parts[1][:1] + parts[2]  # part 2 of batch 1 lost
    out = [m for p in stream for m in asm.push(p)] + asm.flush()
    assert out == [msgs[0], msgs[2]] and asm.lost_batches == 1
    asm = gsp.GspReassembler(room)
    out = [m for p in parts[0] + parts[1][1:] + parts[2] for m in asm.push(p)]  # part 1 lost
    assert out == [msgs[0], msgs[2]] and asm.lost_batches == 1


@settings(max_examples=30, deadline=None)
@given(fs=st.sampled_from(gsp.ACC_RATES_HZ[:6]), n_per=st.integers(1, 16),
       batches=st.integers(2, 12), drop=st.integers(1, 10), t0=st.integers(0, 2**32 - 1))
def test_movesense_times_and_loss_from_timestamp_gaps(fs, n_per, batches, drop, t0):
    rng = np.random.default_rng(fs + n_per)
    acc_g = rng.normal(0, 0.5, (batches * n_per, 3)).astype("<f4").astype(float)
    msgs = [gsp.encode_acc_message(1, t0 + int(round(k * n_per * 1000 / fs)),
                                   acc_g[k * n_per: (k + 1) * n_per] * STANDARD_GRAVITY_MS2)
            for k in range(batches)]
    dropped = drop if drop < batches - 1 else None
    dec = gsp.MovesenseAccDecoder(fs)
    blocks = [dec.push_message(m) for k, m in enumerate(msgs) if k != dropped]
    expected_loss = n_per if dropped is not None else 0
    # a loss shows once it exceeds the decoder's slack (25 % + 1 ms of stamp rounding)
    if dropped is None or 0.75 * n_per > fs / 1000 + 0.5:
        assert dec.lost_samples == expected_loss
    got = np.concatenate([b.acc_g for b in blocks])
    keep = np.concatenate([acc_g[k * n_per: (k + 1) * n_per] for k in range(batches) if k != dropped])
    np.testing.assert_allclose(got, keep, rtol=1e-6, atol=1e-7)
    t = np.concatenate([b.t_device_s for b in blocks])
    assert np.all(np.diff(t) > 0)  # the u32 ms wrap is unwrapped


# --------------------------------------------------------------------------------------------
# MetaWear
# --------------------------------------------------------------------------------------------
def test_metawear_accelerometer_bytes_match_the_sdk():
    # MetaWear C++ SDK accelerometer_bosch.cpp: 100 Hz = 0x28 (BMI160) / 0xA8 (BMI270); ±2 g
    # default range 0x03 on the BMI160; BMI270 range codes 0..3
    assert mw.acc_config_command(mw.IMPL_BMI160, 100.0, 2) == H("03 03 28 03")
    assert mw.acc_config_command(mw.IMPL_BMI270, 100.0, 8) == H("03 03 a8 02")
    assert mw.acc_config_command(mw.IMPL_BMI160, 1600.0, 16) == H("03 03 2c 0c")
    assert mw.start_sequence(mw.IMPL_BMI160, 100.0, 2) == [
        H("03 03 28 03"), H("03 04 01"), H("03 02 01 00"), H("03 01 01")]
    assert mw.subscribe_command(mw.IMPL_BMI160, packed=True) == H("03 1c 01")
    assert mw.subscribe_command(mw.IMPL_BMI270, packed=True) == H("03 05 01")
    assert mw.stop_sequence(mw.IMPL_BMI160) == [H("03 01 00"), H("03 02 00 01"), H("03 04 00")]
    for impl in (mw.IMPL_BMI160, mw.IMPL_BMI270):
        for odr in mw.ACC_ODR_HZ[4:]:
            for g in (2, 4, 8, 16):
                assert mw.decode_acc_config(impl, mw.acc_config_command(impl, odr, g)) == (odr, g)
    with pytest.raises(ValueError, match="ODR"):
        mw.acc_config_command(mw.IMPL_BMI160, 6.25, 2)


def test_metawear_connection_parameters():
    # MetaWear C++ SDK settings: [11 09 min max latency timeout], 1.25 ms and 10 ms units
    assert mw.connection_parameters_command(7.5, 7.5, 0, 6000) == H("11 09 06 00 06 00 00 00 58 02")


def test_metawear_module_discovery():
    # SDK MODULE_DISCOVERY_CMDS: a read of register 0 per module, 25 modules; 2-byte reply = absent
    cmds = mw.discovery_commands()
    assert len(cmds) == 25 and cmds[2] == H("03 80") and cmds[-1] == H("fe 80")
    acc = mw.decode_module_info(mw.encode_module_info(mw.ModuleInfo(3, mw.IMPL_BMI270, 1)))
    assert acc.present and acc.implementation == 4 and acc.revision == 1
    assert not mw.decode_module_info(H("15 80")).present
    with pytest.raises(RecordingError, match="module-info"):
        mw.decode_module_info(H("03 01 01"))


@settings(max_examples=40, deadline=None)
@given(x=i16_samples, impl=st.sampled_from([mw.IMPL_BMI160, mw.IMPL_BMI270]),
       packed=st.booleans(), rng=st.sampled_from([2, 4, 8, 16]))
def test_metawear_data_round_trip_and_no_loss_information(x, impl, packed, rng):
    if packed:
        x = x[: len(x) // 3 * 3]
        if not len(x):
            return
    notes = mw.encode_acc_notifications(x, impl, packed)
    assert all(len(n) == (20 if packed else 8) for n in notes)
    dec = mw.MetaWearAccDecoder(impl, rng)
    blocks = [dec.push(n) for n in notes]
    got = np.concatenate([b.acc_g for b in blocks])
    np.testing.assert_allclose(got * mw.LSB_PER_G[rng], x, rtol=0, atol=1e-9)
    assert dec.loss_measurable is False
    assert all(b.lost_samples is None and b.t_device_s is None for b in blocks)


def test_metawear_bad_data_is_a_clear_error():
    with pytest.raises(RecordingError, match="not accelerometer data"):
        mw.decode_acc_notification(H("13 05 00 00 00 00 00 00"), mw.IMPL_BMI160, 2)
    with pytest.raises(RecordingError, match="whole 6-byte"):
        mw.decode_acc_notification(H("03 04 00 00 00"), mw.IMPL_BMI160, 2)
