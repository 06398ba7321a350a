"""What goes into the personal journal: only the person's own recordings.

Two deliberate rules (docs/journal.md, "What is recorded"):

* **Demonstration data never.** A recording inside a folder that holds a
  :data:`DEMO_MARKER` file (the bundled ``sample_data/`` has one), at any depth, is analysed and
  written as usual but never journaled: the samples are somebody else's signal with simulated
  twitches, and would otherwise become "your" history (first twitch 262 days ago, 100 % at night).
* **A study's batch only when asked.** ``analyse`` of several recordings records them only when
  ``--journal PATH`` names a journal explicitly (a study's own journal, or yours); a single
  recording goes to the default journal unless ``--no-journal``.
"""

from __future__ import annotations

from pathlib import Path

#: a file of this name marks its folder (and all below) as demonstration data
DEMO_MARKER = ".toetwitch-demo"


def is_demonstration(path: str | Path | None) -> bool:
    """Whether the recording at ``path`` lies in a folder marked with :data:`DEMO_MARKER`."""
    if path is None:
        return False
    try:
        p = Path(path).expanduser().resolve()
    except OSError:
        return False
    return any((d / DEMO_MARKER).is_file() for d in p.parents)


def batch_is_journaled(args, n_recordings: int) -> bool:
    """A single recording is journaled by default; several only with an explicit ``--journal``."""
    if getattr(args, "no_journal", False):
        return False
    return n_recordings <= 1 or getattr(args, "journal", None) is not None
