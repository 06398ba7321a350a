"""One-pass table reading (``open_recording(path, one_pass=True)``, what ``analyse`` uses): the
same chunks, info and warnings as the two-pass reader, the same errors while reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.drivers.test_readers import _signals, _table
from toetwitch.drivers import RecordingError
from toetwitch.drivers.readers import ReaderWarning, open_recording
from toetwitch.drivers.readers import csv as csv_reader
from toetwitch.drivers.readers import parquet as parquet_reader
from toetwitch.pipeline import analyse, analyse_source


def _write(table: pd.DataFrame, path):
    if path.suffix == ".csv":
        table.to_csv(path, index=False, float_format="%.9g")
    else:
        table.to_parquet(path, index=False, row_group_size=5000)
    return path


@pytest.fixture(params=[".csv", ".parquet"])
def suffix(request, monkeypatch):
    # small batches, so that chunks, gaps and errors fall across batch boundaries
    monkeypatch.setattr(csv_reader, "BATCH_ROWS", 1500)
    monkeypatch.setattr(parquet_reader, "BATCH_ROWS", 1500)
    return request.param


def _gappy(duration_s: float = 6.0, seed: int = 2) -> pd.DataFrame:
    emg, acc = _signals(duration_s, seed=seed)
    table = _table(emg, acc)
    t = table["time_s"]
    lost = ((t > 2.0) & (t < 2.3) & table["emg_uv"].notna()) | (t > 5.2) & table["acc_x_g"].notna()
    return table[~lost]  # an EMG gap, and the accelerometer ends early


@pytest.mark.parametrize("chunk_s", [0.37, 1.0, 2.5, 100.0])
def test_one_pass_gives_the_two_pass_chunks_and_info(tmp_path, suffix, chunk_s):
    path = _write(_gappy(), tmp_path / f"g{suffix}")
    with pytest.warns(ReaderWarning, match="gap"):
        two = open_recording(path)
    with two:
        want = list(two.iter_chunks(chunk_s))
        info = two.info
    one = open_recording(path, one_pass=True)
    with one:
        assert one.header.fs_emg_hz == info.fs_emg_hz and one.header.fs_acc_hz == info.fs_acc_hz
        assert np.isnan(one.header.duration_s)
        with pytest.warns(ReaderWarning, match="gap"):  # said once the pass has seen it
            got = list(one.iter_chunks(chunk_s))
        assert one.info == info
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.start_s == w.start_s
        np.testing.assert_array_equal(g.emg_uv, w.emg_uv)
        np.testing.assert_array_equal(g.acc_g, w.acc_g)


def test_one_pass_analysis_equals_the_whole_recording(tmp_path, suffix):
    emg, acc = _signals(8.0, seed=5)
    path = _write(_table(emg, acc), tmp_path / f"a{suffix}")
    with open_recording(path, one_pass=True) as src:
        shares = []
        got = analyse_source(src, chunk_s=1.5, progress=shares.append)
    want = analyse(open_recording(path).read())
    pd.testing.assert_frame_equal(got.events, want.events)
    assert got.summary["duration_s"] == want.summary["duration_s"]
    assert shares == sorted(shares) and len(shares) > 2 and shares[-1] <= 1.0


def test_a_bad_row_fails_while_reading_with_the_same_message(tmp_path, suffix):
    table = _table(_signals(3.0)[0], None).astype({"time_s": float})
    i = 4000  # well past the rows used to infer the rate
    table.iloc[i, 0] = table.iloc[i - 10, 0]  # time goes backwards
    path = _write(table, tmp_path / f"b{suffix}")
    with pytest.raises(RecordingError) as two:
        open_recording(path)
    src = open_recording(path, one_pass=True)  # the first rows are fine
    with src, pytest.raises(RecordingError) as one:
        list(src.iter_chunks(1.0))
    assert str(one.value) == str(two.value) and "time goes backwards" in str(one.value)


def test_readers_without_one_pass_ignore_it(tmp_path):
    from toetwitch.drivers.readers.edf import write_edf

    emg, acc = _signals(2.0)
    write_edf(tmp_path / "x.edf", emg[:4096], 2048.0, acc[:400], 200.0)
    with open_recording(tmp_path / "x.edf", one_pass=True) as src:
        assert src.header == src.info and src.info.duration_s == 2.0


def test_csv_arrow_fast_path_hands_over_to_pandas_mid_file(tmp_path, monkeypatch):
    """Arrow reads the plain part; from a row it cannot parse (an EMG row without the empty
    accelerometer cells, which the pandas reader fills in) the pandas reader goes on from the
    same row: same samples."""
    emg, acc = _signals(4.0, seed=8)
    path = _write(_table(emg, acc), tmp_path / "m.csv")
    lines = path.read_text().splitlines(keepends=True)
    k = next(i for i in range(6000, len(lines)) if lines[i].endswith(",,,\n"))
    lines[k] = lines[k].replace(",,,\n", "\n")
    path.write_text("".join(lines))
    monkeypatch.setattr(csv_reader, "BATCH_ROWS", 1000)  # many Arrow batches first
    calls = []
    real = csv_reader._arrow_batches

    def counting(*a):
        for item in real(*a):
            calls.append(item[1])
            yield item

    monkeypatch.setattr(csv_reader, "_arrow_batches", counting)
    with open_recording(path, one_pass=True) as src:
        got = list(src.iter_chunks(1.0))
    assert len(calls) > 3 and max(calls) < k  # Arrow read the start, then stopped
    monkeypatch.setattr(csv_reader, "_arrow_can_read", lambda *a: False)
    with open_recording(path, one_pass=True) as src:  # the pandas reader alone
        want = list(src.iter_chunks(1.0))
    for g, w in zip(got, want, strict=True):  # the same samples, to the bit
        np.testing.assert_array_equal(g.emg_uv, w.emg_uv)
        np.testing.assert_array_equal(g.acc_g, w.acc_g)
    np.testing.assert_allclose(np.concatenate([c.emg_uv for c in got]), emg, rtol=1e-12)


def test_csv_arrow_reader_holds_about_one_block(tmp_path, monkeypatch):
    """Arrow's streaming CSV reader, given a path, reads ahead and held up to the whole file;
    through a Python file it holds about one block, so memory stays flat with the length."""
    import pyarrow as pa

    emg, acc = _signals(60.0, seed=9)
    path = _write(_table(emg, acc), tmp_path / "long.csv")
    size = path.stat().st_size
    monkeypatch.setattr(csv_reader, "BATCH_ROWS", 4096)  # ~100 KB blocks of this file
    held = []
    with open_recording(path, one_pass=True) as src:
        for _ in src.iter_chunks(2.0):
            held.append(pa.total_allocated_bytes())
    assert len(held) == 30
    assert max(held) < size / 4, (max(held), size)  # through the path: ~90 % of the file
