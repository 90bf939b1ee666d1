"""Aggregates of per-task accuracies: centered accuracy, Core/Extended (per baseline version), category means, MMLU.

A missing task never yields a number over fewer tasks: the aggregate is absent (None) and names what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.evaluate.suites import AggregateSpec, Suite


def centered(acc: float, baseline: float) -> float:
    """DCLM's centered accuracy, (acc - b) / (1 - b): 0 at chance, 1 when perfect; not clipped below chance."""
    return (acc - baseline) / (1.0 - baseline)


@dataclass(frozen=True)
class Aggregate:
    """One aggregate value, stamped with the suite and baseline version it was computed with."""

    name: str
    value: float | None
    stamp: str  # e.g. "core@1/v2": suite id, suite version, baseline version
    tasks: tuple[str, ...]
    missing: tuple[str, ...] = ()
    reason: str = ""
    higher_is_better: bool | None = None  # None: decided by the record from the tasks (bits per byte: lower)
    description: str = ""  # "": the suite's description of the aggregate

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "value": self.value,
            "stamp": self.stamp,
            "tasks": list(self.tasks),
            "missing": list(self.missing),
            "reason": self.reason,
        }
        if self.higher_is_better is not None:
            out["higher_is_better"] = self.higher_is_better
        if self.description:
            out["description"] = self.description
        return out


def _mean_or_absent(
    name: str, stamp: str, tasks: tuple[str, ...], values: dict[str, float | None], what: str
) -> Aggregate:
    missing = tuple(t for t in tasks if values.get(t) is None)
    if missing:
        reason = f"{name} needs {len(tasks)} tasks; no {what} for {', '.join(missing)}"
        return Aggregate(name, None, stamp, tasks, missing, reason)
    return Aggregate(name, sum(values[t] for t in tasks) / len(tasks), stamp, tasks)  # type: ignore[misc]


def compute_aggregates(suite: Suite, accuracies: dict[str, float | None]) -> dict[str, Aggregate]:
    """Every aggregate the suite defines, from each task's accuracy (its suite `metric`); None = not measured."""
    out: dict[str, Aggregate] = {}
    for spec in suite.aggregates:
        for agg in _one_spec(suite, spec, accuracies):
            out[agg.name] = agg
    return out


def _one_spec(suite: Suite, spec: AggregateSpec, accuracies: dict[str, float | None]) -> list[Aggregate]:
    tasks = suite.aggregate_tasks(spec)
    if spec.kind == "mean":
        return [_mean_or_absent(spec.name, suite.stamp, tasks, accuracies, "result")]
    out = []
    for version in spec.versions:
        stamp = f"{suite.stamp}/{version}"
        values = {}
        for name in tasks:
            acc = accuracies.get(name)
            values[name] = None if acc is None else centered(acc, suite.task(name).baselines[version])
        full = f"{spec.name}_{version}"
        out.append(_mean_or_absent(full, stamp, tasks, values, "accuracy"))
        if spec.by_category:
            categories = sorted({suite.task(t).category for t in tasks})
            for cat in categories:
                members = tuple(t for t in tasks if suite.task(t).category == cat)
                out.append(_mean_or_absent(f"{full}/{cat}", stamp, members, values, "accuracy"))
    return out
