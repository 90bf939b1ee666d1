"""`harness demo`: the whole benchmark on the embedded sandbox, on a CPU, with no network."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="curate three baseline subsets of the sandbox pool, submit each, build the leaderboard"
    )
    p.add_argument("--track", default="nano", help="track to run the baselines on (default: nano)")
    p.add_argument("--dir", default="demo", help="folder for subsets, runs, results and the site (default: ./demo)")
    p.add_argument("--workers", type=int, default=2, help="processes for pool creation and tokenization")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.demo import run_demo

    return run_demo(args.track, args.dir, workers=args.workers, console=Console())
