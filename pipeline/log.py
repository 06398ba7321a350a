"""The package logger and warning class. One logger, ``toetwitch``; never ``print`` from library code."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("toetwitch")


class TwitchWarning(RuntimeWarning):
    """A problem with the data that does not stop the analysis (a dropped truncated line, a gap)."""


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now* (not the one at set-up), so a redirected or
    replaced stderr (a test, an embedding program) gets the log lines too."""

    @property
    def stream(self):  # noqa: ANN201 - a text stream
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001 - StreamHandler.__init__ sets it
        pass


def configure(verbosity: int = 0) -> None:
    """Send the package log to stderr: 0 = warnings, 1 = info, 2 = debug."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("toetwitch: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
