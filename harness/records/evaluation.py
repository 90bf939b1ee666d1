"""The evaluation blocks of a record: per-task results, aggregates, replicates and the contamination check.

Record (harness.records.schema) holds them; every field is documented with `doc` and validated on construction.
"""

# No `from __future__ import annotations` here: real annotations keep `from_dict`'s one-time resolution of each
# dataclass's type hints cheap (string annotations made loading 10,000 records 3x slower when it was per call).

from dataclasses import dataclass
from typing import Any, Literal

from harness.config import doc

#: Most aggregates one record may hold. Each distinct aggregate is a column of its track's table on every row of
#: the index page; the shipped suites define one or two, so 16 leaves room for versions side by side while one
#: record can no longer widen the index 100-fold.
MAX_AGGREGATES = 16
#: Most tasks (and replicate runs' tasks, contamination tasks, an aggregate's missing tasks) one record may hold:
#: DCLM's extended suite has 53; each is a row of the entry page.
MAX_TASKS = 256
#: Most raw metrics (and standard errors) of one task; lm-eval reports a handful.
MAX_METRICS = 64
#: Most replicates (seeds) of one entry.
MAX_REPLICATES = 64
#: Most checkpoints a replicate run's score trajectory holds (DCLM's tracks save 5).
MAX_CHECKPOINT_SCORES = 64


def check_count(where: str, items: Any, limit: int) -> None:
    """Refuse more than `limit` items under the key `where`."""
    if len(items) > limit:
        raise ValueError(f"'{where}' holds {len(items):,} items; at most {limit:,} are allowed")


def _check_numbers(where: str, mapping: dict[str, Any]) -> None:
    check_count(
        where, mapping, MAX_METRICS if where in ("metrics", "stderr", "heldout_lm", "continuous") else MAX_TASKS
    )
    for key, value in mapping.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"'{where}.{key}' must be a number, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """One evaluation task: the scored metric, its random baseline and every raw metric lm-eval reported."""

    metric: str = doc("Name of the scored metric in `metrics` (e.g. 'acc_norm', 'bits_per_byte').")
    value: float = doc("Raw value of the scored metric.")
    higher_is_better: bool = doc("Direction of the scored metric.", default=True)
    baseline: float | None = doc("Random-guess baseline of the metric (None when not an accuracy).", default=None)
    centered: float | None = doc(
        "(value - baseline) / (1 - baseline), unclipped; None without a baseline.", default=None
    )
    shots: int | None = doc("Few-shot examples in the prompt.", default=None)
    n_samples: int | None = doc("Examples evaluated.", default=None)
    metrics: dict[str, float] = doc("Every raw metric of the task.", default_factory=dict)
    stderr: dict[str, float] = doc("Standard errors of the raw metrics.", default_factory=dict)
    data_hash: str = doc("Revision or file hash of the task's data.", default="")
    continuous: dict[str, float] = doc(
        "Continuous metrics from every choice's log-probability (harness.evaluate.continuous: correct_prob, "
        "norm_correct_prob, margin, total_prob, their per-token and per-character variants, bits_per_byte of the "
        "gold continuation), means over examples; empty for generation and perplexity tasks and in records made "
        "before schema 3.",
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        _check_numbers("metrics", self.metrics)
        _check_numbers("stderr", self.stderr)
        _check_numbers("continuous", self.continuous)


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    """A summary score over tasks, stamped with its version. `value` is None when a task is missing."""

    value: float | None = doc("The score; None when any of its tasks is missing (never a mean over fewer).")
    version: int | str = doc("Version stamp of the aggregate's definition, e.g. 'core@1/v2' (suite@version/baselines).")
    n_tasks: int = doc("Tasks the aggregate is defined over.")
    missing: tuple[str, ...] = doc("Tasks without a result (then value is None).", default=())
    reason: str = doc("Why the value is absent, when it is.", default="")
    higher_is_better: bool = doc(
        "Sort direction: True for accuracies, False for losses and bits per byte.", default=True
    )
    description: str = doc("One line shown in the leaderboard header's tooltip.", default="")

    def __post_init__(self) -> None:
        check_count("missing", self.missing, MAX_TASKS)
        if self.missing and self.value is not None:
            raise ValueError(f"an aggregate with missing tasks ({', '.join(self.missing)}) must have value null")


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The suite's results."""

    suite: str = doc("Suite id (evaluation/<id>.toml).")
    suite_version: int | str = doc("Suite version.")
    primary_aggregate: str = doc("Name of the aggregate the leaderboard ranks by (e.g. 'Core_v2').")
    tasks: dict[str, TaskResult] = doc("Per-task results by task name.", default_factory=dict)
    aggregates: dict[str, Aggregate] = doc("Aggregates by name.", default_factory=dict)
    heldout_lm: dict[str, float] = doc(
        "Language modelling on the suite's clean held-out text: loss (nats/token), accuracy (next token), "
        "perplexity (exp loss), tokens; empty when the suite has no held-out text.",
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        check_count("evaluation.tasks", self.tasks, MAX_TASKS)
        check_count("evaluation.aggregates", self.aggregates, MAX_AGGREGATES)
        _check_numbers("heldout_lm", self.heldout_lm)
        if self.primary_aggregate not in self.aggregates:
            raise ValueError(
                f"'evaluation.primary_aggregate' {self.primary_aggregate!r} is not among the aggregates "
                f"({', '.join(sorted(self.aggregates)) or 'none'})"
            )


@dataclass(frozen=True, kw_only=True)
class ReplicateRun:
    """One replicate: the same subset trained with another seed (initialisation and data order)."""

    seed: int = doc("Seed of this replicate's initialisation and data order.")
    tokens_seen: int = doc("Tokens trained on.")
    final_loss: float = doc("Training loss at the last step.")
    wall_time_s: float = doc("Wall-clock training time in seconds.")
    tasks: dict[str, float] = doc("Scored metric of every task.", default_factory=dict)
    aggregates: dict[str, float | None] = doc("Every aggregate (None when a task is missing).", default_factory=dict)
    examples: dict[str, Any] = doc(
        "Per-example outcomes by task and subtask, packed (harness.analysis.stats.pack_examples), for paired comparisons.",
        default_factory=dict,
    )
    heldout_lm: dict[str, float] = doc(
        "This replicate's held-out language-model metrics (loss, accuracy, perplexity, ...; empty before they were "
        "kept per replicate).",
        default_factory=dict,
    )

    continuous: dict[str, dict[str, float]] = doc(
        "This replicate's continuous metrics by task (as `TaskResult.continuous`; empty before schema 3).",
        default_factory=dict,
    )
    # Typed Any and checked in __post_init__, as Training.curve is (from_dict would walk every number).
    trajectory: Any = doc(
        "Scores of every saved checkpoint (`harness submit --checkpoint-scores`): {steps: [...], tasks: {task: "
        "{metric: [one value per step]}}, aggregates: {name: [...]}}, the final checkpoint last; empty when not "
        "scored (schema 3).",
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        _check_numbers("tasks", self.tasks)
        _check_numbers("heldout_lm", self.heldout_lm)
        check_count("continuous", self.continuous, MAX_TASKS)
        for task, values in self.continuous.items():
            if not isinstance(values, dict):
                raise ValueError(f"'continuous.{task}' must map metric names to numbers, got {values!r}")
            _check_numbers("continuous", values)
        _check_trajectory(self.trajectory)
        check_count("aggregates", self.aggregates, MAX_AGGREGATES)
        _check_numbers("aggregates", {k: v for k, v in self.aggregates.items() if v is not None})
        check_count("examples", self.examples, MAX_TASKS)


def _check_series(where: str, series: Any, n: int) -> None:
    if not isinstance(series, list) or len(series) != n:
        raise ValueError(f"'{where}' must be a list of {n} numbers, one per step")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in series):
        raise ValueError(f"'{where}' must hold numbers only")


def _check_trajectory(trajectory: Any) -> None:
    """A replicate run's checkpoint scores: bounded in steps, tasks, metrics and aggregates, one value per step."""
    if not isinstance(trajectory, dict) or set(trajectory) - {"steps", "tasks", "aggregates"}:
        raise ValueError("'trajectory' must be {} or an object of steps, tasks and aggregates")
    if not trajectory:
        return
    steps, tasks, aggregates = trajectory.get("steps"), trajectory.get("tasks", {}), trajectory.get("aggregates", {})
    if not isinstance(steps, list) or not steps or any(isinstance(s, bool) or not isinstance(s, int) for s in steps):
        raise ValueError("'trajectory.steps' must be a non-empty list of integer steps")
    check_count("trajectory.steps", steps, MAX_CHECKPOINT_SCORES)
    if not isinstance(tasks, dict) or not isinstance(aggregates, dict):
        raise ValueError("'trajectory.tasks' and 'trajectory.aggregates' must be objects")
    check_count("trajectory.tasks", tasks, MAX_TASKS)
    check_count("trajectory.aggregates", aggregates, MAX_AGGREGATES)
    for task, metrics in tasks.items():
        if not isinstance(metrics, dict):
            raise ValueError(f"'trajectory.tasks.{task}' must map metric names to lists of numbers")
        check_count(f"trajectory.tasks.{task}", metrics, MAX_METRICS)
        for metric, series in metrics.items():
            _check_series(f"trajectory.tasks.{task}.{metric}", series, len(steps))
    for name, series in aggregates.items():
        _check_series(f"trajectory.aggregates.{name}", series, len(steps))


@dataclass(frozen=True, kw_only=True)
class Replicates:
    """The entry's replicates and, per aggregate, their mean, standard deviation and 95% interval."""

    seeds: tuple[int, ...] = doc("Seeds of the replicates, the official one first.")
    runs: tuple[ReplicateRun, ...] = doc("One per seed, in order.")
    aggregates: dict[str, Any] = doc(
        "Per aggregate: {n, mean, std (None with one replicate), low, high, example_stderr} (harness.analysis.stats.spread)."
    )
    note: str = doc("How to read the interval (e.g. that one replicate has no seed spread).", default="")

    def __post_init__(self) -> None:
        check_count("replicates.seeds", self.seeds, MAX_REPLICATES)
        check_count("replicates.aggregates", self.aggregates, MAX_AGGREGATES)
        if (
            not self.seeds
            or len(self.seeds) != len(self.runs)
            or any(r.seed != s for r, s in zip(self.runs, self.seeds, strict=True))
        ):
            raise ValueError("'replicates.runs' must hold one run per seed of 'replicates.seeds', in order")
        for name, stat in self.aggregates.items():
            if not isinstance(stat, dict) or not {"n", "mean", "std", "low", "high"} <= set(stat):
                raise ValueError(f"'replicates.aggregates.{name}' needs n, mean, std, low and high")


@dataclass(frozen=True, kw_only=True)
class Contamination:
    """N-gram overlap between the subset and the suite's evaluation items (harness.submit.decontam)."""

    suite: str = doc("Suite whose items were checked.")
    ngram: int = doc("n of the word n-grams compared.")
    min_coverage: float = doc("Share of an item's n-grams a document must contain to contaminate it.")
    documents_scanned: int = doc("Subset documents read.")
    contaminated_documents: int = doc("Documents that contaminate at least one item.")
    contaminated_items: int = doc("Items contaminated, over all tasks.")
    items: int = doc("Items checked, over all tasks.")
    tasks: dict[str, Any] = doc("Per task: {items, contaminated, item_ids, documents} (see harness.submit.decontam).")
    rule: Literal["report", "reject"] = doc("The track's rule for contaminated subsets.", default="report")

    def __post_init__(self) -> None:
        check_count("contamination.tasks", self.tasks, MAX_TASKS)
