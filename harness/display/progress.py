"""Rich progress bars: one factory for every bar the harness shows.

`make_progress` is a command's display (a line per task with elapsed time and ETA); `progress_bar` is what library
functions take: the caller's Progress when given one, else a fresh transient bar for the duration of the call.
This module imports nothing of the harness, so the library may use it without depending on the commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress


def make_progress(console: Any = None, *, transient: bool = False) -> Progress:
    """A rich Progress with a spinner, description, bar, count, elapsed time and ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=transient,
    )  # fmt: skip


@contextlib.contextmanager
def progress_bar(progress: Progress | None) -> Iterator[Progress]:
    """The caller's rich Progress, or a new transient one for the duration of the block."""
    if progress is not None:
        yield progress
        return
    with make_progress(transient=True) as fresh:
        yield fresh
