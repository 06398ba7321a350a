"""Rules using the accelerometer: motion under an EMG potential, jerks of the foot."""

from __future__ import annotations

from toetwitch.pipeline.detect.config import DetectorConfig


def is_motion(moving_fraction: float, cfg: DetectorConfig) -> bool:
    """``motion``: the foot moves (movement envelope over ``acc_move_mg``) in
    ``activity_fraction`` or more of the window around the discharge: a motion artifact."""
    return moving_fraction >= cfg.activity_fraction


def is_jerk(peak_mg: float, cfg: DetectorConfig) -> bool:
    """``jerk`` (accelerometer only): a brief transient larger than ``acc_twitch_max_mg`` is a
    jerk of the foot; a fasciculation moves a foot sensor by a few mg at most."""
    return peak_mg > cfg.acc_twitch_max_mg
