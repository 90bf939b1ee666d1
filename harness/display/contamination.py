"""Contamination on screen: a `ContaminationReport` (harness.submit.decontam) for people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.submit.decontam import ContaminationReport


def render_contamination(report: ContaminationReport, rule: str, console: Any) -> None:
    """The report for people: a verdict line, then per contaminated task its items and the documents quoting them."""
    from rich.markup import escape

    colour = "red" if report.contaminated else "green"
    console.print(f"[bold {colour}]{escape(report.summary())}[/] (rule: {rule})", highlight=False)
    for task, t in report.tasks.items():
        for item_id, docs in list(t["documents"].items())[:10]:
            console.print(f"  {escape(task)} {escape(item_id)}: quoted by {', '.join(docs)}", highlight=False)
        if len(t["documents"]) > 10:
            console.print(f"  {escape(task)}: ... and {len(t['documents']) - 10} more items")
