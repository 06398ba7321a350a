"""Profile ``bitalino``: frame layout, CRC-4 and state vectors from the public firmware, the
byte-stream decoder (frames straddling notifications, loss, resync, long gaps), transfer
functions and channel maps."""

from __future__ import annotations

import numpy as np
import pytest

from toetwitch.drivers.ble.profiles import bitalino as bit
from toetwitch.drivers.ble.profiles import open_decoder, profile_of_description

# vectors re-derived from the firmware's CRC algorithm (devices evidence, §1.5 / §1.6)
VECTORS = [
    ([512], 0, (0, 0, 0, 0), "00080e"),
    ([512], 1, (0, 0, 0, 0), "00081d"),
    ([1023, 0], 5, (0, 0, 1, 1), "00fc3f54"),
    ([512, 512, 512, 512, 32, 32], 7, (0, 0, 0, 0), "2008208000020876"),
]


@pytest.mark.parametrize(("values", "seq", "digital", "wire"), VECTORS)
def test_frames_match_the_firmware_vectors(values, seq, digital, wire):
    frame = bit.encode_frame(values, seq, digital)
    assert frame.hex() == wire
    assert bit.crc4(frame) == frame[-1] & 0x0F
    vals, seqs, dig, ok = bit.decode_frames(np.frombuffer(frame, np.uint8)[None], len(values))
    assert vals[0].tolist() == values and seqs[0] == seq and dig[0].tolist() == list(digital)
    assert ok[0]


def test_state_record_vector_and_version_reply():
    rec = bit.state_reply((512,) * 6, 600, 0, 0, (1, 0, 0, 0))
    assert rec.hex(" ") == "00 02 00 02 00 02 00 02 00 02 00 02 58 02 00 00 85"
    st = bit.parse_state(rec)
    assert st["analog"] == [512] * 6 and st["battery_raw"] == 600 and st["digital"] == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="CRC"):
        bit.parse_state(rec[:-1] + bytes([rec[-1] ^ 1]))
    assert bit.parse_version(b"\x00\x08BITalino_v5.2\n") == "5.2"


def test_frame_sizes_commands_and_crc_catches_single_bit_errors():
    assert [bit.frame_size(n) for n in range(1, 7)] == [3, 4, 6, 7, 8, 8]
    assert bit.rate_command(1000) == b"\xc3" and bit.start_command(0b1) == b"\x05"
    assert bit.start_command(0b111111) == b"\xfd"
    rng = np.random.default_rng(3)
    for n in range(1, 7):
        vals = [int(v) for v in rng.integers(0, 1024, n)]
        vals[4:] = [v >> 4 for v in vals[4:]]
        frame = bytearray(bit.encode_frame(vals, int(rng.integers(16))))
        for byte in range(len(frame)):
            for b in range(8):
                if byte == len(frame) - 1 and b < 4:
                    continue  # the CRC nibble itself
                bad = bytearray(frame)
                bad[byte] ^= 1 << b
                assert bit.crc4(bad) != bad[-1] & 0x0F


def test_transfer_functions_and_their_inverses():
    assert bit.emg_uv(np.array([512]), 10)[0] == 0.0
    step = bit.emg_uv(np.array([513]), 10)[0]
    assert step == pytest.approx(3.3 / 1024 / 1009 * 1e6) and 3.18 < step < 3.20
    assert bit.emg_uv(np.array([0]), 10)[0] == pytest.approx(-1635.28, abs=0.01)
    assert bit.acc_g(np.array([400, 504, 608]), 10).tolist() == [-1.0, 0.0, 1.0]
    assert bit.acc_g(np.array([25, 38]), 6).tolist() == [-1.0, 1.0]  # Cmin, Cmax scaled to 6 bit
    uv = np.array([-100.0, 0.0, 48.0, 2000.0])
    np.testing.assert_array_equal(bit.emg_adc(uv, 10), [481, 512, 527, 1023])
    assert bit.acc_adc(np.array([0.0]), 10)[0] == 504


def test_channel_maps_are_checked():
    assert bit.parse_channel_map(None) == bit.DEFAULT_CHANNELS
    assert bit.parse_channel_map("a3=acc_x, A1=EMG") == {"A1": "emg", "A3": "acc_x"}
    for bad, msg in [("A7=emg", "unknown port"), ("A1=ecg", "unknown stream"),
                     ("A1", "PORT=STREAM"), ("A1=emg,A1=acc_x", "twice"),
                     ("A1=emg,A2=emg", "two ports")]:
        with pytest.raises(ValueError, match=msg):
            bit.parse_channel_map(bad)
    with pytest.raises(ValueError, match="6 bit"):  # EMG as the 5th active channel
        bit.BitalinoSettings(channels=bit.parse_channel_map(
            "A1=acc_x,A2=acc_y,A3=acc_z,A4=other,A5=emg"))


def stream_bytes(raw: np.ndarray, first_seq: int = 0) -> bytes:
    """Raw values (k, n) -> the byte stream the board sends."""
    return b"".join(bit.encode_frame([int(v) for v in row], first_seq + i)
                    for i, row in enumerate(raw))


def fake_raw(k: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.integers(300, 700, (k, n))
    raw[:, 4:] >>= 4
    return raw


SETTINGS = bit.BitalinoSettings(channels=bit.THREE_AXES, command_gap_s=0)  # A1 emg, A3-A5 acc


def test_decoder_reads_frames_straddling_notifications_and_converts_them():
    raw = fake_raw(200, 4)
    data = stream_bytes(raw)
    dec = open_decoder(SETTINGS.describe(version="5.2"))
    assert profile_of_description(SETTINGS.describe()).name == "bitalino"
    emg, acc = [], []
    for i in range(0, len(data), 20):  # 20-byte notifications: frames cut anywhere
        for b in dec.feed(data[i : i + 20]):
            (emg if b.kind == "emg" else acc).append(b.values)
    emg, acc = np.concatenate(emg), np.concatenate(acc)
    np.testing.assert_allclose(emg[:, 0], bit.emg_uv(raw[:, 0], 10))
    np.testing.assert_allclose(acc[:, 2], bit.acc_g(raw[:, 3], 10))
    assert dec.stats.received == 200 and dec.stats.lost == 0 and dec.malformed == 0


def test_lost_notifications_become_nan_gaps_counted_from_the_sequence():
    raw = fake_raw(400, 1)
    frames = [bit.encode_frame([int(r[0])], i) for i, r in enumerate(raw)]
    settings = bit.BitalinoSettings(channels={"A1": "emg"})
    dec = bit.BitalinoDecoder(settings)
    lost = {10, 11, 40, 41, 42, 43, 44, 300}  # pairs and runs below 16 frames
    out = [b.values[:, 0] for i in range(0, 400, 2)
           for b in dec.feed(b"".join(frames[j] for j in (i, i + 1) if j not in lost))]
    x = np.concatenate(out)
    assert len(x) == 400 and set(np.flatnonzero(np.isnan(x))) == lost
    assert dec.stats.lost == len(lost) and dec.stats.received == 400 - len(lost)


def test_a_partly_lost_notification_resyncs_without_inventing_frames():
    raw = fake_raw(300, 4, seed=5)
    data = stream_bytes(raw)
    dec = bit.BitalinoDecoder(SETTINGS)
    chunks = [data[i : i + 20] for i in range(0, len(data), 20)]
    keep = [c for k, c in enumerate(chunks) if k not in (7, 30, 31)]  # bytes lost mid-frame
    x = np.concatenate([b.values[:, 0] for c in keep for b in dec.feed(c) if b.kind == "emg"])
    ok = ~np.isnan(x)
    np.testing.assert_allclose(x[ok], bit.emg_uv(raw[: len(x)][ok, 0], 10))
    assert dec.stats.lost + dec.stats.received == len(x)
    truth_lost = sum(1 for i in range(300) if any(
        k * 20 < (i + 1) * 7 and i * 7 < (k + 1) * 20 for k in (7, 30, 31)))
    assert dec.stats.lost == truth_lost


def test_frames_not_acquired_during_a_reconnect_are_sized_by_the_host_clock():
    """After a drop the board starts a new acquisition (sequence from 0): the 238 frames it
    did not take, far more than the 4-bit sequence can count, come from arrival times."""
    dec = bit.BitalinoDecoder(bit.BitalinoSettings(channels={"A1": "emg"}))
    raw = fake_raw(3000, 1)
    restart = 1238  # frames 1000..1237 are not acquired while the link is down
    seqs = [i if i < 1000 else i - restart for i in range(3000)]
    frames = [bit.encode_frame([int(r[0])], q) for r, q in zip(raw, seqs, strict=True)]
    rng = np.random.default_rng(1)
    out = []
    for i in [*range(0, 1000, 2), *range(restart, 3000, 2)]:
        if i == restart:
            dec.link_event({"event": "connected", "resume": True})
        arrival = 1000.0 + (i + 2) / 1000 + 0.004 + rng.uniform(0, 0.003)  # 4-7 ms of delay
        out += [b.values[:, 0] for b in dec.feed(frames[i] + frames[i + 1], arrival)]
    x = np.concatenate(out)
    assert abs(len(x) - 3000) <= 4 and abs(dec.stats.lost - 238) <= 4
    np.testing.assert_allclose(x[:1000], bit.emg_uv(raw[:1000, 0], 10))
    np.testing.assert_allclose(x[-1762:], bit.emg_uv(raw[restart:, 0], 10))
    assert dec.restarts == 1


def test_description_round_trips_settings_and_calibration():
    s = bit.BitalinoSettings(channels={"A2": "emg", "A5": "acc_z"}, acc_cmin={"acc_z": 390},
                             acc_cmax={"acc_z": 615}, emg_gain=1008)
    back, facts = bit.BitalinoSettings.from_description(s.describe(version="5.1"))
    assert back.channels == s.channels and back.cmin("acc_z") == 390 and back.emg_gain == 1008
    assert facts == {"version": "5.1"}
    dec = bit.BitalinoDecoder(back)
    (emg, acc) = sorted(dec.feed(bit.encode_frame([513, 615], 0)), key=lambda b: b.kind != "emg")
    assert emg.values[0, 0] == pytest.approx(3.3 / 1024 / 1008 * 1e6)
    assert acc.values[0].tolist() == [0.0, 0.0, 1.0]  # one axis: the others are 0 g
