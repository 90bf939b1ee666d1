"""`harness reliability`: per task and metric of a track, the seed std, FineWeb's and AI2's signal-to-noise ratios,
monotonicity, the distance from chance and the minimum detectable difference (harness.analysis.reliability).

Records: `--track T` (its records in the results store) or record files / folders of them. Exit code 0 when the
table is printed, 1 when the records cannot answer (one seed per entry, one entry, several suite versions), 2 for
bad arguments.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reliability", help="how much signal each task and metric of a track carries (seeds, SNR, MDE)")
    p.add_argument(
        "records", nargs="*", help="record files or folders of them (default: --track's records in the store)"
    )
    p.add_argument("--track", default=None, help="track whose records to read (with files: keep only this track's)")
    p.add_argument(
        "--results", default=None, help="results store URL for --track (default: $HARNESS_RESULTS or ./results)"
    )
    p.add_argument(
        "--k", type=int, nargs="+", default=[1, 3, 5], metavar="K",
        help="seed counts for the minimum detectable difference (default: 1 3 5)",
    )  # fmt: skip
    p.add_argument("--scored-only", action="store_true", help="only scored metrics and aggregates, no continuous ones")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.analysis.reliability import reliability
    from harness.analysis.scoretable import load_records, track_scores
    from harness.display.reliability import render_reliability
    from harness.records import default_results_url

    records, sources = load_records(args.records, track=args.track, results=args.results or default_results_url())
    result = reliability(track_scores(records, sources), k=tuple(args.k))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        console = Console()
        render_reliability(result, console if console.is_terminal else Console(width=160), scored_only=args.scored_only)
    return 0
