"""Errors that end a command with a message, not a traceback."""

from __future__ import annotations

from toetwitch import ToetwitchError


class PipelineError(ToetwitchError):
    """The root of the pipeline layer's errors."""


class UserError(PipelineError):
    """Something the person asked for cannot be done; the message says what to change.

    ``exit_code`` follows docs/contracts.md §2: 1 when work failed, 2 for a usage error.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


#: top-level module -> the extra of the toetwitch distribution that installs it
EXTRA_FOR = {
    "bumble": "emulator",
    "h5py": "opensignals",
    "matplotlib": "report",
    "sklearn": "assess",
    "skops": "assess",
    "threadpoolctl": "assess",
    "dask": "dask",
    "distributed": "dask",
    "pylsl": "lsl",
    "yaml": "yaml",
}


def missing_extra(exc: BaseException) -> str | None:
    """The one-line advice for an import of an optional dependency that failed, else None."""
    name = getattr(exc, "name", None) or ""
    extra = EXTRA_FOR.get(name.split(".")[0])
    if not isinstance(exc, ImportError) or extra is None:
        return None
    return f"this needs {name.split('.')[0]}, which is not installed: pip install 'toetwitch[{extra}]'"
