"""Parsing a results store's files into records, each file's problem reported by name, in forked workers for
large stores (validation is the slow part of loading 10,000 records).

The functions the workers call are module-level: a forked worker inherits this module's state (`_PARSE_STATE`)
and is never sent it by pickling.
"""

import errno
import os
import stat
import sys
from dataclasses import dataclass
from typing import Any

from harness.records.schema import Record, RecordError


@dataclass(frozen=True)
class StoreProblem:
    """A file in the store that was skipped, and why."""

    path: str
    message: str


#: Largest file of a results store that is read (a record or an experiment summary): 16 MiB. A record is about
#: 15 KB, one with replicates and their per-example outcomes of a 50-task suite about 1-2 MB; the bound stops one
#: planted file from taking the memory of every parse worker (8 of them read at once).
MAX_FILE_BYTES = 16 << 20


class UnreadableFile(OSError):
    """A store file that is not read: not a regular file, a link, or too large (the message says which)."""


def read_regular(path: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path`, of at most `limit` bytes; `UnreadableFile` for anything else.

    The file is opened without following a symbolic link (O_NOFOLLOW: a link may lead out of the store, or to
    /dev/zero) and without waiting (O_NONBLOCK: opening a FIFO would wait for a writer forever); what was opened is
    then checked with fstat (a regular file, at most `limit` bytes), so a file swapped after the check is never
    read, and at most `limit` + 1 bytes are read in case it grows meanwhile."""
    limit = MAX_FILE_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise UnreadableFile("a symbolic link; a results store holds only regular files") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise UnreadableFile(f"{info.st_size:,} bytes; a store file holds at most {limit:,}")
        chunks, size = [], 0
        while chunk := os.read(fd, min(limit + 1 - size, 1 << 20) or 1):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UnreadableFile(f"grew past {limit:,} bytes while read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "a special file"


def _path_in(root: str, entry: str) -> str:
    return f"{root}/{entry.rsplit('-', 1)[0]}/{entry}.json"


#: In place of a local file's bytes: the worker that parses the file reads it (in parallel, not all in the parent).
_UNREAD = object()
_Parsed = tuple["Record | StoreProblem", bytes | None]


def _parse_one(path: str, shown: str, blob: Any, root: str) -> _Parsed:
    """The record in `blob` (or the problem), with its bytes."""
    if blob is _UNREAD:
        try:
            blob = read_regular(path)
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
