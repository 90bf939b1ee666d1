"""Uncertainty of scores: bootstrap intervals over evaluation examples, replicate (seed) spread, paired comparisons.

Per-example outcomes (`examples` in eval.json, per subtask) are `{"kind": "mean", "values": [...]}` (accuracies:
the metric is their mean) or `{"kind": "bits_per_byte", "values": [log-likelihoods], "weights": [bytes]}` (the
metric is -sum(values) / sum(weights) / ln 2). A task's bootstrap resamples each subtask's examples with a
generator seeded by (BOOTSTRAP_SEED, task, subtask), so reruns give identical intervals and two entries scored on
the same examples are resampled identically: their differences are paired example by example.

Aggregates are recomputed on every resample with the suite's own aggregate code (it works on arrays), so an
aggregate's interval reflects exactly how it is built from its tasks.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Resamples of the evaluation examples, and the fixed seed of their generator.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 1234
#: Two-sided level of every interval.
LEVEL = 0.95
#: Rows of resample indices drawn at once (bounded memory for tasks with many examples).
_CHUNK = 100

Examples = Mapping[str, Mapping[str, Any]]  # subtask -> {"kind", "values", "weights"?}


def metric_of(ex: Mapping[str, Any], idx: np.ndarray | None = None) -> np.ndarray | float:
    """The task metric of one subtask's examples, or of each row of resampled indices `idx` (shape [R, n])."""
    values = np.asarray(ex["values"], dtype=np.float64)
    if idx is None:
        idx = np.arange(len(values))[None, :]
        return float(metric_of(ex, idx)[0])
    if ex["kind"] == "mean":
        return values[idx].mean(axis=1)
    if ex["kind"] == "bits_per_byte":
        weights = np.asarray(ex["weights"], dtype=np.float64)
        return -values[idx].sum(axis=1) / weights[idx].sum(axis=1) / math.log(2)
    raise ValueError(f"unknown example kind {ex['kind']!r}")


def _rng(task: str, subtask: str, n: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{task}/{subtask}".encode()), n])


def resampled_task(
    task: str, examples: Examples, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """The task metric on each of `resamples` bootstrap resamples (macro average over subtasks, as scored)."""
    total = np.zeros(resamples)
    for sub, ex in sorted(examples.items()):
        n = len(ex["values"])
        if n == 0:
            raise ValueError(f"task {task!r} subtask {sub!r} has no examples to resample")
        out, rng = np.empty(resamples), _rng(task, sub, n, seed)
        for start in range(0, resamples, _CHUNK):
            rows = rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))
            out[start : start + len(rows)] = metric_of(ex, rows)
        total += out
    return total / len(examples)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    suite: Any, examples: Mapping[str, Examples], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(per-task, per-aggregate) intervals `{"low", "high", "stderr", "resamples", "seed", "level"}` over
    evaluation examples; an aggregate missing a task gets no interval."""
    from harness.evaluate.aggregate import compute_aggregates

    draws = {task: resampled_task(task, ex, resamples=resamples, seed=seed) for task, ex in examples.items()}
    tasks = {task: _interval(d, resamples, seed) for task, d in draws.items()}
    aggs = compute_aggregates(suite, {t.name: draws.get(t.name) for t in suite.tasks})
    aggregates = {name: _interval(a.value, resamples, seed) for name, a in aggs.items() if a.value is not None}
    return tasks, aggregates


def _interval(draws: np.ndarray, resamples: int, seed: int) -> dict[str, Any]:
    low, high = percentile_interval(draws)
    return {"low": low, "high": high, "stderr": float(np.std(draws, ddof=1)), "resamples": resamples,
            "seed": seed, "level": LEVEL}  # fmt: skip


def mean_over_replicates(per_replicate: Sequence[Examples]) -> dict[str, dict[str, Any]]:
    """One task's examples averaged over replicates (same examples in the same order in every replicate)."""
    first = per_replicate[0]
    out = {}
    for sub, ex in first.items():
        values = np.mean([np.asarray(r[sub]["values"], dtype=np.float64) for r in per_replicate], axis=0)
        out[sub] = {**ex, "values": values}
    return out


def pack_examples(examples: Examples) -> dict[str, dict[str, Any]]:
    """Examples for a record: 0/1 outcomes as a hex bit string (`bits`, `n`), anything else as is."""
    out = {}
    for sub, ex in examples.items():
        values = np.asarray(ex["values"], dtype=np.float64)
        if ex["kind"] == "mean" and np.isin(values, (0.0, 1.0)).all():
            out[sub] = {"kind": "mean", "n": len(values), "bits": np.packbits(values.astype(np.uint8)).tobytes().hex()}
        else:
            out[sub] = {k: (list(v) if isinstance(v, list | tuple | np.ndarray) else v) for k, v in ex.items()}
    return out


def unpack_examples(packed: Examples) -> dict[str, dict[str, Any]]:
    out = {}
    for sub, ex in packed.items():
        if "bits" in ex:
            bits = np.unpackbits(np.frombuffer(bytes.fromhex(ex["bits"]), dtype=np.uint8))[: ex["n"]]
            out[sub] = {"kind": "mean", "values": bits.astype(np.float64)}
        else:
            out[sub] = dict(ex)
    return out


# --------------------------------------------------------------------------------------- replicate spread


@dataclass(frozen=True)
class Spread:
    """Mean of replicate values with their standard deviation and a 95% interval of the mean."""

    n: int
    mean: float
    std: float | None  # None with one replicate
    low: float
    high: float


def t_quantile(df: float, level: float = LEVEL) -> float:
    """Two-sided Student t quantile (normal when df is infinite)."""
    from scipy.special import ndtri, stdtrit  # the quantile functions themselves: scipy.stats' wrappers cost 0.5 ms

    q = 1 - (1 - level) / 2
    return float(ndtri(q) if not math.isfinite(df) else stdtrit(df, q))


def spread(values: Sequence[float], example_stderr: float = 0.0) -> Spread:
    """Replicate mean, std and interval: seed variance of the mean (t with n-1 degrees of freedom) plus the
    variance over evaluation examples (`example_stderr`, from the bootstrap); with one replicate, examples only."""
    arr = np.asarray(values, dtype=np.float64)
    n, mean = len(arr), float(arr.mean())
    if n == 1:
        half = t_quantile(math.inf) * example_stderr
        return Spread(1, mean, None, mean - half, mean + half)
    std = float(arr.std(ddof=1))
    seed_var = std**2 / n
    var = seed_var + example_stderr**2
    df = welch_df([(seed_var, n - 1)], var)
    half = t_quantile(df) * math.sqrt(var)
    return Spread(n, mean, std, mean - half, mean + half)


def welch_df(parts: Sequence[tuple[float, int]], total_var: float) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variances; parts with infinite df add nothing."""
    denom = sum(v**2 / df for v, df in parts if df > 0 and v > 0)
    return total_var**2 / denom if denom > 0 else math.inf


# ------------------------------------------------------------------------------------------------ compare


@dataclass(frozen=True)
class Difference:
    """A - B on one aggregate, with its 95% interval (seed and paired example variance) and the verdict."""

    aggregate: str
    version: str
    higher_is_better: bool
    a: Spread
    b: Spread
    diff: float
    low: float
    high: float
    seed_stderr: float
    example_stderr: float
    verdict: str
    note: str = ""


#: Verdict where the interval cannot decide: seed noise unknown on both sides, or an interval of zero width.
NO_VERDICT = "no verdict"
NOT_DISTINGUISHABLE = "not distinguishable at 95%"
#: What decides a comparison of one replicate against one: the seed spread measured on at least one side.
NEEDS_SEEDS = (
    "seed spread unknown (one replicate each), so no verdict: the interval covers evaluation examples only; "
    "re-run `harness submit` on one entry's subset with --replicates 2 or more to decide it (one degree of freedom: "
    "a wide interval), or on both with --replicates 3 (a t quantile of 2.8 instead of 12.7)"
)


def verdict_of(low: float, high: float, higher_is_better: bool) -> str:
    if high - low <= 0:
        return NO_VERDICT  # an interval of zero width measures no noise: any nonzero difference would "win"
    if low > 0:
        return "A better" if higher_is_better else "B better"
    if high < 0:
        return "B better" if higher_is_better else "A better"
    return NOT_DISTINGUISHABLE


def paired_example_draws(suite: Any, ex_a: Mapping[str, Examples], ex_b: Mapping[str, Examples]) -> dict[str, Any]:
    """Per aggregate, A - B on each bootstrap resample of the shared examples (identical indices for both)."""
    from harness.evaluate.aggregate import compute_aggregates

    tasks = [t for t in ex_a if t in ex_b]
    for t in tasks:
        sizes_a = {s: len(e["values"]) for s, e in ex_a[t].items()}
        sizes_b = {s: len(e["values"]) for s, e in ex_b[t].items()}
        if sizes_a != sizes_b:
            raise ValueError(f"task {t}: the entries were scored on different examples ({sizes_a} vs {sizes_b})")
    draws_a = {t: resampled_task(t, ex_a[t]) for t in tasks}
    draws_b = {t: resampled_task(t, ex_b[t]) for t in tasks}
    names = [t.name for t in suite.tasks]
    agg_a = compute_aggregates(suite, {n: draws_a.get(n) for n in names})
    agg_b = compute_aggregates(suite, {n: draws_b.get(n) for n in names})
    return {n: agg_a[n].value - agg_b[n].value for n in agg_a if agg_a[n].value is not None}


def seed_parts(values_a: Sequence[float], values_b: Sequence[float]) -> tuple[list[tuple[float, int]], str]:
    """The seed variance of mean(A) - mean(B) as (variance, degrees of freedom) parts, and a note.

    2+ replicates a side: Welch, one part per side with k - 1 df. One replicate on one side: that side borrows the
    other side's seed variance s^2, so the variance is s^2 (1/ka + 1/kb), ONE estimate with k - 1 df (two parts
    would count its degrees of freedom twice: an interval too narrow). One replicate each: no parts (unknown)."""
    ka, kb = len(values_a), len(values_b)
    if ka > 1 and kb > 1:
        var_a, var_b = float(np.var(values_a, ddof=1)), float(np.var(values_b, ddof=1))
        return [(var_a / ka, ka - 1), (var_b / kb, kb - 1)], ""
    if ka == 1 and kb == 1:
        return [], NEEDS_SEEDS
    known = values_b if ka == 1 else values_a
    s2 = float(np.var(known, ddof=1))
    note = (
        f"one side has one replicate: its seed variance is taken from the other side's {len(known)} "
        f"(t with {len(known) - 1} degrees of freedom)"
    )
    return [(s2 * (1 / ka + 1 / kb), len(known) - 1)], note


def difference(
    name: str, version: str, higher_is_better: bool, values_a: Sequence[float], values_b: Sequence[float],
    example_draws: np.ndarray | None,
) -> Difference:  # fmt: skip
    """A - B with a 95% interval: seed variance of both means (Welch, or borrowed; see seed_parts) plus the paired
    example variance. No verdict where seed noise is unknown on both sides or the interval has zero width."""
    parts, seed_note = seed_parts(values_a, values_b)
    notes = [seed_note] if seed_note else []
    seed_var = sum(v for v, _ in parts)
    ex_var = float(np.var(example_draws, ddof=1)) if example_draws is not None else 0.0
    if example_draws is None:
        notes.append("no per-example outcomes: the interval covers seed variance only")
    total = seed_var + ex_var
    diff = float(np.mean(values_a) - np.mean(values_b))
    half = t_quantile(welch_df(parts, total)) * math.sqrt(total) if total > 0 else 0.0
    low, high = diff - half, diff + half
    verdict = verdict_of(low, high, higher_is_better) if parts else NO_VERDICT
    if verdict == NO_VERDICT and parts:
        notes.append("the interval has zero width (no spread measured at all): no verdict")
    return Difference(
        name, version, higher_is_better, spread(values_a), spread(values_b), diff, low, high,
        math.sqrt(seed_var), math.sqrt(ex_var), verdict, "; ".join(notes),
    )  # fmt: skip
