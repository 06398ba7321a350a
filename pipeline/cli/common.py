"""Arguments every command shares, accepted before or after the command's name."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_common_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v/--verbose`` (more log output; ``-vv`` debug) and ``-q/--quiet`` (only failures and
    the summary; warnings about the data are still shown).

    The top-level parser holds the defaults; a sub-command's copy leaves an option it did not see
    unset (``SUPPRESS``), so that ``toetwitch -v analyse`` and ``toetwitch analyse -v`` agree.
    """
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                       help="more log output (-vv for debug)")
    group.add_argument("-q", "--quiet", action="store_true",
                       default=False if top else argparse.SUPPRESS,
                       help="print only failures and the summary (warnings about the data are still shown)")


def add_journal_arguments(parser: argparse.ArgumentParser, *, writes: bool = True) -> None:
    """Add ``--journal PATH`` (and ``--no-journal`` when the command ``writes``) to a parser.

    The default is resolved when used (``toetwitch.pipeline.store.journal.journal_path_from_args``), so
    ``TOETWITCH_JOURNAL`` set after parsing still counts.
    """
    parser.add_argument(
        "--journal", metavar="PATH", type=Path, default=None,
        help="the journal file (default: $TOETWITCH_JOURNAL, else "
             "$XDG_DATA_HOME/toetwitch/journal.sqlite or ~/.local/share/toetwitch/journal.sqlite)",
    )
    if writes:
        parser.add_argument("--no-journal", action="store_true",
                            help="do not record this run in the journal")


def with_channel_map(args: argparse.Namespace,
                     run: Callable[[argparse.Namespace], int]) -> int:
    """``run(args)`` with the ``--channels`` map of OpenSignals files in force; a map that
    does not fit the file is a usage error (exit 2), said in one line."""
    from toetwitch.drivers.readers.opensignals import channel_map
    from toetwitch.pipeline.errors import UserError

    try:
        with channel_map(args.channels):
            return run(args)
    except ValueError as exc:
        if args.channels and "--channels" in str(exc):
            raise UserError(str(exc), 2) from None
        raise
