"""The membership index of a pool: sorted 128-bit ids and where each document lives, as memory-mapped arrays.

Layout of an index folder (every array has one row per document, rows sorted by id):

    hi.npy, lo.npy      uint64   the id's first and last 8 bytes (big-endian halves)
    shard.npy           uint32   position of the shard in meta.json's `shards`
    offset.npy          uint64   byte offset of the JSON line in the shard's uncompressed stream
    length.npy          uint32   length of the JSON line in bytes, without the newline
    line.npy            uint32   0-based line number in the shard
    tokens.npy          uint32   (optional) tokens of the text under meta.json's `tokenizer`
    label.npy           uint8    (optional, sandbox) hidden quality class, an index into meta.json's `classes`
    meta.json           written last: its presence means the index is complete
    parts/NNNNN.npy     per-shard partial arrays, each with a completion marker parts/NNNNN.json

Building streams every shard once (in parallel over shards, memory bounded by one shard per worker); a rerun
skips shards whose marker exists, then merges. Lookups are binary searches (`numpy.searchsorted`) over `hi`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from harness.display.progress import progress_bar
from harness.errors import HarnessError
from harness.io.files import compression_of, open_raw, write_json_atomic
from harness.pools.ids import digest_to_u64, ids_to_u64, is_id

if TYPE_CHECKING:
    from rich.progress import Progress

#: Row dtype of a per-shard partial file.
PART_DTYPE = np.dtype(
    [("hi", "<u8"), ("lo", "<u8"), ("offset", "<u8"), ("length", "<u4"), ("line", "<u4"), ("tokens", "<u4")]
)
#: Columns of a merged index and their dtypes.
COLUMNS: dict[str, np.dtype] = {
    "hi": np.dtype(np.uint64),
    "lo": np.dtype(np.uint64),
    "shard": np.dtype(np.uint32),
    "offset": np.dtype(np.uint64),
    "length": np.dtype(np.uint32),
    "line": np.dtype(np.uint32),
}
NO_LABEL = 255
INDEX_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class ShardTask:
    """What one worker needs to index one shard (picklable)."""

    number: int
    url: str
    part_dir: str
    id_scheme: str
    id_field: str
    text_field: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    tokenizer_file: str | None = None


class _HashingReader(io.RawIOBase):
    """Passes a stream through while hashing it, so one read gives the stored file's sha256 too."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.sha256 = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)


def _decompressed(hashing: _HashingReader, url: str) -> IO[bytes]:
    kind = compression_of(url)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=io.BufferedReader(hashing, 1 << 20))  # type: ignore[arg-type]
    if kind == "zstd":
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(hashing), 1 << 20)  # type: ignore[arg-type]
    return io.BufferedReader(hashing, 1 << 20)


@cache
def _tokenizer(path: str) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.encode_special_tokens = True  # as harness.tokenizer does: special strings in text are plain text
    return tok


#: Texts longer than this are counted in pieces, so memory stays a small multiple of the text (a tokenizer's
#: encoding of one 50 MB text holds gigabytes of offsets and token strings).
LONG_TEXT_CHARS = 1 << 20


def count_tokens(tokenizer: Any, texts: list[str]) -> list[int]:
    """Tokens of each text (without the end-of-document token), batch-encoded."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    if any(len(t) > LONG_TEXT_CHARS for t in texts):
        return [sum(count_tokens(tokenizer, _pieces(t))) if len(t) > LONG_TEXT_CHARS else count_tokens(
            tokenizer, [t])[0] for t in texts]  # fmt: skip
    return [len(e.ids) for e in encode(texts, add_special_tokens=False)]


def _pieces(text: str) -> list[str]:
    """A long text cut before single spaces between non-spaces (where byte-level BPE pre-tokenizers split
    anyway, so the counts add up exactly); a text without such a place is cut where it must be."""
    pieces, start = [], 0
    while len(text) - start > LONG_TEXT_CHARS:
        end = start + LONG_TEXT_CHARS
        cut = end
        for probe in range(end, max(start + 1, end - 4096), -1):
            if text[probe] == " " and not text[probe - 1].isspace() and not text[probe + 1 : probe + 2].isspace():
                cut = probe
                break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def index_shard(task: ShardTask) -> dict[str, Any]:
    """Stream one shard and write its partial index and completion marker; returns the marker's content."""
    part = Path(task.part_dir) / f"{task.number:05d}.npy"
    rows: list[tuple[int, int, int, int]] = []  # offset, length, line, tokens
    keys: list[Any] = []  # hex ids or 16-byte digests
    texts: list[str] = []
    tokens: list[int] = []
    tok = _tokenizer(task.tokenizer_file) if task.tokenizer_file else None
    content, offset = hashlib.sha256(), 0
    with open_raw(task.url, task.storage_options) as raw:
        hashing = _HashingReader(raw)
        stream = _decompressed(hashing, task.url)
        for number, line in enumerate(stream):
            content.update(line)
            start, offset = offset, offset + len(line)
            body = line.rstrip(b"\r\n")
            if not body.strip():
                continue
            if task.id_scheme == "sha256-line" and tok is None:
                keys.append(hashlib.sha256(body).digest()[:16])
            else:
                doc = _parse_pool_line(body, task, number)
                if task.id_scheme == "sha256-line":
                    keys.append(hashlib.sha256(body).digest()[:16])
                else:
                    keys.append(doc[task.id_field])
                if tok is not None:
                    texts.append(doc[task.text_field])
                    if len(texts) >= 1024:
                        tokens += count_tokens(tok, texts)
                        texts.clear()
            rows.append((start, len(body), number, 0))
        while hashing.read(1 << 20):  # hash any trailing bytes the decompressor did not need
            pass
    if tok is not None and texts:
        tokens += count_tokens(tok, texts)
    out = np.zeros(len(rows), PART_DTYPE)
    if rows:
        table = np.array(rows, dtype=np.uint64)
        out["offset"], out["length"], out["line"] = table[:, 0], table[:, 1], table[:, 2]
        hi, lo = ids_to_u64(keys) if task.id_scheme == "field" else digest_to_u64(keys)
        out["hi"], out["lo"] = hi, lo
        if tok is not None:
            out["tokens"] = tokens
        out.sort(order=["hi", "lo"])
    tmp = part.with_name(part.stem + ".tmp.npy")
    np.save(tmp, out)
    tmp.replace(part)
    marker = {
        "url": task.url,
        "documents": len(rows),
        "bytes": offset,
        "content_sha256": content.hexdigest(),
        "sha256": hashing.sha256.hexdigest(),
        "tokens": tok is not None,
    }
    write_json_atomic(part.with_suffix(".json"), marker)
    return marker


def _parse_pool_line(body: bytes, task: ShardTask, number: int) -> dict[str, Any]:
    where = f"{task.url} line {number + 1}"
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise HarnessError(f"{where}: not a JSON line ({exc}); the pool shard is damaged") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get(task.text_field), str):
        raise HarnessError(f"{where}: expected an object with a string {task.text_field!r} field")
    if task.id_scheme == "field" and not is_id(doc.get(task.id_field)):
        raise HarnessError(f"{where}: {task.id_field!r} must be 32 hex digits, got {doc.get(task.id_field)!r}")
    return doc


def build_index(
    index_dir: Path,
    tasks: Sequence[ShardTask],
    *,
    tokenizer: dict[str, str] | None = None,
    labels: Callable[[MembershipIndex], tuple[np.ndarray, list[str]]] | None = None,
    extra_meta: dict[str, Any] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> MembershipIndex:
    """Index every shard (skipping those already done), merge, write meta.json last; returns the index.

    `tokenizer` ({name, sha256}) is recorded when the tasks count tokens; `labels` computes the label column
    from the merged index (the sandbox's hidden classes).
    """
    part_dir = index_dir / "parts"
    part_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / "meta.json").unlink(missing_ok=True)
    markers: dict[int, dict[str, Any]] = {}
    pending = []
    for task in tasks:
        marker = part_dir / f"{task.number:05d}.json"
        done = json.loads(marker.read_text()) if marker.is_file() else None
        if done and done["url"] == task.url and done["tokens"] == (task.tokenizer_file is not None):
            markers[task.number] = done
        else:
            pending.append(task)
    with progress_bar(progress) as bar:
        job = bar.add_task(f"indexing {len(tasks)} shards", total=len(tasks), completed=len(markers))
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(pending)))
        if n_workers == 1:
            for task in pending:
                markers[task.number] = index_shard(task)
                bar.advance(job)
        else:
            import multiprocessing

            # fork: workers start instantly and need nothing from __main__ (spawn fails for `python -`)
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
                futures = {pool.submit(index_shard, t): t.number for t in pending}
                for fut in as_completed(futures):
                    markers[futures[fut]] = fut.result()
                    bar.advance(job)
        bar.update(job, description="merging the index")
        meta = _merge(index_dir, [t.number for t in tasks], markers, tokenizer=tokenizer, extra=extra_meta or {})
        bar.remove_task(job)
    index = MembershipIndex(index_dir)
    if labels is not None:
        column, classes = labels(index)
        np.save(index_dir / "label.npy", column.astype(np.uint8))
        meta["classes"] = classes
    write_json_atomic(index_dir / "meta.json", meta)
    return MembershipIndex(index_dir)


def _merge(
    index_dir: Path, numbers: list[int], markers: dict[int, dict[str, Any]], *, tokenizer: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """Concatenate the sorted partial files and sort by id; memory is a few arrays of the pool's size."""
    parts = [np.load(index_dir / "parts" / f"{n:05d}.npy", mmap_mode="r") for n in numbers]
    total = sum(len(p) for p in parts)
    hi = np.concatenate([p["hi"] for p in parts]) if parts else np.zeros(0, np.uint64)
    lo = np.concatenate([p["lo"] for p in parts]) if parts else np.zeros(0, np.uint64)
    order = np.lexsort((lo, hi))
    columns = dict(COLUMNS, **({"tokens": np.dtype(np.uint32)} if tokenizer else {}))
    for name, dtype in columns.items():
        if name == "hi":
            full = hi
        elif name == "lo":
            full = lo
        elif name == "shard":
            full = np.concatenate([np.full(len(p), i, np.uint32) for i, p in enumerate(parts)] or [np.zeros(0)])
        else:
            full = np.concatenate([p[name] for p in parts]) if parts else np.zeros(0)
        out = np.lib.format.open_memmap(index_dir / f"{name}.npy", mode="w+", dtype=dtype, shape=(total,))
        np.take(full.astype(dtype, copy=False), order, out=out)
        out.flush()
        del out, full
    sorted_hi, sorted_lo = hi[order], lo[order]
    duplicates = int(np.count_nonzero((sorted_hi[1:] == sorted_hi[:-1]) & (sorted_lo[1:] == sorted_lo[:-1])))
    return {
        "format": INDEX_FORMAT,
        "documents": int(total),
        "duplicate_ids": duplicates,
        "shards": [markers[n] for n in numbers],
        "tokenizer": tokenizer,
        **extra,
    }


class MembershipIndex:
    """A finished index, memory-mapped: binary-search lookups of ids, their locations, optional columns."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.meta: dict[str, Any] = json.loads((self.directory / "meta.json").read_text()) if self.complete else {}
        cols = {name: np.load(self.directory / f"{name}.npy", mmap_mode="r") for name in COLUMNS}
        self.hi, self.lo = cols["hi"], cols["lo"]
        self.shard, self.offset, self.length, self.line = cols["shard"], cols["offset"], cols["length"], cols["line"]
        tokens, labels = self.directory / "tokens.npy", self.directory / "label.npy"
        self.tokens: np.ndarray | None = np.load(tokens, mmap_mode="r") if tokens.is_file() else None
        self.labels: np.ndarray | None = np.load(labels, mmap_mode="r") if labels.is_file() else None

    @property
    def complete(self) -> bool:
        return (self.directory / "meta.json").is_file()

    def __len__(self) -> int:
        return len(self.hi)

    @property
    def shard_urls(self) -> list[str]:
        return [s["url"] for s in self.meta.get("shards", [])]

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes", []))

    def lookup(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Row of each (hi, lo) id in the index, -1 where absent (the first row when an id repeats)."""
        n = len(self.hi)
        rows = np.full(len(hi), -1, np.int64)
        if n == 0 or len(hi) == 0:
            return rows
        left = np.searchsorted(self.hi, hi, "left")
        inside = np.flatnonzero(left < n)
        cand = left[inside]
        same_hi = self.hi[cand] == hi[inside]
        exact = same_hi & (self.lo[cand] == lo[inside])
        rows[inside[exact]] = cand[exact]
        # Ids sharing their first 64 bits with another id (rare): search the run of equal `hi` by `lo`.
        for q, start in zip(inside[same_hi & ~exact], cand[same_hi & ~exact], strict=True):
            stop = int(np.searchsorted(self.hi, hi[q], "right"))
            pos = start + int(np.searchsorted(self.lo[start:stop], lo[q], "left"))
            if pos < stop and self.lo[pos] == lo[q]:
                rows[q] = pos
        return rows
