"""Paper cuts a new user hit (issue #22): help that crashed, an entry folder `harness evaluate` refused, chart ticks
that all read the same."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from harness.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------ --help


def _all_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path below `parser` (itself included), walking nested subcommands."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _all_parsers(child, (*path, name))
    return found


def _parser_at(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def test_help_of_every_command_and_subcommand_formats() -> None:
    """argparse %-formats help strings: a bare % (as in '95% intervals') makes --help a traceback."""
    paths = _all_parsers(build_parser())
    assert ("compare",) in paths and ("leaderboard", "build") in paths  # the walk reaches nested subcommands
    for path in paths:
        text = _parser_at(path).format_help()
        assert text.startswith("usage: harness"), path
    assert "95% intervals" in build_parser().format_help()


def test_help_exits_zero_in_a_real_process() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "harness", "--help"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "compare" in proc.stdout
