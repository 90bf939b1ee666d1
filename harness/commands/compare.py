"""`harness compare A B`: the difference of every aggregate between two entries, its 95% interval and a verdict.

A and B: entry ids (in the results store), record files or run folders. Exit code 0 when compared, 1 when the
two cannot be compared (other tracks or aggregate versions, a record without replicates), 2 for bad arguments.
`--across-budgets` compares one track's compute multipliers (the same subset at 1x and 2x, say).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two entries: differences, 95%% intervals and verdicts")
    p.add_argument("a", help="entry A: entry id, record file or run folder")
    p.add_argument("b", help="entry B: entry id, record file or run folder")
    p.add_argument(
        "--results", default=None, help="results store URL for entry ids (default: $HARNESS_RESULTS or ./results)"
    )
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument(
        "--across-budgets", action="store_true",
        help="allow one track at two compute multipliers (nano-v5 against nano-v5-2x): did more compute help?",
    )  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.analysis.compare import compare_records, load_entry
    from harness.display.compare import render_comparison
    from harness.records import default_results_url

    results = args.results or default_results_url()
    (a, a_src), (b, b_src) = load_entry(args.a, results), load_entry(args.b, results)
    comparison = compare_records(a, b, a_src, b_src, across_budgets=args.across_budgets)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        console = Console()
        render_comparison(comparison, console if console.is_terminal else Console(width=120))  # pipes: whole rows
    return 0
