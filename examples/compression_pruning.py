"""Baseline 6: compression pruning, the model-free view of information pruning: drop the half of the pool that
zstd compresses best (templated, repetitive text carries the least information), then a random sample.

    python examples/compression_pruning.py --track nano --out subsets/compression.jsonl
"""

from __future__ import annotations

from common import parse_args, pool_scores, select_subset

KEEP = 0.5

if __name__ == "__main__":
    args = parse_args(__doc__)
    scores = pool_scores(args.track, "compression", workers=args.workers)
    select_subset(args.track, [scores], args.out, by="compression_ratio", top=KEEP, seed=args.seed)
