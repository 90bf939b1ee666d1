"""`harness verify` on screen: every check with what matched and what did not, then the level reached."""

from __future__ import annotations

from typing import Any


def render_outcome(outcome: Any, console: Any) -> None:
    """Each check (ok or MISMATCH, its level, what and how), the notes, and the verdict line."""
    from rich.markup import escape

    for c in outcome.checks:
        mark = "[green]ok[/]      " if c.ok else "[bold red]MISMATCH[/]"
        console.print(f"{mark} {c.level:5} {escape(c.what)}: {escape(c.detail)}")
    for note in outcome.notes:
        console.print(f"[yellow]note[/]     {escape(note)}")
    bad = len(outcome.failed())
    verdict = "[green]verified[/]" if outcome.ok else f"[bold red]{bad} mismatches[/]"
    console.print(f"{verdict}: level {outcome.level} (asked: {outcome.requested}) of bundle {outcome.bundle}")
