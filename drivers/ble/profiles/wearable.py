"""What the accelerometer-wearable codecs (Polar PMD, Movesense GSP, MetaWear) hand on.

Each codec turns its device's notifications into :class:`AccBlock` s: samples in g, their
times on the device clock where the protocol has one, and the loss the protocol lets us see.
Pure data, no radio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Standard gravity (m/s² per g), CGPM 1901 / ISO 80000-3.
STANDARD_GRAVITY_MS2 = 9.80665


@dataclass(frozen=True)
class AccBlock:
    """Samples of one notification (or one reassembled message).

    Attributes
    ----------
    acc_g : (n, 3) float64
        x, y, z acceleration in g.
    t_device_s : (n,) float64 or None
        Sample times on the device clock, in seconds since the device's epoch (Polar: since
        2000-01-01; Movesense: since the sensor's local clock started). None when the protocol
        carries no device time (MetaWear streaming).
    lost_samples : int or None
        Samples missing just before this block, estimated from the device timestamps; None when
        the protocol cannot show loss (MetaWear streaming): unknown, not zero.
    discontinuity : bool
        The device clock went backwards or jumped implausibly (reset, reboot, re-subscription):
        the gap before this block cannot be measured.
    """

    acc_g: NDArray[np.float64]
    t_device_s: NDArray[np.float64] | None
    lost_samples: int | None
    discontinuity: bool = False

    @property
    def n(self) -> int:
        return int(len(self.acc_g))


def samples_lost_from_gap(gap_samples: float, expected: int, jitter_samples: float = 0.0,
                          slack: float = 0.25) -> int:
    """Samples lost between two blocks from a timestamp step.

    ``gap_samples`` is the step between the reference points of consecutive blocks converted to
    samples at the nominal rate; ``expected`` is the sample count that step should span.
    Real sensors run a little off their nominal rate and stamps are rounded (``jitter_samples``:
    the stamp resolution in samples), so a step counts as loss only beyond
    ``expected·(1 + slack) + jitter_samples + 0.5``; the loss is then the rounded excess.
    """
    excess = gap_samples - expected
    if excess <= slack * expected + jitter_samples + 0.5:
        return 0
    return int(round(excess))
