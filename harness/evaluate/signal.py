"""A track's derived "signal" aggregate: the tasks and the one metric that pass the reliability criteria on that
track, averaged, computed beside (never instead of) the suite's aggregates.

A definition is data, `evaluation/signal/<track>.toml`, written by `harness reliability --track T --derive-signal
FILE` (harness.analysis.signal) and loaded strictly here. When the evaluated checkpoint's track has one,
evaluation adds the aggregate `Signal_<track>_v<version>` to the suite's aggregates; nothing else changes (the
suite's aggregates, its primary, the leaderboard's ranking). A definition holds the evidence it was derived from
(record entry ids and the sha256 of each record file) and the criteria, so the number can be traced and re-derived.

Value of one run: the plain mean, over the definition's tasks, of the definition's metric (a task's scored metric
when that is the metric's name, else its continuous metric of that name), in the metric's own direction
(`higher_is_better`). A task without the metric makes the aggregate absent (None, with the reason), never a mean
over fewer tasks, as for the suite's aggregates.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.config import check_named_after_file, doc, from_dict, read_toml
from harness.evaluate.aggregate import Aggregate
from harness.resources import resource_dir

#: Name prefix of every signal aggregate (`Signal_nano_v1`); suite aggregates never start with it.
PREFIX = "Signal_"
#: Folder of evaluation/ that holds the definitions.
FOLDER = "signal"


@dataclass(frozen=True, kw_only=True)
class Criteria:
    """The reliability criteria a task x metric had to pass (harness.analysis.reliability; FineWeb's thresholds)."""

    min_monotonicity: float = doc("Spearman of score against step, mean over runs, at least this.")
    min_snr: float = doc("FineWeb's SNR (|mean| / seed std) above this.")
    min_chance_margin: float = doc("Seed stds above chance (metrics with a chance level) above this.")
    unmeasured: tuple[str, ...] = doc(
        "Criteria the evidence could not measure, so not applied (e.g. 'monotonicity' without checkpoint scores).",
        default=(),
    )


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """One record the definition was derived from."""

    entry_id: str = doc("The record's entry id.")
    sha256: str = doc("sha256 of the record file's bytes as read.")
    seeds: int = doc("Replicate seeds the record holds.")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One task x metric the derivation considered, with the statistics it was judged on."""

    task: str = doc("Task name.")
    metric: str = doc("Metric name (the task's scored metric or a continuous one).")
    passed: bool = doc("Whether it passed every measured criterion.")
    why: str = doc("The criteria it failed ('' when it passed).", default="")
    fineweb_snr: float | None = doc("FineWeb's SNR (absent: not measured).", default=None)
    ai2_snr: float | None = doc("AI2's signal-to-noise ratio (absent: not measured).", default=None)
    monotonicity: float | None = doc("Mean Spearman of score against step (absent: not measured).", default=None)
    chance_margin: float | None = doc("Seed stds above chance (absent: no chance level or not measured).", default=None)


@dataclass(frozen=True, kw_only=True)
class SignalDefinition:
    """The contents of evaluation/signal/<track>.toml."""

    track: str = doc("Track it was derived on and applies to (equal to the file name).")
    version: int = doc("Bumped whenever the definition (suite, metric, tasks, criteria) changes; the name carries it.")
    suite: str = doc("Suite id the evidence was evaluated with.")
    suite_version: int = doc("Suite version; a run with another version gets no value (the aggregate says why).")
    metric: str = doc("The one metric averaged over the tasks.")
    higher_is_better: bool = doc("Direction of the metric, and so of the aggregate.")
    tasks: tuple[str, ...] = doc("Tasks whose metric passed the criteria on the track.")
    criteria: Criteria = doc("The criteria applied.")
    derived_at: str = doc("When it was derived (UTC, ISO 8601).")
    harness_version: str = doc("Version of the harness that derived it.")
    evidence: tuple[Evidence, ...] = doc("The records it was derived from.")
    candidates: tuple[Candidate, ...] = doc("Every task x metric considered, with its statistics.", default=())
    notes: str = doc("How the metric was chosen, in words.", default="")

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError(f"'version' must be >= 1, got {self.version}")
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"'tasks' must name distinct tasks, at least one, got {list(self.tasks)}")
        if not self.evidence:
            raise ValueError("'evidence' must name the records the definition was derived from")

    @property
    def name(self) -> str:
        """The aggregate's name, `Signal_<track>_v<version>`."""
        return f"{PREFIX}{self.track}_v{self.version}"

    @property
    def stamp(self) -> str:
        """The aggregate's version stamp: `signal:<track>@<version>/<suite>@<suite version>`."""
        return f"signal:{self.track}@{self.version}/{self.suite}@{self.suite_version}"

    @property
    def description(self) -> str:
        return (
            f"Derived signal aggregate of track {self.track} (version {self.version}): mean {self.metric} of "
            f"{', '.join(self.tasks)}; beside the suite's aggregates, never ranked by"
        )

    def definition_sha256(self) -> str:
        """Hash of what defines the number (suite, metric, direction, tasks, criteria), not of the evidence: equal
        definitions derived from other records keep their version."""
        key = {
            "track": self.track, "suite": self.suite, "suite_version": self.suite_version, "metric": self.metric,
            "higher_is_better": self.higher_is_better, "tasks": sorted(self.tasks),
            "criteria": [self.criteria.min_monotonicity, self.criteria.min_snr, self.criteria.min_chance_margin,
                         sorted(self.criteria.unmeasured)],
        }  # fmt: skip
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def signal_dir() -> Path:
    return resource_dir("evaluation") / FOLDER


def load_signal_file(path: Path) -> SignalDefinition:
    """One definition file, strictly (unknown keys, wrong types: ConfigError naming the file and key)."""
    return from_dict(SignalDefinition, read_toml(path), str(path))


def load_signal(track: str) -> SignalDefinition | None:
    """The shipped definition of `track` (evaluation/signal/<track>.toml), None when it has none."""
    path = signal_dir() / f"{track}.toml"
    if not path.is_file():
        return None
    definition = load_signal_file(path)
    check_named_after_file(path, "track", definition.track)
    return definition


def metric_value(
    metric: str, scored_metric: str, scored: float | None, continuous: Mapping[str, float]
) -> float | None:
    """A task's value of `metric`: its scored value when `metric` is its scored metric, else its continuous one."""
    return scored if metric == scored_metric else continuous.get(metric)


def signal_aggregate(
    definition: SignalDefinition, suite: str, suite_version: int | str, values: Mapping[str, float | None]
) -> Aggregate:
    """The aggregate of one run from each task's value of the definition's metric (None or absent: missing)."""
    name, tasks = definition.name, definition.tasks
    if (suite, str(suite_version)) != (definition.suite, str(definition.suite_version)):
        reason = (
            f"{name} was derived on suite {definition.suite} v{definition.suite_version}; this run was evaluated with "
            f"{suite} v{suite_version}: derive the signal again"
        )
        return Aggregate(name, None, definition.stamp, tasks, tasks, reason, definition.higher_is_better,
                         definition.description)  # fmt: skip
    missing = tuple(t for t in tasks if values.get(t) is None)
    if missing:
        reason = f"{name} needs {definition.metric} of {len(tasks)} tasks; none for {', '.join(missing)}"
        return Aggregate(name, None, definition.stamp, tasks, missing, reason, definition.higher_is_better,
                         definition.description)  # fmt: skip
    value = math.fsum(values[t] for t in tasks) / len(tasks)  # type: ignore[misc]
    return Aggregate(name, value, definition.stamp, tasks, (), "", definition.higher_is_better, definition.description)


def signal_for_track(
    track: str | None,
    suite: str,
    suite_version: int | str,
    tasks: Mapping[str, tuple[str, float | None, Mapping[str, float]]],
) -> dict[str, Aggregate]:
    """`{name: aggregate}` for the track's shipped definition ({} without one). `tasks`: per task, (scored metric,
    scored value, continuous metrics)."""
    definition = load_signal(track) if track else None
    if definition is None:
        return {}
    values = {t: metric_value(definition.metric, m, v, c) for t, (m, v, c) in tasks.items()}
    return {definition.name: signal_aggregate(definition, suite, suite_version, values)}
