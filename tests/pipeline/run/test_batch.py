"""Batch analysis (issue 5): discovery, naming, local process pool, crash isolation, resume,
atomic outputs, combined tables, and chunked analysis equal to the whole-array run.

The helpers at the top (``make_study``, ``write_edf``, ``folder_bytes``) are shared with
``test_dask.py`` and ``test_analyse_cli.py``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.run import batch

FS_EMG_HZ = 1000.0
FS_ACC_HZ = 100.0


# --------------------------------------------------------------------------- recordings


def synth_streams(seed: int, duration_s: float, n_twitches: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """EMG (n,) µV: 3 µV noise + biphasic 8-ms potentials of ~150 µV; ACC (m, 3) g: gravity on z,
    2 mg noise and a small jolt with each potential. Seeded, so every call is identical."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FS_EMG_HZ)
    m = int(duration_s * FS_ACC_HZ)
    emg = rng.normal(0.0, 3.0, n)
    acc = rng.normal(0.0, 0.002, (m, 3))
    acc[:, 2] += 1.0
    t = np.arange(-8, 9) / FS_EMG_HZ
    shape = -np.sin(2 * np.pi * t / 0.016) * np.exp(-((t / 0.004) ** 2)) * 150.0
    times_s = np.sort(rng.uniform(1.0, duration_s - 1.0, n_twitches))
    for ts in times_s:
        i = int(ts * FS_EMG_HZ)
        emg[i - 8 : i + 9] += shape * rng.uniform(0.8, 1.2)
        j = int(ts * FS_ACC_HZ)
        acc[j : j + 3, 0] += 0.02
    return emg, acc


def write_csv(path: Path, seed: int, duration_s: float = 30.0) -> Path:
    """An EMG-only CSV recording (docs/contracts.md §1)."""
    emg, _ = synth_streams(seed, duration_s)
    t = np.arange(len(emg)) / FS_EMG_HZ
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"time_s": np.round(t, 6), "emg_uv": np.round(emg, 3)}).to_csv(path, index=False)
    return path


def write_edf(path: Path, seed: int, duration_s: float = 40.0) -> Path:
    """An EDF+ recording with one EMG (1 kHz, µV) and three ACC axes (100 Hz, g)."""
    import pyedflib

    emg, acc = synth_streams(seed, duration_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    headers = [pyedflib.highlevel.make_signal_header("EMG", "uV", FS_EMG_HZ, -2000, 2000)]
    headers += [
        pyedflib.highlevel.make_signal_header(f"ACC {ax}", "g", FS_ACC_HZ, -8, 8) for ax in "XYZ"
    ]
    w = pyedflib.EdfWriter(str(path), 4, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        w.setSignalHeaders(headers)
        w.writeSamples([emg, acc[:, 0].copy(), acc[:, 1].copy(), acc[:, 2].copy()])
    finally:
        w.close()
    return path


def make_study(root: Path) -> dict[str, Path]:
    """A study folder with subfolders, a name clash, a ground-truth table, a hidden file and one
    corrupt recording. Returns the recordings by role."""
    files = {
        "p1_night": write_edf(root / "p1" / "night.edf", seed=1),
        "p2_night": write_edf(root / "p2" / "night.edf", seed=2),
        "p2_day": write_csv(root / "p2" / "day" / "walk.csv", seed=3),
        "top": write_csv(root / "calf.csv", seed=4),
    }
    bad = root / "p3" / "broken.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("time_s,emg_uv\n0.000,1.0\n0.001,abc\n0.002,2.0\n")
    files["corrupt"] = bad
    (root / "calf.truth.csv").write_text("time_s,type\n1.0,fasciculation\n")
    (root / "p1" / ".night.edf").write_bytes(b"hidden editor backup")
    (root / "p1" / "notes.txt").write_text("not a recording")
    return files


def folder_bytes(out: Path) -> dict[str, bytes]:
    """Every output file (relative path -> bytes), without the hidden fingerprints."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


# --------------------------------------------------------------------------- fakes
# Stand-ins for the per-recording task and writer, to drive the machinery into states the real
# detector never reaches (a worker that dies). Module-level so worker processes can import them.


@dataclass(frozen=True)
class FakeResult:
    summary: dict[str, Any]


def fake_task(path: str, chunk_s: float, config: Any) -> batch.TaskOutput:
    """Reads the file for real (chunked) and counts samples above 60 µV; dies on ``crash*``."""
    from toetwitch.drivers.readers import open_recording

    if Path(path).name.startswith("crash"):
        os._exit(7)  # a hard crash: no exception, no cleanup, like a segfault or the OOM killer
    with open_recording(path) as src:
        above = sum(int(np.sum(c.emg_uv > 60.0)) for c in src.iter_chunks(chunk_s) if c.emg_uv is not None)
        summary = {"recording": src.info.name, "duration_s": src.info.duration_s, "twitches": above,
                   "signal_quality": {"grade": "good"}}
    return batch.TaskOutput(FakeResult(summary), batch.fingerprint_file(path))


def fake_writer(result: FakeResult, folder: Path) -> None:
    (folder / "summary.json").write_text(json.dumps(result.summary, sort_keys=True))
    (folder / "events.csv").write_text("time_s,source,type\n")
    (folder / "episodes.csv").write_text("episode,start_s,end_s,twitches\n")


# --------------------------------------------------------------------------- discovery


def test_discovery_recurses_and_skips_truth_hidden_other_files_and_the_output_folder(tmp_path):
    files = make_study(tmp_path / "study")
    out = tmp_path / "study" / "results"
    # Outputs of an earlier run inside the study folder must not be picked up as recordings.
    write_csv(out / "calf" / "events_copy.csv", seed=9, duration_s=3)
    found = batch.discover_recordings([tmp_path / "study"], exclude=out)
    assert sorted(found) == sorted(files.values())
    # A file named on the command line is taken even when a folder search would skip it.
    notes = tmp_path / "study" / "p1" / "notes.txt"
    assert notes in batch.discover_recordings([notes])
    # The same file twice (by folder and by name) is analysed once.
    twice = batch.discover_recordings([tmp_path / "study", files["top"]], exclude=out)
    assert len(twice) == len(files)


def test_missing_path_and_folder_without_recordings_are_usage_errors(tmp_path):
    with pytest.raises(UserError) as e:
        batch.plan_jobs([tmp_path / "nope.edf"])
    assert e.value.exit_code == 2 and "nope.edf" in str(e.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(UserError) as e:
        batch.plan_jobs([tmp_path / "empty"])
    assert e.value.exit_code == 2 and "no recordings" in str(e.value)


def test_output_names_are_unique_readable_and_independent_of_argument_order(tmp_path):
    paths = [
        tmp_path / "a" / "night.edf",
        tmp_path / "b" / "night.edf",
        tmp_path / "b" / "deep" / "NIGHT.csv",
        tmp_path / "c" / "walk.csv",
        tmp_path / "c" / "walk.edf",
        tmp_path / "c" / "calf.csv",
    ]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
    names = dict(zip(paths, batch.output_names(paths), strict=True))
    assert names[paths[0]] == "a__night"
    assert names[paths[1]] == "b__night"
    assert names[paths[2]] == "b__deep__NIGHT"
    assert names[paths[5]] == "calf"
    assert {names[paths[3]], names[paths[4]]} == {"walk_csv", "walk_edf"}
    assert len({n.casefold() for n in names.values()}) == len(paths)
    rev = dict(zip(paths[::-1], batch.output_names(paths[::-1]), strict=True))
    assert rev == names


# --------------------------------------------------------------------------- running


def test_worker_pool_equals_in_process_run_and_isolates_the_corrupt_file(tmp_path):
    files = make_study(tmp_path / "study")
    jobs = batch.plan_jobs([tmp_path / "study"])
    one = batch.run_batch(jobs, tmp_path / "one", workers=1)
    two = batch.run_batch(jobs, tmp_path / "two", workers=2)
    assert (one.backend, two.backend) == ("in-process", "processes")
    for report in (one, two):
        assert report.exit_code == 1
        [fail] = report.failures
        assert fail.job.path == str(files["corrupt"])
        assert "line 3" in fail.error and "abc" in fail.error
        assert report.count("ok") == len(files) - 1
    a, b = folder_bytes(tmp_path / "one"), folder_bytes(tmp_path / "two")
    assert a == b
    expected = {"p1__night", "p2__night", "walk", "calf"}
    assert {k.split("/")[0] for k in a if "/" in k} == expected
    for name in expected:
        for f in batch.OUTPUT_FILES:
            assert f"{name}/{f}" in a
    assert "broken" not in {k.split("/")[0] for k in a}
    assert not (tmp_path / "two" / batch.STAGING_NAME).exists()


def test_a_crashed_worker_fails_only_its_own_file(tmp_path):
    root = tmp_path / "in"
    for i in range(5):
        write_csv(root / f"rec{i}.csv", seed=10 + i, duration_s=3)
    (root / "crash_me.csv").write_bytes((root / "rec0.csv").read_bytes())
    jobs = batch.plan_jobs([root])
    report = batch.run_batch(jobs, tmp_path / "out", workers=2, task=fake_task, writer=fake_writer)
    by_name = {o.job.name: o for o in report.outcomes}
    assert by_name["crash_me"].status == "failed"
    assert "stopped abruptly" in by_name["crash_me"].error
    assert all(by_name[f"rec{i}"].status == "ok" for i in range(5))
    assert report.exit_code == 1
    failures = pd.read_csv(tmp_path / "out" / batch.FAILURES_CSV)
    assert failures["name"].tolist() == ["crash_me"]


def test_combined_tables_have_one_typed_row_per_recording(tmp_path):
    files = make_study(tmp_path / "study")
    jobs = batch.plan_jobs([tmp_path / "study"])
    seen = []
    report = batch.run_batch(jobs, tmp_path / "out", workers=1, on_outcome=seen.append)
    # Results reach the callback, but the report keeps only summaries (bounded memory).
    assert sum(o.result is not None for o in seen) == len(files) - 1
    assert all(o.result is None and o.summary is not None for o in report.outcomes if o.status == "ok")
    csv = pd.read_csv(tmp_path / "out" / batch.SUMMARY_CSV)
    pq = pd.read_parquet(tmp_path / "out" / batch.SUMMARY_PARQUET)
    assert list(csv.columns[:4]) == list(batch.TABLE_COLUMNS)
    assert list(pq.columns) == list(csv.columns)
    assert csv["path"].tolist() == [j.path for j in jobs]
    assert len(csv) == len(files)
    row = csv.set_index("name").loc["p1__night"]
    summary = json.loads((tmp_path / "out" / "p1__night" / "summary.json").read_text())
    assert row["status"] == "ok" and pd.isna(row["error"])
    assert row["twitches"] == summary["twitches"]
    assert row["signal_quality.grade"] == summary["signal_quality"]["grade"]
    assert row["duration_s"] == pytest.approx(summary["duration_s"])
    broken = csv.set_index("name").loc["broken"]
    assert broken["status"] == "failed" and "abc" in broken["error"] and pd.isna(broken["twitches"])
    assert pq["twitches"].dtype == "Int64"  # integers stay integers beside the failed row
    failures = pd.read_csv(tmp_path / "out" / batch.FAILURES_CSV)
    assert failures["path"].tolist() == [str(files["corrupt"])]


# --------------------------------------------------------------------------- resume


def test_resume_skips_current_outputs_and_redoes_changed_files(tmp_path):
    root = tmp_path / "in"
    a = write_csv(root / "a.csv", seed=1, duration_s=10)
    b = write_csv(root / "b.csv", seed=2, duration_s=10)
    c = write_csv(root / "c.csv", seed=3, duration_s=10)
    out = tmp_path / "out"
    first = batch.run_batch(batch.plan_jobs([root]), out, workers=1)
    assert first.count("ok") == 3
    before = folder_bytes(out)

    # b: only touched (same bytes, new time) -> still current. c: new content -> re-analysed.
    st = os.stat(b)
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    write_csv(c, seed=30, duration_s=12)
    again = batch.run_batch(batch.plan_jobs([root]), out, workers=1, resume=True)
    status = {o.job.name: o.status for o in again.outcomes}
    assert status == {"a": "skipped", "b": "skipped", "c": "ok"}
    after = folder_bytes(out)
    assert after["a/summary.json"] == before["a/summary.json"]
    assert after["c/summary.json"] != before["c/summary.json"]
    # The combined table still has every recording, skipped ones from their summary.json.
    table = pd.read_csv(out / batch.SUMMARY_CSV)
    assert table["status"].tolist() == ["skipped", "skipped", "ok"]
    assert table["twitches"].notna().all()
    # Another configuration makes earlier outputs out of date.
    from toetwitch.pipeline import DetectorConfig

    stricter = DetectorConfig(threshold_k=DetectorConfig().threshold_k + 1.0)
    cfg = batch.run_batch(batch.plan_jobs([root]), out, workers=1, resume=True, config=stricter)
    assert cfg.count("ok") == 3, [(o.status, o.error) for o in cfg.outcomes]
    cfg2 = batch.run_batch(batch.plan_jobs([root]), out, workers=1, resume=True, config=stricter)
    assert cfg2.count("skipped") == 3
    # The default configuration equals None: outputs made with one are current for the other.
    batch.run_batch(batch.plan_jobs([root]), out, workers=1, config=DetectorConfig())
    assert batch.run_batch(batch.plan_jobs([root]), out, workers=1, resume=True).count("skipped") == 3
    assert a.exists()


def test_an_interrupted_write_leaves_nothing_that_resume_trusts(tmp_path):
    root = tmp_path / "in"
    write_csv(root / "a.csv", seed=1, duration_s=5)
    write_csv(root / "b.csv", seed=2, duration_s=5)
    out = tmp_path / "out"

    def dying_writer(result, folder):
        fake_writer(result, folder)
        if result.summary["recording"] == "b":
            raise KeyboardInterrupt  # killed half-way through writing b's folder

    jobs = batch.plan_jobs([root])
    with pytest.raises(KeyboardInterrupt):
        batch.run_batch(jobs, out, workers=1, task=fake_task, writer=dying_writer)
    assert (out / "a" / batch.MARKER_NAME).is_file()
    assert not (out / "b").exists()
    # A folder that merely looks complete (no fingerprint) is not trusted either.
    (out / "a" / batch.MARKER_NAME).unlink()
    again = batch.run_batch(jobs, out, workers=1, resume=True, task=fake_task, writer=fake_writer)
    assert {o.job.name: o.status for o in again.outcomes} == {"a": "ok", "b": "ok"}
    third = batch.run_batch(jobs, out, workers=1, resume=True, task=fake_task, writer=fake_writer)
    assert {o.status for o in third.outcomes} == {"skipped"}
    assert not (out / batch.STAGING_NAME).exists()


def test_outputs_of_a_file_that_now_fails_are_removed(tmp_path):
    root = tmp_path / "in"
    rec = write_csv(root / "a.csv", seed=1, duration_s=5)
    out = tmp_path / "out"
    batch.run_batch(batch.plan_jobs([root]), out, workers=1)
    assert (out / "a" / "summary.json").is_file()
    rec.write_text("time_s,emg_uv\n0.0,1\n0.001,oops\n")
    report = batch.run_batch(batch.plan_jobs([root]), out, workers=1, resume=True)
    assert report.failures and not (out / "a").exists()


def test_bad_options_are_usage_errors(tmp_path):
    jobs = batch.plan_jobs([write_csv(tmp_path / "a.csv", seed=1, duration_s=3)])
    for kwargs in ({"workers": 0}, {"chunk_s": 0.0}, {"chunk_s": float("nan")}):
        with pytest.raises(UserError) as e:
            batch.run_batch(jobs, tmp_path / "out", **kwargs)
        assert e.value.exit_code == 2
    with pytest.raises(UserError):
        batch.run_batch(jobs, None, resume=True)


# --------------------------------------------------------------------------- chunked analysis


def test_chunked_analysis_of_a_file_equals_the_whole_array_run(tmp_path):
    from toetwitch.drivers.readers import open_recording, read_recording
    from toetwitch.pipeline import analyse, analyse_source

    path = write_edf(tmp_path / "long.edf", seed=5, duration_s=95.0)
    whole = analyse(read_recording(path))
    assert (whole.events["type"] == "fasciculation").sum() > 0
    for chunk_s in (7.3, 30.0):
        with open_recording(path) as src:
            chunked = analyse_source(src, chunk_s=chunk_s)
        pd.testing.assert_frame_equal(chunked.events, whole.events)
        pd.testing.assert_frame_equal(chunked.episodes, whole.episodes)
        assert chunked.summary["twitches"] == whole.summary["twitches"]
        assert chunked.summary["duration_s"] == whole.summary["duration_s"]


def test_progress_bar_goes_to_stderr_and_measures_bytes(tmp_path, capsys):
    for i in range(2):
        write_csv(tmp_path / "in" / f"r{i}.csv", seed=i, duration_s=3)
    jobs = batch.plan_jobs([tmp_path / "in"])
    batch.run_batch(jobs, None, workers=1, progress=True, task=fake_task)
    captured = capsys.readouterr()
    total_kb = sum(j.size_bytes for j in jobs) / 1024
    assert "analysing:" in captured.err and f"{total_kb:.1f}k" in captured.err
    assert captured.out == ""
    batch.run_batch(jobs, None, workers=1, progress=False, task=fake_task)
    assert capsys.readouterr().err == ""


def test_progress_moves_within_one_long_recording(tmp_path):
    """The bar moves while one recording is analysed, not only when it is done: the task
    reports the share analysed after every chunk, rising to 1."""
    sample = Path(__file__).resolve().parents[3] / "sample_data" / "rest_and_voluntary.edf"
    jobs = batch.plan_jobs([sample], tmp_path)
    seen: list[tuple[str, float]] = []
    stream = batch._iter_in_process(jobs, batch.analyse_file, 10.0, None,
                                    lambda job, share: seen.append((job.name, share)))
    (job, out, err, _dt), = list(stream)
    assert err is None and out is not None
    shares = [s for _, s in seen]
    assert len(shares) >= 8  # 87 s in 10-s chunks
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0, abs=0.02)
    assert batch._progress_hook.get() is None  # not left set for the next task
