"""User-facing errors: one clear message naming the input, the place and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """An error caused by the user's input or environment; the CLI prints it and exits `exit_code`."""

    exit_code: int = 1


class UsageError(HarnessError):
    """A wrong command line: unknown names, missing files, bad options (exit code 2)."""

    exit_code = 2


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UsageError:
    """An 'unknown <kind>' error that suggests the closest known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UsageError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}.")
