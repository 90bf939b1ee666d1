"""Learnable synthetic training shards, for benchmarks and hardware checks that must run without any corpus.

Each sequence is an arithmetic progression modulo the vocabulary (random start and stride), so a model's loss
falls quickly and visibly; the layout is exactly what `harness tokenize` writes (open_lm webdataset shards and
`manifest.jsonl`), so the trainer reads it through its real loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.data import MANIFEST_NAME, shard_name
from harness.data.shuffle import encode_sequence, write_tar


def write_synthetic_shards(
    out: Path, *, n_seq: int, seq_len: int, vocab: int, seed: int = 0, per_shard: int = 256
) -> Path:
    """Write `n_seq` sequences of `seq_len` ids below `vocab` into `out` (shards of `per_shard`); returns `out`."""
    if n_seq <= 0 or seq_len <= 1 or vocab <= 1:
        raise ValueError(f"need n_seq > 0, seq_len > 1 and vocab > 1, got {n_seq}, {seq_len}, {vocab}")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, vocab, n_seq)
    strides = rng.integers(1, 4, n_seq)
    rows = (starts[:, None] + strides[:, None] * np.arange(seq_len)[None, :]) % vocab
    manifest = []
    for k, first in enumerate(range(0, n_seq, per_shard)):
        block = rows[first : first + per_shard]
        with open(out / f"{shard_name(k)}.tar", "wb") as fh:
            write_tar(fh, [encode_sequence(row) for row in block], first)
        manifest.append(json.dumps({"shard": shard_name(k), "num_sequences": len(block)}) + "\n")
    (out / MANIFEST_NAME).write_text("".join(manifest), encoding="utf-8")
    return out
