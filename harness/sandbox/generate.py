"""Deterministic generation of the sandbox pool: document slots, shards, labels, manifest.

Layout of the pool: `n` global document slots, slot g in shard g % n_shards (so every shard is a mixture).
A slot's class and text depend only on (seed, g), through `random.Random(f"{seed}/slot/{g}")`, so the bytes do
not depend on the number of workers. The first `n_sources` slots are the originals that duplicates copy: a
duplicate picks a source class, then a source of that class with Zipf-distributed popularity, and regenerates
its text from the source's slot; spam and boilerplate are the most copied, a few of them thousands of times.

`Layout.version` is the generator version (`VERSIONS`). Version 5 grades the quality of every clean and noisy
document (`harness.sandbox.graded`) and labels it with its `q`; every other slot is version 4's, byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.io.files import write_bytes_atomic
from harness.sandbox import documents as D
from harness.sandbox import graded, leaks
from harness.sandbox.world import World, build_world

#: Documents at scale 1.0: about 98M characters, ~39M tokens of the sandbox BPE (2.5 characters per token
#: overall: junk tokenizes badly), so ~9x the nano budget, and ~7M tokens of clean text alone.
BASE_DOCUMENTS = 280_000
#: Shards at scale 1.0; the count follows the scale so that shards keep their size.
BASE_SHARDS = 24
#: Originals that duplicates copy, at scale 1.0.
BASE_SOURCES = 4000
ZIPF_EXPONENT = 1.1

#: Share of documents per class, outside the source slots.
CLASS_WEIGHTS = {
    "clean": 0.38,
    "noisy": 0.08,
    "wrong_fact": 0.06,
    "spam": 0.05,
    "boilerplate": 0.05,
    "gibberish": 0.03,
    "exact_dup": 0.22,
    "near_dup": 0.13,
}
#: Which class a duplicate copies. The web duplicates its junk most (templated spam, boilerplate pages, trivia
#: farms copying each other); measured in version 1, copies of clean text at 22% left a deduplicated sample no
#: cleaner than a random one, which is not what deduplication does on the web.
DUP_SOURCE_WEIGHTS = {"spam": 0.45, "boilerplate": 0.38, "clean": 0.05, "noisy": 0.03, "wrong_fact": 0.09}
#: Classes of the source slots, in a repeating pattern of 20.
SOURCE_PATTERN = ("spam",) * 5 + ("boilerplate",) * 5 + ("clean",) * 6 + ("noisy",) * 2 + ("wrong_fact",) * 2
#: Generator versions this code reproduces (earlier ones are gone from the code; their pools are not pinned).
VERSIONS = (4, 5)
#: The first version whose clean documents carry a graded quality q.
GRADED_FROM = 5
#: Every class; `leaked` documents (quotes of evaluation items, `harness.sandbox.leaks`) sit on fixed slots.
CLASSES = (*CLASS_WEIGHTS, "leaked")

_CLEAN_DOMAINS = {"page": "wiki", "story": "stories", "list": "atlas", "qa": "answers"}


@dataclass(frozen=True)
class Layout:
    """Sizes of one generation: documents, shards and duplicate sources for a seed, scale and version."""

    seed: int
    n_documents: int
    n_shards: int
    n_sources: int
    n_leaked: int = 0
    #: Generator version (one of `VERSIONS`).
    version: int = VERSIONS[-1]

    @classmethod
    def for_scale(cls, seed: int, scale: float, version: int = VERSIONS[-1]) -> Layout:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if version not in VERSIONS:
            raise ValueError(f"sandbox generator version {version} is not one of {', '.join(map(str, VERSIONS))}")
        n_docs = max(100, round(BASE_DOCUMENTS * scale))
        n_shards = max(2, min(256, round(BASE_SHARDS * scale)))
        n_sources = max(40, round(BASE_SOURCES * scale))
        return cls(seed, n_docs, n_shards, n_sources, leaks.n_leaked(n_docs, n_sources, scale), version)


@cache
def _leaked_slots(layout: Layout) -> dict[int, int]:
    return leaks.leaked_slots(layout.n_documents, layout.n_sources, layout.n_leaked)


@cache
def _sources(layout: Layout) -> dict[str, tuple[list[int], list[float]]]:
    """Per source class: its source slots and the cumulative Zipf weights to draw one."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for cls in DUP_SOURCE_WEIGHTS:
        slots = [r for r in range(layout.n_sources) if SOURCE_PATTERN[r % len(SOURCE_PATTERN)] == cls]
        total, cum = 0.0, []
        for j in range(len(slots)):
            total += 1.0 / (j + 1) ** ZIPF_EXPONENT
            cum.append(total)
        out[cls] = (slots, cum)
    return out


def slot_class(layout: Layout, g: int, rng: random.Random) -> str:
    if g < layout.n_sources:
        return SOURCE_PATTERN[g % len(SOURCE_PATTERN)]
    return rng.choices(tuple(CLASS_WEIGHTS), weights=list(CLASS_WEIGHTS.values()))[0]


def _url(rng: random.Random, domain: str, g: int) -> str:
    return f"sandbox://{domain}.sandbox/{rng.randrange(16**6):06x}/{g}"


def base_document(world: World, layout: Layout, g: int) -> tuple[str, str, str, float | None]:
    """(class, url, text, q) of slot g when it is not a duplicate (sources always are not); q is None but for
    clean and noisy documents of a graded version."""
    rng = random.Random(f"{layout.seed}/slot/{g}")
    cls = slot_class(layout, g, rng)
    if cls in ("clean", "wrong_fact", "noisy"):
        q = None
        if cls != "wrong_fact" and layout.version >= GRADED_FROM:
            q, qrng = graded.draw_quality(layout.seed, g)
            kind, text = graded.graded_clean(world, rng, q, qrng)
        else:
            kind, text = D.clean(D.Facts(world, wrong=cls == "wrong_fact"), rng)
        domain = _CLEAN_DOMAINS[kind]
        if cls == "noisy":
            text, domain = D.corrupt(text, rng), f"forum-{rng.randrange(30)}"
        # Half the myths come from a few trivia sites, which also host some true pages: a URL filter helps,
        # but is not a perfect one.
        elif (cls == "wrong_fact" and rng.random() < 0.5) or rng.random() < 0.05:
            domain = f"trivia-{rng.randrange(8)}"
        return cls, _url(rng, domain, g), text, q
    if cls == "spam":
        return cls, _url(rng, f"deals-{rng.randrange(40)}", g), D.spam(world, rng), None
    if cls == "boilerplate":
        return (
            cls,
            _url(rng, f"{rng.choice(('news', 'shop', 'blog', 'portal'))}-{rng.randrange(60)}", g),
            D.boilerplate(world, rng),
            None,
        )
    if cls == "gibberish":
        return cls, _url(rng, f"x{rng.randrange(16**4):04x}", g), D.gibberish(world, rng), None
    raise AssertionError(f"slot {g} of class {cls} is a duplicate")


@cache
def _source(world: World, layout: Layout, r: int) -> tuple[str, str, str, float | None]:
    return base_document(world, layout, r)


def document(world: World, layout: Layout, g: int) -> tuple[dict, dict]:
    """The pool document of slot g and its label (with `q`, rounded to 4 places, where the text has one)."""
    if g in _leaked_slots(layout):
        domain, text, fields = leaks.leaked_document(world, layout.seed, _leaked_slots(layout)[g])
        url = _url(random.Random(f"{layout.seed}/slot/{g}"), domain, g)
        did = doc_id(url, text)
        return {"id": did, "url": url, "text": text}, {"id": did, "class": "leaked", **fields}
    rng = random.Random(f"{layout.seed}/slot/{g}")
    cls = slot_class(layout, g, rng)
    if cls in ("exact_dup", "near_dup"):
        src_cls = rng.choices(list(DUP_SOURCE_WEIGHTS), weights=list(DUP_SOURCE_WEIGHTS.values()))[0]
        slots, cum = _sources(layout)[src_cls]
        r = slots[min(bisect_left(cum, rng.random() * cum[-1]), len(slots) - 1)]
        _, src_url, src_text, q = _source(world, layout, r)
        text = src_text if cls == "exact_dup" else D.near_copy(src_text, rng)
        url = _url(rng, f"mirror-{rng.randrange(50)}", g)
        label = {"class": cls, "source": doc_id(src_url, src_text), "source_class": src_cls}
    else:
        cls, url, text, q = base_document(world, layout, g)
        label = {"class": cls}
    if q is not None:  # a copy carries the quality of the text it copies
        label["q"] = round(q, 4)
    did = doc_id(url, text)
    return {"id": did, "url": url, "text": text}, {"id": did, **label}


def doc_id(url: str, text: str) -> str:
    return hashlib.sha256((url + "\n" + text).encode()).hexdigest()[:32]


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (no mtime, no file name) so equal content gives equal bytes with one zlib."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def write_shard(out_dir: Path, world_seed: int, layout: Layout, shard: int) -> dict:
    """Generate and write one shard; return its manifest entry plus its labels and class counts."""
    world = build_world(world_seed)
    lines, labels = [], []
    counts = dict.fromkeys(CLASSES, 0)
    chars = 0
    for g in range(shard, layout.n_documents, layout.n_shards):
        doc, label = document(world, layout, g)
        lines.append(json.dumps(doc, ensure_ascii=False) + "\n")
        labels.append(json.dumps(label) + "\n")
        counts[label["class"]] += 1
        chars += len(doc["text"])
    content = "".join(lines).encode()
    data = gzip_bytes(content)
    rel = f"shards/shard-{shard:05d}.jsonl.gz"
    write_bytes_atomic(out_dir / rel, data)
    entry = {
        "path": rel,
        "documents": len(lines),
        "characters": chars,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_sha256": hashlib.sha256(content).hexdigest(),
    }
    return {"entry": entry, "labels": "".join(labels), "counts": counts}
