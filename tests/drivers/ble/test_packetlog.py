"""The raw packet log (.ttlog): framing, checksums, a killed writer, and reading as a recording."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toetwitch.drivers import read_recording
from toetwitch.drivers.ble import profile_v1 as pv1
from toetwitch.drivers.ble.codec import encode_packet, encode_samples, status_end_payload
from toetwitch.drivers.ble.packetlog import (
    FILE_HEADER,
    FRAME_EVENT,
    FRAME_INFO,
    FRAME_PACKET,
    PacketLogWriter,
    iter_frames,
    open_packet_log,
)
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers import ReaderWarning, open_recording

EMG = pv1.StreamInfo(pv1.STREAM_EMG, "emg", 1, 1000.0, "i16", 0.1)
ACC = pv1.StreamInfo(pv1.STREAM_ACC, "acc", 3, 100.0, "i24", 1e-5)
INFO = pv1.DeviceInfo(streams=(EMG, ACC), extra={"start_time": "2026-11-20T23:30:00+01:00"})


def session(seconds: float = 2.0, seed: int = 0, per_packet: int = 50):
    """(emg (n,), acc (m, 3), packets): a short session cut into small packets, END last."""
    rng = np.random.default_rng(seed)
    emg = np.round(rng.normal(0, 20, int(seconds * 1000)) * 10) / 10
    acc = np.round(rng.normal(0, 0.5, (int(seconds * 100), 3)) * 1e5) / 1e5
    packets, seq = [], 0
    for i in range(0, len(emg), per_packet):
        packets.append(encode_packet(EMG.stream_id, seq, i, i * 1000,
                                     encode_samples(emg[i : i + per_packet, None], EMG)[0]))
        seq += 1
        j = i // 10
        if j < len(acc) and (i // per_packet) % 2 == 0:
            k = per_packet // 5
            packets.append(encode_packet(ACC.stream_id, seq, j, j * 10_000,
                                         encode_samples(acc[j : j + k], ACC)[0]))
            seq += 1
    ends = {EMG.stream_id: len(emg), ACC.stream_id: len(acc)}
    packets.append(encode_packet(pv1.STREAM_STATUS, seq, 0, 0, status_end_payload(ends)))
    return emg, acc, packets


def write_log(path, packets, info=INFO, close=True, t0_ns=1_700_000_000_000_000_000):
    w = PacketLogWriter(path)
    w.write_info(pv1.encode_info(info), t0_ns)
    w.write_event({"event": "session", "name": "night"}, t0_ns)
    for k, p in enumerate(packets):
        w.write_packet(p, t0_ns + k * 1_000_000)
    if close:
        w.close({"event": "end"})
    else:
        w._write(b"")  # nothing more: like a process killed between frames
    return w


def test_frames_read_back_in_order(tmp_path):
    _, _, packets = session()
    path = tmp_path / "s.ttlog"
    write_log(path, packets)
    frames = list(iter_frames(path))
    assert [f.frame_type for f in frames[:3]] == [FRAME_INFO, FRAME_EVENT, FRAME_PACKET]
    assert [f.payload for f in frames if f.frame_type == FRAME_PACKET] == packets
    assert frames[2].host_time_ns == 1_700_000_000_000_000_000


def test_log_reads_as_a_recording_bit_for_bit(tmp_path):
    emg, acc, packets = session()
    path = tmp_path / "night.ttlog"
    write_log(path, packets)
    rec = read_recording(path)  # through the readers' suffix registry
    np.testing.assert_array_equal(rec.emg_uv, emg)
    np.testing.assert_array_equal(rec.acc_g, acc)
    assert (rec.fs_emg_hz, rec.fs_acc_hz, rec.name) == (1000.0, 100.0, "night")
    assert rec.start_time == "2026-11-20T23:30:00+01:00"
    assert rec.meta["packets"]["received"] == len(packets)
    assert rec.meta["packets"]["lost"] == 0 and rec.meta["clean_end"]
    with open_recording(path) as src:
        assert src.info.n_emg == len(emg) and src.info.duration_s == pytest.approx(2.0)
        chunks = list(src.iter_chunks(0.3))
    np.testing.assert_array_equal(np.concatenate([c.emg_uv for c in chunks]), emg)
    np.testing.assert_array_equal(np.concatenate([c.acc_g for c in chunks]), acc)


def test_lost_packets_in_the_log_become_nan_gaps(tmp_path):
    emg, _, packets = session()
    path = tmp_path / "lossy.ttlog"
    write_log(path, packets[:5] + packets[7:])
    rec = read_recording(path)
    assert len(rec.emg_uv) == len(emg)
    assert rec.meta["packets"]["lost"] == 2
    assert int(np.isnan(rec.emg_uv).sum()) == rec.meta["packets"]["samples_lost_by_stream"]["emg"] > 0
    with open_recording(path) as src:  # chunk edges fall inside and beside the gap
        chunks = list(src.iter_chunks(0.07))
    assert len(chunks) == 29 and all(len(c.emg_uv) == 70 for c in chunks[:-1])
    np.testing.assert_array_equal(np.concatenate([c.emg_uv for c in chunks]), rec.emg_uv)
    np.testing.assert_array_equal(np.concatenate([c.acc_g for c in chunks]), rec.acc_g)


def test_a_log_cut_anywhere_in_its_last_frame_reads_up_to_the_frame_before(tmp_path):
    emg, _, packets = session(seconds=0.5)
    full = tmp_path / "full.ttlog"
    write_log(full, packets[:-1], close=False)  # killed: no END packet, no end frame
    data = full.read_bytes()
    last = len(data) - (20 + len(packets[-2]))  # start of the last frame
    for cut in range(last, len(data)):
        part = tmp_path / f"cut{cut}.ttlog"
        part.write_bytes(data[:cut])
        frames = list(iter_frames(part))
        assert len(frames) == 2 + len(packets) - 2, cut
        if cut > last:
            with pytest.warns(ReaderWarning, match="stopped abruptly"):
                rec = read_recording(part)
        else:
            rec = read_recording(part)
        assert not rec.meta["clean_end"]
        n = len(rec.emg_uv)
        np.testing.assert_array_equal(rec.emg_uv, emg[:n])


def test_a_damaged_frame_costs_only_itself_and_reading_resumes(tmp_path):
    emg, acc, packets = session()
    path = tmp_path / "bad.ttlog"
    write_log(path, packets)
    data = bytearray(path.read_bytes())
    frames = list(iter_frames(path))
    hit = frames[10].offset + 20  # a payload byte of the 11th frame (the 9th packet)
    data[hit] ^= 0xFF
    path.write_bytes(bytes(data))
    tails: list = []
    got = list(iter_frames(path, tails))
    assert [f.offset for f in got] == [f.offset for f in frames if f.offset != frames[10].offset]
    (skip,) = tails[0].skips
    assert (skip.offset, skip.nbytes, skip.problem) == (
        frames[10].offset, frames[11].offset - frames[10].offset, "checksum mismatch")
    assert tails[0].clean and tails[0].problem is None
    with pytest.warns(ReaderWarning, match=f"at byte {frames[10].offset} .checksum mismatch.: "
                                           f"skipped {skip.nbytes} bytes"):
        rec = read_recording(path)
    # the damaged packet is a lost packet: a NaN gap of its samples, everything else intact
    assert rec.meta["packets"]["lost"] == 1
    assert rec.meta["damaged"] == [{"byte": skip.offset, "skipped_bytes": skip.nbytes,
                                    "problem": "checksum mismatch"}]
    gap = np.isnan(rec.emg_uv) | np.isnan(rec.acc_g).any(axis=1).repeat(10)[: len(emg)]
    assert gap.any()
    np.testing.assert_array_equal(rec.emg_uv[~np.isnan(rec.emg_uv)], emg[~np.isnan(rec.emg_uv)])
    assert len(rec.emg_uv) == len(emg) and len(rec.acc_g) == len(acc)


def test_damage_in_a_frame_header_or_length_resyncs_at_the_next_sync_word(tmp_path):
    _, _, packets = session()
    path = tmp_path / "hdr.ttlog"
    write_log(path, packets)
    frames = list(iter_frames(path))
    for where in (0, 1, 2, 4, 7):  # sync word, type, length bytes of frame 20
        data = bytearray(path.read_bytes())
        data[frames[20].offset + where] ^= 0x5A
        bad = tmp_path / f"hdr{where}.ttlog"
        bad.write_bytes(bytes(data))
        tails: list = []
        got = [f.offset for f in iter_frames(bad, tails)]
        assert got == [f.offset for f in frames if f.offset != frames[20].offset], where
        assert [s.offset for s in tails[0].skips] == [frames[20].offset]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hits=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), min_size=1, max_size=4))
def test_random_corruption_loses_only_the_frames_it_touches(tmp_path, hits):
    """Flip bytes anywhere after the file header: every frame no flipped byte touches is read
    back, in order and unchanged; the touched ones are skipped with a warning."""
    _, _, packets = session(seconds=1.0)
    path = tmp_path / "rand.ttlog"
    path.unlink(missing_ok=True)
    write_log(path, packets)
    clean = list(iter_frames(path))
    spans = [(f.offset, f.offset + 20 + len(f.payload)) for f in clean]
    data = bytearray(path.read_bytes())
    for frac, mask in hits:
        data[FILE_HEADER.size + int(frac * (len(data) - FILE_HEADER.size - 1))] ^= mask
    original = path.read_bytes()
    changed = [i for i in range(len(data)) if data[i] != original[i]]
    touched = {k for k, (a, b) in enumerate(spans) for pos in changed if a <= pos < b}
    path.write_bytes(bytes(data))
    got = list(iter_frames(path))
    expected = [f for k, f in enumerate(clean) if k not in touched]
    # a damaged frame never comes back as if valid, and all undamaged ones do
    assert [(f.offset, f.payload) for f in got] == [(f.offset, f.payload) for f in expected]


def test_bad_files_get_clear_errors(tmp_path):
    text = tmp_path / "notes.ttlog"
    text.write_text("time_s,emg_uv\n0,1\n")
    with pytest.raises(RecordingError, match="not a toetwitch packet log"):
        read_recording(text)
    header_only = tmp_path / "empty.ttlog"
    PacketLogWriter(header_only).close()
    assert header_only.stat().st_size == FILE_HEADER.size
    with pytest.raises(RecordingError, match="no device info"):
        read_recording(header_only)
    info_only = tmp_path / "info.ttlog"
    write_log(info_only, [])
    with pytest.raises(RecordingError, match="holds no samples"):
        open_packet_log(info_only)
    with pytest.raises(RecordingError, match="already exists"):
        PacketLogWriter(info_only)
