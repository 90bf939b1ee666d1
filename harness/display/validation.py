"""`harness validate` on screen: a `ValidationReport` (harness.submit.report) for people."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from harness.submit.report import ValidationReport


def render_report(report: ValidationReport, console: Console) -> None:
    """The report for people: verdict, figures, class shares (sandbox), problems with their places, warnings."""
    from rich.markup import escape
    from rich.table import Table

    s = report.stats
    verdict = "[bold green]VALID[/]" if report.ok else f"[bold red]INVALID[/] ({report.n_problems} problems)"
    console.print(f"{verdict}  subset {escape(report.subset)} on track [bold]{report.track}[/] (pool {report.pool})")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right", overflow="fold")
    fmt = lambda v: "unknown" if v is None else f"{v:,}"  # noqa: E731
    rows = [
        ("lines read", fmt(s.lines)),
        ("documents (with repeats)", fmt(s.documents)),
        ("unique documents", fmt(s.unique_documents)),
        ("tokens (with repeats, +1 end-of-document each)", fmt(s.tokens)),
        ("unique tokens", fmt(s.unique_tokens)),
        ("share of the pool", f"{s.pool_share:.2%} of {s.pool_documents:,}"),
        ("passes over the subset", "unknown" if s.passes is None else f"{s.passes:.2f} (budget {s.budget_tokens:,})"),
        ("duplicated ids", fmt(s.duplicate_ids)),
        ("edited / outside documents", f"{s.edited_documents:,} / {s.external_documents:,}"),
        ("subset hash", report.subset_hash),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if report.class_shares:
        shares = Table(title="hidden quality classes (sandbox)")
        for col in ("class", "documents", "tokens", "pool"):
            shares.add_column(col, justify="left" if col == "class" else "right")
        for name, v in report.class_shares.items():
            shares.add_row(name, f"{v['documents']:.1%}", f"{v['tokens']:.1%}", f"{v['pool']:.1%}")
        console.print(shares)
    for p in report.problems:
        console.print(f"[red]{escape(p.file)}:{p.line}[/] [bold]{p.code}[/] {escape(p.message)}", highlight=False)
    if report.n_problems > len(report.problems):
        counts = ", ".join(f"{k} {v}" for k, v in report.problem_counts.items())
        console.print(f"... and {report.n_problems - len(report.problems)} more problems ({counts})")
    for w in report.warnings:
        place = f"{w.file}:{w.line}" if w.line else w.file
        console.print(f"[yellow]warning[/] {escape(place)} [bold]{w.code}[/] {escape(w.message)}", highlight=False)
