"""`harness train --track T --data SHARDS_DIR --out DIR`: train a track's model on tokenized shards (resumable)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a track's model on tokenized shards (re-run to resume)",
        description="Train the track's fixed model with its fixed recipe on the shards written by `harness tokenize`. "
        "Re-running the same command resumes from the newest checkpoint; a finished run prints its result.",
    )
    p.add_argument("--track", required=True, help="track name, e.g. debug, nano, 412m")
    p.add_argument("--data", required=True, help="shard directory (holds manifest.jsonl); a local path or a URL")
    p.add_argument("--out", required=True, help="run folder: checkpoints/, params.txt, model.json, train_log.jsonl")
    p.add_argument("--trainer", choices=["native", "open_lm"], default="native", help="default: native")
    p.add_argument("--nproc", type=int, default=1, help="processes per node; >1 runs under torchrun (default: 1)")
    p.add_argument("--nodes", type=int, default=1, help="nodes, with --launcher slurm (default: 1)")
    p.add_argument(
        "--launcher", choices=["local", "slurm"], default="local", help="slurm: write train.sbatch and submit it"
    )
    add_slurm_options(p)
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    p.add_argument(
        "--precision",
        choices=["fp32", "amp_bfloat16"],
        default=None,
        help="default: the track's precision on GPU, fp32 on CPU",
    )
    p.add_argument(
        "--sharding",
        choices=["ddp", "fsdp"],
        default=None,
        help="native trainer with --nproc > 1: DDP or FSDP2 (default: the track's recipe)",
    )
    p.add_argument(
        "--compile",
        nargs="?",
        const="on",
        default="auto",
        choices=["auto", "on", "off"],
        help="torch.compile the step's forward and loss (`--compile` alone: on); auto (default): on the CPU, in one "
        "process, for runs long enough to repay the compilation (nano, not debug)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def add_slurm_options(p: argparse.ArgumentParser) -> None:
    """`--no-sbatch` and `--wait`, for commands with `--launcher slurm`."""
    p.add_argument("--no-sbatch", action="store_true", help="with --launcher slurm: write the batch script only")
    p.add_argument("--wait", action="store_true", help="with --launcher slurm: follow the job until it ends")


def slurm_options(args: argparse.Namespace, say=print):  # -> SlurmOptions
    from harness.train.result import SlurmOptions

    return SlurmOptions(submit=not args.no_sbatch, follow=args.wait, notify=say)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from dataclasses import asdict

    from harness.tracks import get_track
    from harness.train import TrainingPending, train

    track = get_track(args.track)
    stream = sys.stderr if args.json else sys.stdout  # --json keeps stdout for the result

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    try:
        result = train(
            track, args.data, args.out, trainer=args.trainer, nproc=args.nproc, launcher=args.launcher,
            device=args.device, compile=args.compile, precision=args.precision, nodes=args.nodes,
            sharding=args.sharding, slurm=slurm_options(args, say),
        )  # fmt: skip
    except TrainingPending as exc:
        say(str(exc))
        return 0
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    from rich.console import Console

    Console().print(
        f"[bold green]trained[/] {track.name}: {result.steps} steps, {result.tokens_seen:,} tokens "
        f"({result.passes:.2f} passes over the data), final loss {result.final_loss:.4f}, "
        f"{result.tokens_per_s:,.0f} tokens/s\ncheckpoint {result.checkpoint}\nlog {result.log}",
        highlight=False,
    )
    return 0
