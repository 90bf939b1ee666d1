"""`harness verify BUNDLE [--level data|eval|train]`: re-derive a bundle's numbers (harness.bundle.verify).

The levels are cumulative (eval runs data first, train runs both). Prints every check, writes the outcome
(verification.json beside the manifest, or --out). Exit code 0 when the requested level is reached, 1 on any
mismatch, 2 when the bundle cannot be verified (a missing or unreadable file, a checkpoint of another shape, a
track this harness does not have, the train level of a GPU track).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="re-derive a bundle's data, scores or training and say what matched")
    p.add_argument("bundle", help="a bundle folder written by `harness bundle`, or its .tar.gz")
    p.add_argument("--level", choices=("data", "eval", "train"), default="data",
                   help="how far to re-run (cumulative; default: data)")  # fmt: skip
    p.add_argument("--out", help="where to write the outcome (default: verification.json beside the manifest)")
    p.add_argument("--device", help="cpu, cuda, ... (default: the kind the record was made on)")
    p.add_argument("--tolerance", type=float,
                   help="largest accepted score difference (default: 0 on CPU tracks, 0.005 on GPU tracks)")  # fmt: skip
    p.add_argument("--work-dir", help="folder for the re-tokenized data and re-trained run (default: a temp folder)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.bundle.verify import verify_bundle
    from harness.display.progress import make_progress
    from harness.display.verification import render_outcome

    console = Console(stderr=True, highlight=False)
    with make_progress(console, transient=True) as progress:
        outcome, path = verify_bundle(
            args.bundle, args.level, out=args.out, device=args.device, tolerance=args.tolerance,
            work_dir=args.work_dir, progress=progress,
        )  # fmt: skip
    if args.json:
        print(json.dumps(outcome.to_json(), indent=1))
    else:
        render_outcome(outcome, Console(highlight=False, soft_wrap=True))
    console.print(f"wrote {path}", markup=False)
    return 0 if outcome.ok else 1
