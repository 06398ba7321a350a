"""The detector's rules, as named steps applied in one visible order.

Every name below is a reason counted in the summary's ``rejected``. The order:

1. per potential (:mod:`.artifacts`): ``signal_loss``, ``saturation_or_flatline``,
   ``artifact_amplitude``, ``artifact_pop_or_motion``, ``noisy``, then ``noise_like``;
2. between neighbours (:mod:`.isolation`): after-waves (dropped, not counted), ``train``
   (a same-unit neighbour within ``isolation_ms``; doublets kept as one), ``tonic_train``;
3. per isolated discharge, :data:`CANDIDATE_RULES` in order (the first that holds names the
   rejection): ``voluntary_activity``, ``after_activity``, ``before_activity``,
   ``repeating_unit``, ``low_level_firing``;
4. with the accelerometer (:mod:`.motion`): ``motion`` (and ``jerk`` for accelerometer-only
   transients).
"""

from __future__ import annotations

from typing import Any

from pipeline.detect.rules.activity import AFTER_ACTIVITY, BEFORE_ACTIVITY, VOLUNTARY_ACTIVITY
from pipeline.detect.rules.base import Rule
from pipeline.detect.rules.low_level import LOW_LEVEL_FIRING
from pipeline.detect.rules.unit_firing import REPEATING_UNIT

#: Rules on an isolated discharge, in the order they are applied.
CANDIDATE_RULES: tuple[Rule, ...] = (
    VOLUNTARY_ACTIVITY, AFTER_ACTIVITY, BEFORE_ACTIVITY, REPEATING_UNIT, LOW_LEVEL_FIRING)


def first_rejection(rules: tuple[Rule, ...], path: Any, f: Any, on_fraction: float) -> str | None:
    """The name of the first rule in ``rules`` that rejects ``f``, or None (a twitch)."""
    for rule in rules:
        if rule(path, f, on_fraction):
            return rule.name
    return None


__all__ = ["CANDIDATE_RULES", "Rule", "first_rejection"]
