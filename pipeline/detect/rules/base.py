"""What a detector rule is: a name (the reason counted in the summary's ``rejected``), a test
and whether it needs signal after the discharge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toetwitch.pipeline.detect.emg_path import EmgPath, Fasciculation


@dataclass(frozen=True)
class Rule:
    """One rejection rule on an isolated discharge.

    ``test(path, f, on_fraction)`` is True when the discharge ``f`` is *not* a twitch;
    ``on_fraction`` is the share of 'on' envelope around it. ``looks_ahead`` rules need signal
    after the discharge, so the live display shows a discharge before they have settled it.
    """

    name: str
    test: Callable[[EmgPath, Fasciculation, float], bool]
    why: str
    looks_ahead: bool

    def __call__(self, path: Any, f: Any, on_fraction: float) -> bool:
        return bool(self.test(path, f, on_fraction))
