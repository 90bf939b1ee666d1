"""Pass 1 of tokenize-shuffle (harness.data.tokenize): the stream tokenized and scattered into buckets.

The main process reads the input lines in batches; worker processes (`_Pool`, each with its own tokenizer) parse
and tokenize them; `_Scatter` packs the returned ids in stream order into sequences and appends each to the bucket
of its sort key, journaling every `flush_bytes` so a restarted run goes on from the last journal. The pool and the
progress bars (`_Bars`) serve pass 2 (harness.data.buckets) too.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.inputs import InputFile, iter_lines
from harness.errors import HarnessError
from harness.io.files import write_json_atomic

if TYPE_CHECKING:
    import numpy as np
    from rich.progress import Progress


# ---------------------------------------------------------------------------------------------------------------
# Worker side: each process holds its own tokenizer (built once from the tokenizer JSON).

_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer_json: str, quiet_threads: bool) -> None:
    if quiet_threads:  # one process per core: the tokenizer's own thread pool would oversubscribe the cores
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER.clear()
    _WORKER["json"] = tokenizer_json


def _tokenizer() -> Any:
    if "tok" not in _WORKER:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(_WORKER["json"])
        tok.encode_special_tokens = True  # "<|endoftext|>" in a document is text, never the eot id
        _WORKER["tok"] = tok
    return _WORKER["tok"]


@dataclass(frozen=True)
class _Batch:
    file: int
    first_line: int
    last_line: int
    position: int
    lines: list[bytes]


@dataclass(frozen=True)
class _Encoded:
    batch: _Batch
    tokens: np.ndarray | None
    documents: int
    expanded: int
    text_bytes: int
    error: tuple[int, str] | None = None


def _parse(line: bytes) -> tuple[str, int]:
    from harness.io.reader import loads

    doc_ = loads(line)
    if not isinstance(doc_, dict):
        raise ValueError(f"expected a JSON object, got {type(doc_).__name__}")
    text, repeat = doc_.get("text"), doc_.get("repeat", 1)
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    if type(repeat) is not int or repeat < 1:
        raise ValueError(f"'repeat' must be a positive integer, got {repeat!r}")
    return text, repeat


def _encode(batch: _Batch, eot: int) -> _Encoded:
    """Parse and tokenize one batch of lines into its piece of the stream (ids + eot per document copy)."""
    import numpy as np

    texts, repeats = [], []
    for offset, line in enumerate(batch.lines):
        if not line.strip():
            continue
        try:
            text, repeat = _parse(line)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return _Encoded(batch, None, 0, 0, 0, error=(batch.first_line + offset, str(exc)))
        texts.append(text)
        repeats.append(repeat)
    pieces: list[np.ndarray] = []
    for enc, repeat in zip(_tokenizer().encode_batch_fast(texts, add_special_tokens=False), repeats, strict=True):
        one = enc.ids
        one.append(eot)
        # Copies as a numpy array (4 bytes an id, not a Python list's 8 + objects); validation bounds a
        # document's copies by the track's budget, so this never exceeds what training can consume.
        pieces.append(np.tile(np.array(one, dtype=np.uint32), repeat) if repeat > 1 else np.array(one, np.uint32))
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)
    meta = _Batch(batch.file, batch.first_line, batch.last_line, batch.position, [])  # lines need not travel back
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)
    return _Encoded(meta, ids, len(texts), sum(repeats), text_bytes)


# ---------------------------------------------------------------------------------------------------------------
# Process pool and progress.


class _Pool:
    """Ordered parallel map over worker processes (inline when workers == 1), with bounded work in flight."""

    def __init__(self, workers: int, tokenizer_json: str) -> None:
        self._ex = None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # fork where there is one: spawn re-imports __main__, which breaks `python -` and notebooks. Children
            # build their own tokenizer and turn its thread pool off, so forking after a parent used it is safe.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._ex = ProcessPoolExecutor(
                workers, multiprocessing.get_context(method), initializer=_init_worker, initargs=(tokenizer_json, True)
            )
        else:
            _init_worker(tokenizer_json, False)
        self.workers = workers

    def map(self, fn: Callable[..., Any], items: Iterable[Any], *extra: Any) -> Iterator[Any]:
        if self._ex is None:
            yield from (fn(item, *extra) for item in items)
            return
        from concurrent.futures.process import BrokenProcessPool

        pending: deque[Any] = deque()
        try:
            for item in items:
                pending.append(self._ex.submit(fn, item, *extra))
                if len(pending) >= 2 * self.workers + 1:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise HarnessError(
                "a tokenize worker process died (killed, or out of memory: see `dmesg`); the work finished so far is "
                "kept: re-run the same command to resume"
            ) from None

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)


class _Bars:
    """Rich progress tasks when a Progress is given; silent otherwise."""

    def __init__(self, progress: Progress | None) -> None:
        self._p = progress

    def add(self, description: str, total: float | None, completed: float = 0) -> Any:
        return self._p.add_task(description, total=total, completed=completed) if self._p else None

    def update(self, task: Any, **kwargs: Any) -> None:
        if self._p is not None:
            self._p.update(task, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Pass 1: pack the stream into sequences and scatter them into buckets, journaled.


class _Scatter:
    """Packs stream pieces (in stream order) into sequences and appends each to its key's bucket."""

    def __init__(self, work: Path, seqlen: int, seed: int, n_buckets: int, pad_id: int, flush_bytes: int) -> None:
        import numpy as np

        self.dir, self.journal = work / "buckets", work / "scatter.json"
        self.seqlen, self.seed, self.n_buckets, self.pad_id = seqlen, seed, n_buckets, pad_id
        self.flush_bytes = flush_bytes
        self.state = self._resume()
        if self.state is None:  # nothing (usable) journaled: whatever a crashed run appended is discarded
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
            self.state = {"file": 0, "line": 0, "next_index": 0, "bucket_rows": [0] * n_buckets, "carry": []}
            self.state.update(documents=0, expanded=0, ids=0, text_bytes=0, padding=0, done=False)
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._carry = np.array(self.state["carry"], dtype=np.uint32)

    def _resume(self) -> dict[str, Any] | None:
        """The journaled state, with the buckets truncated to it; None when there is none or it is unusable."""
        if not self.journal.exists():
            return None
        state = json.loads(self.journal.read_text())
        if state["done"]:
            return state
        widths = {"tok": 4 * self.seqlen, "key": 8}
        for b, rows in enumerate(state["bucket_rows"]):
            for kind, width in widths.items():
                path = self._path(b, kind)
                size = path.stat().st_size if path.exists() else 0
                # Buckets are not fsynced (a sync per bucket per flush costs minutes per GB): a bucket shorter
                # than its journal means a machine crash lost page cache, so pass 1 starts over.
                if size < rows * width:
                    return None
                if size > rows * width:  # rows appended after the last journal entry
                    os.truncate(path, rows * width)
        return state

    def _path(self, bucket: int, kind: str) -> Path:
        return self.dir / f"b{bucket:05d}.{kind}"

    def add(self, encoded: _Encoded) -> None:
        import numpy as np

        assert encoded.tokens is not None
        buf = np.concatenate([self._carry, encoded.tokens])
        full = len(buf) // self.seqlen * self.seqlen
        if full:
            self._pending.append(buf[:full].reshape(-1, self.seqlen))
            self._pending_rows += full // self.seqlen
        self._carry = buf[full:].copy()
        s = self.state
        s["documents"] += encoded.documents
        s["expanded"] += encoded.expanded
        s["ids"] += len(encoded.tokens)
        s["text_bytes"] += encoded.text_bytes
        s["file"], s["line"] = encoded.batch.file, encoded.batch.last_line
        if self._pending_rows * self.seqlen * 4 >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Append the pending sequences to their buckets, then journal (data first, so the journal never
        names rows that are not on disk)."""
        import numpy as np

        from harness.data.shuffle import bucket_of, sort_keys

        s = self.state
        if self._pending:
            seqs = np.concatenate(self._pending)
            keys = sort_keys(self.seed, np.arange(s["next_index"], s["next_index"] + len(seqs), dtype=np.uint64))
            buckets = bucket_of(keys, self.n_buckets).astype(np.int64)
            order = np.argsort(buckets, kind="stable")  # within a bucket, rows stay in stream order
            counts = np.bincount(buckets, minlength=self.n_buckets)
            start = 0
            for b in np.flatnonzero(counts):
                rows = order[start : start + counts[b]]
                start += counts[b]
                with open(self._path(b, "tok"), "ab") as ft, open(self._path(b, "key"), "ab") as fk:
                    seqs[rows].tofile(ft)
                    keys[rows].tofile(fk)
                s["bucket_rows"][b] += int(counts[b])
            s["next_index"] += len(seqs)
            self._pending, self._pending_rows = [], 0
        s["carry"] = self._carry.tolist()
        write_json_atomic(self.journal, s)

    def finish(self) -> None:
        """Pad the stream's last short sequence, flush, and mark pass 1 done."""
        import numpy as np

        if len(self._carry):
            pad = self.seqlen - len(self._carry)
            self._pending.append(np.concatenate([self._carry, np.full(pad, self.pad_id, np.uint32)]).reshape(1, -1))
            self._pending_rows += 1
            self._carry = self._carry[:0]
            self.state["padding"] = pad
        self.state["done"] = True
        self.flush()


def _batches(files: Sequence[InputFile], start_file: int, start_line: int, batch_bytes: int) -> Iterator[_Batch]:
    """Lines of every file from (start_file, after start_line) in batches of about `batch_bytes` of text."""
    for index in range(start_file, len(files)):
        lines: list[bytes] = []
        size, first = 0, 0
        number, position = start_line if index == start_file else 0, 0
        for number, line, position in iter_lines(files[index], skip=start_line if index == start_file else 0):
            if not lines:
                first = number
            lines.append(line)
            size += len(line)
            if size >= batch_bytes:
                yield _Batch(index, first, number, position, lines)
                lines, size = [], 0
        if lines:
            yield _Batch(index, first, number, position, lines)


def _scatter(
    files: Sequence[InputFile], scatter: _Scatter, pool: _Pool, eot: int, bars: _Bars, batch_bytes: int
) -> None:
    """Pass 1: every batch from where the journal left off, tokenized by the pool, packed and scattered in order."""
    s = scatter.state
    done_before = [sum(f.size for f in files[:i]) for i in range(len(files))]
    task = bars.add(
        "tokenize: read + pack", total=sum(f.size for f in files), completed=done_before[s["file"]] if files else 0
    )
    for encoded in pool.map(_encode, _batches(files, s["file"], s["line"], batch_bytes), eot):
        if encoded.error is not None:
            line, message = encoded.error
            raise HarnessError(f"{files[encoded.batch.file].url}, line {line}: {message}")
        scatter.add(encoded)
        bars.update(task, completed=done_before[encoded.batch.file] + encoded.batch.position)
    scatter.finish()
    bars.update(task, completed=sum(f.size for f in files))
