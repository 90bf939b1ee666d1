"""The sandbox's classifier reference set: positives for a quality classifier, written beside the pool.

DCLM trains its fastText filter with instruction and Q&A text (OpenHermes-2.5, ELI5) as positives and never with
pool documents. The sandbox offers the same: `reference/reference.jsonl.gz` holds clean text about the world's entities in
the pool's clean mix (encyclopedic pages, stories, fact lists, Q&A pages; true facts only), `{"id", "text"}` per
line, that a participant may use as positives (`harness classifier train --pos ...`).

Version 3 held pages and Q&A only. A classifier trained on it ranked no story in its top 10%, while two of the
three Sandbox_v1 tasks are about stories, and its subset lost to a random sample (0.170 against 0.348 on nano).
DCLM's positives cover the kind of text its evaluation asks about; since version 4 ours do too.

It is disjoint from the pool and from the evaluation by construction and by check:
- its own random stream (`{seed}/reference/{i}`), never a pool slot's;
- its stories tell only journeys the pool may tell, never a held-out one (`documents.held_out_pair`), and the
  evaluation's fact items begin with lead-ins no generator uses, so no evaluation context is a reference
  passage; any text that equals a pool document is skipped (`pool_texts`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path

from harness.io.files import write_bytes_atomic
from harness.sandbox.documents import Facts, clean
from harness.sandbox.world import World

#: Reference documents at scale 1.0: about 2.5M characters, 2.5% of the pool's.
BASE_DOCUMENTS = 10_000
PATH = "reference/reference.jsonl.gz"


def reference_documents(world: World, seed: int, scale: float, pool_texts: set[bytes]) -> list[dict]:
    """The reference documents for a pool of `scale`, skipping any text whose sha1 is in `pool_texts`."""
    facts = Facts(world)
    target = max(50, round(BASE_DOCUMENTS * scale))
    docs: list[dict] = []
    seen: set[bytes] = set()
    i = 0
    while len(docs) < target:
        rng = random.Random(f"{seed}/reference/{i}")
        i += 1
        _, text = clean(facts, rng)  # the pool's clean mix of kinds
        key = text_key(text)
        if key in pool_texts or key in seen:
            continue
        seen.add(key)
        docs.append({"id": hashlib.sha256(f"sandbox://reference/{i}\n{text}".encode()).hexdigest()[:32], "text": text})
    return docs


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


def pool_text_keys(shard_files: Iterable[Path]) -> set[bytes]:
    """sha1 of every pool document's text, read back from the written shards."""
    import gzip

    keys: set[bytes] = set()
    for path in shard_files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            keys.update(text_key(json.loads(line)["text"]) for line in fh if line.strip())
    return keys


def write_reference(out_dir: Path, world: World, seed: int, scale: float) -> dict:
    """Write `reference/reference.jsonl.gz` under the pool folder `out_dir`; returns its manifest entry."""
    from harness.sandbox.generate import gzip_bytes

    pool_texts = pool_text_keys(sorted((out_dir / "shards").glob("shard-*.jsonl.gz")))
    docs = reference_documents(world, seed, scale, pool_texts)
    content = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode()
    data = gzip_bytes(content)
    path = out_dir / PATH
    write_bytes_atomic(path, data)
    return {
        "path": PATH,
        "documents": len(docs),
        "characters": sum(len(d["text"]) for d in docs),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_sha256": hashlib.sha256(content).hexdigest(),
    }
