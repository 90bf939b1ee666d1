"""Scores of every saved checkpoint (`harness submit --checkpoint-scores`): a score trajectory per task and metric,
which `harness reliability` needs for monotonicity and for AI2's checkpoint noise.

The evaluate stage scores the final checkpoint as always (eval.json) and then every earlier `epoch_N.pt` of the
train stage into `evaluate/checkpoints/epoch_N.json`, each written atomically and skipped when present, so an
interrupted stage resumes where it stopped. The record's replicate runs carry the trajectory:
`{"steps": [s_1, ..., s_n], "tasks": {task: {metric: [v_1, ..., v_n]}}, "aggregates": {name: [v_1, ..., v_n]}}`,
the final checkpoint last (harness.records.evaluation.ReplicateRun.trajectory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.records.evaluation import MAX_CHECKPOINT_SCORES

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.tracks import Track

FOLDER = "checkpoints"


def _epoch(path: Path) -> int:
    return int(path.stem.split("_")[1])


def checkpoint_files(train_dir: Path) -> list[Path]:
    """The train stage's `epoch_N.pt` files, oldest first."""
    return sorted((train_dir / "checkpoints").glob("epoch_*.pt"), key=_epoch)


def summary(evaluation: dict[str, Any], step: int) -> dict[str, Any]:
    """What a trajectory keeps of one eval.json: the step, each task's scored value and continuous metrics, each
    aggregate's value (absent ones left out)."""
    tasks = {}
    for name, t in evaluation["tasks"].items():
        if t["accuracy"] is not None:
            tasks[name] = {t["metric"]: t["accuracy"], **(t.get("continuous") or {})}
    aggregates = {n: a["value"] for n, a in evaluation["aggregates"].items() if a["value"] is not None}
    return {"step": step, "tasks": tasks, "aggregates": aggregates}


def checkpoint_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])


def score_checkpoints(
    train_dir: Path, stage_dir: Path, track: Track, device: str | None, progress: Progress | None
) -> int:
    """Evaluate every checkpoint of `train_dir` but the last into `stage_dir/checkpoints/` (resumable); returns how
    many were scored now."""
    from harness.errors import HarnessError
    from harness.evaluate.run import evaluate_checkpoint
    from harness.io.files import write_json_atomic

    files = checkpoint_files(train_dir)[:-1]
    if len(files) + 1 > MAX_CHECKPOINT_SCORES:
        raise HarnessError(
            f"track {track.name} saves {len(files) + 1} checkpoints; a record keeps the scores of at most "
            f"{MAX_CHECKPOINT_SCORES}: submit without --checkpoint-scores"
        )
    out = stage_dir / FOLDER
    out.mkdir(exist_ok=True)
    done = 0
    for path in files:
        target = out / f"{path.stem}.json"
        if target.is_file():
            continue
        result = evaluate_checkpoint(str(path), suite=track.suite, track=track, device=device, progress=progress)
        write_json_atomic(target, summary(result.to_json(), checkpoint_step(path)))
        done += 1
    return done


def trajectory(evaluate_dir: Path, final_step: int) -> dict[str, Any]:
    """The record's trajectory from an evaluate stage folder ({} when its checkpoints were not scored)."""
    folder = evaluate_dir / FOLDER
    if not folder.is_dir():
        return {}
    points = [json.loads(p.read_text()) for p in sorted(folder.glob("epoch_*.json"), key=_epoch)]
    points.append(summary(json.loads((evaluate_dir / "eval.json").read_text()), final_step))
    points.sort(key=lambda p: p["step"])
    tasks: dict[str, dict[str, list[float]]] = {}
    for task, metrics in points[-1]["tasks"].items():
        for metric in metrics:
            if all(metric in p["tasks"].get(task, {}) for p in points):
                tasks.setdefault(task, {})[metric] = [p["tasks"][task][metric] for p in points]
    aggregates = {a: [p["aggregates"][a] for p in points] for a in points[-1]["aggregates"]
                  if all(a in p["aggregates"] for p in points)}  # fmt: skip
    return {"steps": [p["step"] for p in points], "tasks": tasks, "aggregates": aggregates}
