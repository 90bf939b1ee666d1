"""Paper cuts a new user hit (issue #22): help that crashed, an entry folder `harness evaluate` refused, chart ticks
that all read the same."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from evaluate_fixtures import write_checkpoint, write_eval_folder

from harness.cli import build_parser, main

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


# -------------------------------------------------------------------------------------- evaluate an entry folder


def _entry_folder(root: Path, with_checkpoint: bool = True) -> Path:
    """runs/<track>/<entry>/ as `harness submit` leaves it: one folder per stage, the training run in train/."""
    entry = root / "runs" / "debug" / "0123456789ab"
    for stage in ("validate", "tokenize", "train", "evaluate", "record"):
        (entry / stage).mkdir(parents=True)
    if with_checkpoint:
        write_checkpoint(entry / "train", "debug")
    return entry


def test_evaluate_accepts_the_entry_folder_submit_printed(tmp_path: Path) -> None:
    from harness.evaluate.checkpoint import resolve_checkpoint

    entry = _entry_folder(tmp_path)
    info = resolve_checkpoint(entry)
    assert info.weights == entry / "train" / "checkpoints" / "epoch_1.pt" and info.track == "debug"
    evald = write_eval_folder(tmp_path / "eval", n=4)
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(entry), "--mirror", str(evald), "--limit", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["track"] == "debug" and data["suite"] == "sandbox" and not data["missing"]


def test_evaluate_says_which_folder_to_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.errors import UsageError
    from harness.evaluate.checkpoint import find_weights

    entry = _entry_folder(tmp_path, with_checkpoint=False)  # its train stage has not written a checkpoint yet
    with pytest.raises(UsageError, match=r"entry folder .* has no checkpoint in .*train.checkpoints yet.*submit"):
        find_weights(entry)
    with pytest.raises(UsageError, match=r"holds entry folders \(0123456789ab\), not a checkpoint: pass one of them"):
        find_weights(entry.parent)  # runs/debug: the track's folder
    other = tmp_path / "notes"
    other.mkdir()
    with pytest.raises(UsageError, match=r"no checkpoint in .*notes: pass the entry folder that `harness submit` "
                       r"printed \(runs/<track>/<entry>\), a training run folder"):  # fmt: skip
        find_weights(other)
    assert main(["evaluate", str(other)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "pass the entry folder" in err and "Traceback" not in err
