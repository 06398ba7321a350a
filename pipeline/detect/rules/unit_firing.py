"""Rules on one motor unit's firing: does the unit of this discharge fire on around it?

One surface channel cannot sort units; "the same unit" is the same shape (waveform
correlation >= ``unit_correlation`` over ±8 ms at ±2 ms lag) and size (within
``unit_amplitude_ratio``), as template sorting does (Kleine 2012, Jahanmiri-Nezhad 2014).
"""

from __future__ import annotations

from pipeline.detect.rules.base import Rule

REPEATING_UNIT = Rule(
    "repeating_unit", lambda path, f, frac: path.unit_repeats(f) >= path.cfg.unit_min_repeats,
    "the same unit fires unit_min_repeats or more times within unit_window_s", looks_ahead=True)
