"""Recording readers: round trips through real files, repairs, and every error case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import recording_table
from toetwitch.drivers import Recording, RecordingError, read_recording
from toetwitch.drivers.readers import (
    RECORDING_SUFFIXES,
    ArraySource,
    ReaderWarning,
    is_recording_file,
    open_recording,
)
from toetwitch.drivers.readers import csv as csv_reader
from toetwitch.drivers.readers import parquet as parquet_reader
from toetwitch.drivers.readers.base import chunk_bounds, n_chunks_for, round_rate
from toetwitch.drivers.readers.edf import write_edf

FS_EMG, FS_ACC = 2048.0, 200.0


def _signals(duration_s: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emg = np.round(rng.normal(0, 20, int(duration_s * FS_EMG)), 3)
    acc = np.round(rng.normal(0, 0.01, (int(duration_s * FS_ACC), 3)), 6)
    acc[:, 2] += 1.0
    return emg, acc


def _table(emg: np.ndarray | None, acc: np.ndarray | None, fe=FS_EMG, fa=FS_ACC) -> pd.DataFrame:
    return recording_table(emg, acc, fe, fa)


def _write_csv(path, emg, acc, **kw):
    _table(emg, acc, **kw).to_csv(path, index=False, float_format="%.9g")
    return path


def _whole_from_chunks(path, chunk_s):
    with open_recording(path) as src:
        chunks = list(src.iter_chunks(chunk_s))
        info = src.info
    return info, chunks


# ---------------------------------------------------------------- round trips


def test_csv_mixed_rates_round_trip(tmp_path):
    emg, acc = _signals()
    rec = read_recording(_write_csv(tmp_path / "night.csv", emg, acc))
    assert rec.fs_emg_hz == FS_EMG and rec.fs_acc_hz == FS_ACC  # inferred, not assumed
    np.testing.assert_allclose(rec.emg_uv, emg)
    np.testing.assert_allclose(rec.acc_g, acc)
    assert rec.name == "night"
    assert rec.meta["format"] == "csv" and rec.meta["path"].endswith("night.csv")
    assert rec.meta["gaps"] == [] and set(rec.meta["jitter_ms"]) == {"emg", "acc"}


@pytest.mark.parametrize("stream", ["emg", "acc"])
def test_csv_single_stream(tmp_path, stream):
    emg, acc = _signals(1.0)
    path = _write_csv(
        tmp_path / "one.csv", emg if stream == "emg" else None, acc if stream == "acc" else None
    )
    rec = read_recording(path)
    assert rec.streams == stream
    if stream == "emg":
        assert rec.acc_g is None and rec.fs_acc_hz is None
        np.testing.assert_allclose(rec.emg_uv, emg)
    else:
        assert rec.emg_uv is None and rec.fs_emg_hz is None
        np.testing.assert_allclose(rec.acc_g, acc)


def test_parquet_round_trip_and_chunks_equal_whole(tmp_path, monkeypatch):
    emg, acc = _signals(4.0)
    path = tmp_path / "p.parquet"
    _table(emg, acc).to_parquet(path, index=False, row_group_size=1000)
    monkeypatch.setattr(parquet_reader, "BATCH_ROWS", 777)  # many batches, odd boundaries
    rec = read_recording(path)
    assert (rec.fs_emg_hz, rec.fs_acc_hz) == (FS_EMG, FS_ACC)
    np.testing.assert_allclose(rec.emg_uv, emg)
    np.testing.assert_allclose(rec.acc_g, acc)
    info, chunks = _whole_from_chunks(path, 0.7)
    assert (info.n_emg, info.n_acc, info.duration_s) == (len(emg), len(acc), 4.0)
    assert len(chunks) == 6
    np.testing.assert_array_equal(np.concatenate([c.emg_uv for c in chunks]), rec.emg_uv)
    np.testing.assert_array_equal(np.concatenate([c.acc_g for c in chunks]), rec.acc_g)
    for c in chunks:  # both streams cover the same span (to one sample of each)
        assert abs(len(c.emg_uv) / FS_EMG - len(c.acc_g) / FS_ACC) <= 1 / FS_ACC + 1 / FS_EMG


def test_parquet_reading_memory_does_not_grow_with_the_file(tmp_path, monkeypatch):
    """A long Parquet recording is streamed: Arrow holds about one row group at a time, not
    every row group read so far (pyarrow's default pre-buffering kept them all, so a 24-h
    file needed gigabytes)."""
    import pyarrow as pa

    emg, acc = _signals(60.0, seed=3)
    table = _table(emg, acc)
    path = tmp_path / "long.parquet"
    table.to_parquet(path, index=False, row_group_size=4096)  # ~33 row groups
    monkeypatch.setattr(parquet_reader, "BATCH_ROWS", 2048)
    one_group_bytes = 4096 * table.shape[1] * 8
    held = []
    with open_recording(path) as src:
        for _ in src.iter_chunks(2.0):
            held.append(pa.total_allocated_bytes())
    assert len(held) == 30
    assert max(held) < 4 * one_group_bytes, max(held) / one_group_bytes


def _numpy_bytes_held() -> int:
    """Bytes of numpy arrays alive now (numpy reports its buffers to tracemalloc in a domain
    of its own; the CSV parser's fixed-size buffers are not counted)."""
    import tracemalloc

    only_numpy = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    return sum(s.size for s in tracemalloc.take_snapshot().filter_traces([only_numpy]).statistics("filename"))


def test_csv_is_read_chunk_by_chunk_not_whole(tmp_path, monkeypatch):
    """An opened CSV recording holds about one batch and one chunk of samples at a time, never
    the whole recording, so a long CSV analyses in flat memory like EDF and Parquet."""
    import tracemalloc

    emg, acc = _signals(180.0, seed=4)
    path = _write_csv(tmp_path / "long.csv", emg, acc)
    whole_bytes = emg.nbytes + acc.nbytes
    monkeypatch.setattr(csv_reader, "BATCH_ROWS", 4096)
    held = []
    tracemalloc.start()
    try:
        with open_recording(path) as src:
            held.append(_numpy_bytes_held())
            n = 0
            for k, chunk in enumerate(src.iter_chunks(2.0)):
                n += len(chunk.emg_uv)
                if k % 15 == 0:
                    held.append(_numpy_bytes_held())
    finally:
        tracemalloc.stop()
    assert n == len(emg)
    assert max(held) < whole_bytes / 3, (max(held), whole_bytes)


def test_csv_chunks_equal_whole(tmp_path):
    emg, acc = _signals(2.0)
    path = _write_csv(tmp_path / "c.csv", emg, acc)
    info, chunks = _whole_from_chunks(path, 0.3)
    assert info.fs_emg_hz == FS_EMG and len(chunks) == 7
    np.testing.assert_allclose(np.concatenate([c.emg_uv for c in chunks]), emg)
    np.testing.assert_allclose(np.concatenate([c.acc_g for c in chunks]), acc)


def test_edf_units_rates_and_start_time(tmp_path):
    emg, acc = _signals(3.0)
    path = tmp_path / "sleep.edf"
    write_edf(
        path,
        emg,
        FS_EMG,
        acc,
        FS_ACC,
        emg_unit="mV",
        acc_unit="mg",
        start_time="2026-01-02T23:10:05",
    )
    rec = read_recording(path)
    assert (rec.fs_emg_hz, rec.fs_acc_hz) == (FS_EMG, FS_ACC)
    # Stored in mV and mg, read back in µV and g (tolerance: 2 LSB of 16-bit over ±max).
    np.testing.assert_allclose(rec.emg_uv, emg, atol=4 * np.abs(emg).max() / 2**16)
    np.testing.assert_allclose(rec.acc_g, acc, atol=4 * np.abs(acc).max() / 2**16)
    assert np.abs(rec.emg_uv - emg).max() < 0.1  # not off by the mV factor
    assert rec.start_time == "2026-01-02T23:10:05"
    assert rec.meta["format"] == "edf+" and rec.name == "sleep"


def test_bdf_accel_labels_and_si_units(tmp_path):
    emg, acc = _signals(2.0)
    path = tmp_path / "b.bdf"
    write_edf(
        path, emg, FS_EMG, acc, FS_ACC, emg_unit="V", acc_unit="m/s^2", bdf=True, acc_label="Accel"
    )
    rec = read_recording(path)
    np.testing.assert_allclose(rec.emg_uv, emg, atol=1e-3)
    np.testing.assert_allclose(rec.acc_g, acc, atol=1e-5)
    assert rec.meta["acc_labels"] == ["Accel X", "Accel Y", "Accel Z"]


def test_edf_chunks_equal_whole(tmp_path):
    emg, acc = _signals(5.0)
    path = tmp_path / "c.edf"
    write_edf(path, emg, FS_EMG, acc, FS_ACC)
    whole = read_recording(path)
    info, chunks = _whole_from_chunks(path, 1.3)
    assert len(chunks) == 4 and info.n_emg == len(emg)
    np.testing.assert_array_equal(np.concatenate([c.emg_uv for c in chunks]), whole.emg_uv)
    np.testing.assert_array_equal(np.concatenate([c.acc_g for c in chunks]), whole.acc_g)


def test_edf_acc_only(tmp_path):
    _, acc = _signals(2.0)
    path = tmp_path / "a.edf"
    write_edf(path, None, None, acc, FS_ACC)
    rec = read_recording(path)
    assert rec.streams == "acc" and rec.fs_acc_hz == FS_ACC


# ---------------------------------------------------------------- repairs


@pytest.mark.parametrize("batch_rows", [100_000, 500])
def test_gap_becomes_nan_and_later_samples_keep_time(tmp_path, monkeypatch, batch_rows):
    monkeypatch.setattr(csv_reader, "BATCH_ROWS", batch_rows)
    emg, acc = _signals(2.0)
    df = _table(emg, acc)
    lost = (df["time_s"] >= 0.5) & (df["time_s"] < 0.6) & df["emg_uv"].notna()
    path = tmp_path / "gap.csv"
    df[~lost].to_csv(path, index=False, float_format="%.9g")
    with pytest.warns(ReaderWarning, match=r"gap\.csv: 1 gap\(s\) in the EMG stream"):
        rec = read_recording(path)
    i0, i1 = int(np.ceil(0.5 * FS_EMG)), int(np.ceil(0.6 * FS_EMG))
    assert len(rec.emg_uv) == len(emg)
    assert np.isnan(rec.emg_uv[i0:i1]).all() and np.isnan(rec.emg_uv).sum() == i1 - i0
    np.testing.assert_allclose(rec.emg_uv[i1:], emg[i1:])  # true times kept after the gap
    np.testing.assert_allclose(rec.acc_g, acc)
    (gap,) = rec.meta["gaps"]
    assert gap["stream"] == "EMG" and gap["missing_samples"] == i1 - i0
    assert gap["start_s"] == pytest.approx(i0 / FS_EMG)


def test_parquet_gap_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_reader, "BATCH_ROWS", 300)
    emg, _ = _signals(1.0)
    keep = np.ones(len(emg), bool)
    keep[290:320] = False  # straddles a batch boundary
    df = pd.DataFrame({"time_s": np.arange(len(emg))[keep] / FS_EMG, "emg_uv": emg[keep]})
    path = tmp_path / "g.parquet"
    df.to_parquet(path, index=False)
    with pytest.warns(ReaderWarning, match="gap"):
        src = open_recording(path)
    with src:
        chunks = list(src.iter_chunks(0.1))
    out = np.concatenate([c.emg_uv for c in chunks])
    assert np.isnan(out[290:320]).all() and not np.isnan(np.delete(out, range(290, 320))).any()


def test_jitter_reported_and_rate_rounded(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    t = np.arange(n) / 1000.0 * 1.00003 + rng.uniform(-5e-5, 5e-5, n)  # 999.97 Hz clock
    pd.DataFrame({"time_s": t, "emg_uv": rng.normal(size=n)}).to_csv(
        tmp_path / "j.csv", index=False
    )
    rec = read_recording(tmp_path / "j.csv")
    assert rec.fs_emg_hz == 1000.0
    assert 0.01 < rec.meta["jitter_ms"]["emg"] < 0.1
    assert round_rate(999.97) == 1000.0 and round_rate(2047.9) == 2048.0
    assert round_rate(500.0 / 3) == pytest.approx(166.667)


def test_truncated_last_line_dropped_with_warning(tmp_path):
    emg, _ = _signals(1.0)
    path = _write_csv(tmp_path / "killed.csv", emg, None)
    text = path.read_text()
    path.write_text(text + "1.00048828")  # recorder killed mid-row: no value, no newline
    with pytest.warns(ReaderWarning, match="killed.csv: last line is truncated"):
        rec = read_recording(path)
    np.testing.assert_allclose(rec.emg_uv, emg)
    assert rec.meta["dropped_last_line"] is True


def test_last_line_without_newline_but_complete_is_kept(tmp_path):
    path = tmp_path / "ok.csv"
    rows = "\n".join(f"{i / 1000},{i}" for i in range(600))
    path.write_text("time_s,emg_uv\n" + rows)  # no final newline, nothing missing
    rec = read_recording(path)
    assert len(rec.emg_uv) == 600 and rec.emg_uv[-1] == 599


# ---------------------------------------------------------------- errors


def _err(path) -> str:
    with pytest.raises(RecordingError) as ei:
        read_recording(path)
    msg = str(ei.value)
    assert str(path) in msg
    return msg


def _csv_text(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def _emg_rows(n, start=0):
    return "".join(f"{i / 1000:.3f},{i % 7}\n" for i in range(start, start + n))


def test_error_missing_time_column(tmp_path):
    msg = _err(_csv_text(tmp_path, "a.csv", "t,emg_uv\n0,1\n"))
    assert "line 1" in msg and "time_s" in msg


def test_error_no_stream_columns(tmp_path):
    msg = _err(_csv_text(tmp_path, "a.csv", "time_s,ecg\n0,1\n"))
    assert "emg_uv" in msg and "line 1" in msg


def test_error_partial_accelerometer(tmp_path):
    msg = _err(_csv_text(tmp_path, "a.csv", "time_s,acc_x_g,acc_y_g\n0,1,2\n"))
    assert "partial accelerometer" in msg and "acc_z_g" in msg


def test_error_non_numeric_cell_names_line_and_column(tmp_path):
    text = "time_s,emg_uv\n" + _emg_rows(700) + "0.700,oops\n" + _emg_rows(10, 701)
    msg = _err(_csv_text(tmp_path, "bad.csv", text))
    assert "line 702" in msg and "'emg_uv'" in msg and "oops" in msg


def test_error_time_goes_backwards(tmp_path):
    text = "time_s,emg_uv\n" + _emg_rows(600) + "0.100,1\n" + _emg_rows(5, 601)
    msg = _err(_csv_text(tmp_path, "back.csv", text))
    assert "line 602" in msg and "backwards" in msg


def test_error_rate_too_low(tmp_path):
    text = "time_s,emg_uv\n" + "".join(f"{i / 200},{i}\n" for i in range(400))
    msg = _err(_csv_text(tmp_path, "slow.csv", text))
    assert "EMG sample rate 200 Hz is too low" in msg


@pytest.mark.parametrize("text", ["", "time_s,emg_uv\n"])
def test_error_empty_file(tmp_path, text):
    msg = _err(_csv_text(tmp_path, "empty.csv", text))
    assert "empty" in msg


def test_error_extra_field(tmp_path):
    text = "time_s,emg_uv\n" + _emg_rows(10) + "0.010,1,2\n"
    msg = _err(_csv_text(tmp_path, "wide.csv", text))
    assert "line 12" in msg and "3 fields" in msg


def test_error_incomplete_accelerometer_row(tmp_path):
    rows = "".join(f"{i / 100},0,0,1\n" for i in range(200))
    msg = _err(
        _csv_text(
            tmp_path, "acc.csv", "time_s,acc_x_g,acc_y_g,acc_z_g\n" + rows + "2.0,0,,1\n" + rows[:0]
        )
    )
    assert "line 202" in msg and "acc_y_g" in msg


def test_error_unreadable_edf(tmp_path):
    p = tmp_path / "junk.edf"
    p.write_bytes(b"this is not an EDF file" * 20)
    assert "EDF" in _err(p)


def test_error_edf_without_emg_or_acc(tmp_path):
    import pyedflib

    p = tmp_path / "eeg.edf"
    w = pyedflib.EdfWriter(str(p), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeader(
        0,
        {
            "label": "EEG Fp1",
            "dimension": "uV",
            "sample_frequency": 256,
            "physical_max": 100,
            "physical_min": -100,
            "digital_max": 32767,
            "digital_min": -32768,
        },
    )
    w.writeSamples([np.zeros(512)])
    w.close()
    msg = _err(p)
    assert "no EMG or accelerometer signal" in msg and "EEG Fp1" in msg


def test_error_edf_partial_accelerometer(tmp_path):
    import pyedflib

    p = tmp_path / "xy.edf"
    w = pyedflib.EdfWriter(str(p), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    for ch, axis in enumerate("XY"):
        w.setSignalHeader(
            ch,
            {
                "label": f"ACC {axis}",
                "dimension": "g",
                "sample_frequency": 100,
                "physical_max": 2,
                "physical_min": -2,
                "digital_max": 32767,
                "digital_min": -32768,
            },
        )
    w.writeSamples([np.zeros(200), np.zeros(200)])
    w.close()
    msg = _err(p)
    assert "partial accelerometer" in msg and "Z" in msg


def test_error_edf_unknown_unit(tmp_path):
    emg, _ = _signals(1.0)
    p = tmp_path / "u.edf"
    write_edf(p, emg, FS_EMG, None, None)
    import pyedflib

    # Rewrite with a unit toetwitch cannot convert.
    w = pyedflib.EdfWriter(str(p), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeader(
        0,
        {
            "label": "EMG",
            "dimension": "mA",
            "sample_frequency": 2048,
            "physical_max": 100,
            "physical_min": -100,
            "digital_max": 32767,
            "digital_min": -32768,
        },
    )
    w.writeSamples([np.zeros(2048)])
    w.close()
    msg = _err(p)
    assert "signal 'EMG'" in msg and "'mA'" in msg


def test_error_missing_file_and_unknown_suffix(tmp_path):
    assert "no such file" in _err(tmp_path / "nope.csv")
    assert "unknown recording format" in _err(_csv_text(tmp_path, "x.txt", "time_s,emg_uv\n"))


def test_parquet_errors_name_row(tmp_path):
    df = pd.DataFrame({"time_s": [0.0, 0.001, 0.0005], "emg_uv": [1.0, 2.0, 3.0]})
    df.to_parquet(tmp_path / "b.parquet", index=False)
    msg = _err(tmp_path / "b.parquet")
    assert "row 3" in msg and "backwards" in msg
    (tmp_path / "junk.parquet").write_bytes(b"nope")
    assert "Parquet" in _err(tmp_path / "junk.parquet")


# ---------------------------------------------------------------- folder search


def test_is_recording_file_skips_truth_tables():
    assert is_recording_file("a/night.csv") and is_recording_file("NIGHT.EDF")
    assert is_recording_file("x.parquet") and is_recording_file("x.bdf")
    assert not is_recording_file("a/night.truth.csv")
    assert not is_recording_file("notes.txt") and not is_recording_file(".hidden.csv")
    assert {".csv", ".edf", ".bdf", ".parquet"} <= set(RECORDING_SUFFIXES)


def test_packet_log_registered_only_when_its_reader_exists(tmp_path):
    from toetwitch.drivers.readers import _module_available

    p = tmp_path / "live.ttlog"
    p.write_bytes(b"")
    if _module_available("toetwitch.drivers.ble.packetlog"):
        assert ".ttlog" in RECORDING_SUFFIXES and is_recording_file(p)
    else:
        assert ".ttlog" not in RECORDING_SUFFIXES and not is_recording_file(p)
        assert "toetwitch.drivers.ble.packetlog" in _err(p)


def test_stream_starting_late_is_padded_to_common_time_zero(tmp_path):
    emg, acc = _signals(2.0)
    df = _table(emg, acc)
    df = df[~(df["acc_x_g"].notna() & (df["time_s"] < 0.5))]  # accelerometer starts at 0.5 s
    df.to_csv(tmp_path / "late.csv", index=False, float_format="%.9g")
    rec = read_recording(tmp_path / "late.csv")  # not a gap: no warning
    k = int(0.5 * FS_ACC)
    assert np.isnan(rec.acc_g[:k]).all()
    np.testing.assert_allclose(rec.acc_g[k:], acc[k:])
    np.testing.assert_allclose(rec.emg_uv, emg)


@given(
    n=st.integers(0, 5000),
    fs=st.sampled_from([50.0, 100.0, 333.0, 1000.0, 2048.0]),
    chunk_s=st.floats(0.05, 20.0),
)
def test_chunk_bounds_consecutive_and_complete(n, fs, chunk_s):
    k = n_chunks_for(max(n / fs, 1e-9), chunk_s)
    b = chunk_bounds(n, fs, chunk_s, k)
    assert b[0] == 0 and b[-1] == n and len(b) == k + 1
    assert all(x <= y for x, y in zip(b, b[1:], strict=False))
    # Chunk k starts at the sample nearest k * chunk_s (time alignment across streams).
    for i in range(k):
        assert b[i] == min(n, int(np.floor(i * chunk_s * fs + 0.5)))


def test_array_source_wraps_a_recording():
    emg, acc = _signals(1.0)
    rec = Recording(emg_uv=emg, fs_emg_hz=FS_EMG, acc_g=acc, fs_acc_hz=FS_ACC, name="live")
    src = ArraySource(rec)
    assert src.info.n_emg == len(emg) and src.info.streams == "emg+acc"
    chunks = list(src.iter_chunks(0.25))
    assert [c.start_s for c in chunks] == [0.0, 0.25, 0.5, 0.75]
    np.testing.assert_array_equal(np.concatenate([c.acc_g for c in chunks]), acc)
    assert src.read() is rec
