"""`harness compare` on screen: per aggregate the difference A - B, its interval and the verdict."""

from __future__ import annotations

from typing import Any

from harness.analysis.compare import Comparison


def render_comparison(c: Comparison, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"A = {escape(c.a.submission.name)} ({c.a.entry_id}, {len(c.a.replicates.runs)} replicates)\n"  # type: ignore[union-attr]
        f"B = {escape(c.b.submission.name)} ({c.b.entry_id}, {len(c.b.replicates.runs)} replicates)",  # type: ignore[union-attr]
        highlight=False,
    )
    where = (f"track {c.a.track.name}" if c.a.track.name == c.b.track.name
             else f"A on track {c.a.track.name}, B on {c.b.track.name}")  # fmt: skip
    table = Table(title=f"A - B, {where} (95% intervals: seed + evaluation examples, paired)")
    for col in ("aggregate", "A mean ± std", "B mean ± std", "A - B", "95% interval", "verdict"):
        table.add_column(col, justify="left" if col in ("aggregate", "verdict") else "right", no_wrap=col == "verdict")
    primary = c.a.evaluation.primary_aggregate
    for d in c.differences:
        colour = "green" if d.verdict.startswith("A") else "red" if d.verdict.startswith("B") else "yellow"
        table.add_row(
            d.aggregate + (" (ranked by)" if d.aggregate == primary else ""), _pm(d.a.mean, d.a.std),
            _pm(d.b.mean, d.b.std), f"{d.diff:+.4f}", f"[{d.low:+.4f}, {d.high:+.4f}]", f"[{colour}]{d.verdict}[/]",
        )  # fmt: skip
    console.print(table)
    for d in c.differences:
        if d.aggregate == primary:
            console.print(
                f"[bold]{d.aggregate}[/]: A - B = {d.diff:+.4f}, 95% interval [{d.low:+.4f}, {d.high:+.4f}]: "
                f"[bold]{d.verdict}[/]",
                highlight=False,
            )
    for note in sorted({d.note for d in c.differences if d.note}):
        console.print(f"note: {note}")


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f} (1 run)"
