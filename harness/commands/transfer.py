"""`harness transfer SMALL TARGET`: does the ranking of the entries on track SMALL predict their ranking on TARGET?
Decision accuracy and Kendall's tau per aggregate, task and metric, with bootstrap intervals over seeds
(harness.analysis.transfer). Exit code 0 when the table is printed, 1 when the records cannot answer (subsets on
one track only, fewer than two shared, other suite versions), 2 for bad arguments.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="does a small track's ranking of entries predict a target track's?")
    p.add_argument("small", help="the small track (e.g. nano, nano-0.25x)")
    p.add_argument("target", help="the target track (e.g. micro)")
    p.add_argument("--results", default=None, help="results store URL (default: $HARNESS_RESULTS or ./results)")
    p.add_argument(
        "--shared-only", action="store_true",
        help="compare the subsets on both tracks and leave out the others (default: entries on one track are an error)",
    )  # fmt: skip
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples over seeds (default 1000)")
    p.add_argument(
        "--average-last", type=int, default=1, metavar="N",
        help="SMALL's value of each run is the mean of its last N checkpoint scores, Signal and Noise's checkpoint "
        "averaging (default 1: the final checkpoint; needs records made with --checkpoint-scores)",
    )  # fmt: skip
    p.add_argument("--scored-only", action="store_true", help="only each task's scored metric, no continuous ones")
    p.add_argument("--json", action="store_true", help="print the agreements as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.analysis.scoretable import load_records, track_scores
    from harness.analysis.transfer import transfer
    from harness.display.reliability import render_transfer
    from harness.errors import UsageError
    from harness.records import default_results_url

    if args.resamples < 1:
        raise UsageError(f"--resamples must be at least 1, got {args.resamples}")
    if args.average_last < 1:
        raise UsageError(f"--average-last must be at least 1, got {args.average_last}")
    if args.small == args.target:
        raise UsageError(f"SMALL and TARGET are both {args.small}: give two tracks, e.g. `harness transfer nano micro`")
    results = args.results or default_results_url()
    small = track_scores(*load_records([], track=args.small, results=results))
    target = track_scores(*load_records([], track=args.target, results=results))
    result = transfer(small, target, shared_only=args.shared_only, resamples=args.resamples,
                      average_last=args.average_last)  # fmt: skip
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        console = Console()
        render_transfer(result, console if console.is_terminal else Console(width=160), scored_only=args.scored_only)
    return 0
