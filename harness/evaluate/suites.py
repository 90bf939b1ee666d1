"""Suites: which tasks a track is scored on, with shots, random baselines, categories and their lm-eval configs.

A suite is data, `evaluation/<id>.toml`, loaded strictly (unknown keys are errors). A suite may `include` other
suites (extended = core + extra tasks). A task either names DCLM's task (`icl`, a label of
`evaluation/dclm/heavy.toml`): its requests are rendered from DCLM's data files exactly as llm-foundry 0.9.0
renders them (`harness.evaluate.icl`); or it names an lm-eval task YAML under `evaluation/tasks/` and, where
lm-eval already defines the task, the lm-eval file it starts from (`lm_eval_base`) (the sandbox suite).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from harness.config import ConfigError, check_named_after_file, doc, from_dict, read_toml, shipped_file
from harness.errors import unknown_name
from harness.resources import resource_dir

#: How a task's accuracy is computed (DCLM's llm-foundry evaluators, reproduced over lm-eval's outputs).
Metric = Literal["acc_per_token", "acc", "exact_match", "bits_per_byte"]


@dataclass(frozen=True, kw_only=True)
class SuiteTask:
    """One task of a suite."""

    name: str = doc("Task id (DCLM's label), unique within the suite.")
    category: str = doc("DCLM category, for per-category means.")
    kind: Literal["multiple_choice", "language_modeling", "schema", "generation", "perplexity"] = doc(
        "DCLM's task type: it decides how the task is scored."
    )
    shots: int = doc("Few-shot examples in each prompt.")
    baselines: dict[str, float] = doc("Random-guess accuracy per baseline version (fractions), e.g. {v1=0.2, v2=0.4}.")
    metric: Metric = doc(
        "The accuracy that enters the aggregates: 'acc_per_token' (choice with the highest log-likelihood per "
        "continuation token), 'acc' (lm-eval's: greedy match for language modeling, partial scoring for schema "
        "tasks), 'exact_match' (generation) or 'bits_per_byte' (perplexity tasks, not an accuracy)."
    )
    yaml: str = doc(
        "lm-eval task YAML under evaluation/tasks/ (complete, or the overrides of lm_eval_base); '' with icl.",
        default="",
    )
    icl: str = doc(
        "DCLM task label in evaluation/dclm/heavy.toml: requests rendered from DCLM's data files exactly as "
        "llm-foundry 0.9.0 renders them (harness/evaluate/icl/); used instead of 'yaml'.",
        default="",
    )
    lm_eval_base: str = doc(
        "lm-eval's own task file (relative to lm_eval/tasks/) whose config the YAML overrides; '' = none. "
        "'{subtask}' is replaced by each subtask.",
        default="",
    )
    subtasks: tuple[str, ...] = doc(
        "Subtasks scored separately and macro-averaged into this task's accuracy (MMLU subjects).", default=()
    )
    mirror: tuple[str, ...] = doc(
        "Extra folder names to try in a local mirror ('{name}' = the dataset config name).", default=()
    )
    why: str = doc("What differs from lm-eval's definition (or why lm-eval's is not used), and why.", default="")

    def __post_init__(self) -> None:
        if self.shots < 0:
            raise ValueError(f"task {self.name!r}: 'shots' must be >= 0")
        if bool(self.yaml) == bool(self.icl):
            raise ValueError(f"task {self.name!r}: give exactly one of 'yaml' and 'icl'")
        for version, b in self.baselines.items():
            if isinstance(b, bool) or not isinstance(b, int | float) or not 0 <= b < 1:
                raise ValueError(f"task {self.name!r}: baseline {version!r} must be a fraction in [0, 1), got {b!r}")


@dataclass(frozen=True, kw_only=True)
class AggregateSpec:
    """A number computed from the tasks' accuracies."""

    name: str = doc("Aggregate name; centered means are stamped with the baseline version (Core -> Core_v2).")
    kind: Literal["centered_mean", "mean"] = doc(
        "'centered_mean': mean of (acc - b) / (1 - b) with the version's baselines (no clipping); "
        "'mean': plain mean of the tasks' metric (MMLU accuracy, bits per byte)."
    )
    versions: tuple[str, ...] = doc("Baseline versions to compute (centered_mean only).", default=())
    tasks: tuple[str, ...] = doc("Task names; empty = every task of the suite (see tasks_from).", default=())
    tasks_from: str = doc("Use the tasks of this (included) suite instead of listing them.", default="")
    by_category: bool = doc("Also report the mean per category (named '<name>_<version>/<category>').", default=False)
    description: str = doc("What the number means, for tables and the leaderboard.", default="")

    def __post_init__(self) -> None:
        if self.kind == "centered_mean" and not self.versions:
            raise ValueError(f"aggregate {self.name!r}: a centered_mean needs 'versions'")
        if self.tasks and self.tasks_from:
            raise ValueError(f"aggregate {self.name!r}: give 'tasks' or 'tasks_from', not both")


@dataclass(frozen=True, kw_only=True)
class SuiteFile:
    """The contents of evaluation/<id>.toml."""

    name: str = doc("Suite id, equal to the file name.")
    version: int = doc("Bumped whenever a task, prompt, baseline or aggregate changes; results carry it.")
    description: str = doc("One line for tables.")
    include: tuple[str, ...] = doc("Suites whose tasks come first (extended includes core).", default=())
    primary: str = doc("The aggregate leaderboards rank by (e.g. Core_v2).")
    tasks: tuple[SuiteTask, ...] = doc("The suite's own tasks.", default=())
    aggregates: tuple[AggregateSpec, ...] = doc("Aggregates over the tasks.", default=())
    data: Literal["hub", "pool"] = doc(
        "Where task data comes from: 'hub' (Hugging Face hub, or a local mirror of it) or 'pool' (the held-out "
        "files the track's pool generator writes into <pool>/eval/; relative data_files resolve there).",
        default="hub",
    )
    notes: str = doc("How the suite maps to DCLM and where it deviates.", default="")


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its file plus the tasks of the suites it includes."""

    name: str
    version: int
    description: str
    primary: str
    tasks: tuple[SuiteTask, ...]
    aggregates: tuple[AggregateSpec, ...]
    groups: dict[str, tuple[str, ...]]  # suite id -> its task names (for tasks_from)
    data: str = "hub"

    def task(self, name: str) -> SuiteTask:
        for t in self.tasks:
            if t.name == name:
                return t
        raise unknown_name(f"task of suite {self.name!r}", name, [t.name for t in self.tasks])

    def aggregate_tasks(self, spec: AggregateSpec) -> tuple[str, ...]:
        if spec.tasks:
            return spec.tasks
        if spec.tasks_from:
            return self.groups[spec.tasks_from]
        return tuple(t.name for t in self.tasks if t.metric != "bits_per_byte")

    @property
    def stamp(self) -> str:
        return f"{self.name}@{self.version}"


def tasks_dir() -> Path:
    return resource_dir("evaluation") / "tasks"


def _read(name: str) -> SuiteFile:
    path = shipped_file("evaluation", "suite", name)
    data = from_dict(SuiteFile, read_toml(path), str(path))
    check_named_after_file(path, "name", data.name)
    return data


@cache
def get_suite(name: str) -> Suite:
    """The shipped suite `name`, with included suites' tasks first; checks names, YAMLs and aggregates."""
    data = _read(name)
    source = str(resource_dir("evaluation") / f"{name}.toml")
    tasks: list[SuiteTask] = []
    groups: dict[str, tuple[str, ...]] = {}
    for inc in data.include:
        sub = get_suite(inc)
        tasks.extend(sub.tasks)
        groups.update(sub.groups)
    tasks.extend(data.tasks)
    groups[name] = tuple(t.name for t in tasks)
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: task {dupes[0]!r} is defined twice (check 'include')")
    for t in data.tasks:
        if t.icl:
            _check_icl(t, source)
        elif not (tasks_dir() / t.yaml).is_file():
            raise ConfigError(f"{source}: task {t.name!r}: 'yaml' file evaluation/tasks/{t.yaml} does not exist")
    suite = Suite(name, data.version, data.description, data.primary, tuple(tasks), data.aggregates, groups, data.data)
    _check_aggregates(suite, source)
    return suite


def _check_icl(task: SuiteTask, source: str) -> None:
    from harness.evaluate.icl.spec import icl_tasks

    spec = icl_tasks().get(task.icl)
    if spec is None:
        raise ConfigError(f"{source}: task {task.name!r}: 'icl' {task.icl!r} is not in evaluation/dclm/heavy.toml")
    if spec.num_fewshot != task.shots:
        raise ConfigError(f"{source}: task {task.name!r}: {task.shots} shots, DCLM uses {spec.num_fewshot}")


def _check_aggregates(suite: Suite, source: str) -> None:
    produced = []
    for spec in suite.aggregates:
        if spec.tasks_from and spec.tasks_from not in suite.groups:
            raise ConfigError(f"{source}: aggregate {spec.name!r}: 'tasks_from' {spec.tasks_from!r} is not included")
        for task_name in suite.aggregate_tasks(spec):
            task = next((t for t in suite.tasks if t.name == task_name), None)
            if task is None:
                raise ConfigError(f"{source}: aggregate {spec.name!r} names unknown task {task_name!r}")
            missing = [v for v in spec.versions if v not in task.baselines]
            if missing:
                raise ConfigError(f"{source}: task {task_name!r} has no baseline {missing[0]!r} for {spec.name!r}")
        produced += [f"{spec.name}_{v}" for v in spec.versions] if spec.versions else [spec.name]
    if suite.primary not in produced:
        raise ConfigError(f"{source}: 'primary' {suite.primary!r} is not one of the aggregates: {', '.join(produced)}")
