"""`harness score SOURCE --scorer NAME [--scorer ...] --out DIR`: per-document scores as Parquet, on datatrove.

SOURCE is a pool id (`sandbox`; a DCLM pool once indexed) or JSONL files with `id` and `text`. One Parquet file
per input shard (`id` + each scorer's columns) and a manifest; re-running the same command resumes per shard.
`--executor local` (default: datatrove's LocalPipelineExecutor, `--workers` processes), `ray` (a running Ray
cluster: `ray start --head` first; `--ray-address` or RAY_ADDRESS names it) or `slurm` (a job array per stage,
harness.scores.slurm: the ids are printed and kept, a re-run while they run submits nothing, `--wait` follows them).
"""

from __future__ import annotations

import argparse

SCORER_NAMES = ("compression", "heuristics", "fasttext", "loglik", "dedup")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="per-document scores of a pool (Parquet, resumable, datatrove executors)")
    p.add_argument("source", help="pool id (e.g. sandbox) or JSONL file(s) with id and text: a file, folder or glob")
    p.add_argument("--scorer", action="append", required=True, metavar="NAME",
                   help=f"scorer to run, repeatable: {', '.join(SCORER_NAMES)}")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (Parquet parts + manifest.json)")
    p.add_argument("--workers", type=int, default=1, help="tasks run at once (default 1)")
    p.add_argument("--executor", default="local", help="local (default), ray or slurm")
    p.add_argument("--batch-size", type=int, default=512, help="documents per scoring batch (default 512)")
    g = p.add_argument_group("scorer options")
    g.add_argument("--fasttext-model", default="", help="fasttext: the .bin model (ours or DCLM's)")
    g.add_argument("--checkpoint", default="", help="loglik: checkpoint (run folder, epoch_N.pt, .safetensors)")
    g.add_argument("--track", default="", help="loglik: track of the checkpoint's shape and tokenizer")
    g.add_argument("--device", default="auto", help="loglik: auto, cpu or cuda")
    g.add_argument("--zstd-level", type=int, default=3, help="compression: zstd level (default 3)")
    add_executor_options(p)
    p.set_defaults(run=run)


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """The options of `--executor ray` and `--executor slurm` (shared with `harness tokenize`)."""
    c = p.add_argument_group("cluster executors")
    c.add_argument(
        "--ray-address", default="", help="ray: the cluster's HOST:PORT (default: RAY_ADDRESS, else this machine's)"
    )
    c.add_argument("--slurm-partition", default="", help="slurm: partition (default: the cluster's default)")
    c.add_argument("--slurm-time", default="", help="slurm: time limit per task, e.g. 04:00:00 (default: partition's)")
    c.add_argument("--slurm-mem", default="", help="slurm: memory per task, e.g. 4G (default: the cluster's)")
    c.add_argument("--cpus-per-task", type=int, default=1, help="slurm/ray: CPUs per task")
    c.add_argument("--wait", action="store_true", help="slurm: follow the jobs to their end and finish")


def executor_options(args: argparse.Namespace):  # -> ExecutorOptions
    """ExecutorOptions from the options above; joins the Ray cluster for `--executor ray`."""
    from harness.errors import UsageError
    from harness.scores.run import ExecutorOptions, connect_ray

    if args.wait and args.executor != "slurm":
        raise UsageError("--wait follows slurm jobs: it needs --executor slurm")
    executor = ExecutorOptions(
        kind=args.executor, workers=args.workers, slurm_partition=args.slurm_partition, slurm_time=args.slurm_time,
        cpus_per_task=args.cpus_per_task, slurm_mem=args.slurm_mem, wait=args.wait,
    )  # fmt: skip
    if executor.kind == "ray":
        connect_ray(args.ray_address)
    return executor


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from harness.display.progress import make_progress
    from harness.errors import UsageError
    from harness.scores import make_scorer
    from harness.scores.run import score

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    options = {"model": args.fasttext_model, "checkpoint": args.checkpoint, "track": args.track,
               "device": args.device, "level": args.zstd_level}  # fmt: skip
    scorers = [make_scorer(name, **options) for name in dict.fromkeys(args.scorer)]
    executor = executor_options(args)
    console = Console(file=sys.stderr)  # a fixed stream: datatrove's task logs are silenced while it runs
    with make_progress(console) as progress:

        def notify(line: str) -> None:  # the slurm jobs' ids and states
            progress.console.print(line, markup=False, highlight=False)

        manifest = score(args.source, scorers, args.out, executor=executor, batch_size=args.batch_size,
                         progress=progress, notify=notify)  # fmt: skip
    if manifest.get("submitted"):
        return 0
    table = Table(title=f"scores in {args.out}: {manifest['rows']:,} documents, {len(manifest['parts'])} parts")
    table.add_column("column")
    table.add_column("meaning")
    for name, meaning in manifest["columns"].items():
        table.add_row(name, meaning)
    Console().print(table)
    return 0
