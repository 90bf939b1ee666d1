"""What every tokenize-shuffle path writes last, and how a run is recognised (harness.data.tokenize's process pool
and harness.data.staged's datatrove executors share it, so both write the same `manifest.jsonl` and `stats.json`).

- `run_fingerprint`: sha256 of everything that determines the output (inputs, tokenizer, parameters);
- `existing_stats`: the stats of a finished output folder, or an error when it holds another run's data;
- `shard_ranges`: the output positions of each shard;
- `write_outputs`: the manifest, then `stats.json` (the completion marker), each atomically;
- `atomic_output`: a file that appears complete or not at all, locally or on any fsspec URL.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.config import doc, from_dict
from harness.data import FORMAT_VERSION, MANIFEST_NAME, STATS_NAME, shard_name
from harness.data.inputs import InputFile
from harness.errors import HarnessError


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


def run_fingerprint(
    files: Sequence[InputFile],
    tokenizer_sha256: str,
    eot_id: int,
    pad_id: int,
    *,
    context: int,
    seed: int,
    shard_sequences: int,
    subset_hash: str,
    merge_rest: bool,
) -> str:
    """sha256 of everything that determines the output bytes (never the workers, executor or batch sizes)."""
    return hashlib.sha256(
        json.dumps(
            [FORMAT_VERSION, [(f.url, f.size) for f in files], tokenizer_sha256, eot_id, pad_id, context, seed,
             shard_sequences, subset_hash] + ([True] if merge_rest else []),
        ).encode()
    ).hexdigest()  # fmt: skip


def existing_stats(out_dir: str, fingerprint: str) -> TokenizeStats | None:
    """The stats of a finished run in `out_dir` with this fingerprint; None when unfinished; an error when the folder
    holds a finished run of other inputs or settings."""
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


def shard_ranges(total: int, per_shard: int, merge_rest: bool) -> list[tuple[int, int]]:
    """[first, end) output positions of each shard; with `merge_rest` the last full shard also takes the rest."""
    count = max(1, total // per_shard) if merge_rest else math.ceil(total / per_shard)
    return [(k * per_shard, total if k == count - 1 else min(total, (k + 1) * per_shard)) for k in range(count)]


def write_outputs(out_dir: str, rows: Sequence[int], stats: TokenizeStats) -> None:
    """The manifest (one line per shard with its row count), then `stats.json` last: the completion marker."""
    manifest = "".join(json.dumps({"shard": shard_name(k), "num_sequences": n}) + "\n" for k, n in enumerate(rows))
    with atomic_output(f"{out_dir.rstrip('/')}/{MANIFEST_NAME}") as fh:
        fh.write(manifest.encode())
    with atomic_output(f"{out_dir.rstrip('/')}/{STATS_NAME}") as fh:
        fh.write((json.dumps(stats.to_dict(), indent=2) + "\n").encode())


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> Path:
    return Path(url.removeprefix("file://"))


@contextmanager
def atomic_output(url: str) -> Iterator[Any]:
    """A binary file handle whose content appears at `url` only once complete (rename locally; object stores
    publish an upload only when it is closed)."""
    if is_local(url):
        path = local_path(url)
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
