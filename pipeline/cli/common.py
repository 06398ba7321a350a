"""Arguments every command shares, accepted before or after the command's name."""

from __future__ import annotations

import argparse


def add_common_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-v/--verbose`` (more log output; ``-vv`` debug) and ``-q/--quiet`` (only failures and
    the summary).

    The top-level parser holds the defaults; a sub-command's copy leaves an option it did not see
    unset (``SUPPRESS``), so that ``toetwitch -v analyse`` and ``toetwitch analyse -v`` agree.
    """
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                       help="more log output (-vv for debug)")
    group.add_argument("-q", "--quiet", action="store_true",
                       default=False if top else argparse.SUPPRESS,
                       help="print only failures and the summary; log only errors")
