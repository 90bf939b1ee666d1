"""Baseline 4: DCLM's model-based filter. A fastText classifier (bigrams, DCLM's hyper-parameters) trained with
the sandbox's reference set as positives (clean pages and Q&A, never pool documents: DCLM used OH-2.5 + ELI5)
against as many random pool documents as negatives (DCLM: RefinedWeb); keep the top 10% of the pool by P(hq),
then a random sample sized to the budget.

    python examples/classifier.py --track nano --out subsets/classifier.jsonl
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from common import parse_args, pool_scores, select_subset, work_dir

from harness.pools import ensure_pool
from harness.scores.classifier import read_texts, train_classifier
from harness.tracks import get_track

TOP = 0.10


def classifier(track: str, seed: int = 0) -> Path:
    """Train (once) the reference-vs-pool classifier; returns the model file."""
    model = work_dir(track) / f"fasttext-reference-vs-pool-{seed}.bin"
    if model.is_file():
        return model
    pool = ensure_pool(get_track(track).pool)
    positives = list(itertools.chain.from_iterable(read_texts(p) for p in pool.reference_files))
    rows = np.random.default_rng(seed).choice(len(pool), size=min(len(positives), len(pool)), replace=False)
    negatives = [pool.text_of(doc) for _, doc in pool.read_rows(rows)]
    card = train_classifier(positives, negatives, model)
    print(f"classifier: {card['positives']} positives, {card['negatives']} negatives, "
          f"training precision {card['train_precision']:.3f}")  # fmt: skip
    return model


def classifier_scores(track: str, workers: int, seed: int = 0) -> Path:
    model = classifier(track, seed)
    return pool_scores(track, "fasttext", workers=workers, tag=f"reference-{seed}", model=str(model))


if __name__ == "__main__":
    args = parse_args(__doc__)
    scores = classifier_scores(args.track, args.workers)
    select_subset(args.track, [scores], args.out, by="fasttext_hq_prob", top=TOP, seed=args.seed)
