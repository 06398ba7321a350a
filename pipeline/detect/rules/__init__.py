"""The detector's rules, as named steps applied in one visible order.

Every name below is a reason counted in the summary's ``rejected``. The order:

1. per potential (:mod:`.artifacts`): ``signal_loss``, ``saturation_or_flatline``,
   ``artifact_amplitude``, ``artifact_pop_or_motion``, ``noisy``, then ``noise_like``;
2. between neighbours (:mod:`.grouping`, :mod:`.isolation`, :mod:`.unit_trains`):
   after-waves and doublets, by shape (dropped or joined, not counted), ``train`` (two
   same-unit neighbours within ``isolation_ms`` in a burst of ``train_min_potentials`` or
   more), ``tonic_train`` (the candidate's own unit firing regularly in its chain);
3. per isolated discharge, ``DetectorConfig.candidate_rules`` in order (the first that holds
   names the rejection; :data:`RULES` holds them all): ``voluntary_activity``,
   ``after_activity``, ``before_activity``, ``fast_firing``, ``regular_firing``, ``faint_repeating_unit`` (or the older
   ``repeating_unit``), ``low_level_firing``, ``dense_firing``;
4. with the accelerometer (:mod:`.motion`): ``motion`` (and ``jerk`` for accelerometer-only
   transients).
"""

from __future__ import annotations

from typing import Any

from toetwitch.pipeline.detect.rules.activity import (
    AFTER_ACTIVITY,
    BEFORE_ACTIVITY,
    VOLUNTARY_ACTIVITY,
)
from toetwitch.pipeline.detect.rules.base import Rule
from toetwitch.pipeline.detect.rules.low_level import DENSE_FIRING, LOW_LEVEL_FIRING
from toetwitch.pipeline.detect.rules.unit_firing import (
    FAINT_REPEATING_UNIT,
    FAST_FIRING,
    REGULAR_FIRING,
    REPEATING_UNIT,
)

#: Every rule on an isolated discharge, by name.
RULES: dict[str, Rule] = {r.name: r for r in (
    VOLUNTARY_ACTIVITY, AFTER_ACTIVITY, BEFORE_ACTIVITY, FAST_FIRING, REGULAR_FIRING, FAINT_REPEATING_UNIT,
    REPEATING_UNIT,
    LOW_LEVEL_FIRING, DENSE_FIRING)}


def candidate_rules(names: tuple[str, ...]) -> tuple[Rule, ...]:
    """The rules named, in that order; an unknown name is a clear error."""
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise ValueError(f"unknown detector rule(s) {unknown}; known: {sorted(RULES)}")
    return tuple(RULES[n] for n in names)


def first_rejection(rules: tuple[Rule, ...], path: Any, f: Any, on_fraction: float) -> str | None:
    """The name of the first rule in ``rules`` that rejects ``f``, or None (a twitch)."""
    for rule in rules:
        if rule(path, f, on_fraction):
            return rule.name
    return None


__all__ = ["RULES", "Rule", "candidate_rules", "first_rejection"]
