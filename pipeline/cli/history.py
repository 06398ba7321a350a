"""``toetwitch history``: day-by-day twitches, rate at rest, episodes, assessments and trend."""

from __future__ import annotations

import argparse

HELP = "show the journal day by day: twitches, rate at rest, episodes, assessments, trend"
DESCRIPTION = (
    "Show the journal day by day: twitches (fasciculations), twitches per minute at rest, "
    "episodes and assessments, with the trend (rising, steady or falling), days since twitching "
    "was first recorded and days with twitching in the last 14. Sessions count on the day they "
    "started. toetwitch informs; it does not diagnose."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser, writes=False)
    parser.add_argument("--days", type=int, metavar="N", default=None,
                        help="only the last N days (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import json

    from toetwitch.pipeline.errors import UserError
    from toetwitch.pipeline.store.history import format_history, history
    from toetwitch.pipeline.store.journal import Journal, journal_path_from_args

    if args.days is not None and args.days < 1:
        raise UserError(f"--days must be at least 1, got {args.days}", 2)
    path = journal_path_from_args(args)
    if args.journal is None and not path.exists():
        # nothing recorded yet is no error (a named journal that is missing is: a typo)
        print(json.dumps({"journal": str(path), "days": []}) if args.json else
              f"No twitching history yet: nothing has been recorded in your journal ({path}).\n"
              "Analyse or monitor one of your own recordings to start it (bundled sample data "
              "is never recorded).")
        return 0
    with Journal(path, create=False) as j:
        h = history(j, days=args.days)
    if args.json:
        print(json.dumps(h, indent=2))
    else:
        print(format_history(h))
    return 0
