"""Rules tying an isolated discharge to muscle activity around it (AASM/WASM onset and offset
rules on the 50 ms RMS envelope; AVID's lesson that voluntary activity is excluded first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toetwitch.pipeline.detect.config import DetectorConfig
from toetwitch.pipeline.detect.rules.base import Rule

if TYPE_CHECKING:
    pass


def in_voluntary_activity(on_fraction: float, cfg: DetectorConfig) -> bool:
    """``voluntary_activity``: the envelope is 'on' for ``activity_fraction`` or more of the
    ``activity_window_ms`` around the discharge."""
    return on_fraction >= cfg.activity_fraction


VOLUNTARY_ACTIVITY = Rule(
    "voluntary_activity", lambda path, f, frac: in_voluntary_activity(frac, path.cfg),
    "inside sustained envelope activity", looks_ahead=False)
AFTER_ACTIVITY = Rule(
    "after_activity", lambda path, f, frac: path.after_activity(f.peak),
    "within post_activity_s after >= post_activity_min_s of activity (units firing as a "
    "muscle relaxes)", looks_ahead=False)
BEFORE_ACTIVITY = Rule(
    "before_activity", lambda path, f, frac: path.before_activity(f.peak),
    "within pre_activity_s before sustained activity starts (units recruited before the "
    "envelope rises)", looks_ahead=True)
