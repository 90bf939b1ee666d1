"""Pass 2 of tokenize-shuffle (harness.data.tokenize): the buckets sorted by key, then written out as shards.

- 2a (sort): each bucket that pass 1 (harness.data.scatter) filled is sorted by key in a worker; a sorted bucket
  file appears atomically and the unsorted one is removed.
- 2b (write): workers encode chunks of output rows read from the sorted buckets (JSON + gzip); the main process
  writes each shard's tar once its chunks are in, atomically (locally or on any fsspec URL), then marks it done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.data import shard_name
from harness.data.outputs import atomic_output, shard_ranges
from harness.data.scatter import _Bars, _Pool, _Scatter
from harness.io.files import write_json_atomic


def _sort_job(args: tuple[str, str, str, int, int]) -> int:
    from harness.data.shuffle import sort_bucket

    tok, key, out, seqlen, max_rows = args
    return sort_bucket(Path(tok), Path(key), Path(out), seqlen, max_rows)


def _encode_rows(args: tuple[list[tuple[str, int, int]], int]) -> list[bytes]:
    """Read one chunk of output rows from the sorted buckets and encode each as a member (JSON + gzip)."""
    from harness.data.shuffle import encode_sequence, read_rows

    pieces, seqlen = args
    return [encode_sequence(row) for row in read_rows(pieces, seqlen)]


def _sort_buckets(
    scatter: _Scatter, work: Path, pool: _Pool, bars: _Bars, max_sort_bytes: int
) -> list[tuple[Path, int]]:
    """Pass 2a: every non-empty bucket sorted by key (one over `max_sort_bytes` in key sub-ranges); returns
    (sorted file, rows) in bucket order."""
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
    max_rows = max(1, max_sort_bytes // (4 * seqlen))
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
    for k, (lo, hi) in enumerate(shard_ranges(total, per_shard, merge_rest)):
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
        with atomic_output(shard.url) as fh:
            write_tar(fh, blobs, shard.first)
        write_json_atomic(shard.marker, {"sequences": len(blobs)})
        bars.update(task, advance=1)
