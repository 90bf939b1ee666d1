"""`evaluate_checkpoint`: a checkpoint scored on a suite -> `EvalResult` (raw per-task metrics with stderr and
data hashes, DCLM accuracies, versioned aggregates, versions and seeds), written as eval.json."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.stats import BOOTSTRAP_SEED
from harness.evaluate.aggregate import Aggregate, compute_aggregates
from harness.evaluate.choices import choices_of
from harness.evaluate.continuous import Choices, best_per_token, block_of, task_metrics
from harness.evaluate.data import suite_data_root
from harness.evaluate.signal import signal_for_track
from harness.evaluate.suites import Suite, SuiteTask, get_suite

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.tracks import Track

#: lm-eval's default seeds (python random, numpy, torch, few-shot sampling), fixed so results reproduce.
SEEDS = {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}
#: Bootstrap resamples for the stderr of perplexity-style metrics (means use the analytic stderr).
BOOTSTRAP_ITERS = 100
SCHEMA = "harness.eval/1"


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome. `accuracy` is the suite metric (bits per byte for perplexity tasks)."""

    name: str
    metric: str
    accuracy: float | None
    metrics: dict[str, float]
    stderr: dict[str, float]
    n_samples: int
    shots: int
    data: dict[str, Any]
    chance: float | None = None  # mean 1/len(choices) seen in the data (multiple choice)
    subtasks: dict[str, float] = field(default_factory=dict)
    # Per-example outcomes of the scored metric, per subtask (harness.analysis.stats), and the bootstrap interval.
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    interval: dict[str, Any] | None = None
    # Every choice's log-probability and lengths per subtask (harness.evaluate.continuous's block format), and the
    # task's continuous metrics derived from them; empty for generation and perplexity tasks.
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)
    continuous: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "name"}


@dataclass(frozen=True)
class EvalResult:
    """Everything `harness evaluate` reports; `to_json()` is the eval.json contents."""

    suite: str
    suite_version: int
    primary: str
    checkpoint: str
    track: str | None
    tasks: dict[str, TaskResult]
    missing: dict[str, str]
    aggregates: dict[str, Aggregate]
    lm_eval_version: str
    harness_version: str
    seeds: dict[str, int]
    limit: int | None
    device: str
    seconds: float
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)  # aggregate -> bootstrap interval
    heldout_lm: dict[str, float] | None = None  # harness.evaluate.heldout_lm, for suites with held-out text

    @property
    def primary_value(self) -> float | None:
        agg = self.aggregates.get(self.primary)
        return agg.value if agg else None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "suite": self.suite,
            "suite_version": self.suite_version,
            "primary": self.primary,
            "primary_value": self.primary_value,
            "checkpoint": self.checkpoint,
            "track": self.track,
            "limit": self.limit,
            "tasks": {n: t.to_dict() for n, t in self.tasks.items()},
            "missing": self.missing,
            "aggregates": {n: {**a.to_dict(), "interval": self.intervals.get(n)} for n, a in self.aggregates.items()},
            "versions": {"lm_eval": self.lm_eval_version, "harness": self.harness_version},
            "seeds": self.seeds,
            "device": self.device,
            "seconds": round(self.seconds, 3),
            "heldout_lm": self.heldout_lm,
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write eval.json atomically (a reader never sees half a file)."""
        from harness.io.files import write_text_atomic

        out = Path(path)
        write_text_atomic(out, json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        return out


def _seed_everything() -> None:
    import random

    import numpy as np
    import torch

    random.seed(SEEDS["random"])
    np.random.seed(SEEDS["numpy"])
    torch.manual_seed(SEEDS["torch"])


def evaluate_checkpoint(
    checkpoint: str,
    *,
    suite: str,
    track: Track | None = None,
    limit: int | None = None,
    mirror: str | None = None,
    device: str | None = None,
    batch_size: int = 32,
    tokenizer_file: str | None = None,
    progress: Progress | None = None,
    eval_data: str | None = None,
) -> EvalResult:
    """Score `checkpoint` on `suite`. Tasks whose data is missing are listed in `missing` (with the reason) and
    make every aggregate that needs them absent; nothing is silently skipped.

    `mirror`: a local mirror of the hub datasets (default $HARNESS_EVAL_MIRROR), or for pool suites a folder with
    the pool's eval files. `tokenizer_file`: a tokenizer.json to use instead of the spec's (offline machines).
    `eval_data`: the folder holding DCLM's local_data/ for the DCLM tasks (default $HARNESS_EVAL_DATA, else what
    `harness eval-data fetch` wrote)."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's tqdm bars would fight the rich progress display
    import lm_eval
    import torch

    from harness import __version__
    from harness.evaluate.checkpoint import load_model, resolve_checkpoint
    from harness.evaluate.lm import HarnessLM
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    started = time.perf_counter()
    spec = get_suite(suite)
    info = resolve_checkpoint(checkpoint, track=track)
    track = track or (get_track(info.track) if info.track else None)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokens = load_tokenizer(info.tokenizer, path=tokenizer_file or info.tokenizer_file)
    lm = HarnessLM.from_model(
        load_model(info, dev), tokens, eot_id=info.tokenizer.eot_id,
        pad_id=info.tokenizer.pad_id, max_length=info.shape.context, device=dev, batch_size=batch_size,
    )  # fmt: skip
    data_root = suite_data_root(spec, track, mirror)
    tasks, missing = _run_tasks(lm, spec, data_root, limit, progress, eval_data)
    heldout = _heldout_lm(lm, info, data_root if spec.data == "pool" else None, limit)
    accuracies = {name: t.accuracy for name, t in tasks.items()}
    tasks, intervals = _with_intervals(spec, tasks)
    aggregates = compute_aggregates(spec, accuracies)
    # The track's derived signal aggregate (harness.evaluate.signal), added beside the suite's, never replacing one.
    by_task = {n: (t.metric, t.accuracy, t.continuous) for n, t in tasks.items()}
    aggregates.update(signal_for_track(track.name if track else None, spec.name, spec.version, by_task))
    return EvalResult(
        suite=spec.name, suite_version=spec.version, primary=spec.primary, checkpoint=str(info.weights),
        track=track.name if track else None, tasks=tasks, missing=missing,
        aggregates=aggregates, lm_eval_version=lm_eval.__version__,
        harness_version=__version__, seeds={**SEEDS, "bootstrap": BOOTSTRAP_SEED}, limit=limit, device=dev,
        seconds=time.perf_counter() - started, intervals=intervals, heldout_lm=heldout,
    )  # fmt: skip


def _heldout_lm(lm: Any, info: Any, data_root: Path | None, limit: int | None) -> dict[str, float] | None:
    """Validation loss, next-token accuracy and perplexity on the suite's clean held-out text (None without it)."""
    from harness.evaluate.heldout_lm import heldout_lm_metrics, heldout_texts

    texts = heldout_texts(data_root)
    if not texts:
        return None
    return heldout_lm_metrics(
        lm.model, lm.tokenizer, texts[:limit] if limit else texts, eot_id=info.tokenizer.eot_id,
        context=info.shape.context, device=str(lm.device), batch_size=lm.batch_size,
    )  # fmt: skip


def _with_intervals(suite: Suite, tasks: dict[str, TaskResult]) -> tuple[dict[str, TaskResult], dict[str, Any]]:
    """Bootstrap intervals over evaluation examples (fixed seed) for every task and aggregate."""
    from dataclasses import replace

    from harness.analysis.stats import bootstrap_intervals

    per_task, per_agg = bootstrap_intervals(suite, {n: t.examples for n, t in tasks.items() if t.examples})
    return {n: replace(t, interval=per_task.get(n)) for n, t in tasks.items()}, per_agg


def _run_tasks(
    lm: Any, suite: Suite, data_root: Path | None, limit: int | None, progress: Progress | None,
    eval_data: str | None = None,
) -> tuple[dict[str, TaskResult], dict[str, str]]:  # fmt: skip
    from harness.evaluate.data import MissingData
    from harness.evaluate.icl.files import data_root as icl_data_root
    from harness.evaluate.icl.task import build_icl_tasks
    from harness.evaluate.tasks import build_tasks

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # lm-eval logs every task's config choices
    bar = progress.add_task(f"evaluate {suite.name}", total=len(suite.tasks)) if progress else None
    done_requests = 0

    def tick(n: int) -> None:
        nonlocal done_requests
        done_requests += n
        if progress and bar is not None:
            progress.update(bar, description=f"evaluate {suite.name}: {current} ({done_requests} requests)")

    lm.progress = tick
    results, missing = {}, {}
    for task in suite.tasks:
        current = task.name
        tick(0)
        try:
            if task.icl:  # DCLM's task: llm-foundry's requests over DCLM's data files
                root = icl_data_root(eval_data)
                built = build_icl_tasks(task.icl, suite_task=task.name, metric=task.metric, shots=task.shots,
                                        data_root=root, tokenizer=lm.tokenizer, first=limit)  # fmt: skip
            else:
                built = build_tasks(task, data_root=data_root, fewshot_seed=SEEDS["fewshot"])
        except MissingData as exc:
            missing[task.name] = str(exc)
        else:
            results[task.name] = _evaluate_task(lm, task, built, limit)
        if progress and bar is not None:
            progress.advance(bar)
    return results, missing


def _evaluate_task(lm: Any, task: SuiteTask, built: list[Any], limit: int | None) -> TaskResult:
    from lm_eval.evaluator import evaluate

    _seed_everything()
    per_sub: dict[str, float] = {}
    metrics: dict[str, float] = {}
    stderr: dict[str, float] = {}
    chances: list[float] = []
    examples: dict[str, dict[str, Any]] = {}
    choices: dict[str, dict[str, Any]] = {}
    n_samples = 0
    for b in built:
        with contextlib.redirect_stdout(io.StringIO()):  # lm-eval prints "bootstrapping for stddev" lines
            out = evaluate(lm, {b.name: b.task}, limit=limit, bootstrap_iters=BOOTSTRAP_ITERS, log_samples=True,
                           verbosity="ERROR")  # fmt: skip
        raw = out["results"][b.name]
        samples = out["samples"][b.name]
        sub_metrics, sub_stderr = _split_metrics(raw)
        scored = choices_of(lm, b.task, samples)
        if scored is not None:
            choices[b.subtask or task.name] = block_of(scored)
        if task.metric == "acc_per_token" and not task.icl:  # DCLM's tasks score per token themselves
            hits = _per_token_hits(scored or [])
            sub_metrics["acc_per_token"], sub_stderr["acc_per_token"] = _mean_and_stderr(hits)
            examples[b.subtask or task.name] = {"kind": "mean", "values": hits}
        else:
            examples[b.subtask or task.name] = _examples_of(task.metric, samples)
        if task.metric == "acc_per_token":
            chances += [1.0 / len(s["arguments"]) for s in samples]
        n_samples += len(samples)
        prefix = f"{b.subtask}/" if b.subtask else ""
        metrics.update({prefix + k: v for k, v in sub_metrics.items()})
        stderr.update({prefix + k: v for k, v in sub_stderr.items()})
        per_sub[b.subtask or task.name] = sub_metrics[task.metric]
    accuracy = sum(per_sub.values()) / len(per_sub)  # macro average over subtasks / DCLM's categories
    return TaskResult(
        name=task.name, metric=task.metric, accuracy=accuracy, metrics=metrics, stderr=stderr,
        n_samples=n_samples, shots=task.shots,
        data={(b.subtask or task.name): b.data.to_dict() for b in built},
        chance=sum(chances) / len(chances) if chances else None,
        subtasks=per_sub if task.subtasks or len(built) > 1 else {}, examples=examples,
        choices=choices if len(choices) == len(built) else {},
        continuous=task_metrics(choices) if len(choices) == len(built) else {},
    )  # fmt: skip


def _examples_of(metric: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-example values of `metric` from lm-eval's logged samples (harness.analysis.stats's example format)."""
    values = [s[metric] for s in samples]
    if metric == "bits_per_byte":  # (log-likelihood, bytes) pairs
        return {"kind": "bits_per_byte", "values": [float(v[0]) for v in values], "weights": [v[1] for v in values]}
    return {"kind": "mean", "values": [float(v) for v in values]}


def _split_metrics(raw: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """lm-eval's "acc,none" / "acc_stderr,none" keys -> {acc: ...}, {acc: ...} (absent stderr left out)."""
    metrics, stderr = {}, {}
    for key, value in raw.items():
        if "," not in key or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        name = key.split(",")[0]
        if math.isnan(value) or math.isinf(value):
            continue
        if name.endswith("_stderr"):
            stderr[name[: -len("_stderr")]] = float(value)
        else:
            metrics[name] = float(value)
    return metrics, stderr


def _per_token_hits(choices: list[Choices]) -> list[float]:
    """DCLM's multiple-choice accuracy per example: the choice with the highest log-likelihood per continuation
    token is right (1.0) or not (0.0)."""
    return [float(best_per_token(c) == c.gold) for c in choices]


def _mean_and_stderr(hits: list[float]) -> tuple[float, float]:
    n = len(hits)
    acc = sum(hits) / n
    return acc, math.sqrt(acc * (1 - acc) / (n - 1)) if n > 1 else 0.0
