"""``toetwitch analyse PATH... --out DIR``: count twitches in recordings (docs/contracts.md §2).

One recording prints its full report; many print one line each as they finish and a combined
table at the end. The work itself is :mod:`toetwitch.pipeline.run.batch`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "analyse recording files or folders: twitches, episodes and a summary per recording"
DESCRIPTION = """\
Analyse recordings (CSV, Parquet, EDF/BDF, packet logs) and write, for each recording X,
DIR/X/events.csv, DIR/X/episodes.csv, DIR/X/summary.json and DIR/X/events.tsv + events.json
(BIDS-style events; with --write-edf also DIR/X/X.edf), plus DIR/summary.csv,
DIR/summary.parquet (one row per recording) and DIR/failures.csv. Folders are searched
recursively. Recordings are analysed in parallel on every core (--workers) or on a Dask
cluster (--dask), in chunks so that recordings larger than memory work.
Exit status: 0 all analysed, 1 some failed (the rest are written), 2 usage error.
toetwitch informs; it does not diagnose."""

#: Above this many recordings the final table is left to summary.csv.
MAX_TABLE_ROWS = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="recording files and/or folders (searched recursively)")
    parser.add_argument(
        "--out", "-o", type=Path, metavar="DIR", default=None,
        help="output folder (without it, recordings are analysed and reported but nothing is written)",
    )
    parser.add_argument(
        "--workers", "-j", type=int, metavar="N", default=None,
        help="worker processes (default: every core; 1 = in this process); with --dask local, "
             "the number of Dask workers",
    )
    parser.add_argument(
        "--dask", metavar="ADDRESS|local", default=None,
        help="run on a dask.distributed scheduler (tcp://host:8786), or 'local' for a local "
             "cluster; workers must see the files at the same paths",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="skip recordings whose outputs in DIR are up to date (same file content, "
             "configuration and toetwitch version)",
    )
    parser.add_argument(
        "--chunk-s", type=float, metavar="S", default=60.0,
        help="seconds of signal read and analysed at a time (default 60; bounds memory, not results)",
    )
    parser.add_argument("--channels", default=None, metavar="MAP",
                        help="OpenSignals files: which channel is which stream where the "
                             "sensor label does not say (e.g. CH1=emg,CH2=acc_x or "
                             "DEVICE/LABEL=emg to pick one of several devices)")
    parser.add_argument(
        "--write-edf", action="store_true",
        help="also write DIR/X/X.edf: an EDF+ copy of the recording with the events as EDF+ "
             "annotations and typed channel labels (EMG EMG, MISC ACC X/Y/Z)",
    )
    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from toetwitch.pipeline.cli.common import with_channel_map

    return with_channel_map(args, _run)


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from toetwitch.pipeline.errors import UserError
    from toetwitch.pipeline.run import batch

    out_dir: Path | None = args.out
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a folder", 2)
    if args.write_edf and out_dir is None:
        raise UserError("--write-edf needs an output folder (--out DIR)", 2)
    jobs = batch.plan_jobs(args.paths, out_dir)
    single = len(jobs) == 1
    journal = _Journal(args, len(jobs))

    def say(line: str, err: bool = False) -> None:
        tqdm.write(line, file=sys.stderr if err else sys.stdout)

    def on_outcome(o: batch.JobOutcome) -> None:
        if o.status == batch.STATUS_OK and o.result is not None:
            journal.record(o.result, o.job.path)
        if args.quiet or single:
            return
        if o.status == batch.STATUS_FAILED:
            say(f"  FAILED   {o.job.name}  ({o.job.path}: {o.error})")
        else:
            word = "ok" if o.status == batch.STATUS_OK else "current"
            say(f"  {word:<8} {one_line(o.job.name, o.summary or {})}")

    if not single and not args.quiet:
        where = f"Dask ({args.dask})" if args.dask else None
        say(f"Analysing {len(jobs)} recordings" + (f" on {where}" if where else "") + " ...")
    report = batch.run_batch(
        jobs, out_dir, workers=args.workers, dask=args.dask, resume=args.resume,
        chunk_s=args.chunk_s, progress=not args.quiet and sys.stderr.isatty(),
        on_outcome=on_outcome, keep_results=single, write_edf=args.write_edf,
    )

    if single:
        _report_single(report.outcomes[0], out_dir, args.quiet)
    elif not args.quiet:
        _report_many(report, out_dir)
    _report_failures(report, single)
    journal.say_skipped()
    if journal.problem is not None:
        from toetwitch.pipeline.store.journal import report_journal_problem

        return max(report.exit_code, report_journal_problem(journal.problem, "the analysis"))
    return report.exit_code


def _report_single(o: Any, out_dir: Path | None, quiet: bool) -> None:
    from toetwitch.pipeline.run import batch

    if o.status == batch.STATUS_FAILED or quiet:
        return
    if o.result is not None:
        from toetwitch.pipeline.present.text import render_summary

        print(render_summary(o.result, o.job.name))
    else:
        print(f"{one_line(o.job.name, o.summary or {})}\n(outputs already up to date; not re-analysed)")
    if out_dir is not None:
        print(f"\nOutputs: {out_dir / o.job.name}/ (events.csv, episodes.csv, summary.json, "
              "events.tsv, events.json)")


def _report_many(report: Any, out_dir: Path | None) -> None:
    from toetwitch.pipeline.run import batch

    rows = report.outcomes
    print()
    if len(rows) <= MAX_TABLE_ROWS:
        print(combined_table(rows))
        print()
    n_ok, n_skip, n_fail = (report.count(s) for s in (batch.STATUS_OK, batch.STATUS_SKIPPED, batch.STATUS_FAILED))
    parts = [f"{n_ok} analysed"]
    if n_skip:
        parts.append(f"{n_skip} already up to date")
    if n_fail:
        parts.append(f"{n_fail} failed")
    how = "Dask" if report.backend == "dask" else (
        "1 process" if report.workers == 1 else f"{report.workers} processes"
    )
    print(
        f"{len(rows)} recordings: {', '.join(parts)}; {_fmt_duration(report.signal_hours * 3600)} of signal "
        f"in {_fmt_elapsed(report.elapsed_s)} ({how})."
    )
    if out_dir is not None:
        print(f"Outputs in {out_dir}/ - one folder per recording, all summaries in {out_dir / batch.SUMMARY_CSV}.")


def _report_failures(report: Any, single: bool) -> None:
    fails = report.failures
    if not fails:
        return
    if single:
        o = fails[0]
        print(f"toetwitch: error: {o.job.path}: {o.error}", file=sys.stderr)
        return
    print(f"toetwitch: {len(fails)} of {len(report.outcomes)} recordings failed:", file=sys.stderr)
    for o in fails:
        print(f"  {o.job.path}: {o.error}", file=sys.stderr)
    if report.out_dir is not None:
        print(f"  (also listed in {report.out_dir / 'failures.csv'})", file=sys.stderr)


# --------------------------------------------------------------------------- formatting


def _num(summary: dict, key: str) -> float | None:
    v = summary.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v == v else None


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _fmt_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m < 60 else f"{m // 60} h {m % 60} min"


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def one_line(name: str, summary: dict) -> str:
    """``night1  8.0 h  412 twitches (2.3/min at rest)  5 episodes  signal good``."""
    twitches = _num(summary, "twitches")
    rate = _num(summary, "twitches_per_min_rest")
    episodes = _num(summary, "episodes")
    quality = (summary.get("signal_quality") or {}).get("grade", "?") if isinstance(summary.get("signal_quality"), dict) else "?"
    parts = [f"{name:<20}", f"{_fmt_duration(_num(summary, 'duration_s')):>8}"]
    parts.append("? twitches" if twitches is None else _plural(int(twitches), "twitch", "twitches"))
    parts.append(f"({'-' if rate is None else f'{rate:.1f}'}/min at rest)")
    parts.append("? episodes" if episodes is None else _plural(int(episodes), "episode"))
    parts.append(f"signal {quality}")
    return "  ".join(parts)


def combined_table(outcomes: Any) -> str:
    """A text table of every recording, in path order, for the end of a batch."""
    header = ("recording", "length", "twitches", "/min rest", "episodes", "signal", "status")
    rows = []
    for o in outcomes:
        s = o.summary or {}
        rate = _num(s, "twitches_per_min_rest")
        tw, ep = _num(s, "twitches"), _num(s, "episodes")
        grade = s.get("signal_quality", {}).get("grade", "") if isinstance(s.get("signal_quality"), dict) else ""
        status = {"ok": "ok", "skipped": "up to date", "failed": "FAILED"}.get(o.status, o.status)
        rows.append((
            o.job.name,
            "" if not s else _fmt_duration(_num(s, "duration_s")),
            "" if tw is None else str(int(tw)),
            "" if rate is None else f"{rate:.1f}",
            "" if ep is None else str(int(ep)),
            grade,
            status,
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    left = {0, 5, 6}

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)])


class _Journal:
    """Records each analysed recording in the journal; after a journal problem it stops
    (the problem is reported once, at the end, with exit status 1).

    What is recorded is :mod:`toetwitch.pipeline.store.policy`'s choice: never demonstration
    data, a batch of several recordings only with an explicit ``--journal``.
    """

    def __init__(self, args: argparse.Namespace, n_recordings: int):
        from toetwitch.pipeline.store.policy import batch_is_journaled

        self.args = args
        self.enabled = batch_is_journaled(args, n_recordings)
        self.skipped = None if self.enabled or getattr(args, "no_journal", False) else 0
        self.problem: str | None = None

    def record(self, result: Any, source_path: str) -> None:
        from toetwitch.pipeline.store.policy import is_demonstration

        if is_demonstration(source_path):
            return
        if not self.enabled:
            if self.skipped is not None:
                self.skipped += 1
            return
        from toetwitch.pipeline.store.journal import journal_analysis, journal_problem

        self.problem = journal_problem(lambda: journal_analysis(self.args, result, source_path))
        if self.problem is not None:
            self.enabled = False

    def say_skipped(self) -> None:
        """One line when a batch of the person's recordings was left out of the journal."""
        if self.skipped:
            from toetwitch.pipeline.store.journal import journal_path_from_args

            print(f"not recorded in the journal: {self.skipped} recordings of a batch "
                  f"(record a batch with --journal PATH; yours is {journal_path_from_args(None)})",
                  file=sys.stderr)
