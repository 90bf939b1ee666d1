"""Per-seed scores of a track's entries, read from their records: what `reliability` and `transfer` work on.

A *unit* is one (task, metric) pair: every task's scored metric (accuracy, or bits per byte for perplexity tasks),
every continuous metric the task recorded (harness.evaluate.continuous), and every aggregate (metric
`aggregate`), including the track's derived signal aggregate (harness.evaluate.signal), computed after the fact
from each run's scores when the track has a definition and a record predates it. An entry's values of a unit are one per replicate seed (the record's `replicates.runs`; a record
made before replicates gives its one evaluation). `trajectories` hold a unit's scores at intermediate checkpoints
per seed, (step, value) pairs, when records carry them; reliability's monotonicity and checkpoint noise need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError, UsageError
from harness.evaluate.signal import SignalDefinition, load_signal, metric_value, signal_aggregate
from harness.records import Record, RecordError, ResultsStore

#: The metric name of aggregates in a unit.
AGGREGATE = "aggregate"

Unit = tuple[str, str]  # (task or aggregate, metric)


class NotEnoughData(HarnessError):
    """Records that cannot answer the question asked: too few seeds or entries, or mismatched tracks or suites."""


@dataclass(frozen=True)
class UnitInfo:
    """What is known about a unit whatever the entry."""

    higher_is_better: bool
    """Direction of the metric."""
    chance: float | None
    """The metric's value at chance (the task's random baseline; 0 for centered aggregates); None when none."""
    scored: bool
    """True for a task's scored metric and for aggregates (what the leaderboard shows)."""


@dataclass(frozen=True)
class EntryScores:
    """One entry's per-seed values of every unit it has."""

    entry_id: str
    """The record's entry id."""
    name: str
    """The submission's display name."""
    subset: str
    """sha256 of the canonical subset: the same subset on another track is the same recipe."""
    track: str
    """Track name."""
    suite: tuple[str, str]
    """(suite id, suite version) it was evaluated with."""
    seeds: tuple[int, ...]
    """Replicate seeds, the official one first."""
    values: Mapping[Unit, tuple[float, ...]]
    """Per unit, one value per seed (units some seed lacks are left out)."""
    trajectories: Mapping[Unit, tuple[tuple[tuple[int, float], ...], ...]] = field(default_factory=dict)
    """Per unit, per seed, the (step, value) scores of intermediate checkpoints (empty when not recorded)."""

    def mean(self, unit: Unit) -> float:
        values = self.values[unit]
        return sum(values) / len(values)


def _infos(record: Record) -> dict[Unit, UnitInfo]:
    from harness.evaluate.continuous import LOWER_IS_BETTER

    out: dict[Unit, UnitInfo] = {}
    for name, agg in record.evaluation.aggregates.items():
        out[(name, AGGREGATE)] = UnitInfo(agg.higher_is_better, _aggregate_chance(record, name), True)
    for task, t in record.evaluation.tasks.items():
        out[(task, t.metric)] = UnitInfo(t.higher_is_better, t.baseline, True)
        for metric in t.continuous:
            out.setdefault((task, metric), UnitInfo(metric not in LOWER_IS_BETTER, None, False))
    return out


def _aggregate_chance(record: Record, name: str) -> float | None:
    """0 for a centered aggregate (Core, Sandbox: centered accuracies are 0 at chance), else None."""
    from harness.evaluate.suites import get_suite

    try:
        suite = get_suite(record.evaluation.suite)
    except HarnessError:
        return None
    base = name.split("/")[0]
    for spec in suite.aggregates:
        if spec.kind != "mean" and base in {f"{spec.name}_{v}" for v in spec.versions}:
            return 0.0
    return None


def entry_scores(record: Record, signal: SignalDefinition | None = None) -> EntryScores:
    """The per-seed values of every unit of `record`; with `signal`, its aggregate where the record lacks it."""
    ev = record.evaluation
    if record.replicates is None:
        runs = [
            (
                record.seeds.get("train", 0),
                {t: r.value for t, r in ev.tasks.items()},
                {a: g.value for a, g in ev.aggregates.items()},
                {t: r.continuous for t, r in ev.tasks.items()},
            )
        ]
    else:
        runs = [(r.seed, r.tasks, r.aggregates, r.continuous) for r in record.replicates.runs]
    per_seed: list[dict[Unit, float]] = []
    for _, tasks, aggregates, continuous in runs:
        row: dict[Unit, float] = {(a, AGGREGATE): v for a, v in aggregates.items() if v is not None}
        if signal is not None and signal.name not in ev.aggregates:
            values = {t: metric_value(signal.metric, r.metric, tasks.get(t), continuous.get(t, {}))
                      for t, r in ev.tasks.items()}  # fmt: skip
            if (agg := signal_aggregate(signal, ev.suite, ev.suite_version, values)).value is not None:
                row[(signal.name, AGGREGATE)] = agg.value
        for task, value in tasks.items():
            if task in ev.tasks:
                row[(task, ev.tasks[task].metric)] = value
        for task, metrics in continuous.items():
            row.update({(task, m): v for m, v in metrics.items()})
        per_seed.append(row)
    units = set.intersection(*(set(r) for r in per_seed))
    return EntryScores(
        entry_id=record.entry_id, name=record.submission.name, subset=record.subset.sha256, track=record.track.name,
        suite=(ev.suite, str(ev.suite_version)), seeds=tuple(s for s, *_ in runs),
        values={u: tuple(r[u] for r in per_seed) for u in sorted(units)}, trajectories=_trajectories(record),
    )  # fmt: skip


def _trajectories(record: Record) -> dict[Unit, tuple[tuple[tuple[int, float], ...], ...]]:
    """Per unit, every replicate run's (step, value) checkpoint scores; units some run lacks are left out."""
    runs = [r.trajectory for r in record.replicates.runs] if record.replicates else []
    if not runs or not all(runs):
        return {}
    per_run: list[dict[Unit, tuple[tuple[int, float], ...]]] = []
    for t in runs:
        series = {(a, AGGREGATE): v for a, v in t.get("aggregates", {}).items()}
        for task, metrics in t.get("tasks", {}).items():
            series.update({(task, m): v for m, v in metrics.items()})
        per_run.append({u: tuple(zip(t["steps"], v, strict=True)) for u, v in series.items()})
    units = set.intersection(*(set(r) for r in per_run))
    return {u: tuple(r[u] for r in per_run) for u in sorted(units)}


@dataclass(frozen=True)
class TrackScores:
    """Every entry of one track, and what is known about each unit."""

    track: str
    entries: tuple[EntryScores, ...]
    infos: Mapping[Unit, UnitInfo]
    sources: tuple[str, ...] = ()
    primary: str = ""
    """The suite's primary aggregate (what the track ranks by)."""

    @property
    def units(self) -> list[Unit]:
        """Units in display order: aggregates first, then tasks, each task's scored metric first."""
        return sorted(self.infos, key=lambda u: (self.infos[u].scored is False, u[1] != AGGREGATE, u[0], u[1]))


def track_scores(records: Sequence[Record], sources: Sequence[str] = ()) -> TrackScores:
    """The scores of records that must all be on one track and one suite version (NotEnoughData otherwise)."""
    if not records:
        raise NotEnoughData("no records given")
    tracks = sorted({(r.track.name, r.track.version) for r in records})
    if len(tracks) > 1:
        listed = ", ".join(f"{n} v{v}" for n, v in tracks)
        raise NotEnoughData(f"the records are on several tracks ({listed}); give the records of one track")
    suites = sorted({(r.evaluation.suite, str(r.evaluation.suite_version)) for r in records})
    if len(suites) > 1:
        listed = ", ".join(f"{s} v{v}" for s, v in suites)
        raise NotEnoughData(
            f"track {tracks[0][0]}: the records were evaluated with different suite versions ({listed}); re-evaluate "
            "the older entries with this harness so all carry one version"
        )
    infos: dict[Unit, UnitInfo] = {}
    for r in records:
        for unit, info in _infos(r).items():
            infos.setdefault(unit, info)
    signal = load_signal(tracks[0][0])
    if signal is not None:
        infos.setdefault((signal.name, AGGREGATE), UnitInfo(signal.higher_is_better, None, True))
    entries = tuple(entry_scores(r, signal) for r in records)
    primary = records[0].evaluation.primary_aggregate
    return TrackScores(tracks[0][0], entries, infos, tuple(sources), primary)


def mean_of_last_checkpoints(scores: TrackScores, n: int) -> TrackScores:
    """Signal and Noise's checkpoint averaging (their ladder code's `avg` of the last n checkpoints): each run's
    value of a unit becomes the mean of its last `n` checkpoint scores, the final one included. Units without
    checkpoint scores (a signal aggregate computed after the fact) are left out; NotEnoughData when an entry has
    no checkpoint scores or a run has fewer than `n`."""
    if n < 1:
        raise UsageError(f"the number of checkpoints to average must be at least 1, got {n}")
    if n == 1:
        return scores
    entries = []
    for e in scores.entries:
        who = f"track {scores.track}: {e.entry_id} ({e.name})"
        if not e.trajectories:
            raise NotEnoughData(f"{who} has no checkpoint scores; averaging the last {n} checkpoints needs records "
                                "made with `harness submit --checkpoint-scores`")  # fmt: skip
        if (short := min(len(run) for runs in e.trajectories.values() for run in runs)) < n:
            raise NotEnoughData(f"{who} has {short} checkpoint scores per run, fewer than the {n} to average")
        values = {u: tuple(sum(v for _, v in run[-n:]) / n for run in e.trajectories[u])
                  for u in e.values if u in e.trajectories}  # fmt: skip
        entries.append(replace(e, values=values))
    keep = set.intersection(*(set(e.values) for e in entries))
    entries = [replace(e, values={u: v for u, v in e.values.items() if u in keep}) for e in entries]
    return replace(scores, entries=tuple(entries), infos={u: i for u, i in scores.infos.items() if u in keep})


def load_records(refs: Iterable[str], *, track: str | None, results: str) -> tuple[list[Record], list[str]]:
    """Records from record files (or folders of them) in `refs`, or else every record of `track` in the results
    store at `results`; a clear error naming what was looked for when there are none."""
    refs = list(refs)
    records, sources = [], []
    if refs:
        for ref in refs:
            path = Path(ref)
            files = sorted(path.glob("*.json")) if path.is_dir() else [path]
            if not path.exists():
                raise UsageError(f"{ref}: no such record file or folder")
            for f in files:
                try:
                    records.append(Record.from_json(f.read_bytes(), str(f)))
                except RecordError as exc:
                    raise UsageError(str(exc)) from None
                sources.append(str(f))
        if track is not None:
            records, sources = _on_track(records, sources, track)
        if not records:
            raise UsageError(f"no records{f' of track {track}' if track else ''} in {', '.join(refs)}")
        return records, sources
    if track is None:
        raise UsageError("give --track T (its records in the results store) or record files")
    store = ResultsStore(results)
    records, _problems = store.list(track)
    if not records:
        raise UsageError(
            f"no records of track {track} in the results store {results}; submit entries with `harness submit "
            f"--track {track} SUBSET --replicates 3`, or give --results DIR or record files"
        )
    return list(records), [store.path_of(r.entry_id) for r in records]


def _on_track(records: list[Record], sources: list[str], track: str) -> tuple[list[Record], list[str]]:
    keep = [i for i, r in enumerate(records) if r.track.name == track]
    return [records[i] for i in keep], [sources[i] for i in keep]
