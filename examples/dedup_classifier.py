"""Baseline 7: deduplication (datatrove MinHash + exact), then DCLM's classifier filter on what is left: the top
10% of the deduplicated pool by the fastText classifier's P(hq), then a random sample of the budget.

    python examples/dedup_classifier.py --track nano --out subsets/dedup_classifier.jsonl
"""

from __future__ import annotations

from classifier import TOP, classifier_scores
from common import parse_args, pool_scores, select_subset

if __name__ == "__main__":
    args = parse_args(__doc__)
    dedup = pool_scores(args.track, "dedup", workers=args.workers)
    scores = classifier_scores(args.track, args.workers)
    select_subset(args.track, [dedup, scores], args.out, where=("minhash_keep",), unique=("exact_cluster",),
                  by="fasttext_hq_prob", top=TOP, seed=args.seed)  # fmt: skip
