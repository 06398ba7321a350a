"""Errors that end a command with a message, not a traceback."""

from __future__ import annotations

from toetwitch import ToetwitchError


class PipelineError(ToetwitchError):
    """The root of the pipeline layer's errors."""


class UserError(PipelineError):
    """Something the person asked for cannot be done; the message says what to change.

    ``exit_code`` follows contracts §2: 1 when work failed, 2 for a usage error.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
