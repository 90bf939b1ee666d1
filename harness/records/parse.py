"""Parsing a results store's files into records, each file's problem reported by name, in forked workers for
large stores (validation is the slow part of loading 10,000 records).

The functions the workers call are module-level: a forked worker inherits this module's state (`_PARSE_STATE`)
and is never sent it by pickling.
"""

import os
import sys
from dataclasses import dataclass
from typing import Any

from harness.records.schema import Record, RecordError


@dataclass(frozen=True)
class StoreProblem:
    """A file in the store that was skipped, and why."""

    path: str
    message: str


def _path_in(root: str, entry: str) -> str:
    return f"{root}/{entry.rsplit('-', 1)[0]}/{entry}.json"


#: In place of a local file's bytes: the worker that parses the file reads it (in parallel, not all in the parent).
_UNREAD = object()
_Parsed = tuple["Record | StoreProblem", bytes | None]


def _parse_one(path: str, shown: str, blob: Any, root: str) -> _Parsed:
    """The record in `blob` (or the problem), with its bytes."""
    if blob is _UNREAD:
        try:
            with open(path, "rb") as fh:
                blob = fh.read()
        except OSError as exc:
            blob = exc
    if isinstance(blob, BaseException) or blob is None:
        return StoreProblem(shown, f"cannot read: {blob}"), None
    try:
        record = Record.from_json(blob, shown)
    except RecordError as exc:
        return StoreProblem(shown, str(exc)), None
    if _path_in(root, record.entry_id) != path:
        where = f"{record.entry_id}.json in folder {record.track.name}/"
        return StoreProblem(shown, f"holds entry {record.entry_id!r}; expected at {where}"), None
    return record, blob


#: Stores with at least this many files are parsed in forked worker processes (validation is the slow part).
PARALLEL_PARSE_ABOVE = 2000
_PARSE_STATE: tuple[list[tuple[str, str, Any]], str] | None = None


def _parse_span(span: tuple[int, int]) -> list[_Parsed]:
    items, root = _PARSE_STATE  # type: ignore[misc]  # inherited from the parent by fork, never pickled
    return [_parse_one(*item, root) for item in items[span[0] : span[1]]]


def _parse_workers(n: int) -> int:
    """Processes to parse `n` files: one per CPU (at most 8) for large stores where fork is available, else one."""
    if n < PARALLEL_PARSE_ABOVE or sys.platform != "linux":
        return 1
    return min(8, os.cpu_count() or 1)


def _parse_items(items: list[tuple[str, str, Any]], root: str) -> list[_Parsed]:
    global _PARSE_STATE
    workers = _parse_workers(len(items))
    if workers == 1:
        return [_parse_one(*item, root) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(100, len(items) // (workers * 4))
    spans = [(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]
    _PARSE_STATE = (items, root)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return [result for part in pool.map(_parse_span, spans) for result in part]
    finally:
        _PARSE_STATE = None
