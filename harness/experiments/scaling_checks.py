"""How far a scaling fit can be trusted: a bootstrap over cells for parameter intervals, and which predictions
depend on parameters the fit did not determine.

- Bootstrap: the fitted cells are resampled with replacement within each subset (a subset keeps its number of
  cells and needs two budgets, as the fit does), the law refitted from the full fit's optimum, and each
  parameter's percentile interval reported beside the delta method's standard error. The delta method treats a
  parameter at its bound (a floor of 0) as known and linearises a law that is far from linear in few points; the
  bootstrap does neither. A parameter no fitted point moves gets no interval (every resample returns its start).
  `advise` predicts from the same resampled fits: a prediction interval per subset at the budget, the share of
  resamples in which each subset is best, and an interval for every crossover (where the resamples put it, and
  how many have it in the plotted range).
- Dependence: a parameter is undetermined when no fitted point moves it (`Fit.undetermined`); its value is the
  optimiser's start. A prediction depends on it when multiplying the parameter by 4 or 1/4 changes the prediction.
  `advise` refuses to rank at a budget where that happens, and `determining_cells` says which cells would
  determine the parameter (the smallest budget of each subset whose prediction it moves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.experiments.scaling import Fit, Point, solve

#: Cell resamples of `harness scaling fit`'s bootstrap, its seed and two-sided level.
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0
LEVEL = 0.95
#: Factor an undetermined parameter is moved by (each way) to see whether a prediction depends on it, and the
#: relative change of the prediction that counts as depending.
PROBE = 4.0
DEPENDS = 1e-6


def _resample(train: Sequence[Point], rng: np.random.Generator) -> list[Point] | None:
    out: list[Point] = []
    for group in sorted({q.group for q in train}):
        cells = [q for q in train if q.group == group]
        pick = [cells[i] for i in rng.integers(0, len(cells), len(cells))]
        if len({q.tokens for q in pick}) < 2:
            return None  # one budget only: the law cannot be fitted on it
        out.extend(pick)
    return out


def resample_fits(fit_: Fit, train: Sequence[Point], *, resamples: int = BOOTSTRAP_RESAMPLES,
                  seed: int = BOOTSTRAP_SEED, budget: int = 400) -> tuple[list[np.ndarray], int]:  # fmt: skip
    """The natural parameters refitted on each cell resample (from the full fit's optimum), and how many failed."""
    law, x0 = fit_.model, fit_.free
    assert law is not None and x0 is not None
    rng = np.random.default_rng([seed, 24])
    draws: list[np.ndarray] = []
    failed = 0
    while len(draws) + failed < resamples:
        sample = _resample(train, rng)
        best = solve(law, sample, [x0], budget) if sample is not None else None
        if best is None or not np.all(np.isfinite(best.x)):
            failed += 1
            continue
        draws.append(law.natural(best.x))
    return draws, failed


def bootstrap(fit_: Fit, train: Sequence[Point], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
              level: float = LEVEL, budget: int = 400) -> dict[str, Any]:  # fmt: skip
    """Percentile intervals of every determined parameter over cell resamples (see the module docstring)."""
    draws, failed = resample_fits(fit_, train, resamples=resamples, seed=seed, budget=budget)
    tail = (1 - level) / 2 * 100
    params: dict[str, Any] = {}
    if len(draws) >= 10:
        low, high = np.percentile(np.array(draws), [tail, 100 - tail], axis=0)
        undetermined = set(fit_.undetermined)
        for i, name in enumerate(fit_.names):
            params[name] = None if name in undetermined else {"low": float(low[i]), "high": float(high[i])}
    return {"parameters": params, "resamples": len(draws), "failed": failed, "level": level, "seed": seed,
            "method": "cells resampled with replacement within each subset, refitted from the optimum"}  # fmt: skip


def advice_intervals(fit_: Fit, draws: Sequence[np.ndarray], unique: dict[str, float], budget: float,
                     crossovers: Sequence[dict[str, Any]], low: float, high: float, level: float = LEVEL
                     ) -> dict[str, Any]:  # fmt: skip
    """What the resampled fits say about an advice: per subset the prediction's percentile interval at `budget` and
    the share of resamples in which it is the best; per crossover of the full fit the percentile interval of where
    the resamples put the same crossover (same pair of subsets) and the share of resamples that have it in range."""
    from dataclasses import replace

    from harness.experiments.scaling import advise

    law = fit_.model
    assert law is not None
    groups = sorted(unique)
    tail = (1 - level) / 2 * 100
    fits = [replace(fit_, values=v, predict_fn=lambda pts, v=v: law.predict(v, pts)) for v in draws]
    at = np.array([[float(f.predict([Point(g, budget, unique[g], 1.0)])[0]) for g in groups] for f in fits])
    ok = np.isfinite(at).all(axis=1)
    at = at[ok]
    out: dict[str, Any] = {"resamples": len(at), "level": level, "subsets": {}, "crossovers": []}
    if len(at) < 10:
        return out
    lo, hi = np.percentile(at, [tail, 100 - tail], axis=0)
    best = np.bincount(at.argmin(axis=1), minlength=len(groups)) / len(at)
    for j, g in enumerate(groups):
        out["subsets"][g] = {"low": float(lo[j]), "high": float(hi[j]), "best_share": float(best[j])}
    kept = [f for f, good in zip(fits, ok, strict=True) if good]
    found: list[list[float]] = [[] for _ in crossovers]
    for f in kept:
        theirs = advise(f, unique, budget, low, high).crossovers
        for i, c in enumerate(crossovers):
            match = [t["tokens"] for t in theirs if (t["from"], t["to"]) == (c["from"], c["to"])]
            if match:
                found[i].append(min(match, key=lambda n: abs(np.log(n / c["tokens"]))))
    for c, where in zip(crossovers, found, strict=True):
        iv = np.percentile(where, [tail, 100 - tail]).tolist() if len(where) >= 10 else None
        out["crossovers"].append({"from": c["from"], "to": c["to"], "tokens": c["tokens"], "share": len(where) / len(kept),
                                  "low": iv[0] if iv else None, "high": iv[1] if iv else None})  # fmt: skip
    return out


def depends_on(fit_: Fit, points: Sequence[Point]) -> list[list[str]]:
    """Per point, the undetermined parameters its prediction depends on."""
    law, x = fit_.model, fit_.free
    assert law is not None and x is not None
    base = law.predict(law.natural(x), points)
    out: list[list[str]] = [[] for _ in points]
    for name in fit_.undetermined:
        j = fit_.names.index(name)
        for factor in (PROBE, 1 / PROBE):
            moved = x.copy()
            moved[j] += np.log(factor)
            with np.errstate(over="ignore", invalid="ignore"):
                pred = law.predict(law.natural(moved), points)
            changed = ~np.isfinite(pred) | (np.abs(pred - base) > DEPENDS * np.abs(base))
            for i in np.flatnonzero(changed):
                if name not in out[i]:
                    out[i].append(name)
    return out


def determining_cells(fit_: Fit, unique: dict[str, float], low: float, high: float) -> dict[str, list[str]]:
    """Per undetermined parameter, the cells that would determine it: for each subset, the smallest budget in
    [low, high] whose prediction the parameter moves (a cell there, or beyond, would move it in a fit)."""
    grid = np.geomspace(low, high, 120)
    out: dict[str, list[str]] = {name: [] for name in fit_.undetermined}
    for group, u in sorted(unique.items(), key=lambda kv: kv[1]):
        deps = depends_on(fit_, [Point(group, float(n), u, 1.0) for n in grid])
        for name in out:
            first = next((n for n, d in zip(grid, deps, strict=True) if name in d), None)
            if first is not None:
                out[name].append(f"{group} at {first:,.0f}+ tokens ({first / u:.3g} passes over its distinct tokens)")
    return out
