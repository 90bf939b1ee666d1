"""`harness select --scores DIR [--where EXPR ...] [--unique COL] [--by COL --top F] --track T --out FILE`.

Composes conditions, uniqueness and a ranking over score columns, fills the track's token budget (never past
it), writes a subset `harness validate` accepts and says how many passes over it the budget implies.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="turn score columns into a subset that fills a track's budget")
    p.add_argument(
        "--scores",
        action="append",
        required=True,
        help="folder written by `harness score`; repeatable (folders of the same source join by row)",
    )
    p.add_argument("--track", required=True, help="track whose pool and token budget to fill")
    p.add_argument("--out", required=True, help="subset JSONL to write")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help="condition over columns, repeatable (all must hold), e.g. 'heuristics_pass and minhash_keep'",
    )
    p.add_argument(
        "--unique",
        action="append",
        default=[],
        metavar="COLUMN",
        help="keep the first document of each value of COLUMN, e.g. exact_cluster",
    )
    p.add_argument("--by", default="", metavar="COLUMN", help="rank by COLUMN, highest first")
    p.add_argument("--ascending", action="store_true", help="rank lowest first")
    p.add_argument("--top", type=float, default=1.0, metavar="FRACTION", help="keep this fraction of the ranking")
    p.add_argument(
        "--fill",
        choices=("auto", "rank", "random"),
        default="auto",
        help="order in which the budget is filled (auto: rank with --by alone, else random)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random fill order (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from harness.scores.select import Selection, select

    selection = Selection(where=tuple(args.where), unique=tuple(args.unique), by=args.by, ascending=args.ascending,
                          top=args.top, fill=args.fill, seed=args.seed)  # fmt: skip
    report = select(args.scores, args.track, selection, args.out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    table = Table(title=f"selection from {args.scores}: {report.scored:,} scored documents")
    table.add_column("step")
    table.add_column("documents kept", justify="right")
    for step, kept in report.steps:
        table.add_row(step, f"{kept:,}")
    table.add_row("filled the budget", f"{report.selected:,}")
    console = Console()
    console.print(table)
    note = " (the budget repeats it: select more documents to avoid repetition)" if report.passes > 1.0001 else ""
    console.print(f"wrote {report.selected:,} documents, {report.tokens:,} tokens of the {report.budget:,}-token "
                  f"budget, to {report.out}: {report.passes:.2f} passes over the subset{note}")  # fmt: skip
    return 0
