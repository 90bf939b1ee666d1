"""`harness evaluate ENTRY_OR_CKPT_DIR_OR_FILE [--suite core] [--limit N] [--out eval.json]`."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint (ours, open_lm's or safetensors) on a suite")
    p.add_argument(
        "checkpoint",
        help="entry folder (runs/<track>/<entry>, as `harness submit` prints it), run folder, checkpoints/ "
        "folder, epoch_N.pt or .safetensors file",
    )
    p.add_argument("--suite", help="suite id (evaluation/<id>.toml); default: the track's suite, else core")
    p.add_argument("--track", help="track whose model shape and tokenizer to use (default: from params.txt)")
    p.add_argument("--limit", type=int, help="evaluate only the first N examples of each task (smoke tests)")
    p.add_argument("--out", default="eval.json", help="where to write the results (default: eval.json)")
    p.add_argument("--mirror", help="local dataset mirror (save_to_disk folders; default $HARNESS_EVAL_MIRROR)")
    p.add_argument("--eval-data", help="folder holding DCLM's local_data/ (default: $HARNESS_EVAL_DATA or fetched)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default: 32)")
    p.add_argument("--tokenizer-file", help="tokenizer.json to use instead of downloading the track's")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.display.progress import make_progress
    from harness.errors import UsageError
    from harness.evaluate.checkpoint import resolve_checkpoint
    from harness.evaluate.run import evaluate_checkpoint
    from harness.tracks import get_track

    if args.limit is not None and args.limit <= 0:
        raise UsageError(f"--limit must be a positive number of examples, got {args.limit}")
    track = get_track(args.track) if args.track else None
    suite = args.suite
    if suite is None:
        info = resolve_checkpoint(args.checkpoint, track=track)
        suite = get_track(info.track).suite if info.track else "core"
    console = Console(stderr=True)
    with make_progress(console, transient=True) as progress:
        result = evaluate_checkpoint(
            args.checkpoint, suite=suite, track=track, limit=args.limit, mirror=args.mirror, device=args.device,
            batch_size=args.batch_size, tokenizer_file=args.tokenizer_file, progress=progress,
            eval_data=args.eval_data,
        )  # fmt: skip
    path = result.write(args.out)
    Console().print(render_table(result))
    for task, reason in result.missing.items():
        console.print(f"[yellow]missing[/] {task}: {reason}", highlight=False)
    console.print(f"wrote {path}", markup=False)
    return 0


def render_table(result) -> object:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{result.suite} (version {result.suite_version}) - {escape(str(result.checkpoint))}")
    for col in ("task", "metric", "value", "stderr", "95% interval", "n", "shots"):
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for name, t in result.tasks.items():
        err = t.stderr.get(t.metric)
        table.add_row(name, t.metric, f"{t.accuracy:.4f}", "" if err is None else f"{err:.4f}", _band(t.interval),
                      str(t.n_samples), str(t.shots))  # fmt: skip
    for name in result.missing:
        table.add_row(name, "[yellow]missing data[/]", "", "", "", "", "")
    table.add_section()
    for name, agg in result.aggregates.items():
        value = "[yellow]absent[/]" if agg.value is None else f"{agg.value:.4f}"
        band = _band(result.intervals.get(name))
        table.add_row(f"[bold]{name}[/]" if name == result.primary else name, agg.stamp, value, "", band, "", "")
    return table


def _band(interval: dict | None) -> str:
    """A bootstrap interval over evaluation examples (harness.analysis.stats), as `[low, high]`."""
    return "" if not interval else f"[{interval['low']:.4f}, {interval['high']:.4f}]"
