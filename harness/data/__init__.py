"""Tokenized training data in open_lm's webdataset format: the constants both the writer and readers agree on.

A tokenized dataset is a folder (local or an fsspec URL) holding

- `shard_00000000.tar`, `shard_00000001.tar`, ...: one tar member per training sequence, named
  `<key>.json.gz`, the gzip of a JSON list of context + 1 token ids (open_lm's `--data-key json.gz`);
- `manifest.jsonl`: one line per shard, `{"shard": "shard_00000000", "num_sequences": N}` (open_lm's
  `--dataset-manifest`);
- `stats.json`: what went in (documents, tokens, padding, tokenizer and its sha256, seed, ...), written last:
  its presence marks the step as complete.

This module stays light (standard library only) because the trainer's loader and the tests import it.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

#: Bumped whenever the bytes written for the same inputs change (shuffle, key names, gzip level, tar headers).
FORMAT_VERSION = 1
#: Suffix of every sequence member (open_lm `--data-key`).
MEMBER_SUFFIX = "json.gz"
MANIFEST_NAME = "manifest.jsonl"
STATS_NAME = "stats.json"
#: Sequences per shard, as DCLM writes them.
DEFAULT_SHARD_SEQUENCES = 8192


def shard_name(index: int) -> str:
    """A shard's name without `.tar`, as DCLM's tokenize-shuffle names them (`shard_00000000`)."""
    return f"shard_{index:08d}"


def iter_shard(fileobj: IO[bytes]) -> Iterator[tuple[str, list[int]]]:
    """(key, token ids) of every sequence in one shard tar, in stored order."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, suffix = member.name.partition(".")
            if suffix != MEMBER_SUFFIX:
                raise ValueError(f"unexpected member {member.name!r} in shard (expected <key>.{MEMBER_SUFFIX})")
            blob = tar.extractfile(member).read()  # type: ignore[union-attr]
            yield key, json.loads(gzip.decompress(blob))


def read_manifest(dataset: str) -> list[dict[str, Any]]:
    """The manifest rows of a tokenized dataset folder (local path or fsspec URL), each with its `shard` name and
    `num_sequences`; a clear error when the manifest is missing or a line is malformed."""
    import fsspec

    from harness.errors import HarnessError

    url = f"{dataset.rstrip('/')}/{MANIFEST_NAME}"
    try:
        with fsspec.open(url, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError as exc:
        raise HarnessError(f"{url} does not exist: point --data at the output folder of `harness tokenize`") from exc
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["shard"], row["num_sequences"] = row["shard"], int(row["num_sequences"])
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{url}:{lineno}: expected {{'shard': ..., 'num_sequences': N}}, got {line!r}") from exc
        rows.append(row)
    return rows


def iter_dataset(dataset: str) -> Iterator[tuple[str, list[int]]]:
    """Every sequence of a tokenized dataset, shard by shard in manifest order (for tests and inspection)."""
    import fsspec

    for entry in read_manifest(dataset):
        with fsspec.open(f"{dataset.rstrip('/')}/{entry['shard']}.tar", "rb") as fh:
            yield from iter_shard(fh)
