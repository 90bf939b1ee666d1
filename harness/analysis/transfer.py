"""`harness transfer SMALL TARGET`: does the ranking of entries on a small track predict their ranking on a target
track? DataDecide's decision accuracy and Kendall's tau, per aggregate, per task and per metric.

Entries are matched by subset (sha256 of the canonical subset): the same data trained at two scales. The target
ranking is, as in DataDecide, the target's scored value (a task's scored metric, an aggregate's value) averaged
over the target's seeds; each small-track metric of the same task (accuracy and every continuous metric) is a
candidate predictor of it, averaged over the small track's seeds, its direction turned to "higher is better".

- Decision accuracy: over the pairs of entries the target orders (a target tie has nothing to predict and is left
  out, and counted in `target_ties`), the share the small track orders the same way; a pair the small track ties
  counts one half (a coin flip), unlike AI2's strict ">", which counts it right or wrong depending on which way
  the target orders it. None when the target orders no pair.
- Kendall's tau-b between the small and the target values (ties on either side handled by tau-b's denominator).
- Intervals: 95% percentile bootstrap over seeds: each resample draws every entry's seeds with replacement on
  both tracks (the same draw for every unit, so metrics are compared on the same resamples); an entry with one
  seed on a track contributes no seed noise there.
- Checkpoint averaging (`average_last` n, Signal and Noise's smoothing): the small track's value of each run is
  the mean of its last n checkpoint scores instead of the final one (the target keeps its final scores).
- Best predictor: per task, the small metric with the highest decision accuracy (tau breaks ties).
- The small track's derived signal aggregates (harness.evaluate.signal, `Signal_<track>_v<N>`) are candidate
  predictors of the target's primary aggregate (its ranking), beside the primary aggregate itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.analysis.scoretable import AGGREGATE, NotEnoughData, TrackScores, Unit, mean_of_last_checkpoints
from harness.evaluate.signal import PREFIX as SIGNAL_PREFIX

#: Bootstrap resamples over seeds, and the seed of their generator.
RESAMPLES = 1000
SEED = 1234


@dataclass(frozen=True)
class Agreement:
    """How well one small-track unit predicts the target ranking of one target unit."""

    task: str
    metric: str
    target_metric: str
    entries: int
    pairs: int
    target_ties: int
    small_ties: int
    decision_accuracy: float | None
    decision_low: float | None
    decision_high: float | None
    kendall_tau: float | None
    tau_low: float | None
    tau_high: float | None
    target_task: str = ""
    """The target's task or aggregate when it is not `task` (a signal aggregate predicting the primary)."""


@dataclass(frozen=True)
class Transfer:
    """Every agreement of a small track with a target track, and the best predictor per task."""

    small: str
    target: str
    entries: tuple[tuple[str, str, str], ...]  # (subset sha256, small entry id, target entry id)
    seeds: tuple[tuple[int, int], ...]  # seeds per entry: (small, target)
    agreements: tuple[Agreement, ...]
    best: dict[str, str]  # task -> small metric that predicts the target ranking best
    resamples: int
    average_last: int = 1
    """The small track's values are each run's mean over its last this many checkpoint scores (1: the final)."""

    def by_metric(self) -> dict[str, dict[str, float]]:
        """Per small metric, its mean decision accuracy over the tasks it was measured on (aggregates left out),
        best first: {metric: {"decision_accuracy", "tasks"}}."""
        acc: dict[str, list[float]] = {}
        for a in self.agreements:
            if a.metric != AGGREGATE and a.decision_accuracy is not None:
                acc.setdefault(a.metric, []).append(a.decision_accuracy)
        rows = {m: {"decision_accuracy": sum(v) / len(v), "tasks": len(v)} for m, v in acc.items()}
        return dict(sorted(rows.items(), key=lambda kv: (-kv[1]["decision_accuracy"], kv[0])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "small": self.small, "target": self.target,
            "entries": [{"subset": s, "small": a, "target": b} for s, a, b in self.entries],
            "seeds": [list(p) for p in self.seeds], "resamples": self.resamples, "bootstrap_seed": SEED,
            "average_last": self.average_last,
            "ties": "a pair the target ties is left out; a pair the small track ties counts one half",
            "agreements": [asdict(a) for a in self.agreements], "best": self.best, "by_metric": self.by_metric(),
        }  # fmt: skip


def decision_accuracy(small: Sequence[float], target: Sequence[float]) -> tuple[float | None, int, int, int]:
    """(accuracy, pairs the target orders, pairs the target ties, of the ordered pairs those the small track ties)
    for two score lists of the same entries, both higher-is-better."""
    s, t = np.asarray(small, dtype=np.float64), np.asarray(target, dtype=np.float64)
    acc, ordered, t_ties, s_ties = _decision(s[None, :], t[None, :])
    return (None if ordered[0] == 0 else float(acc[0])), int(ordered[0]), int(t_ties[0]), int(s_ties[0])


def _decision(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise decision accuracy of [R, N] small and target scores (NaN where the target orders no pair)."""
    n = s.shape[1]
    iu = np.triu_indices(n, k=1)
    ds = np.sign(s[:, :, None] - s[:, None, :])[:, iu[0], iu[1]]
    dt = np.sign(t[:, :, None] - t[:, None, :])[:, iu[0], iu[1]]
    ordered = dt != 0
    credit = np.where(ds == 0, 0.5, (ds == dt).astype(np.float64))
    n_ordered = ordered.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n_ordered > 0, (credit * ordered).sum(axis=1) / n_ordered, np.nan)
    return acc, n_ordered, (~ordered).sum(axis=1), ((ds == 0) & ordered).sum(axis=1)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b; None when either side is constant."""
    tau = _tau_b(np.asarray(x, dtype=np.float64)[None, :], np.asarray(y, dtype=np.float64)[None, :])[0]
    return None if math.isnan(tau) else float(tau)


def _tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    iu = np.triu_indices(n, k=1)
    dx = np.sign(x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]
    dy = np.sign(y[:, :, None] - y[:, None, :])[:, iu[0], iu[1]]
    num = (dx * dy).sum(axis=1)
    den = np.sqrt((dx != 0).sum(axis=1) * (dy != 0).sum(axis=1).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _interval(draws: np.ndarray) -> tuple[float | None, float | None]:
    finite = draws[~np.isnan(draws)]
    if finite.size == 0:
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def match_entries(small: TrackScores, target: TrackScores, *, shared_only: bool = False) -> list[tuple[int, int]]:
    """Index pairs (small, target) of the entries with the same subset; NotEnoughData naming the entries found on
    one track only (unless `shared_only`), or when fewer than two subsets are on both."""
    if small.entries[0].suite != target.entries[0].suite:
        (a, av), (b, bv) = small.entries[0].suite, target.entries[0].suite
        raise NotEnoughData(
            f"track {small.track} was evaluated with suite {a} v{av} and {target.track} with {b} v{bv}: rankings "
            "are compared on one suite version; re-evaluate one track's entries so both carry the same"
        )
    by_subset = {e.subset: i for i, e in enumerate(target.entries)}
    pairs = [(i, by_subset[e.subset]) for i, e in enumerate(small.entries) if e.subset in by_subset]
    matched_small, matched_target = {i for i, _ in pairs}, {j for _, j in pairs}
    lonely = [
        f"{e.entry_id} ({e.name}) on {small.track}" for i, e in enumerate(small.entries) if i not in matched_small
    ]
    lonely += [
        f"{e.entry_id} ({e.name}) on {target.track}" for j, e in enumerate(target.entries) if j not in matched_target
    ]
    if lonely and not shared_only:
        raise NotEnoughData(
            f"no entry with the same subset on the other track for {len(lonely)} entries: {'; '.join(lonely)}. "
            f"Submit their subsets on the other track, or pass --shared-only to compare the {len(pairs)} shared ones"
        )
    if len(pairs) < 2:
        raise NotEnoughData(
            f"tracks {small.track} and {target.track} share {len(pairs)} subset(s); a ranking needs at least two "
            "entries submitted (same subset) on both"
        )
    return pairs


def transfer(small: TrackScores, target: TrackScores, *, shared_only: bool = False,
             resamples: int = RESAMPLES, average_last: int = 1) -> Transfer:  # fmt: skip
    """Decision accuracy and Kendall's tau of every small unit against its target unit, with seed bootstraps; with
    `average_last` n > 1, the small track's values are each run's mean over its last n checkpoint scores."""
    small = mean_of_last_checkpoints(small, average_last)
    pairs = match_entries(small, target, shared_only=shared_only)
    es, et = [small.entries[i] for i, _ in pairs], [target.entries[j] for _, j in pairs]
    draw_s, draw_t = _draws(es, et, resamples)
    signals = [u for u in small.units if u[1] == AGGREGATE and u[0].startswith(SIGNAL_PREFIX)]
    agreements = []
    for unit in target.units:
        tinfo = target.infos[unit]
        if not tinfo.scored or not all(unit in e.values for e in et) or unit[0].startswith(SIGNAL_PREFIX):
            continue
        t_point, t_boot = _means(et, unit, draw_t, tinfo.higher_is_better)
        candidates = [unit] if unit[1] == AGGREGATE else [u for u in small.units if u[0] == unit[0]]
        if unit[0] == target.primary:
            candidates += signals
        for cand in candidates:
            if not all(cand in e.values for e in es):
                continue
            s_point, s_boot = _means(es, cand, draw_s, small.infos[cand].higher_is_better)
            agreements.append(_agreement(cand, unit, s_point, s_boot, t_point, t_boot, len(pairs)))
    return Transfer(
        small.track, target.track, tuple((a.subset, a.entry_id, b.entry_id) for a, b in zip(es, et, strict=True)),
        tuple((len(a.seeds), len(b.seeds)) for a, b in zip(es, et, strict=True)), tuple(agreements),
        _best(agreements), resamples, average_last,
    )  # fmt: skip


def _draws(es: Sequence[Any], et: Sequence[Any], resamples: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every entry's bootstrap draws of its seeds on both tracks (the same generator and order for every call)."""
    rng = np.random.default_rng(SEED)
    draw_s = [rng.integers(0, len(e.seeds), size=(resamples, len(e.seeds))) for e in es]
    draw_t = [rng.integers(0, len(e.seeds), size=(resamples, len(e.seeds))) for e in et]
    return draw_s, draw_t


def _agreement(cand: Unit, unit: Unit, s_point: list[float], s_boot: np.ndarray, t_point: list[float],
               t_boot: np.ndarray, entries: int) -> Agreement:  # fmt: skip
    acc, ordered, t_ties, s_ties = decision_accuracy(s_point, t_point)
    lo, hi = _interval(_decision(s_boot, t_boot)[0])
    tlo, thi = _interval(_tau_b(s_boot, t_boot))
    return Agreement(
        task=cand[0], metric=cand[1], target_metric=unit[1], entries=entries, pairs=ordered, target_ties=t_ties,
        small_ties=s_ties, decision_accuracy=acc, decision_low=lo, decision_high=hi,
        kendall_tau=kendall_tau_b(s_point, t_point), tau_low=tlo, tau_high=thi,
        target_task=unit[0] if unit[0] != cand[0] else "",
    )  # fmt: skip


def predicts(small: TrackScores, target: TrackScores, small_unit: Unit, target_unit: Unit, *,
             resamples: int = RESAMPLES) -> Agreement:  # fmt: skip
    """How well `small_unit` on the small track predicts `target_unit`'s ranking on the target, over the subsets on
    both (the others left out); NotEnoughData when fewer than two are shared or a unit is missing on an entry."""
    pairs = match_entries(small, target, shared_only=True)
    es, et = [small.entries[i] for i, _ in pairs], [target.entries[j] for _, j in pairs]
    for entries, unit, track in ((es, small_unit, small.track), (et, target_unit, target.track)):
        if lacking := [e.entry_id for e in entries if unit not in e.values]:
            raise NotEnoughData(f"track {track}: {unit[0]} ({unit[1]}) is missing on {', '.join(lacking)}")
    draw_s, draw_t = _draws(es, et, resamples)
    s_point, s_boot = _means(es, small_unit, draw_s, small.infos[small_unit].higher_is_better)
    t_point, t_boot = _means(et, target_unit, draw_t, target.infos[target_unit].higher_is_better)
    return _agreement(small_unit, target_unit, s_point, s_boot, t_point, t_boot, len(pairs))


def _means(
    entries: Sequence[Any], unit: Unit, draws: Sequence[np.ndarray], higher: bool
) -> tuple[list[float], np.ndarray]:
    """Each entry's seed mean (point) and its mean on every bootstrap resample ([R, N]), higher-is-better."""
    sign = 1.0 if higher else -1.0
    point = [sign * e.mean(unit) for e in entries]
    boot = np.stack(
        [sign * np.asarray(e.values[unit])[d].mean(axis=1) for e, d in zip(entries, draws, strict=True)], axis=1
    )
    return point, boot


def _best(agreements: Sequence[Agreement]) -> dict[str, str]:
    best: dict[str, Agreement] = {}
    for a in agreements:
        if a.metric == AGGREGATE or a.decision_accuracy is None:
            continue
        key = (a.decision_accuracy, a.kendall_tau if a.kendall_tau is not None else -2.0)
        cur = best.get(a.task)
        if cur is None or key > (cur.decision_accuracy, cur.kendall_tau if cur.kendall_tau is not None else -2.0):
            best[a.task] = a
    return {task: a.metric for task, a in sorted(best.items())}
