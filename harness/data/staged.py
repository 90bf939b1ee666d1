"""Tokenize + shuffle on datatrove's executors (local, Ray, Slurm): byte for byte the output of the process pool in
harness.data.tokenize (the reference), for any number of workers and any executor.

The work is five datatrove stages of independent tasks. A task's outputs are written atomically and datatrove
marks it complete after them (`<work>/_logs/<stage>/completions/`), so a killed run resumes per task. Every
worker reads and writes the work folder (default `<out>/_work`, local or any fsspec URL): on several machines it
must be a shared file system or object storage (S3). It is removed when the output is complete.

1. tokenize (a task per input file p): the file's documents in order (ids + eot per copy) -> `ids/pNNNNNN.u32`,
   its counts -> `ids/pNNNNNN.json`.
2. plan (one task): each file's offset in the stream, hence the sequences whose first id falls in it (its task
   packs them, reading the next files' first ids for the last one), the bucket count (about BUCKET_BYTES each) and
   each bucket's rows (the keys depend on the index only) -> `plan.json`.
3. scatter (a task per input file): its sequences in runs of about RUN_BYTES, each run's rows grouped by bucket
   (stream order within a bucket), with their keys and counts -> `runs/pNNNNNN.{u32,key,cnt}`.
4. sort (`gather` tasks; task t takes buckets t, t + gather, ...): a bucket's rows from every run, sorted by key
   -> `sorted/bNNNNNN.u32`.
5. write (`gather` tasks; task t takes shards t, t + gather, ...): each shard's rows read from the sorted buckets,
   encoded and streamed into its tar in the output folder.

Memory per task, whatever the subset's size: tokenize holds a batch of BATCH_BYTES of text and its ids; scatter a
run (read, permuted copy, keys: about 2 x RUN_BYTES); sort a bucket (about 2 x BUCKET_BYTES plus the slices' list);
write CHUNK_ROWS rows and their encodings. With the defaults: under 2 x 128 MiB of data, plus the interpreter and
the tokenizer. Reads in the sort stage grow as runs x buckets (a run's slice of a bucket is one range read).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config import doc
from harness.data.outputs import atomic_output
from harness.errors import HarnessError

if TYPE_CHECKING:
    import numpy as np

try:
    from datatrove.pipeline.base import PipelineStep
except ImportError:  # pragma: no cover - datatrove is a dependency; harness.data.staged_run says how to get it
    PipelineStep = object  # type: ignore[assignment,misc]

#: Text per tokenization batch.
BATCH_BYTES = 1 << 20
#: Rows packed and scattered at once by a scatter task (a run).
RUN_BYTES = 128 << 20
#: Target size of a bucket (all of it is sorted in memory at once).
BUCKET_BYTES = 128 << 20
#: Output rows encoded at once by a write task.
CHUNK_ROWS = 1024
#: The stages in order: (name, tasks: "files", "one" or "gather").
STAGES = (("tokenize", "files"), ("plan", "one"), ("scatter", "files"), ("sort", "gather"), ("write", "gather"))


@dataclass(frozen=True, kw_only=True)
class StagedJob:
    """Everything a task needs; pickled to every worker."""

    files: tuple[tuple[str, int], ...] = doc("Input files in stream order: (URL, size in bytes).")
    work: str = doc("Work folder (local path or fsspec URL) every worker can reach.")
    out: str = doc("Output folder for the shards.")
    tokenizer_json: str = doc("The tokenizer's tokenizer.json text.")
    eot_id: int = doc("End-of-document id.")
    pad_id: int = doc("Pad id of the stream's last short sequence.")
    seqlen: int = doc("Ids per stored sequence: context + 1.")
    seed: int = doc("Seed of the shuffle.")
    shard_sequences: int = doc("Sequences per shard.")
    merge_rest: bool = doc("Whether the last full shard takes the rest.")
    gather: int = doc("Tasks of the sort and write stages.")
    batch_bytes: int = doc("Text per tokenization batch.")
    run_bytes: int = doc("Rows scattered at once by a scatter task.")
    bucket_bytes: int = doc("Target bucket size.")
    chunk_rows: int = doc("Output rows encoded at once.")

    def url(self, *parts: str) -> str:
        return "/".join([self.work.rstrip("/"), *parts])

    def tasks(self, kind: str) -> int:
        return {"files": len(self.files), "one": 1, "gather": self.gather}[kind]


class StageStep(PipelineStep):  # type: ignore[misc]
    """datatrove step: task `rank` of one stage; a failure leaves its message in `<work>/errors/` for the driver."""

    name = "harness tokenize stage"
    type = "🔢 - TOKENIZE"

    def __init__(self, stage: str, job: StagedJob) -> None:
        super().__init__()
        self.stage, self.job = stage, job

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        try:
            TASKS[self.stage](self.job, rank)
        except Exception as exc:
            message = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            with atomic_output(self.job.url("errors", f"{self.stage}-{rank:05d}.txt")) as fh:
                fh.write(message.encode())
            raise
        return iter(())


# ---------------------------------------------------------------------------------------------------------------
# Storage helpers: every path is a URL on the work folder's file system.


def _read(url: str, start: int | None = None, end: int | None = None) -> bytes:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs.cat_file(path, start=start, end=end)


def exists(url: str) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return bool(fs.exists(path))


def _write(url: str, data: bytes | memoryview) -> None:
    with atomic_output(url) as fh:
        fh.write(data)


def _raw(array: np.ndarray) -> memoryview:
    """The array's bytes (native order) without a copy, as a flat byte view."""
    import numpy as np

    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def read_plan(job: StagedJob) -> dict[str, Any]:
    return json.loads(_read(job.url("plan.json")))


# ---------------------------------------------------------------------------------------------------------------
# The stages.


def _tokenize(job: StagedJob, p: int) -> None:
    """Stage 1: input file p's piece of the stream and its counts."""
    from harness.data.inputs import InputFile
    from harness.data.scatter import _WORKER, _batches, _encode, _init_worker

    if _WORKER.get("json") != job.tokenizer_json:
        _init_worker(job.tokenizer_json, True)
    file = InputFile(*job.files[p])
    counts = {"documents": 0, "expanded": 0, "ids": 0, "text_bytes": 0}
    with atomic_output(job.url("ids", f"p{p:06d}.u32")) as fh:
        for batch in _batches([file], 0, 0, job.batch_bytes):
            encoded = _encode(batch, job.eot_id)
            if encoded.error is not None or encoded.tokens is None:
                line, message = encoded.error or (0, "no tokens")
                raise HarnessError(f"{file.url}, line {line}: {message}")
            fh.write(_raw(encoded.tokens))
            counts["documents"] += encoded.documents
            counts["expanded"] += encoded.expanded
            counts["ids"] += len(encoded.tokens)
            counts["text_bytes"] += encoded.text_bytes
    _write(job.url("ids", f"p{p:06d}.json"), json.dumps(counts).encode())


def _plan(job: StagedJob, _rank: int) -> None:
    """Stage 2: offsets, owned sequences, bucket count and bucket sizes."""
    import numpy as np

    from harness.data.shuffle import bucket_of, sort_keys

    pieces = [json.loads(_read(job.url("ids", f"p{p:06d}.json"))) for p in range(len(job.files))]
    sizes = [piece["ids"] for piece in pieces]
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
    total, seqlen = offsets[-1], job.seqlen
    sequences = -(-total // seqlen)
    buckets = max(1, math.ceil(sequences * seqlen * 4 / job.bucket_bytes))
    bucket_rows = np.zeros(buckets, dtype=np.int64)
    for lo in range(0, sequences, 1 << 22):
        keys = sort_keys(job.seed, np.arange(lo, min(sequences, lo + (1 << 22)), dtype=np.uint64))
        bucket_rows += np.bincount(bucket_of(keys, buckets).astype(np.int64), minlength=buckets)
    first = [-(-offset // seqlen) for offset in offsets]  # the first sequence starting at or after each offset
    plan = {
        "offsets": offsets, "first": first[:-1], "sequences_of": [b - a for a, b in itertools.pairwise(first)],
        "sequences": sequences, "padding": sequences * seqlen - total, "buckets": buckets,
        "run_rows": max(1, job.run_bytes // (4 * seqlen)), "bucket_rows": bucket_rows.tolist(),
        **{key: sum(piece[key] for piece in pieces) for key in ("documents", "expanded", "ids", "text_bytes")},
    }  # fmt: skip
    _write(job.url("plan.json"), json.dumps(plan).encode())


def _stream(job: StagedJob, plan: dict[str, Any], lo: int, hi: int) -> np.ndarray:
    """Ids [lo, hi) of the stream, read from the pieces that hold them; past its end, the pad id."""
    import bisect

    import numpy as np

    offsets, parts = plan["offsets"], []
    p = bisect.bisect_right(offsets, lo) - 1
    position = lo
    while position < hi and p < len(job.files):
        end = min(hi, offsets[p + 1])
        if end > position:
            start = 4 * (position - offsets[p])
            data = _read(job.url("ids", f"p{p:06d}.u32"), start, start + 4 * (end - position))
            parts.append(np.frombuffer(data, dtype=np.uint32))
            position = end
        p += 1
    if position < hi:
        parts.append(np.full(hi - position, job.pad_id, dtype=np.uint32))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint32)


def _scatter(job: StagedJob, p: int) -> None:
    """Stage 3: file p's sequences, run by run, grouped by bucket, with keys and per-run bucket counts."""
    import numpy as np

    from harness.data.shuffle import bucket_of, sort_keys

    plan = read_plan(job)
    first, count, run_rows, buckets = plan["first"][p], plan["sequences_of"][p], plan["run_rows"], plan["buckets"]
    counts = []
    with atomic_output(job.url("runs", f"p{p:06d}.u32")) as rows_fh, atomic_output(
        job.url("runs", f"p{p:06d}.key")
    ) as keys_fh:  # fmt: skip
        for lo in range(first, first + count, run_rows):
            hi = min(first + count, lo + run_rows)
            rows = _stream(job, plan, lo * job.seqlen, hi * job.seqlen).reshape(-1, job.seqlen)
            keys = sort_keys(job.seed, np.arange(lo, hi, dtype=np.uint64))
            bucket = bucket_of(keys, buckets).astype(np.int64)
            order = np.argsort(bucket, kind="stable")
            rows_fh.write(_raw(rows[order]))
            keys_fh.write(_raw(keys[order]))
            counts.append(np.bincount(bucket, minlength=buckets))
    _write(job.url("runs", f"p{p:06d}.cnt"), _raw(np.array(counts, dtype=np.int64).reshape(-1, buckets)))


def _sort(job: StagedJob, t: int) -> None:
    """Stage 4: buckets t, t + gather, ...: each one's slices from every run, sorted by key."""
    import numpy as np

    plan = read_plan(job)
    mine = [b for b in range(t, plan["buckets"], job.gather) if not exists(job.url("sorted", f"b{b:06d}.u32"))]
    slices: dict[int, list[tuple[int, int, int]]] = {b: [] for b in mine}  # (file, first row, rows)
    for p in range(len(job.files)) if mine else ():
        if not plan["sequences_of"][p]:
            continue
        counts = np.frombuffer(_read(job.url("runs", f"p{p:06d}.cnt")), dtype=np.int64).reshape(-1, plan["buckets"])
        before = np.cumsum(counts, axis=1) - counts  # rows of lower buckets in the same run
        for b in mine:
            for r in np.flatnonzero(counts[:, b]):
                slices[b].append((p, int(r * plan["run_rows"] + before[r, b]), int(counts[r, b])))
    width = 4 * job.seqlen
    for b in mine:
        rows, keys = [], []
        for p, start, n in slices.pop(b):
            rows.append(np.frombuffer(_read(job.url("runs", f"p{p:06d}.u32"), start * width, (start + n) * width),
                                      dtype=np.uint32))  # fmt: skip
            keys.append(np.frombuffer(_read(job.url("runs", f"p{p:06d}.key"), start * 8, (start + n) * 8), np.uint64))
        key = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        if len(key) != plan["bucket_rows"][b]:
            raise HarnessError(f"bucket {b} gathered {len(key)} rows, the plan says {plan['bucket_rows'][b]}: the work "
                               f"folder {job.work} is damaged; delete it and re-run")  # fmt: skip
        table = np.concatenate(rows).reshape(-1, job.seqlen) if rows else np.zeros((0, job.seqlen), np.uint32)
        del rows
        _write(job.url("sorted", f"b{b:06d}.u32"), _raw(table[np.argsort(key, kind="stable")]))


def _sorted_rows(job: StagedJob, starts: Sequence[int], lo: int, hi: int) -> np.ndarray:
    """Output rows [lo, hi) read from the sorted buckets (bucket b holds rows [starts[b], starts[b + 1]))."""
    import bisect

    import numpy as np

    parts, b, width = [], bisect.bisect_right(starts, lo) - 1, 4 * job.seqlen
    while lo < hi:
        end = min(hi, starts[b + 1])
        if end > lo:
            data = _read(job.url("sorted", f"b{b:06d}.u32"), (lo - starts[b]) * width, (end - starts[b]) * width)
            parts.append(np.frombuffer(data, dtype=np.uint32).reshape(-1, job.seqlen))
            lo = end
        b += 1
    return np.concatenate(parts) if parts else np.zeros((0, job.seqlen), np.uint32)


def _write_shards(job: StagedJob, t: int) -> None:
    """Stage 5: shards t, t + gather, ...: streamed chunk by chunk into their tars, each then marked done."""
    import numpy as np

    from harness.data import shard_name
    from harness.data.outputs import shard_ranges
    from harness.data.shuffle import encode_sequence, write_tar

    plan = read_plan(job)
    starts = np.concatenate([[0], np.cumsum(plan["bucket_rows"])]).tolist()
    ranges = shard_ranges(plan["sequences"], job.shard_sequences, job.merge_rest)
    for k in range(t, len(ranges), job.gather):
        marker = job.url("done", shard_name(k))
        if exists(marker):
            continue
        lo, hi = ranges[k]

        def blobs(lo: int = lo, hi: int = hi) -> Iterator[bytes]:
            for a in range(lo, hi, job.chunk_rows):
                yield from (encode_sequence(row) for row in _sorted_rows(job, starts, a, min(hi, a + job.chunk_rows)))

        with atomic_output(f"{job.out.rstrip('/')}/{shard_name(k)}.tar") as fh:
            write_tar(fh, blobs(), lo)
        _write(marker, json.dumps({"sequences": hi - lo}).encode())


TASKS = {"tokenize": _tokenize, "plan": _plan, "scatter": _scatter, "sort": _sort, "write": _write_shards}
