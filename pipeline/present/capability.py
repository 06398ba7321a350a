"""What a session's streams can and cannot show, in the words every command uses.

One place for the wording, so ``toetwitch devices``, ``monitor`` (start-up line and status
line) and the text and HTML reports say the same thing. The wording informs, never
diagnoses: the AASM practice guideline on actigraphy (Smith et al. 2018) advises against
actigraphy in place of polysomnography to diagnose periodic limb movement disorder, so
accelerometer limb-movement and PLM counts are screening and trend figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: What an accelerometer without EMG can count (docs/contracts.md §9).
ACC_ONLY_CAPABILITY = ("accelerometer alone: limb movements and visible twitches; "
                       "fasciculations need EMG")
#: Why accelerometer PLM figures are not a diagnosis.
ACTIGRAPHY_CAVEAT = ("limb-movement and PLM counts from an accelerometer are screening and trend "
                     "figures, not a diagnosis (the AASM advises against actigraphy in place of "
                     "polysomnography for PLMD)")


def is_acc_only(streams: str | None) -> bool:
    """Whether a summary's ``streams`` (``emg``, ``acc``, ``emg+acc``) has no EMG but an
    accelerometer."""
    parts = set((streams or "").split("+"))
    return "acc" in parts and "emg" not in parts


def capability_lines(streams: str | None) -> list[str]:
    """The sentences to show for a session with these streams: the accelerometer-alone
    capability and the actigraphy caveat when there is no EMG, else none."""
    return [ACC_ONLY_CAPABILITY, ACTIGRAPHY_CAVEAT] if is_acc_only(streams) else []


def summary_capability_lines(summary: Mapping[str, Any]) -> list[str]:
    """:func:`capability_lines` of an analysis summary (``summary["streams"]``)."""
    return capability_lines(summary.get("streams"))
