"""``toetwitch replay FILE``: stream a recording through the live path (docs/contracts.md §6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "replay a recording through the live path, printing twitches as they happen"
DESCRIPTION = """\
Stream a recording (CSV, Parquet, EDF/BDF or a monitor's packet log) through exactly the
detector that the live monitor runs, in packet-sized chunks, printing each twitch as it is
reported and the session summary at the end. With --out, writes the same files as
'toetwitch analyse'. toetwitch informs; it does not diagnose."""


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible), else a positive multiple of real time."""
    if text.lower() == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes a number or 'max', not {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError("--speed must be greater than 0")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="recording or packet log (.ttlog)")
    parser.add_argument("--speed", type=parse_speed, default=1.0, metavar="X|max",
                        help="multiple of real time (default 1: as recorded), or 'max'")
    parser.add_argument("--out", "-o", type=Path, metavar="DIR", default=None,
                        help="write events.csv, episodes.csv, summary.json into DIR/<name>/")
    parser.add_argument("--provisional", choices=("auto", "on", "off"), default="auto",
                        help="show each twitch as soon as it is seen, marked 'checking', as the "
                             "live monitor does (auto: on when output is a terminal)")
    parser.add_argument("--channels", default=None, metavar="MAP",
                        help="OpenSignals files: which channel is which stream where the "
                             "sensor label does not say (e.g. CH1=emg,CH2=acc_x or "
                             "DEVICE/LABEL=emg to pick one of several devices)")
    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from toetwitch.pipeline.cli.common import with_channel_map

    return with_channel_map(args, _run)


def _run(args: argparse.Namespace) -> int:
    from toetwitch.drivers import read_recording
    from toetwitch.pipeline.present.text import LiveDisplay, provisional_wanted, render_summary
    from toetwitch.pipeline.run.outputs import write_outputs
    from toetwitch.pipeline.run.replay import replay

    if not args.file.exists():
        from toetwitch.pipeline.errors import UserError

        raise UserError(f"{args.file}: no such file", exit_code=2)
    rec = read_recording(args.file)

    display = LiveDisplay(provisional_wanted(args.provisional, args.quiet), args.quiet)
    if not args.quiet:
        print(f"replaying {args.file.name} ({rec.streams}, {rec.duration_s:.0f} s) "
              f"at {'max speed' if args.speed is None else f'{args.speed:g}x'}; Ctrl-C stops", flush=True)
    result = replay(rec, speed=args.speed, **display.callbacks())
    print(render_summary(result))
    if args.out is not None:
        out = write_outputs(result, args.out / rec.name)
        print(f"wrote {out}", file=sys.stderr)
    from toetwitch.pipeline.store.journal import (
        journal_analysis,
        journal_problem,
        report_journal_problem,
    )

    problem = journal_problem(lambda: journal_analysis(args, result, args.file))
    return 0 if problem is None else report_journal_problem(problem, "the replay")
