"""Tokenize + shuffle: documents in, open_lm webdataset shards out (DCLM's tokenize-shuffle step).

Semantics (a pure function of the inputs in the given order, the tokenizer, the context and the seed):

1. The stream is every document of every input file, in input order (files in the order given, a folder's files
   in name order, lines in file order), each document `repeat` times in a row, each copy's token ids followed by
   the end-of-document id. Special-token strings inside the text are encoded as text.
2. The stream is cut into sequences of context + 1 ids; only the stream's final short sequence is padded with
   the pad id. (DCLM's Rust tool pads the end of every input file; one stream means one padded sequence per
   dataset, whatever way the validation step splits the subset into files.)
3. Sequence i gets the sort key `sort_keys(seed, i)`; the output is the sequences in key order, cut into shards
   of `shard_sequences` (the last shard holds the rest); the member of the sequence at output position p is
   `{p:012d}.json.gz`.

Nothing else (workers, bucket count, batch sizes, crashes and restarts) changes a byte of the output.

How (two passes over local disk, bounded memory, like DCLM's tokshuf-rs):

- pass 1 (scatter): the main process reads the inputs; worker processes parse and tokenize batches of lines;
  the main process packs the returned ids in stream order and appends each sequence to the bucket of its key.
  A journal written atomically every ~32 MB of sequences lets a restarted run truncate the buckets to the last
  journal and go on from the line it names.
- pass 2a (sort): each bucket is sorted by key (in parallel); a sorted bucket file appears atomically.
- pass 2b (write): workers encode chunks of output rows read from the sorted buckets (JSON + gzip, in
  parallel); the main process writes each shard's tar once its chunks are in, atomically, then marks it.
- the manifest and `stats.json` (the completion marker) are written last; the work folder is removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import doc, from_dict
from harness.data import DEFAULT_SHARD_SEQUENCES, FORMAT_VERSION, MANIFEST_NAME, STATS_NAME, shard_name
from harness.data.inputs import InputFile, expand_inputs, iter_lines
from harness.errors import HarnessError
from harness.io.files import write_json_atomic

if TYPE_CHECKING:
    import numpy as np
    from rich.progress import Progress

    from harness.tracks import TokenizerSpec, Track

#: Text per tokenization batch sent to a worker.
BATCH_BYTES = 1 << 20
#: Packed sequences held in memory before they are appended to the buckets (and the journal is written).
FLUSH_BYTES = 32 << 20
#: Target bucket size; a bucket over MAX_SORT_BYTES is sorted in key sub-ranges. An in-memory sort holds a bucket
#: twice (read + permuted copy), so a sorting worker peaks near 2 x MAX_SORT_BYTES whatever the input size.
BUCKET_BYTES = 32 << 20
MAX_SORT_BYTES = 64 << 20
MAX_BUCKETS = 1024


@dataclass(frozen=True, kw_only=True)
class TokenizeStats:
    """What a tokenize-shuffle run wrote (`stats.json`)."""

    format_version: int = doc("harness.data.FORMAT_VERSION of the writer.")
    sequences: int = doc("Sequences written (each context + 1 ids).")
    tokens: int = doc("Ids written: sequences x (context + 1), padding included.")
    text_tokens: int = doc("Ids of document text (repeats expanded, end-of-document ids excluded).")
    eot_tokens: int = doc("End-of-document ids: one per document copy.")
    padding_tokens: int = doc("Pad ids completing the stream's last sequence.")
    documents: int = doc("Documents read (input lines that are not blank).")
    documents_expanded: int = doc("Documents after expanding `repeat`.")
    text_bytes: int = doc("UTF-8 bytes of document text read (repeats not expanded).")
    shards: int = doc("Shard files written.")
    shard_sequences: int = doc("Sequences per shard (the last one may hold fewer, or the rest too: `merge_rest`).")
    context: int = doc("Training context; stored sequences hold context + 1 ids.")
    seed: int = doc("Seed of the shuffle.")
    tokenizer: str = doc("Tokenizer name.")
    tokenizer_sha256: str = doc("sha256 of the tokenizer.json used.")
    eot_id: int = doc("End-of-document id.")
    pad_id: int = doc("Pad id.")
    subset_hash: str = doc("Hash of the canonical subset these documents came from ('' when not given).")
    input_files: int = doc("Input files read.")
    fingerprint: str = doc("sha256 of everything that determines the output (inputs, tokenizer, parameters).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _sort_job(args: tuple[str, str, str, int, int]) -> int:
    from harness.data.shuffle import sort_bucket

    tok, key, out, seqlen, max_rows = args
    return sort_bucket(Path(tok), Path(key), Path(out), seqlen, max_rows)


def _encode_rows(args: tuple[list[tuple[str, int, int]], int]) -> list[bytes]:
    """Read one chunk of output rows from the sorted buckets and encode each as a member (JSON + gzip)."""
    from harness.data.shuffle import encode_sequence, read_rows

    pieces, seqlen = args
    return [encode_sequence(row) for row in read_rows(pieces, seqlen)]


# ---------------------------------------------------------------------------------------------------------------
# Helpers: output files, process pool, progress.


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _local_path(url: str) -> Path:
    return Path(url.removeprefix("file://"))


@contextmanager
def _atomic_output(url: str) -> Iterator[Any]:
    """A binary file handle whose content appears at `url` only once complete (rename locally; object stores
    publish an upload only when it is closed)."""
    if _is_local(url):
        path = _local_path(url)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        import fsspec

        with fsspec.open(url, "wb") as fh:
            yield fh


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
        pending: deque[Any] = deque()
        for item in items:
            pending.append(self._ex.submit(fn, item, *extra))
            if len(pending) >= 2 * self.workers + 1:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

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

    def __init__(self, work: Path, seqlen: int, seed: int, n_buckets: int, pad_id: int) -> None:
        import numpy as np

        self.dir, self.journal = work / "buckets", work / "scatter.json"
        self.seqlen, self.seed, self.n_buckets, self.pad_id = seqlen, seed, n_buckets, pad_id
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
        if self._pending_rows * self.seqlen * 4 >= FLUSH_BYTES:
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


def _batches(files: Sequence[InputFile], start_file: int, start_line: int) -> Iterator[_Batch]:
    """Lines of every file from (start_file, after start_line) in batches of about BATCH_BYTES of text."""
    for index in range(start_file, len(files)):
        lines: list[bytes] = []
        size, first = 0, 0
        number, position = start_line if index == start_file else 0, 0
        for number, line, position in iter_lines(files[index], skip=start_line if index == start_file else 0):
            if not lines:
                first = number
            lines.append(line)
            size += len(line)
            if size >= BATCH_BYTES:
                yield _Batch(index, first, number, position, lines)
                lines, size = [], 0
        if lines:
            yield _Batch(index, first, number, position, lines)


def _scatter(files: Sequence[InputFile], scatter: _Scatter, pool: _Pool, eot: int, bars: _Bars) -> None:
    s = scatter.state
    done_before = [sum(f.size for f in files[:i]) for i in range(len(files))]
    task = bars.add(
        "tokenize: read + pack", total=sum(f.size for f in files), completed=done_before[s["file"]] if files else 0
    )
    for encoded in pool.map(_encode, _batches(files, s["file"], s["line"]), eot):
        if encoded.error is not None:
            line, message = encoded.error
            raise HarnessError(f"{files[encoded.batch.file].url}, line {line}: {message}")
        scatter.add(encoded)
        bars.update(task, completed=done_before[encoded.batch.file] + encoded.batch.position)
    scatter.finish()
    bars.update(task, completed=sum(f.size for f in files))


# ---------------------------------------------------------------------------------------------------------------
# The step.


def _estimate_buckets(files: Sequence[InputFile], seqlen: int) -> int:
    """Buckets of about BUCKET_BYTES, from the input sizes (a guess: any count gives the same output)."""
    expansion = {".gz": 4.0, ".zst": 5.0, ".zstd": 5.0}
    text = sum(f.size * next((v for k, v in expansion.items() if f.url.endswith(k)), 1.0) for f in files)
    return max(1, min(MAX_BUCKETS, math.ceil(text / 3 * 4 / BUCKET_BYTES)))  # ~3 bytes/token, 4 bytes/id


def _default_work_dir(out_dir: str) -> Path:
    if _is_local(out_dir):
        return _local_path(out_dir) / "_work"
    from harness.resources import harness_home

    return harness_home() / "tokenize-work" / hashlib.sha256(out_dir.encode()).hexdigest()[:16]


def _existing_stats(out_dir: str, fingerprint: str) -> TokenizeStats | None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(out_dir)
    stats_path = f"{path.rstrip('/')}/{STATS_NAME}"
    if not fs.exists(stats_path):
        return None
    stats = from_dict(TokenizeStats, json.loads(fs.cat_file(stats_path)), f"{out_dir}/{STATS_NAME}")
    if stats.fingerprint != fingerprint:
        raise HarnessError(
            f"{out_dir} already holds tokenized data from other inputs or settings (its {STATS_NAME} has "
            f"fingerprint {stats.fingerprint[:12]}, this run {fingerprint[:12]}); choose another output folder or "
            "delete it"
        )
    return stats


def _sort_buckets(scatter: _Scatter, work: Path, pool: _Pool, bars: _Bars) -> list[tuple[Path, int]]:
    """Pass 2a: every non-empty bucket sorted by key; returns (sorted file, rows) in bucket order."""
    sorted_dir = work / "sorted"
    sorted_dir.mkdir(exist_ok=True)
    seqlen = scatter.seqlen
    out = [(sorted_dir / f"b{b:05d}.tok", rows) for b, rows in enumerate(scatter.state["bucket_rows"]) if rows]
    todo = [
        (str(scatter._path(int(p.stem[1:]), "tok")), str(scatter._path(int(p.stem[1:]), "key")), str(p), seqlen)
        for p, _ in out
        if not p.exists()
    ]
    task = bars.add("tokenize: sort buckets", total=len(out), completed=len(out) - len(todo))
    max_rows = max(1, MAX_SORT_BYTES // (4 * seqlen))
    for (tok, key, _, _), _rows in zip(todo, pool.map(_sort_job, [(*t, max_rows) for t in todo]), strict=True):
        Path(tok).unlink()
        Path(key).unlink()
        bars.update(task, advance=1)
    return out


#: Output rows per encoding job: shards are encoded in chunks so that few shards still keep every worker busy.
CHUNK_ROWS = 1024


@dataclass(frozen=True)
class _Shard:
    url: str
    marker: Path
    first: int
    rows: int
    chunks: list[list[tuple[str, int, int]]]


def _shards(
    buckets: list[tuple[Path, int]], total: int, per_shard: int, out_dir: str, work: Path, merge_rest: bool = False
) -> list[_Shard]:
    """Every shard with the slices of the sorted buckets that hold its output positions, chunk by chunk; with
    `merge_rest` the last full shard also takes the rest (no shard is shorter than `per_shard` unless it is the
    only one)."""
    starts = [sum(rows for _, rows in buckets[:i]) for i in range(len(buckets))]

    def pieces(lo: int, hi: int) -> list[tuple[str, int, int]]:
        return [
            (str(path), max(lo, s) - s, min(hi, s + rows) - s)
            for (path, rows), s in zip(buckets, starts, strict=True)
            if s < hi and s + rows > lo
        ]

    shards = []
    count = max(1, total // per_shard) if merge_rest else math.ceil(total / per_shard)
    for k in range(count):
        lo, hi = k * per_shard, total if k == count - 1 else min(total, (k + 1) * per_shard)
        chunks = [pieces(a, min(hi, a + CHUNK_ROWS)) for a in range(lo, hi, CHUNK_ROWS)]
        name = shard_name(k)
        shards.append(_Shard(f"{out_dir.rstrip('/')}/{name}.tar", work / "done" / name, lo, hi - lo, chunks))
    return shards


def _write_shards(shards: list[_Shard], pool: _Pool, seqlen: int, bars: _Bars) -> None:
    """Pass 2b: workers encode chunks in order; each shard is written (atomically) once its chunks are in."""
    from harness.data.shuffle import write_tar

    todo = [shard for shard in shards if not shard.marker.exists()]
    task = bars.add("tokenize: write shards", total=len(shards), completed=len(shards) - len(todo))
    chunks = ((chunk, seqlen) for shard in todo for chunk in shard.chunks)
    encoded = pool.map(_encode_rows, chunks)
    for shard in todo:
        blobs = [blob for _ in shard.chunks for blob in next(encoded)]
        with _atomic_output(shard.url) as fh:
            write_tar(fh, blobs, shard.first)
        write_json_atomic(shard.marker, {"sequences": len(blobs)})
        bars.update(task, advance=1)


def tokenize_shuffle(
    inputs: Sequence[str],
    out_dir: str,
    *,
    tokenizer_spec: TokenizerSpec,
    context: int,
    seed: int,
    workers: int = 1,
    shard_sequences: int = DEFAULT_SHARD_SEQUENCES,
    merge_rest: bool = False,
    subset_hash: str = "",
    progress: Progress | None = None,
    tokenizer_path: str | None = None,
    work_dir: str | None = None,
) -> TokenizeStats:
    """Tokenize `inputs` (files or folders of .jsonl[.gz|.zst], local or fsspec URLs) into shuffled open_lm
    shards in `out_dir` (local or fsspec URL); see the module docstring for the exact semantics.

    Resumable: re-running the same call after a crash reuses the finished work and writes identical bytes; a
    finished `out_dir` (its stats.json names the same fingerprint) is returned at once. `work_dir` (local disk,
    about the size of the output uncompressed) defaults to `out_dir/_work`, or a folder under the harness cache
    for remote outputs. `tokenizer_path` overrides where a hub tokenizer is read from. `merge_rest`: the last shard
    holds the rest too instead of a short shard of its own (harness.data.shard_plan: open_lm's loader).
    """
    from harness.tokenizer import resolve_tokenizer_file, tokenizer_sha256

    if context < 1 or shard_sequences < 1 or workers < 1:
        raise HarnessError("context, shard_sequences and workers must be positive")
    out_dir = str(out_dir)
    files = expand_inputs([str(i) for i in inputs])
    sha = tokenizer_sha256(tokenizer_spec, path=tokenizer_path)
    seqlen = context + 1
    fingerprint = hashlib.sha256(
        json.dumps(
            [FORMAT_VERSION, [(f.url, f.size) for f in files], sha, tokenizer_spec.eot_id, tokenizer_spec.pad_id,
             context, seed, shard_sequences, subset_hash] + ([True] if merge_rest else []),
        ).encode()
    ).hexdigest()  # fmt: skip
    done = _existing_stats(out_dir, fingerprint)
    if done is not None:
        return done
    work = Path(work_dir) if work_dir else _default_work_dir(out_dir)
    params = work / "params.json"
    if params.exists() and json.loads(params.read_text()).get("fingerprint") != fingerprint:
        shutil.rmtree(work)  # left by a run with other inputs or settings: nothing in it is reusable
    work.mkdir(parents=True, exist_ok=True)
    if not params.exists():
        write_json_atomic(params, {"fingerprint": fingerprint, "buckets": _estimate_buckets(files, seqlen)})
    n_buckets = json.loads(params.read_text())["buckets"]
    (work / "done").mkdir(exist_ok=True)
    _make_dir(out_dir)

    from harness.display.progress import progress_bar

    pool = _Pool(workers, resolve_tokenizer_file(tokenizer_spec, path=tokenizer_path).read_text(encoding="utf-8"))
    with progress_bar(progress) as bar:
        bars = _Bars(bar)
        try:
            scatter = _Scatter(work, seqlen, seed, n_buckets, tokenizer_spec.pad_id)
            if not scatter.state["done"]:
                _scatter(files, scatter, pool, tokenizer_spec.eot_id, bars)
            buckets = _sort_buckets(scatter, work, pool, bars)
            total = scatter.state["next_index"]
            shards = _shards(buckets, total, shard_sequences, out_dir, work, merge_rest)
            _write_shards(shards, pool, seqlen, bars)
        finally:
            pool.close()

    manifest = "".join(
        json.dumps({"shard": shard_name(k), "num_sequences": shard.rows}) + "\n" for k, shard in enumerate(shards)
    )
    with _atomic_output(f"{out_dir.rstrip('/')}/{MANIFEST_NAME}") as fh:
        fh.write(manifest.encode())
    s = scatter.state
    stats = TokenizeStats(
        format_version=FORMAT_VERSION, sequences=total, tokens=total * seqlen, text_tokens=s["ids"] - s["expanded"],
        eot_tokens=s["expanded"], padding_tokens=s["padding"], documents=s["documents"],
        documents_expanded=s["expanded"], text_bytes=s["text_bytes"], shards=len(shards),
        shard_sequences=shard_sequences, context=context, seed=seed, tokenizer=tokenizer_spec.name,
        tokenizer_sha256=sha, eot_id=tokenizer_spec.eot_id, pad_id=tokenizer_spec.pad_id, subset_hash=subset_hash,
        input_files=len(files), fingerprint=fingerprint,
    )  # fmt: skip
    with _atomic_output(f"{out_dir.rstrip('/')}/{STATS_NAME}") as fh:  # the completion marker: written last
        fh.write((json.dumps(stats.to_dict(), indent=2) + "\n").encode())
    shutil.rmtree(work, ignore_errors=True)
    return stats


def _make_dir(url: str) -> None:
    """Create the output folder; locally, drop partial files a killed run left (they have no final name)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)
    if _is_local(url):
        for name in ("shard_*.tar", MANIFEST_NAME, STATS_NAME):
            for stale in _local_path(url).glob(f"{name}.tmp-*"):
                stale.unlink()


def tokenize_for_track(
    track: Track,
    inputs: Sequence[str],
    out_dir: str,
    *,
    workers: int = 1,
    progress: Progress | None = None,
    subset_hash: str = "",
    tokenizer_path: str | None = None,
    work_dir: str | None = None,
) -> TokenizeStats:
    """`tokenize_shuffle` with the track's tokenizer, context and seed (the recipe's seed orders the data), in shards
    sized for open_lm's loader (harness.data.shard_plan: DCLM's 8192 sequences on the DCLM tracks)."""
    from harness.data.shard_plan import merges_rest, shard_sequences_for

    return tokenize_shuffle(
        inputs, out_dir, tokenizer_spec=track.tokenizer, context=track.model.context, seed=track.recipe.seed,
        workers=workers, subset_hash=subset_hash, progress=progress, tokenizer_path=tokenizer_path,
        work_dir=work_dir, shard_sequences=shard_sequences_for(track), merge_rest=merges_rest(track),
    )  # fmt: skip
