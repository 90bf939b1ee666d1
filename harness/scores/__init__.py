"""Per-document scores and selection: the research layer's first room.

    harness score sandbox --scorer compression --scorer heuristics --out scores/
    harness select --scores scores/ --where heuristics_pass --by compression_ratio --track nano --out subset.jsonl

Scorers (one module each): `compression` (zstd ratio), `heuristics` (datatrove's Gopher, C4, FineWeb filters),
`fasttext` (DCLM's classifier; `harness classifier train`), `loglik` (log-likelihood under a checkpoint) and
`dedup` (exact hashes and datatrove MinHash clusters). `harness.scores.run` runs them on datatrove executors and
writes Parquet keyed by pool id; `harness.scores.select` turns score columns into a subset.
"""

from __future__ import annotations

from typing import Any

from harness.errors import UsageError, unknown_name
from harness.scores.base import Scorer

#: Scorer name -> (module, class), imported on demand (torch, fasttext and datatrove stay out of start-up).
SCORERS: dict[str, tuple[str, str]] = {
    "compression": ("harness.scores.compression", "CompressionScorer"),
    "heuristics": ("harness.scores.heuristics", "HeuristicsScorer"),
    "fasttext": ("harness.scores.classifier", "FastTextScorer"),
    "loglik": ("harness.scores.loglik", "LoglikScorer"),
    "dedup": ("harness.scores.dedup", "DedupScorer"),
}


def make_scorer(name: str, **options: Any) -> Scorer:
    """The scorer `name` configured with `options` (its dataclass fields); unknown names suggest close ones."""
    import importlib
    from dataclasses import fields

    if name not in SCORERS:
        raise unknown_name("scorer", name, SCORERS)
    module, cls_name = SCORERS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in options.items() if k in known})
    except ValueError as exc:
        raise UsageError(f"scorer {name!r}: {exc}") from exc


__all__ = ["SCORERS", "Scorer", "make_scorer"]
