"""Profile v1 and its codec: byte layouts, sample formats, exact loss accounting, clock mapping."""

from __future__ import annotations

import numpy as np
import pytest

from toetwitch.drivers.ble import profile_v1 as pv1
from toetwitch.drivers.ble.codec import (
    FLAG_CLIPPED,
    FLAG_DISCONTINUITY,
    HEADER_SIZE,
    ClockMap,
    Decoder,
    decode_samples,
    encode_packet,
    encode_samples,
    max_samples_per_packet,
    parse_packet,
    status_end_payload,
)
from toetwitch.drivers.errors import RecordingError

EMG = pv1.StreamInfo(pv1.STREAM_EMG, "emg", 1, 1000.0, "i16", 0.1)
ACC = pv1.StreamInfo(pv1.STREAM_ACC, "acc", 3, 100.0, "i24", 1e-5)
INFO = pv1.DeviceInfo(streams=(EMG, ACC), clock_hz=32768.0, boot_id=7, model="test")


def packetize(info: pv1.DeviceInfo, arrays: dict[int, np.ndarray], mtu: int = 247):
    """Independent reference packetizer: time-ordered packets, seq across streams, END last.

    Yields (seq, stream_id, first index, n samples, bytes)."""
    nxt = {s.stream_id: 0 for s in info.streams}
    by_id = info.by_id()
    seq = 0
    while True:
        cands = []
        for sid, st in by_id.items():
            i = nxt[sid]
            if i < len(arrays[sid]):
                n = min(max_samples_per_packet(mtu, st), len(arrays[sid]) - i)
                cands.append(((i + n) / st.fs_hz, sid, i, n))
        if not cands:
            break
        _, sid, i, n = min(cands)
        st = by_id[sid]
        payload, _ = encode_samples(arrays[sid][i : i + n], st)
        ticks = round(i / st.fs_hz * info.clock_hz)
        flags = FLAG_DISCONTINUITY if seq == 0 else 0
        yield seq, sid, i, n, encode_packet(sid, seq, i, ticks, payload, flags)
        nxt[sid] = i + n
        seq += 1
    yield seq, pv1.STREAM_STATUS, 0, 0, encode_packet(
        pv1.STREAM_STATUS, seq, 0, 0, status_end_payload(nxt)
    )


def quantised(rng: np.random.Generator, n: int, channels: int, scale: float, sd: float) -> np.ndarray:
    """Random values exactly representable at ``scale`` (so they round-trip bit for bit)."""
    div = round(1 / scale)
    return np.round(rng.normal(0, sd, (n, channels)) * div) / div


def arrays(seed: int = 1, seconds: float = 3.0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        pv1.STREAM_EMG: quantised(rng, int(seconds * EMG.fs_hz), 1, EMG.scale, 50.0),
        pv1.STREAM_ACC: quantised(rng, int(seconds * ACC.fs_hz), 3, ACC.scale, 1.0),
    }


def decode_all(packets: list[bytes], info: pv1.DeviceInfo = INFO) -> tuple[Decoder, dict[str, np.ndarray]]:
    dec = Decoder(info)
    out: dict[str, list[np.ndarray]] = {"emg": [], "acc": []}
    for k, p in enumerate(packets):
        for b in dec.feed(p, host_time_s=1000.0 + k * 1e-3):
            assert b.start_index == sum(len(v) for v in out[b.kind])  # consecutive blocks
            out[b.kind].append(b.values)
    return dec, {k: np.concatenate(v) for k, v in out.items() if v}


# -- profile --------------------------------------------------------------------------------


def test_info_round_trips_and_keeps_unknown_keys():
    info = pv1.DeviceInfo(streams=(EMG, ACC), clock_hz=32768.0, boot_id=3, firmware="1.2",
                          extra={"battery_pct": 80})
    back = pv1.decode_info(pv1.encode_info(info))
    assert back == info
    assert back.stream("emg") == EMG and back.stream("acc") == ACC


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"protocol": 2, "streams": []}', "version 2"),
        (b'{"protocol": 1, "streams": []}', "no streams"),
        (b'{"protocol": 1, "streams": [{"id": 1, "kind": "ecg", "channels": 1, "fs_hz": 1}]}', "unknown kind"),
        (b'{"protocol": 1, "streams": [{"id": 1, "kind": "emg", "channels": 1}]}', "fs_hz"),
        (b'{"protocol": 1, "streams": [{"id": 1, "kind": "emg", "channels": 1, "fs_hz": 1000, "format": "u8"}]}',
         "sample format"),
    ],
)
def test_bad_info_is_named(raw, words):
    with pytest.raises(RecordingError, match=words):
        pv1.decode_info(raw)


def test_control_commands_parse_back():
    start = pv1.parse_command(pv1.start_command(0x03, pv1.START_RESUME))
    assert (start.opcode, start.stream_mask, start.mode) == (pv1.OP_START, 0x03, pv1.START_RESUME)
    assert pv1.parse_command(pv1.stop_command()).opcode == pv1.OP_STOP
    rate = pv1.parse_command(pv1.set_rate_command(pv1.STREAM_EMG, 2000.0))
    assert (rate.stream_id, rate.fs_hz) == (pv1.STREAM_EMG, 2000.0)
    for bad in (b"", b"\x09", b"\x01\xff\x05", b"\x03\x01"):
        with pytest.raises(ValueError):
            pv1.parse_command(bad)


# -- packets and samples ----------------------------------------------------------------------


def test_packet_fills_mtu_and_header_round_trips():
    n = max_samples_per_packet(247, EMG)
    assert n == (247 - 3 - HEADER_SIZE) // 2 == 116
    payload, _ = encode_samples(np.zeros((n, 1)), EMG)
    pkt = encode_packet(EMG.stream_id, 70000, 2**32 + 5, 2**33 + 9, payload, FLAG_CLIPPED)
    assert len(pkt) == 247 - 3
    p = parse_packet(pkt)
    assert (p.version, p.flags, p.stream_id) == (1, FLAG_CLIPPED, EMG.stream_id)
    assert (p.seq, p.sample_index, p.t_first) == (70000 % 65536, 5, 9)  # counters wrap
    with pytest.raises(RecordingError, match="shorter than the 12-byte header"):
        parse_packet(pkt[:11])
    with pytest.raises(RecordingError, match="version 2"):
        parse_packet(bytes([0x20]) + pkt[1:])


@pytest.mark.parametrize("fmt", ["i16", "i24", "f32", "f64"])
def test_sample_formats_round_trip_exactly_with_nan_for_lost(fmt):
    scale = {"i16": 0.1, "i24": 1e-5, "f32": 1.0, "f64": 1.0}[fmt]
    st = pv1.StreamInfo(0, "acc", 3, 100.0, fmt, scale)
    rng = np.random.default_rng(5)
    x = quantised(rng, 200, 3, 1e-1 if fmt == "i16" else 1e-5, 50.0 if fmt == "i16" else 2.0)
    if fmt == "f32":
        x = x.astype(np.float32).astype(np.float64)
    x[7, 1] = np.nan
    payload, clipped = encode_samples(x, st)
    assert len(payload) == 200 * st.bytes_per_frame and not clipped
    np.testing.assert_array_equal(decode_samples(payload, st), x)


def test_integer_samples_clip_and_say_so():
    payload, clipped = encode_samples(np.array([[1e6], [-1e6], [1.0]]), EMG)
    assert clipped
    np.testing.assert_array_equal(decode_samples(payload, EMG)[:, 0], [3276.7, -3276.7, 1.0])
    with pytest.raises(RecordingError, match="whole number"):
        decode_samples(payload[:-1], EMG)


# -- decoder accounting -----------------------------------------------------------------------


def test_lossless_stream_decodes_bit_for_bit():
    a = arrays()
    packets = [p for *_, p in packetize(INFO, a)]
    dec, out = decode_all(packets)
    np.testing.assert_array_equal(out["emg"], a[pv1.STREAM_EMG])
    np.testing.assert_array_equal(out["acc"], a[pv1.STREAM_ACC])
    s = dec.stats
    assert (s.received, s.lost, s.duplicated, s.samples_lost) == (len(packets), 0, 0, 0)
    assert dec.ended


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_loss_and_duplicates_are_counted_exactly(seed):
    rng = np.random.default_rng(seed)
    a = arrays(seed, seconds=6.0)
    sent = list(packetize(INFO, a, mtu=65))
    stream, dropped, dups = [], [], 0
    lost_samples = {"emg": 0, "acc": 0}
    mask = {"emg": np.zeros(len(a[pv1.STREAM_EMG]), bool), "acc": np.zeros(len(a[pv1.STREAM_ACC]), bool)}
    later: list[list] = []  # copies delivered again after a few more packets
    for seq, sid, i, n, pkt in sent:
        for c in later:
            c[0] -= 1
        stream += [c[1] for c in later if c[0] < 0]
        later = [c for c in later if c[0] >= 0]
        if sid != pv1.STREAM_STATUS and rng.random() < 0.1:
            dropped.append(seq)
            kind = "emg" if sid == pv1.STREAM_EMG else "acc"
            lost_samples[kind] += n
            mask[kind][i : i + n] = True
            continue
        stream.append(pkt)
        if rng.random() < 0.05:  # a copy arrives again (ATT keeps order: never before it)
            later.append([int(rng.integers(0, 3)), pkt])
            dups += 1
    stream += [c[1] for c in later]  # copies still in flight arrive after the END packet
    assert dropped and dups
    dec, out = decode_all(stream)
    s = dec.stats
    assert s.lost == len(dropped)
    assert s.duplicated == dups
    assert s.received == len(sent) - len(dropped)
    assert s.samples_lost_by_stream == lost_samples
    assert s.samples_lost == sum(lost_samples.values())
    assert s.loss_fraction == pytest.approx(len(dropped) / len(sent))
    for kind, sid in (("emg", pv1.STREAM_EMG), ("acc", pv1.STREAM_ACC)):
        got = out[kind]
        assert len(got) == len(a[sid])  # gaps keep every later sample at its own index
        np.testing.assert_array_equal(np.isnan(got).any(axis=1), mask[kind])
        np.testing.assert_array_equal(got[~mask[kind]], a[sid][~mask[kind]])


def test_lost_tail_is_filled_from_the_end_packet():
    a = arrays(seconds=2.0)
    sent = list(packetize(INFO, a))
    last_emg = max(k for k, (_, sid, *_rest) in enumerate(sent) if sid == pv1.STREAM_EMG)
    n_last = sent[last_emg][3]
    dec, out = decode_all([p for k, (*_, p) in enumerate(sent) if k != last_emg])
    assert len(out["emg"]) == len(a[pv1.STREAM_EMG])
    assert np.isnan(out["emg"][-n_last:]).all() and not np.isnan(out["emg"][:-n_last]).any()
    assert dec.stats.samples_lost_by_stream["emg"] == n_last and dec.stats.lost == 1


def test_losing_the_first_packets_still_aligns_at_sample_zero():
    a = arrays(seconds=1.0)
    sent = list(packetize(INFO, a))
    dec, out = decode_all([p for *_, p in sent[3:]])
    assert dec.stats.lost == 3
    assert len(out["emg"]) == len(a[pv1.STREAM_EMG]) and np.isnan(out["emg"][0, 0])


def test_seq_wraps_without_false_losses():
    st = pv1.StreamInfo(0, "acc", 3, 100.0, "i16", 1e-3)
    info = pv1.DeviceInfo(streams=(st,))
    dec = Decoder(info)
    payload, _ = encode_samples(np.zeros((1, 3)), st)
    n = 70_000  # more than 2**16 notifications
    for k in range(n):
        if k == 66_000:
            continue  # one real loss just after the wrap
        dec.feed(encode_packet(0, k, k, k * 10_000, payload))
    assert (dec.stats.received, dec.stats.lost, dec.stats.duplicated) == (n - 1, 1, 0)
    assert dec.stats.samples_lost == 1 and dec.samples_seen("acc") == n


def test_garbage_is_counted_not_raised():
    dec = Decoder(INFO)
    assert dec.feed(b"\x10\x01") == []
    assert dec.feed(encode_packet(0x33, 0, 0, 0, b"\x00" * 6)) == []  # unknown stream
    assert dec.feed(encode_packet(pv1.STREAM_EMG, 0, 0, 0, b"\x00" * 3)) == []  # odd payload
    assert dec.stats.malformed == 3 and dec.stats.received == 0


def test_device_restart_is_appended_and_counted():
    a = arrays(seconds=1.0)
    sent = [p for *_, p in packetize(INFO, a)][:-1]  # no END: the device restarts instead
    restart = list(packetize(INFO, a))
    # the restarted device's clock has moved on: re-stamp its packets
    restamped = []
    for *_, p in restart[:-1]:
        q = parse_packet(p)
        restamped.append(encode_packet(q.stream_id, q.seq, q.sample_index, q.t_first + 999_999,
                                       q.payload, q.flags))
    dec, out = decode_all(sent + restamped)
    assert dec.stats.discontinuities == 1 and dec.stats.lost == 0
    np.testing.assert_array_equal(out["emg"], np.concatenate([a[pv1.STREAM_EMG]] * 2))


# -- clock ------------------------------------------------------------------------------------


def test_clock_map_estimates_drift_and_offset():
    rng = np.random.default_rng(3)
    cm = ClockMap()
    assert cm.drift_ppm is None
    dev = np.arange(0, 600, 0.05)  # 10 min of packets
    true_host = 5000.0 + dev * (1 + 40e-6)  # device clock 40 ppm slow
    arrival = true_host + 0.008 + rng.exponential(0.01, dev.size)  # delays >= 8 ms
    for d, h in zip(dev, arrival, strict=True):
        cm.add(float(d), float(h))
    assert cm.drift_ppm == pytest.approx(40.0, abs=2.0)
    # the lower envelope: mapped time sits at the minimum delay, never after arrivals
    mapped = cm.to_host(300.0)
    assert 5000.0 + 300.0 * (1 + 40e-6) <= mapped + 1e-3
    assert mapped - (5000.0 + 300.0 * (1 + 40e-6)) < 0.02
