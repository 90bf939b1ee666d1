"""The leaderboard record of a finished submission, with full provenance."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.errors import HarnessError
from harness.submit.stages import Submission, digest

if TYPE_CHECKING:
    from harness.records import Record


def git_commit() -> str:
    """The harness checkout's commit ('' for an installed wheel or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _hardware(device: str | None) -> dict[str, Any]:
    import torch

    if (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
        return {"accelerator": torch.cuda.get_device_name(0), "cpu": platform.processor()}
    return {"accelerator": "cpu", "cpu": platform.processor() or platform.machine()}


def _curve(log: Path) -> list[list[float]]:
    from harness.records import downsample_curve

    points = []
    if log.is_file():
        for number, line in enumerate(log.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
            except ValueError:  # training repairs its log when it resumes; a log damaged otherwise is refused
                raise HarnessError(
                    f"{log}, line {number}: not a JSON row; delete {log.parent} and re-run to train again"
                ) from None
            if "loss" in row and "step" in row:
                points.append([row["step"], row.get("tokens", row.get("tokens_seen", 0)), row["loss"]])
    return downsample_curve(points)


def build_record(sub: Submission) -> Record:
    """The leaderboard record of a finished submission, with full provenance."""
    import lm_eval
    import torch

    from harness.records import SCHEMA_VERSION, Record, now_iso
    from harness.submit.replicates import replicates_block
    from harness.tokenizer import tokenizer_sha256
    from harness.tracks import scale_of

    opts, track = sub.options, sub.track
    val, tok, tr = sub.outputs["validate"], sub.outputs["tokenize"], sub.outputs["train"]
    evaluation = json.loads((sub.stage_dir("evaluate") / "eval.json").read_text())
    stats = val["stats"]
    data = {
        "schema_version": SCHEMA_VERSION,
        "entry_id": sub.entry_id,
        "created_at": now_iso(),
        "submission": {
            "name": opts.display_name,
            "authors": list(opts.authors),
            "description": opts.description,
            "link": opts.link,
        },
        "track": {"name": track.name, "version": track.version, "sha256": track.sha256, **_scale(scale_of(track))},
        "pool": val["pool"],
        "subset": {
            "sha256": val["subset_hash"],
            "documents": stats["documents"],
            "unique_documents": stats["unique_documents"],
            "tokens": tok["tokens"] - tok.get("padding_tokens", 0),
            "unique_tokens": stats.get("unique_tokens") or 0,
        },
        "tokenizer_sha256": tokenizer_sha256(track.tokenizer),
        "versions": {
            "harness": __version__,
            "git_commit": git_commit(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lm_eval": getattr(lm_eval, "__version__", ""),
            "open_lm": tr.get("open_lm", ""),
        },
        "hardware": {
            **_hardware(opts.device),
            "count": int(tr.get("processes") or 1),
            **({"threads": tr["threads"]} if tr.get("threads") else {}),
        },
        "seeds": {"train": track.recipe.seed, "shuffle": tok.get("seed", track.recipe.seed), **evaluation["seeds"]},
        "training": {
            "trainer": tr["trainer"],
            "tokens_seen": tr["tokens_seen"],
            "passes": tr["passes"],
            "unique_passes": tr["tokens_seen"] / stats["unique_tokens"] if stats.get("unique_tokens") else 0.0,
            "steps": tr["steps"],
            "final_loss": tr["final_loss"],
            "wall_time_s": tr["wall_time_s"],
            "compiled": bool(tr.get("compiled", False)),
            "curve": _curve(Path(tr["log"])),
        },
        "evaluation": evaluation_for_record(evaluation),
        "replicates": replicates_block(sub, opts.replicate_seeds(track)),
        "contamination": val["contamination"],
    }
    return Record.from_data(data, "<new record>")


def _scale(base_scale: tuple[str, float]) -> dict[str, Any]:
    base, scale = base_scale
    return {"base": base, "scale": scale}


def _finite_values(values: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in values.items() if isinstance(v, int | float) and v == v and abs(v) != float("inf")}


def evaluation_for_record(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The record's `evaluation` block from an eval.json (harness.evaluate.run.EvalResult.to_json()).

    Each task's baseline and centered accuracy use the newest baseline version of its suite (v2 where DCLM
    corrected it); the raw metrics are kept whole so aggregates can be recomputed under any version.
    """
    from harness.evaluate.aggregate import centered
    from harness.evaluate.suites import get_suite

    suite = get_suite(evaluation["suite"])
    lower_better = {t.name for t in suite.tasks if t.metric == "bits_per_byte"}
    tasks = {}
    for name, t in evaluation["tasks"].items():
        if t["accuracy"] is None:
            continue  # a missing task: its absence is visible in the aggregates' `missing`
        spec = suite.task(name)
        baseline = spec.baselines[max(spec.baselines)] if spec.baselines else None
        tasks[name] = {
            "metric": t["metric"],
            "value": t["accuracy"],
            "higher_is_better": name not in lower_better,
            "baseline": baseline,
            "centered": None if baseline is None else centered(t["accuracy"], baseline),
            "shots": t["shots"],
            "n_samples": t["n_samples"],
            "metrics": {k: v for k, v in t["metrics"].items() if isinstance(v, int | float) and v == v},
            "stderr": {k: v for k, v in t["stderr"].items() if isinstance(v, int | float) and v == v},
            "data_hash": digest(t["data"]),
            "continuous": _finite_values(t.get("continuous") or {}),
        }
    descriptions = {spec.name: spec.description for spec in suite.aggregates}
    aggregates = {}
    for name, agg in evaluation["aggregates"].items():
        aggregates[name] = {
            "value": agg["value"],
            "version": agg["stamp"],
            "n_tasks": len(agg["tasks"]),
            "missing": agg["missing"],
            "reason": agg["reason"],
            "higher_is_better": agg.get("higher_is_better", not set(agg["tasks"]) <= lower_better),
            "description": agg.get("description")
            or descriptions.get(name.split("_v")[0].split("/")[0], descriptions.get(name, "")),
        }
    return {
        "suite": evaluation["suite"],
        "suite_version": evaluation["suite_version"],
        "primary_aggregate": evaluation["primary"],
        "tasks": tasks,
        "aggregates": aggregates,
        "heldout_lm": evaluation.get("heldout_lm") or {},
    }
