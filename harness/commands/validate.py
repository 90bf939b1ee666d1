"""`harness validate --track T SUBSET [--json]`: check a subset against a track's rules; nothing else.

Exit code 0 when the subset is valid, 1 when it is not (or quotes evaluation items on a track that rejects
contamination), 2 for usage errors (unknown track, no such file). The contamination check (harness.submit.decontam)
runs on valid subsets unless --no-contamination.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a subset against a track's rules and measure it")
    p.add_argument("subset", help="JSONL file (.jsonl, .jsonl.gz, .jsonl.zst), directory or glob; local or s3://")
    p.add_argument("--track", required=True, help="track name, e.g. nano or 412m")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--no-contamination", action="store_true", help="skip the check for evaluation items quoted by the subset"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.display.contamination import render_contamination
    from harness.display.progress import make_progress
    from harness.display.validation import render_report
    from harness.submit.decontam_subset import validate_and_check
    from harness.tracks import get_track

    track = get_track(args.track)
    # The bars go to stderr: with --json, stdout carries the report and nothing else.
    with make_progress(Console(stderr=True), transient=True) as progress:
        report, contamination = validate_and_check(
            track, args.subset, check=not args.no_contamination, progress=progress
        )
    if args.json:
        print(json.dumps({**report.to_dict(), "contamination": contamination and contamination.to_dict()}, indent=2))
    else:
        render_report(report, Console())
        if contamination is not None:
            render_contamination(contamination, track.rules.contamination, Console())
    rejected = contamination is not None and contamination.contaminated and track.rules.contamination == "reject"
    return 0 if report.ok and not rejected else 1
