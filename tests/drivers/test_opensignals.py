"""OpenSignals recordings (.txt, .h5) from real PLUX devices (biosignalsnotebooks pieces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toetwitch.drivers import read_recording
from toetwitch.drivers.errors import RecordingError
from toetwitch.drivers.readers import is_recording_file
from toetwitch.drivers.readers import opensignals as osg
from toetwitch.pipeline.cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data" / "opensignals"
ACC_TXT = DATA / "sync_acc_1_2s.txt"
RAW_TXT = DATA / "single_hub_RAW_3s.txt"
EMG_H5 = DATA / "emg_1000_hz_8_16_bits_5s.h5"


def raw_columns(path: Path) -> np.ndarray:
    return np.loadtxt(path, comments="#", ndmin=2)


def test_text_accelerometer_is_mapped_from_its_sensor_labels_and_converted():
    rec = read_recording(ACC_TXT)
    assert rec.emg_uv is None and rec.fs_acc_hz == 1000.0 and rec.acc_g.shape == (2000, 3)
    assert rec.start_time == "2019-03-29T13:55:04.491"
    raw = raw_columns(ACC_TXT)[:, 2:5]
    # biosignalsplux ACC: 2 (ADC - 28000) / (38000 - 28000) - 1 at 16 bit
    np.testing.assert_allclose(rec.acc_g, 2 * (raw - 28000) / 10000 - 1)
    assert np.linalg.norm(np.median(rec.acc_g, axis=0)) == pytest.approx(1.0, abs=0.05)  # gravity
    assert rec.meta["channels"] == {"acc_x": "00:07:80:4D:2E:AD/CH1",
                                    "acc_y": "00:07:80:4D:2E:AD/CH2",
                                    "acc_z": "00:07:80:4D:2E:AD/CH3"}


def test_raw_labels_need_a_channel_map_and_say_so():
    with pytest.raises(RecordingError, match=r"--channels .*CH1 \(RAW, 16 bit\)"):
        read_recording(RAW_TXT)
    rec = osg.read_opensignals(RAW_TXT, {"CH1": "emg", "A3": "acc_z"})
    raw = raw_columns(RAW_TXT)
    np.testing.assert_allclose(rec.emg_uv, (raw[:, 2] / 2**16 - 0.5) * 3.0 / 1000 * 1e6)
    np.testing.assert_allclose(rec.acc_g[:, 2], 2 * (raw[:, 4] - 28000) / 10000 - 1)
    assert not rec.acc_g[:, :2].any() and rec.meta["acc_axes"] == 1
    with pytest.raises(RecordingError, match="no channel called 'CH9'"):
        osg.read_opensignals(RAW_TXT, {"CH9": "emg"})


def test_h5_with_two_devices_is_refused_until_one_is_picked():
    with pytest.raises(RecordingError, match="2 devices.*00:07:80:D8:A7:F9/PORT6_CHN1 "
                                             r"\(EMG, 16 bit\).*PORT5_CHN1 \(EMG, 8 bit\)"):
        read_recording(EMG_H5)
    import h5py

    for mac, label, port, bits in [("00:07:80:D8:A7:F9", "PORT6_CHN1", 6, 16),
                                   ("00:07:80:D8:A8:82", "PORT5_CHN1", 5, 8)]:
        rec = osg.read_opensignals(EMG_H5, {f"{mac}/{label}": "emg"})
        with h5py.File(EMG_H5) as f:
            raw = f[mac]["raw"][f"channel_{port}"][:, 0].astype(float)
        assert rec.meta["resolution_bits"] == {"emg": bits}
        np.testing.assert_allclose(rec.emg_uv, (raw / 2**bits - 0.5) * 3.0 / 1000 * 1e6)
        assert rec.fs_emg_hz == 1000.0 and len(rec.emg_uv) == 5000
    with pytest.raises(RecordingError, match="belong to 2 of them"):
        osg.read_opensignals(EMG_H5, {"00:07:80:D8:A7:F9/PORT6_CHN1": "emg",
                                      "00:07:80:D8:A8:82/PORT5_CHN1": "acc_x"})


def test_bitalino_transfer_functions_match_the_profile():
    from toetwitch.drivers.ble.profiles import bitalino as bit

    adc = np.arange(0, 1024, 37)
    np.testing.assert_allclose(osg.emg_uv(adc, 10, "bitalino_rev"), bit.emg_uv(adc, 10))
    np.testing.assert_allclose(osg.acc_g(adc, 10, "bitalino_rev"), bit.acc_g(adc, 10))
    np.testing.assert_allclose(osg.acc_g(adc >> 4, 6, "bitalino_rev"), bit.acc_g(adc >> 4, 6))
    assert osg.emg_uv(np.array([513]), 10, "bitalino")[0] == pytest.approx(3.3 / 1024 / 1008 * 1e6)


def test_analyse_reads_opensignals_files_and_folder_searches_skip_other_text(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyse", str(RAW_TXT), "--channels", "CH1=emg", "--out", str(out),
                 "--no-journal", "-q", "-j", "1"]) == 0
    summary = json.loads((out / RAW_TXT.stem / "summary.json").read_text())
    assert summary["duration_s"] == pytest.approx(3.0)
    assert is_recording_file(ACC_TXT) and not is_recording_file(DATA / "LICENSE_biosignalsnotebooks_MIT.txt")
    assert main(["analyse", str(RAW_TXT), "--channels", "CH1", "--no-journal", "-q"]) == 2
    assert "NAME=STREAM" in capsys.readouterr().err


def test_damaged_files_get_clear_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    lines = ACC_TXT.read_text().splitlines()
    bad.write_text("\n".join(lines[:3] + ["1\t0\tnot-a-number\t2\t3"] + lines[4:10]) + "\n")
    with pytest.raises(RecordingError, match="not tab-separated numbers"):
        read_recording(bad)
    bad.write_text("\n".join([lines[0], "# {broken"] + lines[2:10]) + "\n")
    with pytest.raises(RecordingError, match="line 2.*JSON header"):
        read_recording(bad)
    notes = tmp_path / "h.h5"
    notes.write_bytes(b"not hdf5")
    with pytest.raises(RecordingError, match="not a readable HDF5 file"):
        read_recording(notes)


def test_h5_without_h5py_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(RecordingError, match=r"toetwitch\[opensignals\]"):
        read_recording(EMG_H5)
