"""`harness submit` on screen: one line per stage with each component's bars beneath it, then the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.display.progress import make_progress
from harness.submit.options import StageFailed, SubmitOptions, SubsetInvalid
from harness.submit.pipeline import SubmitResult, submit
from harness.submit.stages import STAGES


def submit_with_display(opts: SubmitOptions, console: Any) -> SubmitResult | None:
    """`submit` under one rich display: a line per stage, each component's progress bars beneath it.
    Returns None when the subset is invalid (its report has been printed)."""
    from rich.markup import escape

    from harness.display.validation import render_report

    names = [*STAGES[: 3 if opts.skip_evaluate else 5], *(["leaderboard"] if opts.leaderboard else [])]
    with make_progress(console) as progress:
        overall = progress.add_task(f"[bold]submit[/] {escape(opts.track)}: starting", total=len(names))

        def on_stage(stage: str) -> None:
            done = names.index(stage) if stage in names else names.index("evaluate")  # replicates: after evaluate
            progress.update(
                overall, completed=done, description=f"[bold]submit[/] stage {done + 1}/{len(names)}: {stage}"
            )

        def notify(line: str) -> None:  # the slurm job's id and states (--launcher slurm)
            progress.console.print(line, markup=False, highlight=False)

        try:
            result = submit(opts, progress, on_stage, notify)
        except SubsetInvalid as exc:
            progress.stop()
            render_report(exc.args[0], console)
            console.print("[bold red]The subset is invalid; nothing was trained.[/] Fix the lines above and re-run.")
            return None
        except StageFailed:
            progress.update(overall, description="[bold red]submit failed[/]")
            raise
        if result.slurm is not None:
            progress.update(overall, description=f"[bold]submit[/] {result.entry_id}: handed to slurm")
        else:
            progress.update(overall, completed=len(names), description=f"[bold green]submit done[/] {result.entry_id}")
    return result


def render_summary(result: SubmitResult, console: Any) -> None:
    from rich.table import Table

    from harness.fields import plain

    if result.skipped:
        console.print(f"Reused finished stages: {', '.join(result.skipped)} (same subset and track).")
    console.print(f"Entry [bold]{result.entry_id}[/] in {plain(str(result.run_dir))}")
    if result.slurm is not None:
        console.print(result.slurm, markup=False, highlight=False)
        return
    record = result.record
    if record is None:
        console.print("Evaluation skipped (--skip-evaluate); re-run without it to score and record the entry.")
        return
    table = Table(title=f"{plain(record.submission.name)} on {record.track.name}")  # user text is never markup
    table.add_column("aggregate")
    table.add_column("value", justify="right")
    table.add_column("version")
    for name, agg in record.evaluation.aggregates.items():
        star = " (ranked by)" if name == record.evaluation.primary_aggregate else ""
        value = "absent: " + agg.reason if agg.value is None else f"{agg.value:.4f}"
        table.add_row(name + star, value, str(agg.version))
    console.print(table)
    render_uncertainty(record, console)
    t = record.training
    console.print(
        f"trained {t.tokens_seen:,} tokens ({t.passes:.2f} passes) in {t.wall_time_s:.0f} s, final loss {t.final_loss:.3f}"
    )
    console.print(f"record: {plain(str(result.run_dir / 'record' / 'record.json'))}")
    if result.site:
        console.print(f"leaderboard: {plain(str(Path(result.site).resolve() / 'index.html'))}")


def render_uncertainty(record: Any, console: Any) -> None:
    """Lines under `submit`'s summary: the primary score's replicate mean and interval, and contamination found."""
    name = record.evaluation.primary_aggregate
    stat = record.replicates.aggregates.get(name) if record.replicates else None
    if stat:
        std = "no seed spread (1 replicate)" if stat["std"] is None else f"seed std {stat['std']:.4f}"
        console.print(
            f"{name} over {stat['n']} replicate(s): mean {stat['mean']:.4f}, {std}, 95% interval "
            f"[{stat['low']:.4f}, {stat['high']:.4f}]",
            highlight=False,
        )
    c = record.contamination
    if c is not None and c.contaminated_items:
        console.print(
            f"[bold red]contaminated:[/] {c.contaminated_documents} documents quote {c.contaminated_items} of the "
            f"suite's {c.items} items (see the record's contamination block)"
        )
