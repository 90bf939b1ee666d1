"""Baseline 3: deduplication, then datatrove's heuristic quality filters (Gopher quality and repetition, C4,
FineWeb; their default thresholds), then a random sample sized to the track's token budget.

    python examples/quality_filter.py --track nano --out subsets/quality.jsonl
"""

from __future__ import annotations

from common import parse_args, pool_scores, select_subset

if __name__ == "__main__":
    args = parse_args(__doc__)
    dedup = pool_scores(args.track, "dedup", workers=args.workers)
    rules = pool_scores(args.track, "heuristics", workers=args.workers)
    select_subset(args.track, [dedup, rules], args.out, where=("minhash_keep and heuristics_pass",),
                  unique=("exact_cluster",), seed=args.seed)  # fmt: skip
