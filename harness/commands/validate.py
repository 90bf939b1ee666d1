"""`harness validate --track T SUBSET [--json]`: check a subset against a track's rules; nothing else.

Exit code 0 when the subset is valid, 1 when it is not, 2 for usage errors (unknown track, no such file).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a subset against a track's rules and measure it")
    p.add_argument("subset", help="JSONL file (.jsonl, .jsonl.gz, .jsonl.zst), directory or glob; local or s3://")
    p.add_argument("--track", required=True, help="track name, e.g. nano or 412m")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.submission import render_report, validate_subset
    from harness.tracks import get_track

    track = get_track(args.track)
    report = validate_subset(track, args.subset)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        render_report(report, Console())
    return 0 if report.ok else 1
