"""Baseline 5: information-based pruning ("Measuring Sample Importance in Data Pruning for Training LLMs from a
Data Compression Perspective"): train a small reference model on a random subset, score every pool document's
log-likelihood under it (bits per byte: its compressed length per byte), drop the least informative half of the
pool first, then a random sample of the budget.

The reference model is the `debug` track's model (393k parameters, the same tokenizer as `nano`) trained on a
random sample of the debug budget.

    python examples/information_pruning.py --track nano --out subsets/information.jsonl
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import fill_budget, parse_args, pool_documents, pool_scores, select_subset, work_dir, write_subset

REFERENCE_TRACK = "debug"
KEEP = 0.5


def reference_model(track: str, seed: int) -> Path:
    """Tokenize a random debug-budget sample and train the debug model on it (once); returns the run folder."""
    root = work_dir(track) / f"reference-model-{seed}"
    run = root / "train"
    if not any(run.glob("checkpoints/epoch_*.pt")):
        subset = root / "random.jsonl"
        write_subset(fill_budget(pool_documents(REFERENCE_TRACK), REFERENCE_TRACK, seed + 1), str(subset))
        harness = [sys.executable, "-m", "harness"]
        subprocess.run(
            [*harness, "tokenize", "--track", REFERENCE_TRACK, str(subset), "--out", str(root / "tokens")], check=True
        )
        subprocess.run(
            [*harness, "train", "--track", REFERENCE_TRACK, "--data", str(root / "tokens"), "--out", str(run)],
            check=True,
        )
    return run


if __name__ == "__main__":
    args = parse_args(__doc__)
    model = reference_model(args.track, args.seed)
    scores = pool_scores(args.track, "loglik", workers=args.workers, tag=f"reference-{args.seed}",
                         checkpoint=str(model), track=REFERENCE_TRACK, device="cpu")  # fmt: skip
    select_subset(args.track, [scores], args.out, by="loglik_bpb", top=KEEP, seed=args.seed)
