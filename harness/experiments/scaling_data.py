"""The points a scaling fit uses, read from records: a sweep's finished cells, or every record of one base track.

A point is one record: tokens seen, the subset's distinct tokens and the held-out validation loss. With replicate
seeds the loss is the mean over the seeds' runs and its noise combines the seeds' standard error of that mean with
the evaluation windows' standard error (the same held-out text for every seed, so that part does not average out):
sigma^2 = s.d.^2 / k + s.e.(windows)^2. With one run it is the run's loss and the windows' standard error (seed noise
unknown, which the goodness of fit then understates). Records of different track versions never share a fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UsageError
from harness.experiments.scaling import FitError, Groups, Point

if TYPE_CHECKING:
    from harness.records import Record


@dataclass(frozen=True)
class FitData:
    """Points with their compute multipliers, the subsets' composition and where outputs go by default."""

    track: str
    version: int
    points: list[Point]
    scales: list[float]
    groups: Groups
    unique: dict[str, float]
    default_save: Path


def _point(record: Record, group: str) -> Point:
    loss = record.evaluation.heldout_lm.get("loss")
    if loss is None:
        raise FitError(f"record {record.entry_id} has no held-out loss (evaluation.heldout_lm); re-run its submit")
    if not record.subset.unique_tokens:
        raise FitError(f"record {record.entry_id} does not record its distinct tokens (subset.unique_tokens)")
    loss, sigma = _loss_and_noise(record, float(loss))
    return Point(group, float(record.training.tokens_seen), float(record.subset.unique_tokens), loss,
                 f"{group} @ {record.track.scale:g}x", sigma)  # fmt: skip


def _loss_and_noise(record: Record, own: float) -> tuple[float, float]:
    """The held-out loss over the record's seeds and its standard error (see the module docstring)."""
    import math

    windows = float(record.evaluation.heldout_lm.get("loss_stderr") or 0.0)
    runs = record.replicates.runs if record.replicates else ()
    losses = [r.heldout_lm.get("loss") for r in runs]
    if len(losses) < 2 or any(v is None for v in losses):
        return own, windows
    k = len(losses)
    mean = sum(losses) / k  # type: ignore[arg-type]
    var = sum((v - mean) ** 2 for v in losses) / (k - 1)  # type: ignore[operator]
    return mean, math.sqrt(var / k + windows**2)


def _check_versions(records: Sequence[Record], source: str) -> tuple[str, int]:
    bases = {r.track.base or r.track.name for r in records}
    versions = {(r.track.base or r.track.name, r.track.version) for r in records}
    if len(bases) > 1:
        raise FitError(f"{source}: records of different tracks ({', '.join(sorted(bases))}) cannot share one fit")
    if len(versions) > 1:
        shown = ", ".join(f"{b} v{v}" for b, v in sorted(versions))
        raise FitError(f"{source}: records from different track versions ({shown}) are mixed; fit one version")
    ((base, version),) = versions
    return base, version


def load_points(experiment: str | None, out: str | None, results: str | None, track: str | None) -> FitData:
    """Points of an experiment's sweep, or (no experiment) of every record of base `track` in `results`."""
    from harness.records import ResultsStore, default_results_url

    if experiment is None:
        if not track:
            raise UsageError("give an experiment file, or --track with the records' base track")
        url = results or default_results_url()
        records = [r for r in ResultsStore(url).list()[0] if (r.track.base or r.track.name) == track]
        if not records:
            raise UsageError(f"no records of track {track!r} (or its multipliers) in results store {url}")
        names: dict[str, str] = {}
        for r in records:
            names.setdefault(r.subset.sha256, f"{r.submission.name} [{r.subset.sha256[:8]}]")
        groups = [names[r.subset.sha256] for r in records]
        return _data(records, groups, url, None, Path("."))
    from harness.experiments.spec import load_experiment
    from harness.experiments.sweep import SweepPaths

    exp = load_experiment(experiment)
    paths = SweepPaths.of(exp, out, results)
    store = ResultsStore(paths.results)
    records, groups = [], []
    for cell in exp.cells():
        done = paths.done(cell)
        if done is not None:
            records.append(store.get(done["entry_id"]))
            groups.append(
                ", ".join(f"{f} {v:g}" for f, v in cell.levels.items() if f not in ("scale", "seed")) or "base"
            )
    if not records:
        raise UsageError(f"no finished cells in {paths.root}; run `harness sweep run {experiment}` first")
    others = set(exp.factors.present()) - {"filter", "scale", "seed"}
    nested = bool(exp.factors.filter) and not others
    return _data(records, groups, str(paths.results), nested, paths.root / "scaling")


def _data(records: list[Record], groups: list[str], source: str, nested: bool | None, save: Path) -> FitData:
    base, version = _check_versions(records, source)
    points = [_point(r, g) for r, g in zip(records, groups, strict=True)]
    unique: dict[str, float] = {}
    for q in points:
        if unique.setdefault(q.group, q.unique) != q.unique:
            raise FitError(f"{source}: subset {q.group!r} has records with different distinct tokens")
    names = sorted(unique, key=unique.__getitem__)
    composition = Groups.nested(names, [unique[n] for n in names]) if nested else Groups.separate(names)
    scales = [float(r.track.scale) for r in records]
    return FitData(base, version, points, scales, composition, unique, save)


def split_held_out(data: FitData, scale: float | None) -> tuple[list[Point], list[Point], float | None]:
    """(fitted, held-out, held-out multiplier): the cells at `scale` (default: the largest of 3+ multipliers)."""
    levels = sorted(set(data.scales))
    if scale is None:
        scale = levels[-1] if len(levels) >= 3 else None
    elif scale not in levels:
        raise UsageError(
            f"--hold-out-scale {scale:g}: the records' multipliers are {', '.join(f'{v:g}' for v in levels)}"
        )
    train = [q for q, s in zip(data.points, data.scales, strict=True) if s != scale]
    held = [q for q, s in zip(data.points, data.scales, strict=True) if s == scale]
    return train, held, scale
