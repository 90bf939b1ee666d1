"""Helpers the baseline curation scripts share: read the pool, fill the track's token budget, write a subset.

A subset is a JSONL file of `{"id": ...}` lines (the pool's text is used); `harness validate` checks it and
`harness submit` trains on it. Copy these scripts to start your own curation.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.pools import ensure_pool
from harness.tokenizer import load_tokenizer
from harness.tracks import get_track


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--track", default="nano", help="track whose pool and budget to use (default: nano)")
    parser.add_argument("--out", required=True, help="subset JSONL to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling (default: 0)")
    return parser.parse_args()


def pool_documents(track: str) -> Iterator[dict]:
    """Every document of the track's pool (`{"id", "text", "url"}` for the sandbox), in pool order."""
    yield from ensure_pool(get_track(track).pool).iter_documents()


def fill_budget(docs: Iterable[dict], track: str, seed: int) -> list[dict]:
    """A seeded random sample of `docs` holding the track's token budget (one pass over the subset in training).

    When `docs` hold less than the budget, all of them are returned (training then repeats them).
    """
    spec = get_track(track)
    tokenizer = load_tokenizer(spec.tokenizer)
    pool = list(docs)
    random.Random(seed).shuffle(pool)
    chosen, tokens = [], 0
    for start in range(0, len(pool), 1024):
        batch = pool[start : start + 1024]
        for doc, enc in zip(batch, tokenizer.encode_batch([d["text"] for d in batch]), strict=True):
            chosen.append(doc)
            tokens += len(enc.ids) + 1  # + the end-of-document token
            if tokens >= spec.tokens:
                return chosen
    return chosen


def write_subset(docs: Iterable[dict], out: str) -> int:
    """Write `{"id"}` lines; returns the number written."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps({"id": doc["id"]}) + "\n")
            n += 1
    return n
