"""Baseline 2: exact and near-duplicate removal, then a random sample sized to the track's token budget.

Exact duplicates: the same text after lower-casing and collapsing whitespace. Near duplicates: MinHash over word
5-grams with locality-sensitive hashing (32 hashes in 8 bands of 4 rows: pairs above a Jaccard similarity of
about 0.6 collide in some band); the first document of each cluster is kept, as DCLM's dedup recipes do.

    python examples/dedup.py --track nano --out subsets/dedup.jsonl
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator

import numpy as np
from common import fill_budget, parse_args, pool_documents, write_subset

NGRAM, HASHES, BANDS = 5, 32, 8
_MERSENNE = np.uint64((1 << 61) - 1)
_rng = np.random.default_rng(12345)
_A = _rng.integers(1, 1 << 31, HASHES, dtype=np.uint64)
_B = _rng.integers(0, 1 << 31, HASHES, dtype=np.uint64)
_WORD = re.compile(r"\w+")


def minhash(text: str) -> np.ndarray:
    """HASHES minimum hash values of the document's word 5-gram set."""
    words = np.array([zlib.crc32(w.encode()) for w in _WORD.findall(text.lower())] or [0], dtype=np.uint64)
    n = max(1, len(words) - NGRAM + 1)
    shingles = np.zeros(n, dtype=np.uint64)
    for k in range(min(NGRAM, len(words))):  # polynomial combination of NGRAM consecutive word hashes
        shingles = shingles * np.uint64(1_000_003) + words[k : k + n]
    shingles &= np.uint64((1 << 32) - 1)
    return ((np.outer(_A, shingles) + _B[:, None]) % _MERSENNE).min(axis=1)


def deduplicate(docs: Iterable[dict]) -> Iterator[dict]:
    """Documents that are neither exact nor near duplicates of an earlier one."""
    exact: set[bytes] = set()
    bands: set[bytes] = set()
    rows = HASHES // BANDS
    for doc in docs:
        key = hashlib.sha1(" ".join(doc["text"].lower().split()).encode()).digest()
        if key in exact:
            continue
        exact.add(key)
        signature = minhash(doc["text"])
        keys = [bytes([b]) + signature[b * rows : (b + 1) * rows].tobytes() for b in range(BANDS)]
        if any(k in bands for k in keys):
            continue
        bands.update(keys)
        yield doc


if __name__ == "__main__":
    args = parse_args(__doc__)
    n = write_subset(fill_budget(deduplicate(pool_documents(args.track)), args.track, args.seed), args.out)
    print(f"wrote {n} documents to {args.out}")
