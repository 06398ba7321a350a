"""Options every command shares: -v/--verbose and -q/--quiet, before or after the command."""

from __future__ import annotations

import logging

import pytest

from toetwitch.pipeline.cli.main import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", COMMANDS)
def test_verbose_and_quiet_before_or_after_every_command(command):
    parser = build_parser()
    needs = {"analyse": ["x.csv"], "replay": ["x.csv"], "export": ["--out", "d"]}.get(command, [])
    for argv in (["-v", command, *needs], [command, "-v", *needs], [command, *needs, "--verbose"]):
        args = parser.parse_args(argv)
        assert (args.verbose, args.quiet) == (1, False), argv
    for argv in (["-q", command, *needs], [command, "-q", *needs], [command, *needs, "--quiet"]):
        args = parser.parse_args(argv)
        assert (args.verbose, args.quiet) == (0, True), argv
    assert parser.parse_args(["-vv", command, *needs]).verbose == 2
    args = parser.parse_args([command, *needs])
    assert (args.verbose, args.quiet) == (0, False)


def test_quiet_keeps_warnings_and_verbose_shows_info(tmp_path, capsys):
    log = logging.getLogger("toetwitch")
    missing = tmp_path / "none.sqlite"
    assert main(["-q", "history", "--journal", str(missing)]) == 1
    assert log.level == logging.WARNING  # a problem with the data is never silenced
    assert main(["history", "-v", "--journal", str(missing)]) == 1
    assert log.level == logging.INFO
    capsys.readouterr()
