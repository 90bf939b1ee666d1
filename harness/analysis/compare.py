"""`harness compare A B`: two entries of one track, every aggregate's difference with its 95% interval and a verdict.

A and B are entry ids (looked up in the results store), record files or run folders (their `record/record.json`).
Both must be on the same track version (or, across budgets, on compute multipliers of one base track: the same
subset at 1x and 2x) and carry the same aggregate versions, and both need the `replicates`
block that records of schema 2 carry. The interval combines the seed variance of both replicate means (Welch)
and the evaluation-example variance of the difference, paired over the same examples (harness.analysis.stats).
An entry with one replicate borrows the other entry's seed variance (its degrees of freedom counted once); with one
replicate on each side the seed noise is unknown and the verdict is "no verdict", with the replicates that would
decide it. At equal means the verdicts are wrong at most 5% of the time for every replicate count they are given
(tests/test_stats.py simulates it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.stats import Difference, difference, mean_over_replicates, paired_example_draws, unpack_examples
from harness.errors import HarnessError, UsageError
from harness.records import Record, RecordError, ResultsStore


class NotComparable(HarnessError):
    """Two records that cannot be compared (other tracks, other aggregate versions, no replicates)."""


@dataclass(frozen=True)
class Comparison:
    """The outcome of `compare`: both records and one Difference per shared aggregate, the primary first."""

    a: Record
    b: Record
    a_source: str
    b_source: str
    differences: tuple[Difference, ...]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "a": {
                "entry_id": self.a.entry_id,
                "name": self.a.submission.name,
                "source": self.a_source,
                "track": self.a.track.name,
            },
            "b": {
                "entry_id": self.b.entry_id,
                "name": self.b.submission.name,
                "source": self.b_source,
                "track": self.b.track.name,
            },
            "track": {"name": self.a.track.name, "version": self.a.track.version},
            "differences": [asdict(d) for d in self.differences],
        }


def load_entry(ref: str, results: str) -> tuple[Record, str]:
    """A record from an entry id, a record file or a run folder; a clear error naming `ref` otherwise."""
    path = Path(ref)
    if path.is_dir():
        record_file = path / "record" / "record.json"
        if not record_file.is_file():
            raise UsageError(f"{ref}: a run folder without record/record.json; finish it with `harness submit` first")
        path = record_file
    if path.is_file():
        try:
            return Record.from_json(path.read_bytes(), str(path)), str(path)
        except RecordError as exc:
            raise UsageError(str(exc)) from None
    if "/" in ref or ref.endswith(".json"):
        raise UsageError(f"{ref}: no such record file or run folder")
    store = ResultsStore(results)
    return store.get(ref), store.path_of(ref)


def compare_records(
    a: Record, b: Record, a_source: str = "A", b_source: str = "B", *, across_budgets: bool = False
) -> Comparison:
    """Every aggregate both records carry (same version), A - B with interval and verdict. `across_budgets`: the two
    may be one track at different compute multipliers (the same model and suite, another token budget), which
    answers "did more compute on this subset help?"; by default only one track version is comparable."""
    from harness.evaluate.suites import get_suite

    _check_comparable(a, b, a_source, b_source, across_budgets)
    suite = get_suite(a.evaluation.suite)
    ex_a, ex_b = _mean_examples(a), _mean_examples(b)
    draws = paired_example_draws(suite, ex_a, ex_b) if ex_a and ex_b else {}
    primary = a.evaluation.primary_aggregate
    names = sorted(
        (n for n in a.replicates.aggregates if n in b.replicates.aggregates),  # type: ignore[union-attr]
        key=lambda n: (n != primary, n),
    )
    out = []
    for name in names:
        agg = a.evaluation.aggregates[name]
        values_a = [r.aggregates[name] for r in a.replicates.runs]  # type: ignore[union-attr]
        values_b = [r.aggregates[name] for r in b.replicates.runs]  # type: ignore[union-attr]
        out.append(difference(name, str(agg.version), agg.higher_is_better, values_a, values_b, draws.get(name)))
    return Comparison(a, b, a_source, b_source, tuple(out))


def _check_comparable(a: Record, b: Record, a_source: str, b_source: str, across_budgets: bool = False) -> None:
    for record, source in ((a, a_source), (b, b_source)):
        if record.replicates is None:
            raise NotComparable(
                f"{source}: record {record.entry_id} has no replicates (schema {record.schema_version}, written before "
                "harness kept them); re-run `harness submit` on its subset with this harness (add --replicates K for "
                "a seed spread) and compare the new record"
            )
    if across_budgets:
        base_a, base_b = a.track.base or a.track.name, b.track.base or b.track.name
        if (base_a, a.track.version) != (base_b, b.track.version):
            raise NotComparable(
                f"{a_source} is on track {a.track.name} v{a.track.version} (base {base_a}) and {b_source} on "
                f"{b.track.name} v{b.track.version} (base {base_b}): across budgets, only multipliers of one base "
                "track version are comparable (same model and suite)"
            )
    elif (a.track.name, a.track.version) != (b.track.name, b.track.version):
        raise NotComparable(
            f"{a_source} is on track {a.track.name} v{a.track.version} and {b_source} on {b.track.name} "
            f"v{b.track.version}: only entries of one track version are comparable (same model, budget and suite); "
            "--across-budgets compares one track's compute multipliers"
        )
    versions_a = {n: str(g.version) for n, g in a.evaluation.aggregates.items()}
    versions_b = {n: str(g.version) for n, g in b.evaluation.aggregates.items()}
    clash = sorted(n for n in versions_a if n in versions_b and versions_a[n] != versions_b[n])
    shared = [n for n in versions_a if n in versions_b]
    if clash or not shared:
        detail = ", ".join(f"{n}: {versions_a[n]} vs {versions_b[n]}" for n in clash) or "no aggregate in common"
        raise NotComparable(
            f"{a_source} and {b_source} were scored with different aggregate versions ({detail}); re-evaluate the "
            "older entry with this harness so both carry the same versions"
        )


def _mean_examples(record: Record) -> dict[str, Any]:
    """Per task, the examples' outcomes averaged over the record's replicates ({} when any run lacks them)."""
    runs = record.replicates.runs  # type: ignore[union-attr]
    tasks = [t for t, ex in runs[0].examples.items() if ex and all(r.examples.get(t) for r in runs)]
    return {t: mean_over_replicates([unpack_examples(r.examples[t]) for r in runs]) for t in tasks}
