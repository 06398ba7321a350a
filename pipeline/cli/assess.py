"""``toetwitch assess``: likely causes and when to see a doctor (docs/contracts.md §4)."""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
from pathlib import Path
from typing import Any, TextIO

from toetwitch.pipeline.errors import UserError

HELP = "likely causes of the twitching and when to see a doctor (informs, does not diagnose)"
DESCRIPTION = (
    "Weigh your answers (docs/contracts.md §3 answers file, or an interactive questionnaire when no "
    "--answers is given) and optional sensor features against published red-flag rules and a "
    "cause model. Prints the level (self_care, routine, soon, urgent) with its reasons and "
    "sources, the likely causes with the inputs that drove them, advice, and a safety net. "
    "toetwitch informs; it does not diagnose."
)

#: Seconds to wait for a line on a non-terminal standard input before giving up.
STDIN_TIMEOUT_S = 10.0
#: Unreadable replies to one question before the questionnaire gives up.
MAX_TRIES = 3

_LEVEL_TITLES = {
    "urgent": "URGENT - get emergency help now",
    "soon": "SOON - see a doctor within a day or two",
    "routine": "ROUTINE - book a GP appointment",
    "self_care": "SELF-CARE - you can look after this yourself for now",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answers", metavar="FILE", type=Path,
                        help="answers file (JSON, or YAML with PyYAML); without it, ask the questions on stdin")
    parser.add_argument("--json", action="store_true", help="print one JSON object (docs/contracts.md §4)")
    parser.add_argument("--recording", metavar="FILE", type=Path,
                        help="analyse this recording and use its twitch statistics")
    parser.add_argument("--summary", metavar="FILE", type=Path,
                        help="use the twitch statistics of a summary.json written by 'toetwitch analyse'")
    parser.add_argument("--model", metavar="FILE", type=Path,
                        help="a cause model written by 'toetwitch train --out DIR' (default: the shipped one)")
    from toetwitch.pipeline.cli.common import add_journal_arguments

    add_journal_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from toetwitch.models import AnswersError, assess, load_answers

    sensor = _sensor_features(args)
    unreadable = sensor.pop(_JOURNAL_UNREADABLE, None)
    if unreadable is not None:  # said now, so the person knows before the questions
        from toetwitch.pipeline.log import logger

        logger.warning("the journal cannot be read (%s); assessing without its history", unreadable)
    model = _load_model(args.model) if args.model else None
    prompts = sys.stderr if args.json else sys.stdout
    stopped_early = False
    try:
        if args.answers is not None:
            answers = load_answers(args.answers)
        else:
            answers, stopped_early = ask_questions(sys.stdin, prompts, sensor)
        result = assess(answers, sensor, model=model)
    except AnswersError as exc:
        raise UserError(str(exc), 2) from None
    if stopped_early:
        result["questionnaire_stopped_early"] = True
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(render(result), end="")
    return _journal(args, answers, result, unreadable)


#: key under which _sensor_features hands over a journal that could not be read
_JOURNAL_UNREADABLE = "_journal_unreadable"


def _journal(args: argparse.Namespace, answers: dict, result: dict, unreadable: str | None) -> int:
    """Record the assessment; with an unusable journal, say so and return 1 (it was not touched)."""
    from toetwitch.pipeline.store import journal

    if unreadable is not None:  # never write into a journal that could not be read
        return journal.report_journal_problem(
            f"{unreadable}; the assessment above was made without the journal's history",
            "the assessment")
    if getattr(args, "no_journal", False):
        return 0
    problem = journal.journal_problem(lambda: journal.journal_assessment(args, answers, result))
    return 0 if problem is None else journal.report_journal_problem(problem, "the assessment")


def _load_model(path: Path) -> Any:
    from toetwitch.models.causes import load_model

    if not path.exists():
        raise UserError(f"--model {path}: no such file", 2)
    try:
        return load_model(path)
    except Exception as exc:  # a foreign or damaged file: say so, no traceback
        raise UserError(f"--model {path}: cannot load the cause model ({exc})", 2) from None


def _sensor_features(args: argparse.Namespace) -> dict:
    from toetwitch.pipeline.detect import sensor_features as sf

    sources: list[dict] = []
    if args.recording is not None:
        from toetwitch.drivers import read_recording
        from toetwitch.pipeline import analyse

        if not args.recording.exists():
            raise UserError(f"--recording {args.recording}: no such file", 2)
        sources.append(sf.from_result(analyse(read_recording(args.recording))))
    if args.summary is not None:
        try:
            summary = json.loads(args.summary.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"--summary {args.summary}: cannot read ({exc.strerror or exc})", 2) from None
        except json.JSONDecodeError as exc:
            raise UserError(f"--summary {args.summary}: not valid JSON ({exc.msg} at line {exc.lineno})", 2) from None
        try:
            sources.append(sf.from_summary(summary))
        except ValueError as exc:
            raise UserError(f"--summary {args.summary}: {exc}", 2) from None
    journal_path = getattr(args, "journal", None)
    unreadable = None
    if journal_path is not None:
        from toetwitch.pipeline.store.features import longitudinal_features
        from toetwitch.pipeline.store.journal import journal_problem

        got: list[dict] = []
        unreadable = journal_problem(lambda: got.append(longitudinal_features(journal_path)))
        if got:
            sources.append(sf.from_journal(got[0]))
    merged = sf.merge_sensor_features(*sources)
    if unreadable is not None:
        merged[_JOURNAL_UNREADABLE] = unreadable
    return merged


# --- the interactive questionnaire -------------------------------------------------------


class _NoInput(Exception):
    pass


def _read_line(stream: TextIO) -> str:
    """One line from stream; raises _NoInput at end of input or when a non-terminal stream
    stays silent for STDIN_TIMEOUT_S (so a pipe that is never written cannot hang us).

    With a real file descriptor the line is read byte by byte from the descriptor itself:
    Python's text buffer would swallow later lines and hide them from select().
    """
    if stream is None or stream.closed:
        raise _NoInput
    try:
        fd = stream.fileno()
        interactive = stream.isatty()
    except (OSError, ValueError, AttributeError):
        line = stream.readline()  # an in-memory stream (tests, embedding)
        if line == "":
            raise _NoInput from None
        return line
    data = bytearray()
    while True:
        if not interactive:
            ready, _, _ = select.select([fd], [], [], STDIN_TIMEOUT_S)
            if not ready:
                raise _NoInput
        byte = os.read(fd, 1)
        if not byte:
            if data:
                break
            raise _NoInput
        data += byte
        if byte == b"\n":
            break
    return data.decode("utf-8", errors="replace")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (OSError, ValueError, AttributeError):
        return False


def ask_questions(stream: TextIO, out: TextIO, sensor: dict | None = None) -> tuple[dict, bool]:
    """Ask the questionnaire on ``stream``, prompts to ``out``; returns (answers, stopped_early).

    Red-flag questions come first; after each answer the escalation rules run, and an urgent
    level stops the questions at once. A blank line skips a question (not reported). End of
    input before the first answer is an error (no answers at all); later it leaves the rest
    unanswered.
    """
    from toetwitch.models.answers import AnswersError
    from toetwitch.models.escalation import escalate
    from toetwitch.models.questionnaire import (
        load_questions,
        parse_reply,
        question_text,
        set_answer,
        should_ask,
    )

    answers: dict = {}
    n_answered = 0
    print("toetwitch assess: a few questions (press Enter to skip one). "
          "toetwitch informs; it does not diagnose.", file=out)
    for q in load_questions():
        if not should_ask(q, answers):
            continue
        for attempt in range(MAX_TRIES):
            print(f"? {question_text(q)} ", end="", file=out, flush=True)
            try:
                line = _read_line(stream)
            except _NoInput:
                print("", file=out)
                if n_answered == 0:
                    raise UserError(
                        "no answers on standard input (it ended or is not a terminal): "
                        "give --answers FILE, or run 'toetwitch assess' in a terminal", 2) from None
                return answers, False
            if not _is_terminal(stream):
                print(line.strip(), file=out)  # a piped reply is not echoed: keep a transcript
            elif not line.endswith("\n"):
                print("", file=out)
            try:
                value = parse_reply(q, line)
                if value is not None:
                    answers = set_answer(answers, q["key"], value)
                    n_answered += 1
                break
            except AnswersError as exc:
                print(f"  {exc.what}; try again", file=out)
                if attempt == MAX_TRIES - 1:
                    raise UserError(f"questionnaire: {exc}", 2) from None
        if q["red_flag"] and escalate(answers, sensor)["level"] == "urgent":
            print("\nThis answer needs urgent attention: stopping the questions.\n", file=out)
            return answers, True
    return answers, False


# --- rendering ------------------------------------------------------------------------------


def render(result: dict) -> str:
    """The assessment as text for a person to read."""
    from toetwitch.models.questionnaire import load_questions, question_text

    esc = result["escalation"]
    lines = [f"== {_LEVEL_TITLES[esc['level']]} ==", ""]
    lines.append("Why:")
    for r in esc["reasons"]:
        lines.append(f"  [{r['rule']}, {r['level']}] {r['message']}")
        lines.append(f"      source: {r['source']}")
    lines.append("")
    if esc["level"] == "urgent":
        lines.append("Possible causes (less important than getting help now):")
    else:
        lines.append("Most likely causes:")
    lines.append("  (how well each cause fits your answers, among the 11 causes toetwitch knows;")
    lines.append("   not the chance of having an illness)")
    for c in result["causes"][:3]:
        lines.append(f"  {c['probability'] * 100:5.1f}%  {c.get('name', c['cause'])} ({c['cause']})")
        if c.get("why"):
            lines.append(f"          because: {'; '.join(c['why'])}")
    lines.append("")
    lines.append("What to do:")
    lines.extend(f"  - {a}" for a in result["advice"])
    if result["unanswered_red_flags"]:
        texts = {q["key"]: question_text(q) for q in load_questions()}
        lines.append("")
        lines.append("Not answered (please check these warning signs):")
        lines.extend(f"  - {texts.get(k, k)}" for k in result["unanswered_red_flags"])
    lines.append("")
    lines.append("Get help sooner if:")
    lines.extend(f"  - {s}" for s in result.get("safety_net", []))
    lines.append("")
    lines.append(result["disclaimer"])
    return "\n".join(lines) + "\n"
