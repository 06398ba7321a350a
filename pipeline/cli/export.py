"""``toetwitch export``: the journal's tables as CSV or Parquet files, for a clinician."""

from __future__ import annotations

import argparse

HELP = "export the journal's tables as CSV or Parquet files"
DESCRIPTION = (
    "Write each journal table (recordings, sessions, twitches, episodes, answers, assessments) "
    "to DIR as TABLE.csv or TABLE.parquet, to share with a clinician or analyse elsewhere."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser, writes=False)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv",
                        help="file format (default: csv)")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder to write the files to")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toetwitch.pipeline.store.export import export_tables
    from toetwitch.pipeline.store.journal import Journal, journal_path_from_args

    with Journal(journal_path_from_args(args), create=False) as j:
        written = export_tables(j, Path(args.out), args.format)
    for path, n in written:
        print(f"{path}  ({n} rows)")
    return 0
