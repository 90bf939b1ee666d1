"""`harness submit --track T SUBSET`: validate, tokenize+shuffle, train, evaluate and record one entry."""

from __future__ import annotations

import argparse

from harness.commands.train import add_slurm_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="run the whole benchmark on a subset (resumable)")
    p.add_argument("subset", help="subset JSONL (.jsonl, .jsonl.gz, .jsonl.zst), a directory or glob; local or URL")
    p.add_argument("--track", required=True, help="track name (see `harness tracks`)")
    p.add_argument("--scale", type=float, default=1.0, help="compute multiplier K: the track's budget x K (track-Kx)")
    p.add_argument("--name", default="", help="entry name on the leaderboard (default: the subset's file name)")
    p.add_argument("--author", action="append", default=[], dest="authors", help="an author (repeatable)")
    p.add_argument("--description", default="", help="what the curation does")
    p.add_argument("--link", default="", help="URL of the curation code or paper")
    p.add_argument("--run-dir", default="runs", help="root of run folders (default: runs)")
    p.add_argument("--results", default=None, help="results store URL (default: $HARNESS_RESULTS or ./results)")
    p.add_argument("--leaderboard", default=None, metavar="DIR", help="rebuild the static leaderboard into DIR")
    p.add_argument("--trainer", choices=("native", "open_lm"), default="native", help="training backend")
    p.add_argument("--nproc", type=int, default=1, help="training processes on this node (torchrun when > 1)")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local", help="run here, or in a slurm job")
    add_slurm_options(p)
    p.add_argument("--workers", type=int, default=1, help="tokenization processes")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--skip-evaluate", action="store_true", help="stop after training")
    p.add_argument(
        "--checkpoint-scores", action="store_true",
        help="also evaluate every earlier checkpoint: the record keeps a score trajectory per task (reliability)",
    )  # fmt: skip
    p.add_argument(
        "--replicates", type=int, default=1, metavar="K", help="train with the track's first K seeds (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print the record as JSON when done")
    p.set_defaults(run=run)


def options_from_args(args: argparse.Namespace):  # -> SubmitOptions
    from harness.records import default_results_url
    from harness.submit.options import SubmitOptions
    from harness.tracks import derived_name

    return SubmitOptions(
        track=derived_name(args.track, args.scale), subset=args.subset, name=args.name, authors=tuple(args.authors),
        description=args.description, link=args.link, run_dir=args.run_dir,
        results=args.results or default_results_url(), leaderboard=args.leaderboard, trainer=args.trainer,
        nproc=args.nproc, launcher=args.launcher, workers=args.workers, device=args.device,
        skip_evaluate=args.skip_evaluate, replicates=args.replicates, slurm_submit=not args.no_sbatch,
        slurm_wait=args.wait, checkpoint_scores=args.checkpoint_scores,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from harness.display.submit import render_summary, submit_with_display

    console = Console(stderr=args.json)
    result = submit_with_display(options_from_args(args), console)
    if result is None:
        return 1
    if args.json and result.record is not None:
        sys.stdout.write(result.record.to_json())
    else:
        render_summary(result, console)
    return 0
