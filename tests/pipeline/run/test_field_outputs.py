"""Outputs for the field's tools (docs/contracts.md §8), read back with the real libraries: BIDS-style
``events.tsv`` + ``events.json`` through pandas and ``mne.Annotations``, the ``--write-edf``
EDF+ copy and the bundled sample EDF through ``mne.io.read_raw_edf`` and pyedflib."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.pipeline.run.test_batch import write_csv
from toetwitch.drivers.readers import read_recording
from toetwitch.drivers.readers.edf import write_edf
from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import analyse
from toetwitch.pipeline.cli.main import main

mne = pytest.importorskip("mne")
pyedflib = pytest.importorskip("pyedflib")

SAMPLE_EDF = Path(__file__).resolve().parents[3] / "sample_data" / "rest_and_voluntary.edf"
START = "2026-03-14T23:40:00"


def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


@pytest.fixture(scope="module")
def edf_study(tmp_path_factory):
    """An EDF+ recording with a start time, analysed with --write-edf."""
    root = tmp_path_factory.mktemp("field")
    rec, _ = simulate_recording(40.0, fs_emg_hz=1000.0, fs_acc_hz=100.0, seed=11,
                                twitch_rate_per_min=20, limb_movements=1, name="night")
    write_edf(root / "night.edf", rec.emg_uv, 1000.0, rec.acc_g, 100.0, start_time=START)
    out = root / "out"
    assert main(["analyse", str(root / "night.edf"), "--out", str(out), "--write-edf",
                 "--no-journal"]) == 0
    return root, out / "night"


def test_events_tsv_is_bids_ordered_and_matches_events_csv(edf_study):
    _, folder = edf_study
    csv = pd.read_csv(folder / "events.csv")
    tsv = _read_tsv(folder / "events.tsv")
    assert list(tsv.columns[:3]) == ["onset", "duration", "trial_type"]
    assert len(tsv) == len(csv) > 5
    np.testing.assert_allclose(tsv["onset"], csv["start_s"])
    # onsets: a twitch's is its peak; a limb movement begins before its envelope peaks
    twitch, lm = csv["type"] == "fasciculation", csv["type"] == "limb_movement"
    np.testing.assert_array_equal(csv.loc[twitch, "start_s"], csv.loc[twitch, "time_s"])
    assert lm.any() and (csv.loc[lm, "start_s"] < csv.loc[lm, "time_s"]).all()
    np.testing.assert_allclose(tsv["duration"], csv["duration_ms"] / 1000)
    assert tsv["trial_type"].tolist() == csv["type"].tolist()
    for c in csv.columns:  # every events.csv column is kept, values unchanged
        assert c in tsv.columns
    # absolute times: the EDF header's start plus onset
    t0 = datetime.fromisoformat(START)
    got = [datetime.fromisoformat(s) for s in tsv["onset_datetime"]]
    want = [t0 + timedelta(seconds=float(t)) for t in csv["start_s"]]
    assert all(abs((g - w).total_seconds()) < 1e-3 for g, w in zip(got, want, strict=True))


def test_events_json_describes_every_column(edf_study):
    _, folder = edf_study
    side = json.loads((folder / "events.json").read_text())
    cols = _read_tsv(folder / "events.tsv").columns
    assert set(side) == set(cols)
    assert side["onset"]["Units"] == "s" and side["duration"]["Units"] == "s"
    assert {"fasciculation", "limb_movement", "cramp"} <= set(side["trial_type"]["Levels"])
    assert START in side["onset_datetime"]["Description"]


def test_mne_builds_annotations_from_events_tsv(edf_study):
    _, folder = edf_study
    tsv = _read_tsv(folder / "events.tsv")
    ann = mne.Annotations(tsv["onset"], tsv["duration"].fillna(0.0), tsv["trial_type"])
    assert len(ann) == len(tsv)
    assert (ann.description == "fasciculation").sum() == json.loads(
        (folder / "summary.json").read_text())["twitches"]


def test_without_a_start_time_there_is_no_absolute_column(tmp_path):
    path = write_csv(tmp_path / "calf.csv", seed=4, duration_s=10)
    out = tmp_path / "out"
    assert main(["analyse", str(path), "--out", str(out), "--no-journal"]) == 0
    tsv = _read_tsv(out / "calf" / "events.tsv")
    assert "onset_datetime" not in tsv.columns
    assert "onset_datetime" not in json.loads((out / "calf" / "events.json").read_text())


def test_mne_types_the_edf_copy_and_reads_its_annotations(edf_study):
    root, folder = edf_study
    raw = mne.io.read_raw_edf(folder / "night.edf", infer_types=True, preload=True, verbose="error")
    assert raw.get_channel_types() == ["emg", "misc", "misc", "misc"]
    assert raw.ch_names == ["EMG", "ACC X", "ACC Y", "ACC Z"]
    assert raw.info["meas_date"].replace(tzinfo=None) == datetime.fromisoformat(START)
    csv = pd.read_csv(folder / "events.csv")
    ann = raw.annotations
    np.testing.assert_allclose(ann.onset, csv["start_s"], atol=1e-4)  # EDF+ stores 100 µs
    np.testing.assert_allclose(ann.duration, csv["duration_ms"] / 1000, atol=1e-4)
    assert list(ann.description) == csv["type"].tolist()
    # MNE's own annotation reader agrees
    assert len(mne.read_annotations(folder / "night.edf")) == len(ann)
    # the EMG channel holds the recording's µV (MNE works in volts)
    src = read_recording(root / "night.edf")
    emg_v = raw.get_data(picks="EMG")[0][: len(src.emg_uv)]
    ok = np.isfinite(src.emg_uv)
    np.testing.assert_allclose(emg_v[ok] * 1e6, src.emg_uv[ok], atol=0.05)


def test_edf_copy_analyses_to_the_same_events(edf_study):
    root, folder = edf_study
    a = pd.read_csv(folder / "events.csv")
    b = analyse(read_recording(folder / "night.edf")).events
    assert b["type"].tolist() == a["type"].tolist()
    np.testing.assert_allclose(b["time_s"], a["time_s"])
    with pyedflib.EdfReader(str(folder / "night.edf")) as f:
        assert f.getSignalLabels() == ["EMG EMG", "MISC ACC X", "MISC ACC Y", "MISC ACC Z"]
        assert [f.getSampleFrequency(i) for i in range(4)] == [1000.0, 100.0, 100.0, 100.0]
        onsets, _, desc = f.readAnnotations()
        assert len(onsets) == len(a) and list(desc) == a["type"].tolist()


def test_write_edf_from_csv_marks_lost_samples_and_needs_out(tmp_path, capsys):
    path = write_csv(tmp_path / "calf.csv", seed=4, duration_s=10)
    table = pd.read_csv(path)
    gap = (table["time_s"] >= 4.0) & (table["time_s"] < 4.5)  # half a second lost
    table[~gap].to_csv(path, index=False)
    assert main(["analyse", str(path), "--write-edf", "--no-journal"]) == 2
    assert "--write-edf needs an output folder" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["analyse", str(path), "--out", str(out), "--write-edf", "--no-journal"]) == 0
    raw = mne.io.read_raw_edf(out / "calf" / "calf.edf", infer_types=True, verbose="error")
    assert raw.get_channel_types() == ["emg"]
    lost = raw.annotations[raw.annotations.description == "signal lost"]
    assert len(lost) == 1
    assert lost.onset[0] == pytest.approx(4.0, abs=2e-3)
    assert lost.duration[0] == pytest.approx(0.5, abs=2e-3)


def test_bundled_sample_edf_is_typed_for_mne():
    raw = mne.io.read_raw_edf(SAMPLE_EDF, infer_types=True, verbose="error")
    assert raw.get_channel_types() == ["emg", "misc", "misc", "misc"]
    rec = read_recording(SAMPLE_EDF)
    assert rec.meta["emg_label"] == "EMG EMG"
    assert rec.meta["acc_labels"] == ["MISC ACC X", "MISC ACC Y", "MISC ACC Z"]


def test_summary_tables_hold_one_value_per_cell(tmp_path):
    a = write_csv(tmp_path / "in" / "a.csv", seed=1, duration_s=8)
    write_csv(tmp_path / "in" / "b.csv", seed=2, duration_s=8)
    out = tmp_path / "out"
    assert main(["analyse", str(a.parent), "--out", str(out), "--workers", "1", "--no-journal",
                 "-q"]) == 0
    for table in (pd.read_csv(out / "summary.csv"), pd.read_parquet(out / "summary.parquet")):
        for c in table.columns:
            cells = table[c].dropna().astype(str)
            assert not cells.str.match(r"^\s*[\[{]").any(), c  # no list or dict stored as text
        summary = json.loads((out / "a" / "summary.json").read_text())
        lo, hi = summary["config"]["emg_band_hz"]
        assert table["config.emg_band_hz.0"].tolist() == [lo, lo]
        assert table["config.emg_band_hz.1"].tolist() == [hi, hi]
        assert "config.emg_band_hz" not in table.columns
        assert table["signal_quality.grade"].notna().all()
