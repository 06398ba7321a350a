"""The online template bank (pipeline/detect/templates.py): units learnt from accepted
twitches find their later, fainter discharges; other shapes and the past are left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toetwitch.drivers import Recording
from toetwitch.pipeline import DetectorConfig, StreamingAnalyser, analyse
from toetwitch.pipeline.detect.potentials import lagged_copies
from toetwitch.pipeline.detect.templates import TemplateBank, roll_add

FS_HZ = 1000.0
HALF = 25
T_S = np.arange(-HALF, HALF + 1) / FS_HZ
#: a fast biphasic unit and a slower biphasic one (another unit: lagged correlation ~0.6)
UNIT = -T_S / 0.002 * np.exp(-((T_S / 0.002) ** 2) / 2)
OTHER = -T_S / 0.005 * np.exp(-((T_S / 0.005) ** 2) / 2)
CLEAR_S = [20.0, 32.0, 44.0]          # the unit over the threshold: learnt
FAINT_BEFORE_S = [8.0, 14.0]          # the unit under it, before it is known
FAINT_AFTER_S = [26.0, 38.0, 50.0, 56.0, 62.0, 68.0]
BLIPS_S = [29.0, 41.0, 53.0, 65.0, 74.0]  # as faint, another shape
#: a wide gap between the bank's level (4 σ) and the threshold (10 σ) so that faint
#: discharges sit clearly between them; sizes 24 vs 13 µV need a ratio of 2
CFG = DetectorConfig(threshold_k=10.0, bank_amplitude_ratio=2.0, template_bank=True)  # off by default


def _p2p1(w: np.ndarray) -> np.ndarray:
    return w / (w.max() - w.min())


@pytest.fixture(scope="module")
def recording() -> Recording:
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, int(90 * FS_HZ))

    def add(t_s: float, w: np.ndarray, p2p_uv: float) -> None:
        i = int(t_s * FS_HZ)
        x[i - HALF: i + HALF + 1] += _p2p1(w) * p2p_uv

    for t in CLEAR_S:
        add(t, UNIT, 24.0)
    for t in FAINT_BEFORE_S + FAINT_AFTER_S:
        add(t, UNIT, 13.0)
    for t in BLIPS_S:
        add(t, OTHER, 13.0)
    return Recording(emg_uv=x, fs_emg_hz=FS_HZ, name="bank")


def _twitches(events: pd.DataFrame) -> np.ndarray:
    return events.loc[events["type"] == "fasciculation", "time_s"].to_numpy(float)


def _near(times: np.ndarray, targets: list[float]) -> np.ndarray:
    return np.array([np.min(np.abs(np.asarray(targets) - t)) < 0.005 for t in times], dtype=bool)


def test_bank_finds_a_known_units_faint_discharges_not_other_shapes_nor_the_past(recording):
    off = _twitches(analyse(recording, config=CFG.with_(template_bank=False)).events)
    on = _twitches(analyse(recording, config=CFG).events)
    assert set(np.round(off, 3)) <= set(np.round(on, 3))  # the bank only adds
    added = np.array(sorted(set(np.round(on, 3)) - set(np.round(off, 3))))
    # it adds the unit's faint discharges after the unit was learnt (most of them) ...
    assert len(added) >= 4
    assert _near(added, FAINT_AFTER_S).all()
    # ... and neither the equally faint blips of another shape nor the unit's discharges
    # before it had been seen over the threshold
    assert not _near(on, BLIPS_S).any()
    assert _near(on, FAINT_BEFORE_S).sum() == _near(off, FAINT_BEFORE_S).sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_equals_batch_with_the_bank(recording, seed):
    whole = analyse(recording, config=CFG)
    rng = np.random.default_rng(seed)
    sa = StreamingAnalyser(FS_HZ, None, CFG, name=recording.name)
    x, i = recording.emg_uv, 0
    while i < len(x):
        n = int(rng.integers(1, 6000))  # random chunks, 1 sample to 6 s
        sa.push(emg_uv=x[i: i + n])
        i += n
    streamed = sa.finish()
    pd.testing.assert_frame_equal(streamed.events, whole.events)
    assert len(_twitches(whole.events)) > len(_twitches(analyse(recording, config=CFG.with_(
        template_bank=False)).events))  # the bank did find something here


def _shape(w: np.ndarray, p2p_uv: float, rng: np.random.Generator, noise_uv: float) -> np.ndarray:
    return _p2p1(w)[HALF - 16: HALF + 17] * p2p_uv + rng.normal(0.0, noise_uv, 33)


def test_bank_matches_shape_size_and_recency():
    rng = np.random.default_rng(0)
    bank = TemplateBank(33, 6, max_units=2, stale_n=10_000)
    assert not bank.match(np.array([5]), _shape(UNIT, 20, rng, 1.0)[None], np.array([20.0])).any()
    for k in range(5):
        bank.learn(1000 + k, _shape(UNIT, 30, rng, 1.0), 30.0)
    assert len(bank) == 1  # one unit, its discharges merged
    faint = np.array([_shape(UNIT, 22, rng, 1.5) for _ in range(4)])
    other = np.array([_shape(OTHER, 22, rng, 1.5) for _ in range(4)])
    at = np.full(4, 2000)
    assert bank.match(at, faint, np.full(4, 22.0)).all()
    assert not bank.match(at, other, np.full(4, 22.0)).any()
    assert not bank.match(at, faint, np.full(4, 8.0)).any()  # far smaller: another unit
    assert not bank.match(np.full(4, 20_000), faint, np.full(4, 22.0)).any()  # forgotten
    # full bank: a new shape takes the stalest unit's place
    bank.learn(3000, _shape(OTHER, 30, rng, 0.5), 30.0)
    bank.learn(4000, _shape(-UNIT, 30, rng, 0.5), 30.0)
    assert len(bank) == 2
    assert not bank.match(np.array([4100]), faint[:1], np.array([22.0])).any()


@pytest.mark.parametrize("shift", [-7, -1, 0, 1, 5, 13, 20])
def test_roll_add_is_adding_the_rolled_copy(shift):
    rng = np.random.default_rng(shift + 100)
    acc, a = rng.normal(size=13), rng.normal(size=13)
    want = acc + np.roll(a, shift)
    roll_add(acc, a, shift)
    assert np.array_equal(acc, want)


def test_bank_keeps_each_units_lagged_copies_and_mean_as_computed_afresh():
    """The bank's in-place bookkeeping equals the straightforward computation, bit for bit:
    each unit's lagged copies are lagged_copies of its template, and its template is its
    normalised sum of realigned discharges."""
    rng = np.random.default_rng(7)
    width, lag = 21, 4
    bank = TemplateBank(width, lag, max_units=4, merge_corr=0.7)
    base = [np.sin(np.linspace(0, k * np.pi, width)) for k in (1, 2, 3)]
    for i in range(200):
        w = np.roll(base[i % 3], int(rng.integers(-2, 3))) + 0.1 * rng.normal(size=width)
        bank.learn(i * 10, w * (50 + i % 7), float(50 + i % 7))
    assert len(bank) >= 3
    n = len(bank)
    assert np.array_equal(bank._lagged[:n], lagged_copies(bank.templates, lag))
    t = bank._sums[:n] - bank._sums[:n].mean(axis=1, keepdims=True)
    assert np.allclose(bank.templates, t / np.linalg.norm(t, axis=1, keepdims=True), atol=1e-12)


@pytest.mark.parametrize(("seed", "packet_ms"), [(0, (20, 400)), (1, (20, 400)), (2, (1000, 4000))])
def test_live_display_shows_the_banks_finds_before_they_are_counted(recording, seed, packet_ms):
    """Fed as live (provisional display on, random packets), every twitch counted, the bank's
    finds included, was offered for display first; and the counted ones are the batch ones."""
    whole = analyse(recording, config=CFG)
    added = set(np.round(_twitches(whole.events), 3)) - set(np.round(_twitches(analyse(
        recording, config=CFG.with_(template_bank=False)).events), 3))
    assert added  # the bank found something here
    rng = np.random.default_rng(seed)
    sa = StreamingAnalyser(FS_HZ, None, CFG, name=recording.name)
    sa.provisional = True
    x, i, shown, counted = recording.emg_uv, 0, [], []
    while i < len(x):
        n = int(rng.integers(*packet_ms))  # packets of these many ms (long ones: a find is
        # made and due within one push)
        counted.extend(_twitches(sa.push(emg_uv=x[i: i + n])).tolist())
        shown.extend(sa.take_provisional()["time_s"].tolist())
        i += n
    last = sa.finish()
    streamed_counted = set(np.round(counted, 3))
    assert added & streamed_counted  # bank finds settled while streaming ...
    assert streamed_counted <= set(np.round(shown, 3))  # ... each shown before
    pd.testing.assert_frame_equal(last.events, whole.events)
