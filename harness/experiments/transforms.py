"""Subset transformations of a sweep cell, exact and seeded: filter strength, size fraction, duplication rate.

They act on the base subset's distinct documents (`Docs`: pool ids and token counts, end-of-document included)
and return how many times each document appears (0 = dropped), which `write_subset` turns into `{"id", "repeat"}`
lines. Contracts (pinned by tests that measure the output):
- filter f: exactly round(f n) documents, those with the highest scores (ties broken by id);
- size s: exactly round(s n) documents, a seeded uniform sample;
- duplication r: exactly max(1, n - round(r n)) distinct documents are kept (a seeded sample) and the other
  round(r n) are replaced by copies of the kept ones, round-robin in a seeded order (so no document is copied
  more than once more than any other), until the total tokens are as close as possible to the original total
  (within half a document). The share of copies among the output's documents is then r up to document lengths.
A level that leaves no document is an error naming the level and the base size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError


class TransformError(HarnessError):
    """A factor level that cannot be built on this base subset."""


@dataclass(frozen=True)
class Docs:
    """Distinct documents: ids (32-hex pool ids) and tokens (text + end-of-document)."""

    ids: np.ndarray  # str objects
    tokens: np.ndarray  # int64

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.tokens):
            raise ValueError("ids and tokens differ in length")

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> Docs:
        return Docs(self.ids[keep], self.tokens[keep])


def _count(fraction: float, n: int, what: str) -> int:
    k = round(fraction * n)
    if k < 1:
        raise TransformError(
            f"{what} {fraction:g} leaves nothing of a base subset of {n:,} documents (round({fraction:g} x {n}) = 0); "
            "use a larger level or a larger base subset"
        )
    return k


def top_fraction(docs: Docs, scores: np.ndarray, fraction: float) -> Docs:
    """The round(fraction n) documents with the highest `scores` (ties: smaller id first), in base order."""
    k = _count(fraction, len(docs), "filter strength")
    order = np.lexsort((docs.ids.astype(str), -np.asarray(scores, dtype=np.float64)))
    return docs.take(np.sort(order[:k]))


def sample_fraction(docs: Docs, fraction: float, seed: int) -> Docs:
    """A seeded uniform sample of exactly round(fraction n) documents, in base order."""
    k = _count(fraction, len(docs), "size fraction")
    rng = np.random.default_rng([seed, 1])
    return docs.take(np.sort(rng.choice(len(docs), size=k, replace=False)))


def duplicate(docs: Docs, rate: float, seed: int) -> np.ndarray:
    """Repeat count per document (0 = replaced) for duplication rate `rate` (see the module docstring)."""
    n = len(docs)
    if n == 0:
        raise TransformError("duplication needs a non-empty subset")
    if not 0 <= rate <= 1:
        raise TransformError(f"duplication rate {rate:g} cannot be built: it must lie in [0, 1]")
    repeats = np.zeros(n, np.int64)
    replaced = round(rate * n)
    if replaced == 0:
        repeats[:] = 1
        return repeats
    rng = np.random.default_rng([seed, 2])
    kept = np.sort(rng.choice(n, size=max(1, n - replaced), replace=False))
    repeats[kept] = 1
    target = int(docs.tokens.sum())
    kept_tokens = docs.tokens[kept]
    cycle = int(kept_tokens.sum())
    missing = target - cycle
    full = missing // cycle  # whole round-robin rounds of copies
    repeats[kept] += full
    rest = missing - full * cycle
    order = kept[rng.permutation(len(kept))]
    cum = np.concatenate([[0], np.cumsum(docs.tokens[order])])
    j = int(np.argmin(np.abs(cum - rest)))  # copies of the first j of this round bring the total closest
    repeats[order[:j]] += 1
    return repeats


def write_subset(docs: Docs, repeats: np.ndarray, out: Path) -> dict[str, float]:
    """Write `{"id"[, "repeat"]}` lines (atomically) and return the measured figures of the subset."""
    from harness.io.subset import write_subset as write_ids

    write_ids(out, docs.ids, repeats)
    return measure(docs, repeats)


def measure(docs: Docs, repeats: np.ndarray) -> dict[str, float]:
    """Documents (with repeats), distinct documents, tokens, distinct tokens and the share of copies."""
    kept = repeats > 0
    documents = int(repeats.sum())
    return {
        "documents": documents,
        "unique_documents": int(kept.sum()),
        "tokens": int((docs.tokens * repeats).sum()),
        "unique_tokens": int(docs.tokens[kept].sum()),
        "copy_share": (documents - int(kept.sum())) / documents if documents else 0.0,
    }
