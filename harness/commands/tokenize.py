"""`harness tokenize --track T SUBSET --out DIR [--workers N] [--executor local|ray|slurm]`: validate a subset, then
tokenize+shuffle it.

The subset is validated against the track (an invalid subset stops here, exit 1), materialized (pool text
resolved, edits applied) into DIR/_input/, and tokenized into open_lm shards in DIR with the track's tokenizer,
context and seed. `--executor local` (default) is the process pool of harness.data.tokenize; `ray` and `slurm` run
the same work as datatrove tasks (harness.data.staged) and write the same bytes. With `slurm` the stages go to
Slurm as dependent job arrays (harness.scores.slurm) whose ids are printed and kept: re-running while they are
queued or running submits nothing, and once they end it writes the manifest and stats (`--wait` follows them and
finishes). Re-running resumes an interrupted run; a finished DIR for the same subset answers at once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from harness.commands.score import add_executor_options

if TYPE_CHECKING:
    from harness.tracks import Track


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenize", help="validate a subset and tokenize+shuffle it into open_lm shards")
    p.add_argument("subset", help="subset JSONL file (.jsonl, .jsonl.gz, .jsonl.zst), directory or glob")
    p.add_argument("--track", required=True, help="track name, e.g. debug or 412m")
    p.add_argument("--out", required=True, help="output folder for shards, manifest.jsonl and stats.json")
    p.add_argument("--workers", type=int, default=1, help="processes (local) or tasks at once (ray, slurm); default 1")
    p.add_argument("--executor", default="local", help="local (default: a process pool), ray or slurm")
    add_executor_options(p)
    p.set_defaults(run=run)


def _finished(out: str, subset_hash: str, track: Track) -> dict[str, Any] | None:
    """The stats of a finished run in `out` for this subset and track settings, if there is one."""
    import json
    from pathlib import Path

    from harness.data import STATS_NAME

    path = Path(out) / STATS_NAME
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    wanted = {
        "subset_hash": subset_hash,
        "seed": track.recipe.seed,
        "context": track.model.context,
        "tokenizer": track.tokenizer.name,
        "tokenizer_sha256": track.tokenizer.sha256 or stats.get("tokenizer_sha256"),
    }
    return stats if all(stats.get(k) == v for k, v in wanted.items()) else None


def run(args: argparse.Namespace) -> int:
    import shutil
    import sys
    from pathlib import Path

    from rich.console import Console

    from harness.commands.score import executor_options
    from harness.data.tokenize import tokenize_for_track
    from harness.display.progress import make_progress
    from harness.display.validation import render_report
    from harness.errors import HarnessError, UsageError
    from harness.submit.materialize import materialize_subset
    from harness.submit.validate import validate_subset
    from harness.tracks import get_track

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    executor = executor_options(args)
    console = Console(file=sys.stderr)  # a fixed stream: datatrove's task logs are silenced while it runs
    track = get_track(args.track)
    with make_progress(console, transient=True) as progress:
        report = validate_subset(track, args.subset, progress=progress)
        if not report.ok:
            progress.stop()
            render_report(report, console)
            raise HarnessError(f"{args.subset} is not a valid subset for track {track.name}; nothing was tokenized")
        stats = _finished(args.out, report.subset_hash, track)
        if stats is None:
            staging = Path(args.out) / "_input"
            files = materialize_subset(report, track, staging, progress=progress)

            def notify(line: str) -> None:  # the slurm jobs' ids and states
                progress.console.print(line, markup=False, highlight=False)

            result = tokenize_for_track(
                track, [str(f) for f in files], args.out, workers=args.workers, progress=progress,
                subset_hash=report.subset_hash, executor=executor, notify=notify,
            )  # fmt: skip
            if result is None:  # slurm: the jobs are queued or running (notify said which)
                return 0
            stats = result.to_dict()
            shutil.rmtree(staging, ignore_errors=True)  # a copy of the subset's text: the shards now hold it
    _summary(stats, args.out)
    return 0


def _summary(stats: dict[str, Any], out: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"tokenized into {escape(str(out))}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", justify="right")
    for key in ("documents", "documents_expanded", "text_tokens", "eot_tokens", "padding_tokens", "tokens",
                "sequences", "shards", "context", "seed", "tokenizer", "subset_hash"):  # fmt: skip
        value = stats[key]
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
