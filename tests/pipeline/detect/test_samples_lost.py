"""``summary.json`` ``samples_lost_s``: the signal really lost, beside the blocks not analysed."""

from __future__ import annotations

import dataclasses

import numpy as np

from toetwitch.drivers.simulate import simulate_recording
from toetwitch.pipeline import StreamingAnalyser, analyse
from toetwitch.pipeline.present.text import render_summary


def _with_packet_loss(share: float, seed: int):
    rec, _ = simulate_recording(40.0, seed=seed)
    emg, acc = rec.emg_uv.copy(), rec.acc_g.copy()
    rng = np.random.default_rng(seed)
    for k in range(int(40 / 0.02)):  # 20-ms packets of both streams lost together
        if rng.random() < share:
            emg[int(k * 0.02 * rec.fs_emg_hz): int((k + 1) * 0.02 * rec.fs_emg_hz)] = np.nan
            acc[int(k * 0.02 * rec.fs_acc_hz): int((k + 1) * 0.02 * rec.fs_acc_hz)] = np.nan
    return dataclasses.replace(rec, emg_uv=emg, acc_g=acc)


def test_samples_lost_are_counted_exactly_and_said_beside_the_blocks_not_analysed():
    rec = _with_packet_loss(0.05, seed=11)
    result = analyse(rec)
    s = result.summary
    assert s["samples_lost_s"]["emg"] == round(np.isnan(rec.emg_uv).sum() / rec.fs_emg_hz, 3)
    assert s["samples_lost_s"]["acc"] == round(np.isnan(rec.acc_g[:, 0]).sum() / rec.fs_acc_hz, 3)
    # a gap costs its whole 0.1-s block: the artifact time is larger than the signal lost
    assert s["artifact_reasons"]["signal_loss"] > 2 * s["samples_lost_s"]["emg"] > 0
    assert "of samples lost; the 0.1-s blocks holding them are not analysed" in render_summary(result, "x")


def test_streaming_counts_the_same_samples_lost():
    rec = _with_packet_loss(0.1, seed=12)
    sa = StreamingAnalyser(fs_emg_hz=rec.fs_emg_hz, fs_acc_hz=rec.fs_acc_hz)
    ratio = int(rec.fs_emg_hz // rec.fs_acc_hz)
    for i in range(0, len(rec.acc_g), 37):
        sa.push(emg_uv=rec.emg_uv[i * ratio:(i + 37) * ratio], acc_g=rec.acc_g[i:i + 37])
    assert sa.finish().summary["samples_lost_s"] == analyse(rec).summary["samples_lost_s"]


def test_a_recording_without_loss_reports_none():
    rec, _ = simulate_recording(10.0, seed=13)
    assert analyse(rec).summary["samples_lost_s"] == {}
