"""`harness eval-data fetch [--suite core|extended|mmlu]`: DCLM's evaluation data files, pinned and resumable."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-data", help="download DCLM's evaluation data files (pinned by sha256)")
    p.set_defaults(run=lambda args: p.print_help() or 2)
    psub = p.add_subparsers(dest="eval_data_command", metavar="SUBCOMMAND")
    f = psub.add_parser("fetch", help="download (or resume) the data files of a suite's DCLM tasks")
    f.add_argument("--suite", help="core, extended or mmlu (default: every pinned file)")
    f.add_argument("--dest", help="folder to fill (default: $HARNESS_EVAL_DATA, else $HARNESS_HOME/eval-data/dclm)")
    f.add_argument("--url", help="base URL of a copy of DCLM's tree (default: $HARNESS_EVAL_DATA_URL, else GitHub)")
    f.set_defaults(run=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from harness.evaluate.icl.fetch import base_url, fetch, raise_for_failures, suite_files
    from harness.evaluate.icl.files import data_root

    dest = data_root(args.dest)
    files = suite_files(args.suite)
    console = Console(stderr=True)
    console.print(f"fetching {len(files)} file(s) from {base_url(args.url)} into {dest}", highlight=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console,
                  transient=True) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def progress(path: str, done: int, total: int | None) -> None:
            if path not in tasks:
                tasks[path] = bar.add_task(path, total=total)
            bar.update(tasks[path], completed=done, total=total)

        report = fetch(files, dest, url=args.url, progress=progress)
    console.print(
        f"{len(report.present)} already present, {len(report.downloaded)} downloaded, {len(report.resumed)} resumed",
        highlight=False,
    )
    raise_for_failures(report, dest)
    console.print(f"eval data ready in {dest}", highlight=False)
    return 0
