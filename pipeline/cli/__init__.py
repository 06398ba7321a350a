"""The command line: ``main`` parses and dispatches to one module per command (``<name>.py``)."""

from toetwitch.pipeline.cli.main import main

__all__ = ["main"]
