"""Subset transformations of a sweep cell, exact and seeded: filter strength, size fraction, duplication rate.

They act on the base subset's distinct documents (`Docs`: pool ids and token counts, end-of-document included)
and return how many times each document appears (0 = dropped), which `write_subset` turns into `{"id", "repeat"}`
lines. Contracts (pinned by tests that measure the output):
- filter f: exactly round(f n) documents, those with the highest scores (ties broken by id);
- size s: exactly round(s n) documents, a seeded uniform sample;
- duplication r with k sources (Sajith and Kathala 2024's intervention): round(r n) documents, a seeded sample, are
  replaced by copies of k source documents (k = 1 by default: the study copies ONE story), drawn among the kept
  ones; the copies go round-robin over the sources (no source copied more than once more than another) until the
  total tokens are as close as possible to the original total (within half a source document's length). Distinct
  documents: exactly max(k, n - round(r n)) (the study's n - r n; one story at r = 100% with k = 1). The copies'
  share of the tokens is the replaced documents' share (r up to document lengths); their share of the documents
  depends on the sources' lengths (`measure` reports both).
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


def duplicate(docs: Docs, rate: float, seed: int, sources: int = 1) -> np.ndarray:
    """Repeat count per document (0 = replaced) for duplication rate `rate` with `sources` copied documents (see the
    module docstring)."""
    n = len(docs)
    if n == 0:
        raise TransformError("duplication needs a non-empty subset")
    if not 0 <= rate <= 1:
        raise TransformError(f"duplication rate {rate:g} cannot be built: it must lie in [0, 1]")
    if not 1 <= sources <= n:
        raise TransformError(
            f"duplication_sources = {sources} cannot be built on a subset of {n:,} documents: it must lie in [1, {n}]"
        )
    repeats = np.zeros(n, np.int64)
    replaced = round(rate * n)
    if replaced == 0:
        repeats[:] = 1
        return repeats
    rng = np.random.default_rng([seed, 2])
    kept = np.sort(rng.choice(n, size=max(sources, n - replaced), replace=False))
    repeats[kept] = 1
    chosen = kept[rng.choice(len(kept), size=sources, replace=False)]  # the copied documents, in round-robin order
    missing = int(docs.tokens.sum()) - int(docs.tokens[kept].sum())  # the replaced documents' tokens
    cycle = int(docs.tokens[chosen].sum())
    full = missing // cycle  # whole rounds of copies over the sources
    repeats[chosen] += full
    cum = np.concatenate([[0], np.cumsum(docs.tokens[chosen])])
    j = int(np.argmin(np.abs(cum - (missing - full * cycle))))  # copies of the first j sources come closest
    repeats[chosen[:j]] += 1
    return repeats


def write_subset(docs: Docs, repeats: np.ndarray, out: Path) -> dict[str, float]:
    """Write `{"id"[, "repeat"]}` lines (atomically) and return the measured figures of the subset."""
    from harness.io.subset import write_subset as write_ids

    write_ids(out, docs.ids, repeats)
    return measure(docs, repeats)


def measure(docs: Docs, repeats: np.ndarray) -> dict[str, float]:
    """Documents (with repeats), distinct documents, tokens, distinct tokens and the copies' share of the documents
    and of the tokens."""
    kept = repeats > 0
    documents = int(repeats.sum())
    tokens = int((docs.tokens * repeats).sum())
    return {
        "documents": documents,
        "unique_documents": int(kept.sum()),
        "tokens": tokens,
        "unique_tokens": int(docs.tokens[kept].sum()),
        "copy_share": (documents - int(kept.sum())) / documents if documents else 0.0,
        "copy_token_share": int((docs.tokens * np.maximum(repeats - 1, 0)).sum()) / tokens if tokens else 0.0,
    }
