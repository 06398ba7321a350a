"""``toetwitch report``: one self-contained HTML page (and PNG figures) from the journal and/or
one recording."""

from __future__ import annotations

import argparse

HELP = "write a self-contained HTML report (and PNG figures) from the journal and/or a recording"
DESCRIPTION = (
    "Write one self-contained HTML page (no network resources; share it as a single file): the "
    "signal with detected twitches marked (with --recording), twitches per day, a time-of-day "
    "heatmap, episodes, and the latest assessment with likely causes, when to see a doctor, "
    "advice and the disclaimer. --png DIR writes the same figures as PNG images. "
    "toetwitch informs; it does not diagnose."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pathlib import Path

    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser, writes=False)
    parser.add_argument("--recording", metavar="FILE", type=Path, default=None,
                        help="also show this recording's signal with its detected twitches marked")
    parser.add_argument("--html", metavar="OUT.html", type=Path, default=None, help="the HTML file to write")
    parser.add_argument("--png", metavar="DIR", type=Path, default=None,
                        help="also write each figure as DIR/NAME.png")
    parser.add_argument("--days", type=int, metavar="N", default=None,
                        help="only the last N days of the journal (default: all)")


def run(args: argparse.Namespace) -> int:
    from toetwitch.pipeline.errors import UserError
    from toetwitch.pipeline.log import logger
    from toetwitch.pipeline.present.report_html import build_report, write_report
    from toetwitch.pipeline.store.journal import Journal, journal_path_from_args

    if args.html is None and args.png is None:
        raise UserError("say where to write the report: --html OUT.html and/or --png DIR", 2)
    if args.days is not None and args.days < 1:
        raise UserError(f"--days must be at least 1, got {args.days}", 2)
    rec = result = None
    if args.recording is not None:
        from toetwitch.drivers import read_recording

        try:
            from toetwitch.pipeline import analyse
        except ImportError as exc:  # the detector is part of the core install; say so if broken
            raise UserError(f"cannot analyse --recording: the detector is unavailable ({exc})", 1) from exc
        rec = read_recording(args.recording)
        result = analyse(rec)
    path = journal_path_from_args(args)
    journal = None
    if path.exists():
        journal = Journal(path, create=False)
    elif rec is None:
        raise UserError(f"no journal at {path} yet and no --recording: analyse a recording first, "
                        "or pass --journal PATH or --recording FILE", 1)
    else:
        logger.info("no journal at %s: the report shows the recording only", path)
    try:
        content = build_report(journal, rec, result, days=args.days)
    finally:
        if journal is not None:
            journal.close()
    for p in write_report(content, args.html, args.png):
        print(p)
    return 0
