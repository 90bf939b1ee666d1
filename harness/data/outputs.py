"""What every tokenize-shuffle path writes last, and how a run is recognised (harness.data.tokenize's process pool
and harness.data.staged's datatrove executors share it, so both write the same `manifest.jsonl` and `stats.json`).

- `run_key`: everything that determines the output (inputs, tokenizer, parameters), its fingerprint and stats;
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
from typing import TYPE_CHECKING, Any

from harness.config import doc, from_dict
from harness.data import FORMAT_VERSION, MANIFEST_NAME, STATS_NAME, shard_name
from harness.data.inputs import InputFile, expand_inputs
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.tracks import TokenizerSpec


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


@dataclass(frozen=True, kw_only=True)
class RunKey:
    """Everything that determines a tokenize-shuffle run's output bytes (never the workers, executor or batch
    sizes); both paths build one with `run_key`, hash it into the fingerprint and turn its counts into stats."""

    files: tuple[InputFile, ...] = doc("The input files, in stream order.")
    tokenizer: str = doc("Tokenizer name.")
    tokenizer_sha256: str = doc("sha256 of the tokenizer.json used.")
    eot_id: int = doc("End-of-document id.")
    pad_id: int = doc("Pad id.")
    context: int = doc("Training context; stored sequences hold context + 1 ids.")
    seed: int = doc("Seed of the shuffle.")
    shard_sequences: int = doc("Sequences per shard.")
    subset_hash: str = doc("Hash of the canonical subset ('' when not given).")
    merge_rest: bool = doc("The last shard holds the rest too.")

    @property
    def fingerprint(self) -> str:
        """sha256 of the key: a finished output folder is reused only under the same one."""
        return hashlib.sha256(
            json.dumps(
                [FORMAT_VERSION, [(f.url, f.size) for f in self.files], self.tokenizer_sha256, self.eot_id,
                 self.pad_id, self.context, self.seed, self.shard_sequences, self.subset_hash]
                + ([True] if self.merge_rest else []),
            ).encode()
        ).hexdigest()  # fmt: skip

    def text_bytes_guess(self) -> float:
        """Uncompressed input bytes guessed from the file sizes (sizes the buckets; any guess gives the same
        output)."""
        expansion = {".gz": 4.0, ".zst": 5.0, ".zstd": 5.0}
        return sum(f.size * next((v for k, v in expansion.items() if f.url.endswith(k)), 1.0) for f in self.files)

    def stats(self, counts: dict[str, int], sequences: int, shards: int) -> TokenizeStats:
        """The stats of the finished run; `counts` holds the scatter's ids, expanded, padding, documents and
        text_bytes."""
        return TokenizeStats(
            format_version=FORMAT_VERSION, sequences=sequences, tokens=sequences * (self.context + 1),
            text_tokens=counts["ids"] - counts["expanded"], eot_tokens=counts["expanded"],
            padding_tokens=counts["padding"], documents=counts["documents"], documents_expanded=counts["expanded"],
            text_bytes=counts["text_bytes"], shards=shards, shard_sequences=self.shard_sequences,
            context=self.context, seed=self.seed, tokenizer=self.tokenizer, tokenizer_sha256=self.tokenizer_sha256,
            eot_id=self.eot_id, pad_id=self.pad_id, subset_hash=self.subset_hash, input_files=len(self.files),
            fingerprint=self.fingerprint,
        )  # fmt: skip


def run_key(
    inputs: Sequence[str],
    tokenizer_spec: TokenizerSpec,
    tokenizer_path: str | None,
    *,
    context: int,
    seed: int,
    shard_sequences: int,
    subset_hash: str,
    merge_rest: bool,
) -> RunKey:
    """The run's key: its inputs expanded (files or folders, local or fsspec URLs) and its tokenizer hashed."""
    from harness.tokenizer import tokenizer_sha256

    if context < 1 or shard_sequences < 1:
        raise HarnessError("context and shard_sequences must be positive")
    return RunKey(
        files=tuple(expand_inputs([str(i) for i in inputs])), tokenizer=tokenizer_spec.name,
        tokenizer_sha256=tokenizer_sha256(tokenizer_spec, path=tokenizer_path), eot_id=tokenizer_spec.eot_id,
        pad_id=tokenizer_spec.pad_id, context=context, seed=seed, shard_sequences=shard_sequences,
        subset_hash=subset_hash, merge_rest=merge_rest,
    )  # fmt: skip


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
