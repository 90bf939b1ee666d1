"""The deletion rule of filtering tracks: a given `text` must be the pool text with characters deleted only.

A deletion is a subsequence of the original, so every line or substring filter passes and nothing invented does.
The check is linear in the length of the original; `first_difference` says where a text breaks the rule.
"""

from __future__ import annotations


def is_deletion(original: str, edited: str) -> bool:
    """Whether `edited` is `original` with characters deleted (a subsequence); linear time.

    The greedy subsequence match (each character at its earliest possible place) is exact; long runs that
    match in place are consumed with slice comparisons, so line and substring deletions cost a few C calls.
    """
    return len(edited) <= len(original) and _not_deleted_at(original, edited) is None


def _not_deleted_at(original: str, edited: str) -> int | None:
    """The first character of `edited` that the greedy match cannot place in `original` (None: all placed).
    At most len(original) + 1 steps, whatever the length of `edited`."""
    n = len(edited)
    i = j = 0
    while i < n:
        run = _common_run(edited, i, original, j)
        i, j = i + run, j + run
        if i == n:
            return None
        j = original.find(edited[i], j)
        if j < 0:
            return i
        j += 1
        i += 1
    return None


def _common_run(a: str, i: int, b: str, j: int) -> int:
    """Length of the longest common prefix of a[i:] and b[j:] (doubling, then halving)."""
    run, size = 0, 1
    while True:
        chunk = a[i + run : i + run + size]
        if not chunk or not b.startswith(chunk, j + run):
            break
        run += len(chunk)
        size *= 2
    while size > 1:
        size //= 2
        chunk = a[i + run : i + run + size]
        if chunk and b.startswith(chunk, j + run):
            run += len(chunk)
    return run


def first_difference(original: str, text: str) -> str:
    """Where a text stops being a deletion of the original, for the report."""
    i = _not_deleted_at(original, text)
    if i is None:
        return '"text" is not the pool text with characters deleted'
    snippet = text[max(0, i - 20) : i + 20]
    return (f'"text" is not the pool text with characters deleted: {text[i]!r} at character {i} ({snippet!r}) is '
            "added or moved")  # fmt: skip
