"""Paper cuts a new user hit (issue #22): help that crashed, an entry folder `harness evaluate` refused, chart ticks
that all read the same."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from evaluate_fixtures import write_checkpoint, write_eval_folder

from harness.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


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


# ------------------------------------------------------------------------------------------------- chart ticks


def _x_tick_labels(svg: str) -> list[str]:
    """Labels under the x axis: the text after each vertical grid line."""
    root = ET.fromstring(svg)
    labels, after_grid = [], False
    for el in root:
        if el.tag == f"{SVG}line":
            after_grid = el.get("x1") == el.get("x2")
        elif el.tag == f"{SVG}text" and after_grid:
            labels.append(el.text or "")
            after_grid = False
    return labels


def test_tick_labels_stay_distinct_at_a_narrow_spread() -> None:
    from harness.leaderboard.charts import figure_svg, nice_ticks, tick_labels

    xs = [1_571_000.0, 1_572_000.0, 1_573_000.0]
    labels = _x_tick_labels(figure_svg("t", "subset size", "score", [("", xs, [0.3, 0.4, 0.5])], points=True))
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert {"1.571M", "1.572M", "1.573M"} <= set(labels)
    for lo, hi, log in ((1.571e6, 1.573e6, False), (0.99996, 1.00004, False), (1572863, 1572865, False),
                        (4e5, 3e7, True), (0.08, 0.72, False)):  # fmt: skip
        ticks = nice_ticks(lo, hi, log)
        got = tick_labels(ticks)
        assert len(set(got)) == len(got), (lo, hi, got)
    assert tick_labels([5e5, 1e6, 2e6]) == ["500K", "1M", "2M"]  # round ticks keep short labels
    assert tick_labels([0.1, 0.2, 0.30000000000000004]) == ["0.1", "0.2", "0.3"]


def _table(subset_tokens: list[int], passes: list[float]):  # -> TrackTable
    from harness.leaderboard.columns import build_table
    from harness.leaderboard.sample import synthetic_record

    table = build_table("debug", [synthetic_record("debug", seed) for seed in range(len(subset_tokens))])
    rows = tuple({**r, "subset_tokens": s, "passes": p} for r, s, p in zip(table.rows, subset_tokens, passes,
                                                                            strict=True))  # fmt: skip
    return dataclasses.replace(table, rows=rows)


def test_a_chart_without_spread_says_so(tmp_path: Path) -> None:
    from harness.leaderboard.charts import track_charts

    written = track_charts(_table([1_572_864] * 3, [1.0] * 3), tmp_path)  # the demo: three entries of one size
    size, passes = ((tmp_path / written[k]).read_text() for k in ("size", "passes"))
    for svg in (size, passes):
        root = ET.fromstring(svg.split("\n", 1)[1])
        assert not root.findall(f".//{SVG}circle")  # no column of dots
    texts = [" ".join(el.text.split()) for el in ET.fromstring(size.split("\n", 1)[1]).iter(f"{SVG}text") if el.text]
    assert "all 3 entries have subset size 1.57M tokens" in texts
    assert "all 3 entries made 1 pass over the data" in passes
    # sizes a thousand tokens apart: a real chart again, with distinct ticks
    written = track_charts(_table([1_571_000, 1_572_000, 1_573_000], [1.0, 1.5, 2.0]), tmp_path)
    for kind in ("size", "passes"):
        svg = (tmp_path / written[kind]).read_text().split("\n", 1)[1]
        labels = _x_tick_labels(svg)
        assert "<circle" in svg and len(labels) >= 3 and len(set(labels)) == len(labels), (kind, labels)
