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

- pass 1 (scatter, harness.data.scatter): the main process reads the inputs; worker processes parse and tokenize
  batches of lines; the main process packs the returned ids in stream order and appends each sequence to the
  bucket of its key. A journal written atomically every ~32 MB of sequences lets a restarted run truncate the
  buckets to the last journal and go on from the line it names.
- pass 2a (sort, harness.data.buckets): each bucket is sorted by key (in parallel); a sorted bucket file appears
  atomically.
- pass 2b (write): workers encode chunks of output rows read from the sorted buckets (JSON + gzip, in
  parallel); the main process writes each shard's tar once its chunks are in, atomically, then marks it.
- the manifest and `stats.json` (the completion marker) are written last; the work folder is removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data import DEFAULT_SHARD_SEQUENCES, MANIFEST_NAME, STATS_NAME
from harness.data.buckets import _shards, _sort_buckets, _write_shards
from harness.data.outputs import RunKey, TokenizeStats, existing_stats, is_local, local_path, run_key, write_outputs
from harness.data.scatter import _Bars, _Pool, _Scatter, _scatter
from harness.errors import HarnessError
from harness.io.files import write_json_atomic

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.scores.run import ExecutorOptions
    from harness.tracks import TokenizerSpec, Track

# The knobs below are read here at call time and passed down (tests shrink them to exercise every path).

#: Text per tokenization batch sent to a worker.
BATCH_BYTES = 1 << 20
#: Packed sequences held in memory before they are appended to the buckets (and the journal is written).
FLUSH_BYTES = 32 << 20
#: Target bucket size; a bucket over MAX_SORT_BYTES is sorted in key sub-ranges. An in-memory sort holds a bucket
#: twice (read + permuted copy), so a sorting worker peaks near 2 x MAX_SORT_BYTES whatever the input size.
BUCKET_BYTES = 32 << 20
MAX_SORT_BYTES = 64 << 20
MAX_BUCKETS = 1024


# ---------------------------------------------------------------------------------------------------------------
# The step.


def _estimate_buckets(key: RunKey) -> int:
    """Buckets of about BUCKET_BYTES, from the input sizes (a guess: any count gives the same output)."""
    guess = math.ceil(key.text_bytes_guess() / 3 * 4 / BUCKET_BYTES)  # ~3 bytes/token, 4 bytes/id
    return max(1, min(MAX_BUCKETS, guess))


def _default_work_dir(out_dir: str) -> Path:
    if is_local(out_dir):
        return local_path(out_dir) / "_work"
    from harness.resources import harness_home

    return harness_home() / "tokenize-work" / hashlib.sha256(out_dir.encode()).hexdigest()[:16]


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
    from harness.tokenizer import resolve_tokenizer_file

    if workers < 1:
        raise HarnessError("workers must be positive")
    out_dir = str(out_dir)
    key = run_key(inputs, tokenizer_spec, tokenizer_path, context=context, seed=seed, shard_sequences=shard_sequences,
                  subset_hash=subset_hash, merge_rest=merge_rest)  # fmt: skip
    seqlen, fingerprint = context + 1, key.fingerprint
    done = existing_stats(out_dir, fingerprint)
    if done is not None:
        return done
    work = Path(work_dir) if work_dir else _default_work_dir(out_dir)
    params = work / "params.json"
    if params.exists() and json.loads(params.read_text()).get("fingerprint") != fingerprint:
        shutil.rmtree(work)  # left by a run with other inputs or settings: nothing in it is reusable
    work.mkdir(parents=True, exist_ok=True)
    if not params.exists():
        write_json_atomic(params, {"fingerprint": fingerprint, "buckets": _estimate_buckets(key)})
    n_buckets = json.loads(params.read_text())["buckets"]
    (work / "done").mkdir(exist_ok=True)
    _make_dir(out_dir)

    from harness.display.progress import progress_bar

    pool = _Pool(workers, resolve_tokenizer_file(tokenizer_spec, path=tokenizer_path).read_text(encoding="utf-8"))
    with progress_bar(progress) as bar:
        bars = _Bars(bar)
        try:
            scatter = _Scatter(work, seqlen, seed, n_buckets, tokenizer_spec.pad_id, FLUSH_BYTES)
            if not scatter.state["done"]:
                _scatter(key.files, scatter, pool, tokenizer_spec.eot_id, bars, BATCH_BYTES)
            buckets = _sort_buckets(scatter, work, pool, bars, MAX_SORT_BYTES)
            total = scatter.state["next_index"]
            shards = _shards(buckets, total, shard_sequences, out_dir, work, merge_rest)
            _write_shards(shards, pool, seqlen, bars)
        finally:
            pool.close()

    stats = key.stats(scatter.state, total, len(shards))
    write_outputs(out_dir, [shard.rows for shard in shards], stats)  # stats.json, the completion marker, last
    shutil.rmtree(work, ignore_errors=True)
    return stats


def _make_dir(url: str) -> None:
    """Create the output folder; locally, drop partial files a killed run left (they have no final name)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)
    if is_local(url):
        for name in ("shard_*.tar", MANIFEST_NAME, STATS_NAME):
            for stale in local_path(url).glob(f"{name}.tmp-*"):
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
    executor: ExecutorOptions | None = None,
    notify: Callable[[str], None] | None = None,
) -> TokenizeStats | None:
    """`tokenize_shuffle` with the track's tokenizer, context and seed (the recipe's seed orders the data), in shards
    sized for open_lm's loader (harness.data.shard_plan: DCLM's 8192 sequences on the DCLM tracks).

    `executor` ray or slurm: the same bytes from datatrove tasks (harness.data.staged_run.tokenize_staged; None when
    Slurm jobs were submitted or still run: `notify` is told which); None or local: the process pool with `workers`
    processes."""
    from harness.data.shard_plan import merges_rest, shard_sequences_for

    common = dict(
        tokenizer_spec=track.tokenizer, context=track.model.context, seed=track.recipe.seed, subset_hash=subset_hash,
        progress=progress, tokenizer_path=tokenizer_path, work_dir=work_dir,
        shard_sequences=shard_sequences_for(track), merge_rest=merges_rest(track),
    )  # fmt: skip
    if executor is not None and executor.kind != "local":
        from harness.data.staged_run import tokenize_staged

        return tokenize_staged(inputs, out_dir, executor=executor, notify=notify, **common)  # type: ignore[arg-type]
    return tokenize_shuffle(inputs, out_dir, workers=workers, **common)  # type: ignore[arg-type]
