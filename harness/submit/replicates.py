"""Replicates: the same subset trained again with the track's next seeds, and the record's `replicates` block.

Replicate 1 is the entry's own run (the track's official seed). Replicate k > 1 lives in
`<run>/replicate-<seed>/` with its own tokenize, train and evaluate stages (the seed changes the initial weights and
the data order, which is fixed by the tokenizer's global shuffle), each resumable and skipped when done, exactly
as the entry's own stages are; they share the entry's validated subset.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.submit.stages import Submission, stage_evaluate, stage_tokenize, stage_train

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.tracks import Track

REPLICATE_STAGES = ("tokenize", "train", "evaluate")


def with_seed(track: Track, seed: int) -> Track:
    """The track with another seed for initialisation and data order (everything else unchanged)."""
    return dataclasses.replace(track, recipe=dataclasses.replace(track.recipe, seed=seed, seeds=()))


@dataclass
class Replicate(Submission):
    """A replicate's stages: its own folder, the entry's validate stage."""

    home: Path = Path()

    def stage_dir(self, stage: str) -> Path:
        return self.home / stage if stage == "validate" else self.run_dir / stage


def replicate_dir(sub: Submission, seed: int) -> Path:
    return sub.run_dir / f"replicate-{seed}"


def run_replicates(sub: Submission, seeds: tuple[int, ...], progress: Progress | None, say: Any) -> list[Path]:
    """Train and evaluate replicates 2..k (each stage resumable); returns every replicate's eval.json, the
    entry's own first."""
    evals = [sub.stage_dir("evaluate") / "eval.json"]
    k = len(seeds)
    for n, seed in enumerate(seeds[1:], start=2):
        rep = Replicate(sub.options, with_seed(sub.track, seed), replicate_dir(sub, seed), sub.entry_id,
                        home=sub.run_dir)  # fmt: skip
        rep.outputs["validate"] = sub.outputs["validate"]
        for stage, fn in (("tokenize", stage_tokenize), ("train", stage_train), ("evaluate", stage_evaluate)):
            say(f"replicate {n}/{k} (seed {seed}): {stage}")
            fn(rep, progress)
        sub.skipped.extend(f"replicate-{seed}/{s}" for s in rep.skipped)
        evals.append(rep.stage_dir("evaluate") / "eval.json")
    return evals


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def replicates_block(sub: Submission, seeds: tuple[int, ...]) -> dict[str, Any]:
    """The record's `replicates` block from the k replicates' eval.json and training results."""
    from harness.analysis.stats import bootstrap_intervals, mean_over_replicates, pack_examples, spread
    from harness.evaluate.suites import get_suite
    from harness.submit.checkpoint_scores import trajectory

    k = len(seeds)
    runs, evals = [], []
    for n, seed in enumerate(seeds):
        folder = sub.run_dir if n == 0 else replicate_dir(sub, seed)
        evaluation = json.loads((folder / "evaluate" / "eval.json").read_text())
        train = json.loads((folder / "train" / "_COMPLETE.json").read_text())["outputs"]
        evals.append(evaluation)
        runs.append({
            "seed": seed, "tokens_seen": train["tokens_seen"], "final_loss": train["final_loss"],
            "wall_time_s": train["wall_time_s"],
            "tasks": {t: v["accuracy"] for t, v in evaluation["tasks"].items() if v["accuracy"] is not None},
            "aggregates": {a: v["value"] for a, v in evaluation["aggregates"].items()},
            "examples": {t: pack_examples(v.get("examples") or {}) for t, v in evaluation["tasks"].items()},
            "heldout_lm": {m: v for m, v in (evaluation.get("heldout_lm") or {}).items() if _finite(v)},
            "trajectory": trajectory(folder / "evaluate", train["steps"]),
            "continuous": {
                t: {m: x for m, x in v["continuous"].items() if _finite(x)}
                for t, v in evaluation["tasks"].items() if v.get("continuous")
            },
        })  # fmt: skip
    # Evaluation-example variance of the replicate mean: bootstrap over the examples' replicate-mean outcomes.
    tasks = [t for t, v in evals[0]["tasks"].items() if all(e["tasks"].get(t, {}).get("examples") for e in evals)]
    mean_examples = {t: mean_over_replicates([e["tasks"][t]["examples"] for e in evals]) for t in tasks}
    _, example_intervals = bootstrap_intervals(get_suite(evals[0]["suite"]), mean_examples)
    aggregates = {}
    for name in evals[0]["aggregates"]:
        values = [e["aggregates"][name]["value"] for e in evals]
        if any(v is None for v in values):
            continue
        example_se = example_intervals.get(name, {}).get("stderr", 0.0)
        s = spread(values, example_se)
        aggregates[name] = {"n": s.n, "mean": s.mean, "std": s.std, "low": s.low, "high": s.high,
                            "example_stderr": example_se}  # fmt: skip
    note = (
        "1 replicate: no seed spread measured; the interval covers evaluation examples only"
        if k == 1
        else f"{k} replicates: mean, seed standard deviation, and a 95% interval of the mean combining seed "
        "variance (t with k-1 degrees of freedom) and evaluation-example variance (bootstrap)"
    )
    return {"seeds": list(seeds), "runs": runs, "aggregates": aggregates, "note": note}
