"""The session decoder the accelerometer wearables share (:class:`AccSessionDecoder`)."""

from __future__ import annotations

import numpy as np

from toetwitch.drivers.ble.profiles import metawear as mw
from toetwitch.drivers.ble.profiles import polar_pmd as pmd
from toetwitch.drivers.ble.profiles.wearable import AccSessionDecoder, acc_device_info


def _polar_session(fs_hz: float = 52.0) -> AccSessionDecoder:
    dec = pmd.PolarAccDecoder(fs_hz)
    return AccSessionDecoder(lambda v: [dec.push(v)], acc_device_info(fs_hz, "Polar H10"))


def test_lost_polar_frames_become_nan_at_their_sample_indices():
    rng = np.random.default_rng(4)
    x = rng.integers(-2000, 2000, size=(600, 3))
    frames = pmd.encode_acc_frames(x, 52.0, 10**18, 232, compressed=True)
    drop = {3, 4, 9}
    s = _polar_session()
    blocks = [b for k, (_i, v) in enumerate(frames) if k not in drop
              for b in s.feed(v, host_time_s=k * 0.5)]
    got = np.concatenate([b.values for b in blocks])
    assert [b.start_index for b in blocks] == list(np.cumsum([0] + [len(b.values) for b in blocks])[:-1])
    missing = np.zeros(len(x), bool)
    for k in drop:
        first = frames[k][0]
        end = frames[k + 1][0] if k + 1 < len(frames) else len(x)
        missing[first:end] = True
    assert len(got) == len(x)
    np.testing.assert_array_equal(np.isnan(got[:, 0]), missing)
    np.testing.assert_allclose(got[~missing], x[~missing] / 1000.0)
    st = s.stats
    assert st.samples_lost == missing.sum() and st.loss_measurable
    assert st.received == len(frames) - len(drop) and st.lost >= len(drop) - 1


def test_a_damaged_notification_is_counted_and_skipped_not_raised():
    s = _polar_session()
    assert s.feed(b"\x02\x00") == []
    assert s.stats.malformed == 1 and s.stats.received == 0


def test_metawear_loss_is_unmeasurable_and_the_summary_says_so():
    dec = mw.MetaWearAccDecoder(mw.IMPL_BMI160, 8)
    s = AccSessionDecoder(lambda v: [dec.push(v)], acc_device_info(100.0, "MetaMotionRL"),
                          loss_measurable=False)
    raw = np.arange(30).reshape(10, 3) * 100
    for k, v in enumerate(mw.encode_acc_notifications(raw, mw.IMPL_BMI160)):
        s.feed(v, host_time_s=k / 100)
    summary = s.stats.as_summary()
    assert s.samples_seen("acc") == 10 and s.origin_device_s == 0.0
    assert summary["loss_measurable"] is False
    assert summary["lost"] is None and summary["loss_fraction"] is None
    assert s.stats.link_text() == "loss unmeasurable"
