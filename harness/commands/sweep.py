"""`harness sweep run|report EXPERIMENT.toml`: train every cell of an experiment, then table and plot the results."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.commands.train import add_slurm_options

if TYPE_CHECKING:
    from rich.console import Console

    from harness.experiments.spec import Cell, Experiment
    from harness.experiments.sweep import SweepPaths


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run an experiment's cells (experiments/*.toml) and report them")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    run = verbs.add_parser("run", help="build each cell's subset and train it as an ordinary entry (resumable)")
    _common(run)
    run.add_argument("--jobs", default="auto", help="cells at a time: a number, or auto (one per GPU, else per core)")
    run.add_argument("--launcher", choices=("local", "slurm"), default="local", help="slurm: submit a job array")
    add_slurm_options(run)
    run.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    run.add_argument("--cell", default=None, help=argparse.SUPPRESS)  # one cell's worker (local jobs and slurm)
    run.set_defaults(run=_run)
    rep = verbs.add_parser("report", help="table (Markdown, CSV, JSON) and plots of the finished cells")
    _common(rep)
    rep.set_defaults(run=_report)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment file (experiments/<name>.toml)")
    p.add_argument("--out", default=None, help="sweep folder (default: sweeps/<experiment name>)")
    p.add_argument("--results", default=None, help="results store of the cells (default: <sweep folder>/results)")


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.display.progress import make_progress
    from harness.errors import UsageError
    from harness.experiments.spec import load_experiment
    from harness.experiments.sweep import SweepPaths, build_cells, default_jobs, run_cell, run_local

    console = Console()
    experiment = load_experiment(args.experiment)
    paths = SweepPaths.of(experiment, args.out, args.results)
    if args.cell is not None:  # the worker of one cell
        cell = next((c for c in experiment.cells() if c.key == args.cell), None)
        if cell is None:
            raise UsageError(f"{args.experiment}: no cell {args.cell!r}")
        done = run_cell(experiment, paths, cell, args.device)
        console.print(f"cell {cell.key}: entry {done['entry_id']} on {done['track']}")
        return 0
    from harness.io.files import require_writable

    require_writable(paths.root, "--out")
    if args.launcher == "slurm":  # its paths go into a batch script: refused before the cells are built
        from harness.train.launch import refuse_control_characters

        refuse_control_characters([str(paths.root.resolve()), paths.results])
    with console.status("building the cells' subsets"):
        cells = build_cells(experiment, paths)
    finished = sum(paths.done(c) is not None for c in cells)
    console.print(f"experiment [bold]{experiment.name}[/]: {len(cells)} cells, {finished} finished, in {paths.root}")
    if args.launcher == "slurm":
        return _on_slurm(args, experiment, paths, cells, console)
    try:
        jobs = default_jobs(args.device) if args.jobs == "auto" else int(args.jobs)
    except ValueError:
        raise UsageError(f"--jobs must be a number or 'auto', got {args.jobs!r}") from None
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    with make_progress(console) as progress:
        failed = run_local(experiment, paths, cells, jobs=jobs, device=args.device, progress=progress)
    for key, why in failed.items():
        console.print(f"[bold red]cell {key} failed[/]: {why}")
    done = sum(paths.done(c) is not None for c in cells)
    console.print(f"{done}/{len(cells)} cells finished" + ("; re-run to resume the rest." if failed else "."))
    return 1 if failed else 0


def _on_slurm(
    args: argparse.Namespace, experiment: Experiment, paths: SweepPaths, cells: list[Cell], console: Console
) -> int:
    """The pending cells as a Slurm job array (harness.train.slurm: not twice while it runs)."""
    from harness.experiments.sweep import write_slurm_array
    from harness.train.slurm import hand_over

    pending = [c for c in cells if paths.done(c) is None]
    if not pending:
        console.print("every cell is finished; run `harness sweep report`.")
        return 0

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    message = hand_over(
        paths.root, lambda: write_slurm_array(experiment, paths, cells, args.device),
        what=f"{len(pending)} sweep cell(s)", log=f"{paths.root.resolve()}/logs/slurm-%A_%a.out",
        submit=not args.no_sbatch, follow=args.wait, notify=say,
    )  # fmt: skip
    if message is not None:
        say(message + " (it skips finished cells), or run `harness sweep report` once the array ends.")
        return 0
    done = sum(paths.done(c) is not None for c in cells)
    console.print(
        f"{done}/{len(cells)} cells finished" + ("." if done == len(cells) else "; re-run to resume the rest.")
    )
    return 0 if done == len(cells) else 1


def _report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.experiments.report import write_report
    from harness.experiments.spec import load_experiment
    from harness.experiments.sweep import SweepPaths

    console = Console()
    experiment = load_experiment(args.experiment)
    paths = SweepPaths.of(experiment, args.out, args.results)
    files = write_report(experiment, paths)
    console.print(files["markdown"].read_text(encoding="utf-8"), markup=False, highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
