"""The ``toetwitch`` command line: a thin layer over the library.

Each sub-command lives in ``pipeline/cli/<name>.py`` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports happen inside ``run`` so
that ``toetwitch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from toetwitch.drivers.errors import RecordingError
from toetwitch.pipeline.cli.common import add_common_arguments
from toetwitch.pipeline.errors import UserError, missing_extra
from toetwitch.pipeline.log import configure, logger

#: Sub-commands in the order ``--help`` lists them.
COMMANDS = [
    "analyse",
    "replay",
    "monitor",
    "scan",
    "devices",
    "assess",
    "train",
    "history",
    "report",
    "export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toetwitch",
        description=(
            "Count muscle twitches (fasciculations) from a foot-worn EMG + accelerometer "
            "sensor, and suggest likely causes and when to see a doctor. "
            "toetwitch informs; it does not diagnose."
        ),
        epilog="Run 'toetwitch COMMAND --help' for the options of one command.",
    )
    add_common_arguments(parser, top=True)
    parser.add_argument("--version", action="version", version=f"toetwitch {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"toetwitch.pipeline.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"toetwitch.pipeline.cli.{name}":
                continue  # command not built yet
            raise
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        add_common_arguments(p, top=False)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    configure(args.verbose)  # -q prints less; warnings about the data are still shown
    _SHOWN.clear()  # once per command run
    with warnings.catch_warnings():
        # Every command prints a warning as one clean line (never Python's file:line form),
        # each distinct message once.
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        return _run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for the command line: one line through the package logger."""
    text = " ".join(str(message).split())
    if text not in _SHOWN:
        _SHOWN.add(text)
        logger.warning("%s", text)


#: Warning texts already printed in this process.
_SHOWN: set[str] = set()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args._run(args) or 0)
    except (UserError, RecordingError) as exc:
        print(f"toetwitch: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except ImportError as exc:  # an optional dependency: say which extra brings it
        advice = missing_extra(exc)
        if advice is None:
            raise
        print(f"toetwitch {args.command}: error: {advice}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("toetwitch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        logger.debug("command %s finished", args.command)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toetwitch")
    except PackageNotFoundError:
        return "0+unknown"


if __name__ == "__main__":
    sys.exit(main())
