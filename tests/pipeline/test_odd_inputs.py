"""Every input a person or a device produces: no crash, no silent damage, nothing lost.

One test per category of odd input (short recordings, impossible values, timestamp jitter,
damaged EDF headers, answers-file encodings, CSV dialects, warnings, an unusable journal,
datetime times in Parquet), then property-based tests over the input surface. Each run ends
either in one clean error naming the file, or in an analysis whose summary accounts for
every second and says what was repaired.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import recording_table
from toetwitch.drivers import Recording, RecordingError, read_recording
from toetwitch.drivers.readers import ReaderWarning, open_recording
from toetwitch.drivers.readers.edf import write_edf
from toetwitch.drivers.simulate import inject_twitches, simulate_recording
from toetwitch.pipeline import analyse
from toetwitch.pipeline.cli.main import main
from toetwitch.pipeline.detect.analysis import analyse_source
from toetwitch.pipeline.log import TwitchWarning

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def accounted(summary: dict) -> None:
    """rest + active + artifact (lost included) + not analysed = duration, to rounding."""
    s = summary
    total = s["time_rest_s"] + s["time_active_s"] + s["time_artifact_s"] + s["time_not_analysed_s"]
    assert total == pytest.approx(s["duration_s"], abs=2e-3), s
    assert isinstance(s["repairs"], list)


def noise(n: int, seed: int = 0, sd: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, sd, n)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``toetwitch ARGV`` in this process: (exit status, stdout, stderr incl. the log)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def clean_lines(err: str) -> None:
    """No traceback, no raw exception or warning class name, no Python file:line."""
    assert "Traceback" not in err
    for word in ("Error:", "Warning:", ".py:", "Exception"):
        assert word not in err, err


# --------------------------------------------------------------------------- 1. short recordings


@pytest.mark.parametrize("n", [0, 1, 2, 50, 100, 1000, 2099, 2100, 2101])
def test_recordings_shorter_than_the_low_level_firing_window_analyse(n):
    acc = np.tile([0.0, 0.0, 1.0], (n // 10, 1)) + noise(3 * (n // 10), 1, 1e-3).reshape(-1, 3)
    r = analyse(Recording(emg_uv=noise(n), fs_emg_hz=1000.0, acc_g=acc, fs_acc_hz=100.0))
    accounted(r.summary)
    assert r.summary["duration_s"] == pytest.approx(n / 1000)


def test_short_files_through_every_command(tmp_path):
    two = tmp_path / "two.csv"
    two.write_text("time_s,emg_uv\n0,1\n0.001,2\n")
    short = tmp_path / "short.csv"
    recording_table(noise(1500), None, 1000.0).to_csv(short, index=False)
    for path in (two, short):
        for argv in (["analyse", str(path)], ["replay", str(path), "--speed", "max", "-q"],
                     ["assess", "--recording", str(path), "--answers", str(_answers(tmp_path)),
                      "--json"]):
            code, _, err = run_cli(*argv, "--no-journal")
            assert code == 0, (argv, err)
            clean_lines(err)


def _answers(tmp_path: Path) -> Path:
    p = tmp_path / "answers.json"
    p.write_text(json.dumps({"age_years": 30, "symptoms": {"weakness": "none"}}))
    return p


# --------------------------------------------------------------------------- 2. impossible values


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e308, -1e300])
def test_one_impossible_value_costs_only_its_own_samples(bad):
    rec, truth = simulate_recording(60.0, fs_emg_hz=1000.0, fs_acc_hz=100.0, seed=5,
                                    twitch_rate_per_min=20.0)
    clean = analyse(rec)
    emg = rec.emg_uv.copy()
    emg[10_000] = bad
    damaged = Recording(emg_uv=emg, fs_emg_hz=1000.0, acc_g=rec.acc_g, fs_acc_hz=100.0, name="bad")
    with pytest.warns(TwitchWarning, match="impossible EMG values") as caught:
        r = analyse(damaged)
    assert len(caught) == 1  # warned once
    s = r.summary
    accounted(s)
    t_clean, t_bad = clean.twitches["time_s"].to_numpy(), r.twitches["time_s"].to_numpy()
    far = np.abs(t_clean - 10.0) > 1.0  # away from the bad sample nothing changes
    np.testing.assert_allclose(t_bad[np.abs(t_bad - 10.0) > 1.0], t_clean[far])
    assert s["cramps"] == clean.summary["cramps"]
    assert s["signal_quality"]["grade"] == clean.summary["signal_quality"]["grade"]
    assert 0 < s["artifact_reasons"]["signal_loss"] <= 0.3
    assert any("EMG samples" in line and line.startswith("1 ") for line in s["repairs"])


def test_impossible_accelerometer_values_become_lost_rows():
    rec, _ = simulate_recording(20.0, emg=False, fs_acc_hz=100.0, seed=2)
    acc = rec.acc_g.copy()
    acc[500, 1] = np.inf
    acc[900, 2] = 5e4
    with pytest.warns(TwitchWarning):
        r = analyse(Recording(acc_g=acc, fs_acc_hz=100.0))
    accounted(r.summary)
    assert r.summary["artifact_reasons"]["signal_loss"] > 0
    assert len(r.summary["repairs"]) == 2


# --------------------------------------------------------------------------- 3. timestamp jitter


def test_jitter_is_not_taken_for_gaps(tmp_path):
    rec, truth = simulate_recording(30.0, fs_emg_hz=1000.0, acc=False, seed=7,
                                    twitch_rate_per_min=14.0)
    rng = np.random.default_rng(3)
    n = len(rec.emg_uv)
    t = np.arange(n) / 1000 + rng.uniform(-0.3e-3, 0.3e-3, n)
    keep = np.ones(n, bool)
    keep[12_000:12_250] = False  # one real gap of 250 ms
    path = tmp_path / "jitter.csv"
    pd.DataFrame({"time_s": t[keep], "emg_uv": rec.emg_uv[keep]}).to_csv(path, index=False,
                                                                         float_format="%.7f")
    with pytest.warns(ReaderWarning, match="1 gap"):
        got = read_recording(path)
    assert got.fs_emg_hz == 1000.0 and len(got.emg_uv) == n
    np.testing.assert_array_equal(np.isnan(got.emg_uv), ~keep)
    assert got.meta["gaps"][0]["missing_samples"] == 250
    clean = analyse(Recording(emg_uv=np.where(keep, rec.emg_uv, np.nan), fs_emg_hz=1000.0))
    r = analyse(got)
    np.testing.assert_allclose(r.twitches["time_s"], clean.twitches["time_s"])
    assert len(r.twitches) >= 5


@pytest.mark.parametrize("jitter", [0.0, 0.2, 0.33])
def test_single_missing_samples_are_found_under_jitter(tmp_path, jitter):
    n = 5000
    keep = np.ones(n, bool)
    keep[100:n - 100:37] = False  # one lost sample every 37
    t = (np.arange(n) + np.random.default_rng(1).uniform(-jitter, jitter, n)) / 1000
    t[0] = 0.0
    path = tmp_path / "single.csv"
    idx = np.flatnonzero(keep)
    pd.DataFrame({"time_s": t[idx], "emg_uv": idx.astype(float)}).to_csv(path, index=False,
                                                                          float_format="%.7f")
    with pytest.warns(ReaderWarning, match=f"{(~keep).sum()} gap"):
        got = read_recording(path)
    np.testing.assert_array_equal(np.flatnonzero(~np.isnan(got.emg_uv)), idx)


@given(
    n=st.integers(700, 1500),  # jittered times give the rate to 0.1 % from ~700 samples on
    jitter=st.floats(0.0, 0.33),
    gaps=st.lists(st.tuples(st.integers(20, 1400), st.integers(1, 40)), max_size=4),
    seed=st.integers(0, 2**16),
)
@PROPERTY
def test_jittery_timestamps_put_every_sample_at_its_place(n, jitter, gaps, seed):
    rng = np.random.default_rng(seed)
    keep = np.ones(n, bool)
    for start, length in gaps:
        if start + length + 10 < n:
            keep[start:start + length] = False
    keep[:10] = True  # the rate needs a few regular intervals
    t = (np.arange(n) + rng.uniform(-jitter, jitter, n)) / 1000
    t[0] = 0.0
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.csv"
        pd.DataFrame({"time_s": t[idx], "emg_uv": idx.astype(float)}).to_csv(path, index=False,
                                                                              float_format="%.7f")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReaderWarning)
            got = read_recording(path)
            with open_recording(path) as src:
                chunked = np.concatenate([c.emg_uv for c in src.iter_chunks(0.137)])
    assert got.fs_emg_hz == 1000.0
    placed = np.flatnonzero(~np.isnan(got.emg_uv))
    np.testing.assert_array_equal(placed, idx)  # every sample at its nominal place
    np.testing.assert_array_equal(got.emg_uv[placed], idx)
    np.testing.assert_array_equal(chunked, got.emg_uv)


# --------------------------------------------------------------------------- 4. EDF headers


@pytest.fixture(scope="module")
def edf_bytes(tmp_path_factory) -> tuple[bytes, Recording]:
    rec, _ = simulate_recording(10.0, fs_emg_hz=1000.0, fs_acc_hz=100.0, seed=9)
    path = tmp_path_factory.mktemp("edf") / "ok.edf"
    write_edf(path, rec.emg_uv, 1000.0, rec.acc_g, 100.0, start_time="2026-01-02T23:00:00")
    return path.read_bytes(), read_recording(path)


def _edit(raw: bytes, start: int, text: str) -> bytes:
    return raw[:start] + text.encode().ljust(8)[:8] + raw[start + 8:]


@pytest.mark.parametrize("case", ["count -1", "count wrong", "truncated"])
def test_edf_with_a_damaged_record_count_reads_the_complete_records(edf_bytes, tmp_path, case):
    raw, ref = edf_bytes
    data = {"count -1": _edit(raw, 236, "-1"), "count wrong": _edit(raw, 236, "25"),
            "truncated": raw[:-5000]}[case]
    path = tmp_path / "x.edf"
    path.write_bytes(data)
    with pytest.warns(ReaderWarning, match="complete|record"):
        got = read_recording(path)
    n = len(got.emg_uv)
    record_bytes = (len(raw) - 1536) // 10
    assert n == (10_000 if case != "truncated" else 1000 * ((len(data) - 1536) // record_bytes))
    np.testing.assert_allclose(got.emg_uv, ref.emg_uv[:n])
    np.testing.assert_allclose(got.acc_g, ref.acc_g[: len(got.acc_g)])
    assert got.start_time == "2026-01-02T23:00:00"
    assert got.meta["repairs"]


def test_edf_repair_accepts_latin1_units(edf_bytes, tmp_path):
    """Recorders write 'µV' in Latin-1 (EDF asks for ASCII); the repair path reads it too."""
    raw, ref = edf_bytes
    ns = int(raw[252:256])
    dim = 256 + ns * 96  # the first signal's (EMG) physical dimension
    assert raw[dim:dim + 2] == b"uV"
    data = _edit(raw, 236, "-1")
    data = data[:dim] + "µV".encode("latin-1").ljust(8) + data[dim + 8:]
    path = tmp_path / "mu.edf"
    path.write_bytes(data)
    with pytest.warns(ReaderWarning, match="-1"):
        got = read_recording(path)
    np.testing.assert_allclose(got.emg_uv, ref.emg_uv)


def _edf_plus_d(raw: bytes, drop: list[int]) -> bytes:
    """EDF+D: the same records minus ``drop`` (each keeps its own time-keeping annotation)."""
    ns = int(raw[252:256])
    header = 256 * (ns + 1)
    nsamp = [int(raw[256 + ns * 216 + 8 * i: 256 + ns * 216 + 8 * (i + 1)]) for i in range(ns)]
    size = 2 * sum(nsamp)
    n_rec = (len(raw) - header) // size
    recs = [raw[header + r * size: header + (r + 1) * size] for r in range(n_rec) if r not in drop]
    head = raw[:192] + b"EDF+D".ljust(44) + str(len(recs)).encode().ljust(8) + raw[244:header]
    return head + b"".join(recs)


def test_edf_plus_d_places_records_at_their_times_with_gaps_lost(edf_bytes, tmp_path):
    raw, ref = edf_bytes
    path = tmp_path / "d.edf"
    path.write_bytes(_edf_plus_d(raw, [3, 4]))
    with pytest.warns(ReaderWarning, match="EDF\\+D"):
        got = read_recording(path)
    assert len(got.emg_uv) == 10_000
    lost = np.isnan(got.emg_uv)
    assert lost[3000:5000].all() and not lost[:3000].any() and not lost[5000:].any()
    np.testing.assert_allclose(got.emg_uv[~lost], ref.emg_uv[~lost])
    r = analyse(got)
    accounted(r.summary)
    assert r.summary["artifact_reasons"]["signal_loss"] == pytest.approx(2.0, abs=0.2)


def test_edf_plus_d_off_the_record_grid_is_refused_clearly(edf_bytes, tmp_path):
    raw, _ = edf_bytes
    data = bytearray(_edf_plus_d(raw, []))
    ns = int(raw[252:256])
    nsamp = [int(raw[256 + ns * 216 + 8 * i: 256 + ns * 216 + 8 * (i + 1)]) for i in range(ns)]
    off = 256 * (ns + 1) + 2 * 2 * sum(nsamp) + 2 * sum(nsamp[:-1])  # record 3's annotations
    assert bytes(data[off:off + 3]) == b"+2\x14"
    data[off:off + 5] = b"+2.5\x14"
    path = tmp_path / "grid.edf"
    path.write_bytes(bytes(data))
    code, _, err = run_cli("analyse", str(path), "--no-journal")
    assert code == 1 and "off the record grid" in err and str(path) in err
    clean_lines(err)


# --------------------------------------------------------------------------- 6. answers files


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-16-be"])
def test_answers_in_unicode_encodings_are_read(tmp_path, encoding):
    from toetwitch.models.answers import load_answers

    p = tmp_path / "a.json"
    text = json.dumps({"age_years": 41, "sites": ["big_toe"], "medications": ["statin"]})
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    p.write_bytes(data)
    assert load_answers(p)["age_years"] == 41


def test_answers_value_errors_name_the_file_and_the_key(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"symptoms": {"weakness": "very"}}))
    code, _, err = run_cli("assess", "--answers", str(p), "--no-journal")
    assert code == 2 and str(p) in err and "symptoms.weakness" in err
    assert err.count("\n") == 1
    clean_lines(err)


# --------------------------------------------------------------------------- 7. CSV dialects


@pytest.mark.parametrize("dialect", ["excel-eu", "tab", "capitalised-bom"])
def test_csv_dialects_are_read(tmp_path, dialect):
    emg = np.round(noise(3000), 3)
    t = np.arange(3000) / 1000
    if dialect == "excel-eu":
        rows = ["Time_s;EMG_uV"] + [f"{a:.3f};{b:.3f}".replace(".", ",") for a, b in zip(t, emg, strict=True)]
    elif dialect == "tab":
        rows = ["time_s\temg_uv"] + [f"{a:.3f}\t{b:.3f}" for a, b in zip(t, emg, strict=True)]
    else:
        rows = ["\ufeffTIME_S, Emg_Uv"] + [f"{a:.3f}, {b:.3f}" for a, b in zip(t, emg, strict=True)]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    got = read_recording(path)
    assert got.fs_emg_hz == 1000.0
    np.testing.assert_allclose(got.emg_uv, emg)
    with open_recording(path) as src:
        np.testing.assert_allclose(analyse_source(src, chunk_s=0.7).summary["duration_s"], 3.0)


def test_an_unknown_separator_says_what_was_found(tmp_path):
    path = tmp_path / "pipe.csv"
    path.write_text("time_s|emg_uv\n0|1\n0.001|2\n")
    code, _, err = run_cli("analyse", str(path), "--no-journal")
    assert code == 1 and "missing column 'time_s'" in err and "time_s|emg_uv" in err


# --------------------------------------------------------------------------- 8. warnings


def _gappy_csv(tmp_path: Path) -> Path:
    emg = noise(4000)
    keep = np.ones(4000, bool)
    keep[2000:2100] = False
    path = tmp_path / "gappy.csv"
    pd.DataFrame({"time_s": (np.arange(4000) / 1000)[keep], "emg_uv": emg[keep]}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", ["analyse", "replay", "monitor"])
def test_warnings_are_one_clean_line_in_every_command(tmp_path, command):
    path = _gappy_csv(tmp_path)
    argv = {"analyse": ["analyse", str(path)],
            "replay": ["replay", str(path), "--speed", "max", "-q"],
            "monitor": ["monitor", "--emulate", str(path), "--speed", "max", "-q", "--no-log"]}[command]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CLI must handle them itself, not leave them to Python
        code, _, err = run_cli(*argv, "--no-journal")
    assert code == 0, err
    gap_lines = [ln for ln in err.splitlines() if "gap" in ln]
    assert len(gap_lines) == 1 and gap_lines[0].startswith("toetwitch: WARNING: "), err
    clean_lines(err)


# --------------------------------------------------------------------------- 9. unusable journal


def _journals(tmp_path: Path) -> dict[str, Path]:
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"this is not a database at all\n" * 40)
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("a file where the journal's folder should be\n")
    return {"foreign": foreign, "corrupt": corrupt, "read-only folder": ro / "journal.sqlite",
            "folder is a file": not_a_folder / "journal.sqlite"}


@pytest.mark.parametrize("kind", ["foreign", "corrupt", "read-only folder", "folder is a file"])
def test_an_unusable_journal_never_stops_the_work(tmp_path, kind):
    if kind == "read-only folder" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    journal = _journals(tmp_path)[kind]
    before = journal.read_bytes() if journal.exists() else None
    rec = tmp_path / "rest.csv"
    recording_table(noise(5000), None, 1000.0).to_csv(rec, index=False)
    runs = {
        "analyse": ["analyse", str(rec), "--out", str(tmp_path / "a")],
        "replay": ["replay", str(rec), "--speed", "max", "-q", "--out", str(tmp_path / "r")],
        "monitor": ["monitor", "--emulate", str(rec), "--speed", "max", "-q", "--no-log",
                    "--out", str(tmp_path / "m")],
        "assess": ["assess", "--answers", str(_answers(tmp_path)), "--json"],
        "assess-history": ["assess", "--answers", str(_answers(tmp_path)), "--json"],
    }
    try:
        for name, argv in runs.items():
            code, out, err = run_cli(*argv, "--journal", str(journal))
            assert code == 1, (name, err)
            lines = [ln for ln in err.splitlines() if "journal" in ln and "error" in ln]
            assert len(lines) == 1 and "not recorded in the journal" in lines[0], (name, err)
            clean_lines(err)
            if name.startswith("assess"):
                assert json.loads(out)["escalation"]  # the assessment was made and printed
        assert (tmp_path / "a" / "rest" / "summary.json").exists()
        assert (tmp_path / "r" / "rest" / "summary.json").exists()
        assert (tmp_path / "m" / "rest" / "summary.json").exists()
        after = journal.read_bytes() if journal.exists() else None
        assert after == before  # never touched
    finally:
        journal.parent.chmod(stat.S_IRWXU)


# --------------------------------------------------------------------------- 10. Parquet datetimes


@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
def test_parquet_datetime_time_is_seconds_from_the_first_sample(tmp_path, tz):
    emg = noise(3000)
    t = pd.date_range("2026-01-02 23:10:00", periods=3000, freq="1ms", tz=tz)
    path = tmp_path / "dt.parquet"
    pd.DataFrame({"time_s": t, "emg_uv": emg}).to_parquet(path)
    got = read_recording(path)
    assert got.fs_emg_hz == 1000.0
    np.testing.assert_array_equal(got.emg_uv, emg)
    assert got.start_time.startswith("2026-01-02T23:10:00")


def test_parquet_text_time_is_refused_naming_the_type(tmp_path):
    path = tmp_path / "s.parquet"
    pd.DataFrame({"time_s": ["0", "0.001"], "emg_uv": [1.0, 2.0]}).to_parquet(path)
    with pytest.raises(RecordingError, match="column 'time_s' has type"):
        read_recording(path)


# --------------------------------------------------------------------------- properties


def outcome(path: Path, chunk_s: float = 60.0) -> dict | None:
    """Read and analyse ``path`` as ``analyse`` does: the summary, or None after one clean
    error naming the file. Any other exception fails the test."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open_recording(path) as src:
                r = analyse_source(src, chunk_s=chunk_s)
    except RecordingError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith(str(path)), text
        return None
    for w in caught:
        assert issubclass(w.category, ReaderWarning | TwitchWarning), (w.category, w.message)
    accounted(r.summary)
    return r.summary


@given(
    n=st.integers(0, 4000),
    chunk_s=st.sampled_from([0.05, 0.1, 0.37, 1.0, 60.0]),
    bad=st.lists(st.tuples(st.floats(0, 1), st.sampled_from([np.nan, np.inf, -np.inf, 1e308, 1e7])),
                 max_size=5),
    seed=st.integers(0, 2**16),
)
@PROPERTY
def test_any_length_chunking_and_bad_values(n, chunk_s, bad, seed):
    emg = noise(n, seed)
    for where, value in bad:
        if n:
            emg[min(int(where * n), n - 1)] = value
    n_acc = n // 10
    acc = np.tile([0.0, 0.0, 1.0], (n_acc, 1))
    rec = Recording(emg_uv=emg, fs_emg_hz=1000.0, acc_g=acc if n_acc else None,
                    fs_acc_hz=100.0 if n_acc else None)
    from toetwitch.drivers.readers import ArraySource

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TwitchWarning)
        whole = analyse(rec)
        chunked = analyse_source(ArraySource(rec), chunk_s=chunk_s)
    accounted(whole.summary)
    pd.testing.assert_frame_equal(whole.events, chunked.events)
    with np.errstate(invalid="ignore"):
        impossible = bool((np.abs(emg) >= 1e6).any())  # NaN is lost already, not repaired
    assert bool(whole.summary["repairs"]) == impossible


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> bytes:
    rec, _ = simulate_recording(2.0, fs_emg_hz=1000.0, fs_acc_hz=100.0, seed=4)
    path = tmp_path_factory.mktemp("csv") / "s.csv"
    recording_table(np.round(rec.emg_uv, 2), np.round(rec.acc_g, 4), 1000.0, 100.0).to_csv(
        path, index=False, float_format="%.4f")
    return path.read_bytes()


def _corrupt(raw: bytes, edits: list[tuple[float, int]], cut: float | None) -> bytes:
    b = bytearray(raw)
    for where, value in edits:
        b[min(int(where * len(b)), len(b) - 1)] = value
    if cut is not None:
        b = b[: int(cut * len(b))]
    return bytes(b)


EDITS = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4)
CUT = st.one_of(st.none(), st.floats(0, 1))


@given(edits=EDITS, cut=CUT)
@PROPERTY
def test_random_corruption_of_csv_bytes(small_csv, edits, cut):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.csv"
        path.write_bytes(_corrupt(small_csv, edits, cut))
        outcome(path, chunk_s=0.5)


@given(edits=EDITS, cut=CUT)
@PROPERTY
def test_random_corruption_of_edf_bytes(edf_bytes, edits, cut):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.edf"
        path.write_bytes(_corrupt(edf_bytes[0], edits, cut))
        outcome(path, chunk_s=3.0)


def test_the_cli_turns_a_damaged_file_into_one_line(tmp_path, small_csv):
    path = tmp_path / "bad.csv"
    path.write_bytes(small_csv[:200] + b"\xff\xfe" + small_csv[202:])
    code, _, err = run_cli("analyse", str(path), "--no-journal")
    assert code == 1 and err.count("\n") == 1 and str(path) in err, err
    clean_lines(err)


def test_twitches_survive_a_bad_cell_in_a_file(tmp_path):
    """The whole path, file to summary: a literal 'inf' cell in a CSV."""
    rng = np.random.default_rng(8)
    emg = rng.normal(0, 2.5, 30_000)
    times = np.arange(2.0, 28.0, 2.0)
    emg = inject_twitches(emg, 1000.0, times, 60.0, rng=np.random.default_rng(9))
    df = pd.DataFrame({"time_s": np.arange(30_000) / 1000, "emg_uv": emg.astype(object)})
    df.loc[7_000, "emg_uv"] = "inf"
    path = tmp_path / "cell.csv"
    df.to_csv(path, index=False)
    code, out, err = run_cli("analyse", str(path), "--no-journal", "--out", str(tmp_path / "o"))
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "cell" / "summary.json").read_text())
    clean_lines(err)
    assert "repaired:" in out and s["repairs"]
    ref = analyse(Recording(emg_uv=np.where(np.arange(30_000) == 7_000, np.nan, emg), fs_emg_hz=1000.0))
    assert s["twitches"] == ref.summary["twitches"] >= 8


@pytest.fixture(scope="module")
def packet_log(tmp_path_factory) -> bytes:
    """A real packet log: `monitor --emulate` of 3 s (emulated sensor, real BLE stack)."""
    d = tmp_path_factory.mktemp("ttlog")
    recording_table(np.round(noise(3000), 1), None, 1000.0).to_csv(d / "r.csv", index=False)
    code, _, err = run_cli("monitor", "--emulate", str(d / "r.csv"), "--speed", "max",
                           "--log", str(d / "r.ttlog"), "--no-journal", "-q")
    assert code == 0, err
    return (d / "r.ttlog").read_bytes()


@given(edits=EDITS, cut=CUT)
@PROPERTY
def test_random_corruption_of_packet_log_bytes(packet_log, edits, cut):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.ttlog"
        path.write_bytes(_corrupt(packet_log, edits, cut))
        outcome(path, chunk_s=0.5)
