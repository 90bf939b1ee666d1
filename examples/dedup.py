"""Baseline 2: exact and near-duplicate removal with datatrove's blocks, then a random sample of the budget.

`harness score --scorer dedup` runs datatrove's MinHash stages (word 5-grams, datatrove's default 14 bands of 8
hashes: pairs above a Jaccard similarity of about 0.72 collide) and hashes the normalised text; the selection
keeps one document per MinHash cluster (the one datatrove keeps) and the first of each exact-text cluster.

    python examples/dedup.py --track nano --out subsets/dedup.jsonl
"""

from __future__ import annotations

from common import parse_args, pool_scores, select_subset

if __name__ == "__main__":
    args = parse_args(__doc__)
    dedup = pool_scores(args.track, "dedup", workers=args.workers)
    select_subset(args.track, [dedup], args.out, where=("minhash_keep",), unique=("exact_cluster",), seed=args.seed)
