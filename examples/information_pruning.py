"""Baseline 5: information-based pruning ("Measuring Sample Importance in Data Pruning for Training LLMs from a
Data Compression Perspective"): train a small reference model on a random subset, score documents by their
log-likelihood under it (bits per byte: their compressed length per byte), drop the least informative half first,
then a random sample of the budget.

The reference model is the `debug` track's model (393k parameters, the same tokenizer as `nano`) trained on a
random sample of the debug budget. To keep CPU time in minutes, the documents scored are a random candidate
sample of the pool holding `CANDIDATES` times the budget (scoring the whole pool gives the same selection in
distribution: the half kept is the same quantile, estimated on a large sample); `harness score sandbox --scorer
loglik --checkpoint ...` scores them all.

    python examples/information_pruning.py --track nano --out subsets/information.jsonl
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import fill_budget, parse_args, pool_documents, score_files, select_subset, work_dir, write_subset

REFERENCE_TRACK = "debug"
KEEP = 0.5
CANDIDATES = 3
SHARDS = 8


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


def candidates(track: str, seed: int) -> Path:
    """A random sample of the pool holding CANDIDATES x the budget, as JSONL shards of {"id", "text"}."""
    import gzip
    import json

    from harness.tracks import get_track

    folder = work_dir(track) / f"information-candidates-{seed}"
    if (folder / "done").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    budget = get_track(track).tokens
    pool = fill_budget(pool_documents(track), track, seed + 2, tokens=CANDIDATES * budget)
    for s in range(SHARDS):
        with gzip.open(folder / f"part-{s:03d}.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in pool[s::SHARDS])
    (folder / "done").write_text("")
    return folder


if __name__ == "__main__":
    args = parse_args(__doc__)
    model = reference_model(args.track, args.seed)
    scores = score_files(candidates(args.track, args.seed), "loglik", workers=args.workers,
                         tag=f"reference-{args.seed}", checkpoint=str(model), track=REFERENCE_TRACK, device="cpu")  # fmt: skip
    select_subset(args.track, [scores], args.out, by="loglik_bpb", top=KEEP, seed=args.seed)
