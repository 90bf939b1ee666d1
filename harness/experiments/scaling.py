"""Compute-aware scaling laws for data: fit, held-out error and advice on which filter to use at a budget.

Two laws predict a model's held-out loss from the tokens it saw (n) and the subset it saw them from:

- Utility decay (Goyal et al. 2024, "Scaling Laws for Data Filtering: Data Curation cannot be Compute Agnostic").
  Each quality bucket i has a utility exponent b_i < 0 and a half-life tau_i in passes. Over the first pass the
  reducible loss is (a n)^b; on pass k (k = 0, 1, ...) the exponent has decayed to b_k = b 2^(-k/tau), and the
  reducible loss is multiplied by (n_end / n_start)^b_k over the tokens of that pass:
      R(n) = (a min(n, S))^b_0 * prod_{k>=1} (min(n, S(k+1)) / (S k))^b_k,     loss = d + R(n)
  with S the subset's distinct tokens. A subset mixing buckets (a filter keeps the best buckets) uses the effective
  utility b_k = sum_i w_i b_i 2^(-k/tau_i), w_i the bucket's share of the subset's tokens. `a` and the irreducible
  loss `d` are shared by all buckets, as in the paper; we apply the decay to the reducible term only. Shared, `a`
  makes every pair of first-pass curves cross at n = 1/a, whatever the data; the variant `utility-decay-per-bucket`
  gives each bucket its own scale a_i (a mixture's first pass is then prod_i (a_i n)^(w_i b_i), the token-weighted
  geometric mixture of its buckets' curves, which is the shared law when every a_i is equal), at the price of one
  parameter per bucket. `harness scaling fit` fits every law and names the one with the smallest error on the
  held-out cells; `advise --law auto` uses it.
- Effective data (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"): repeated tokens are worth
  less, D' = U + U R* (1 - exp(-R / R*)) with U the distinct tokens seen (min(n, the subset's distinct tokens):
  a model that saw part of a big subset once saw n distinct tokens, not the subset's) and R = n / U - 1
  repetitions, and at a fixed model size loss = E + B_g / D'^beta with one B_g per subset (its quality) and E,
  beta, R* shared.

Fits use scipy's least squares in transformed parameters (logs keep every parameter but b positive, and b
negative: an irreducible loss d or E below zero is no loss a model can reach, and unconstrained fits on few
points went there, to d = -1.3 and E = -1109 nats on the sandbox's compute-aware sweep) from
several starts; the uncertainty is the standard error from the Jacobian at the optimum (residual variance times
(J^T J)^-1, mapped back by the delta method). A fit needs more points than parameters and at least two budgets
per subset, else it is refused.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import HarnessError


class FitError(HarnessError):
    """Input that cannot support the fit (too few points, one budget, mixed tracks)."""


@dataclass(frozen=True)
class Point:
    """One trained model: its subset (group), tokens seen, the subset's distinct tokens and the measured loss."""

    group: str
    tokens: float
    unique: float
    loss: float
    label: str = ""
    sigma: float = 0.0  # the loss's measurement standard error (evaluation windows); 0 = not known


@dataclass(frozen=True)
class Groups:
    """The subsets and their composition in quality buckets: share[g][i] of group g's tokens from bucket i."""

    names: tuple[str, ...]
    buckets: tuple[str, ...]
    share: np.ndarray

    @classmethod
    def separate(cls, names: Sequence[str]) -> Groups:
        """Every subset its own bucket (records with no known nesting)."""
        return cls(tuple(names), tuple(names), np.eye(len(names)))

    @classmethod
    def nested(cls, names: Sequence[str], unique: Sequence[float]) -> Groups:
        """Nested subsets (top fractions of one base by one score), from the most aggressive: bucket i is what
        subset i adds to subset i-1."""
        order = np.argsort(unique)
        u = np.asarray(unique, dtype=np.float64)[order]
        sizes = np.diff(np.concatenate([[0.0], u]))
        if (sizes <= 0).any():
            raise FitError("nested subsets must grow strictly in distinct tokens")
        share = np.zeros((len(u), len(u)))
        for g in range(len(u)):
            share[g, : g + 1] = sizes[: g + 1] / u[g]
        names = [names[i] for i in order]
        return cls(tuple(names), tuple(f"bucket {i + 1} ({n})" for i, n in enumerate(names)), share)

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True)
class Law:
    """A law: parameter names, the map from free (transformed) parameters and the prediction."""

    name: str
    params: tuple[str, ...]
    natural: Callable[[np.ndarray], np.ndarray]  # free -> natural parameters: ±exp(free), so |d natural / d free| = exp
    predict: Callable[[np.ndarray, Sequence[Point]], np.ndarray]  # natural params, points -> losses
    starts: Callable[[Sequence[Point]], list[np.ndarray]]  # free-parameter starting points


def _goyal_losses(a: np.ndarray, d: float, b: np.ndarray, tau: np.ndarray, w: np.ndarray, n: np.ndarray,
                  s: np.ndarray) -> np.ndarray:  # fmt: skip
    """Vectorised law: a the first-pass scale per point, w (points x buckets) shares, n tokens seen and s distinct
    tokens per point."""
    passes = np.maximum(1, np.ceil(n / s)).astype(np.int64)
    k = np.arange(int(passes.max()))[None, :]  # pass index, points x passes
    inside = k < passes[:, None]
    decay = np.power(0.5, k[:, :, None] / tau[None, None, :])  # points x passes x buckets (broadcast)
    b_k = np.einsum("mi,i,mki->mk", w, b, np.broadcast_to(decay, (len(n), k.shape[1], len(b))))
    end = np.minimum(n[:, None], s[:, None] * (k + 1))
    start = np.where(k == 0, 1.0 / a[:, None], s[:, None] * k)  # pass 0: log(a * end)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # far-off trial parameters; fit rejects them
        terms = np.where(inside, b_k * np.log(end / start), 0.0)
    return d + np.exp(terms.sum(axis=1))


def utility_decay_law(groups: Groups, per_bucket_scale: bool = False) -> Law:
    """Goyal et al.'s law over the buckets of `groups`: b_i and tau_i per bucket, d shared, and a shared (the paper)
    or one a_i per bucket (`per_bucket_scale`; see the module docstring)."""
    nb = len(groups.buckets)
    na = nb if per_bucket_scale else 1
    scales = tuple(f"a[{b}]" for b in groups.buckets) if per_bucket_scale else ("a",)
    names = (*scales, "d", *(f"b[{b}]" for b in groups.buckets), *(f"tau[{b}]" for b in groups.buckets))

    sign = np.ones(len(names))
    sign[na + 1 : na + 1 + nb] = -1  # every parameter is exp(free), the utilities b negated

    def natural(x: np.ndarray) -> np.ndarray:
        return sign * np.exp(x)

    def predict(p: np.ndarray, points: Sequence[Point]) -> np.ndarray:
        a, d, b, tau = p[:na], p[na], p[na + 1 : na + 1 + nb], p[na + 1 + nb :]
        w = groups.share[[groups.index(q.group) for q in points]]
        n = np.array([q.tokens for q in points], dtype=np.float64)
        # per bucket: log a_eff = sum_i w_i b_i log a_i / sum_i w_i b_i, so the first pass is prod (a_i n)^(w_i b_i)
        a_point = np.exp((w * b) @ np.log(a) / (w @ b)) if per_bucket_scale else np.full(len(points), a[0])
        return _goyal_losses(a_point, d, b, tau, w, n, np.array([q.unique for q in points], dtype=np.float64))

    def starts(points: Sequence[Point]) -> list[np.ndarray]:
        losses = np.array([q.loss for q in points])
        n_min = min(q.tokens for q in points)
        out = []
        for d_frac, b0, tau0 in itertools.product((0.5, 0.9), (0.1, 0.5), (1.0, 10.0)):
            d0 = d_frac * losses.min()
            reducible = max(losses.max() - d0, 1e-3)
            a0 = reducible ** (-1 / b0) / n_min  # (a n_min)^(-b0) = reducible at the smallest budget
            out.append(np.array([*([math.log(a0)] * na), math.log(d0), *([math.log(b0)] * nb),
                                 *([math.log(tau0)] * nb)]))  # fmt: skip
        return out

    title = (
        "utility-decay, a per bucket (Goyal et al. 2024)" if per_bucket_scale else "utility-decay (Goyal et al. 2024)"
    )
    return Law(title, names, natural, predict, starts)


def effective_data_law(groups: Groups) -> Law:
    """Muennighoff et al.'s effective data at a fixed model size: E, beta, R* shared; B per subset."""
    ng = len(groups.names)
    names = ("E", "beta", "R*", *(f"B[{g}]" for g in groups.names))

    def natural(x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    def predict(p: np.ndarray, points: Sequence[Point]) -> np.ndarray:
        e, beta, r_star, big_b = p[0], p[1], p[2], p[3:]
        out = []
        for q in points:
            seen = min(q.unique, q.tokens)  # U_D: distinct tokens actually seen (all of them only after one pass)
            r = max(q.tokens / seen - 1.0, 0.0)
            d_eff = seen + seen * r_star * (1.0 - math.exp(-r / r_star))
            out.append(e + big_b[groups.index(q.group)] * d_eff ** (-beta))
        return np.array(out)

    def starts(points: Sequence[Point]) -> list[np.ndarray]:
        losses = np.array([q.loss for q in points])
        d_typ = float(np.median([q.tokens for q in points]))
        out = []
        for e_frac, beta0, r0 in itertools.product((0.5, 0.9), (0.2, 0.6), (2.0, 15.0)):
            e0 = e_frac * losses.min()
            b0 = max(float(np.median(losses)) - e0, 1e-3) * d_typ**beta0
            out.append(np.array([math.log(e0), math.log(beta0), math.log(r0), *([math.log(b0)] * ng)]))
        return out

    return Law("effective-data (Muennighoff et al. 2023)", names, natural, predict, starts)


LAWS: dict[str, Callable[[Groups], Law]] = {
    "utility-decay": utility_decay_law,
    "utility-decay-per-bucket": lambda groups: utility_decay_law(groups, per_bucket_scale=True),
    "effective-data": effective_data_law,
}


def choose_by_held_out(fits: dict[str, Fit]) -> str | None:
    """The law with the smallest mean absolute error on the held-out cells (ties: fewer parameters); None without
    held-out cells, where nothing measured can choose."""
    scored = [(f.held_out_mae, len(f.names), key) for key, f in fits.items() if f.held_out_mae is not None]
    return min(scored)[2] if scored else None


@dataclass(frozen=True)
class Fit:
    """A fitted law: natural parameters with standard errors, training error and held-out predictions."""

    law: str
    names: tuple[str, ...]
    values: np.ndarray
    stderr: np.ndarray
    train_rmse: float
    n_train: int
    held_out: list[dict[str, Any]] = field(default_factory=list)
    predict_fn: Callable[[Sequence[Point]], np.ndarray] | None = None
    model: Law | None = None  # the law fitted, and its optimum in free (transformed) parameters
    free: np.ndarray | None = None
    #: Filled by harness.experiments.scaling_checks: per parameter {"low", "high"} over cell resamples (None where
    #: not determined), with "resamples"/"level"; and the goodness of fit against measurement noise.
    bootstrap: dict[str, Any] | None = None
    goodness: dict[str, Any] | None = None

    def predict(self, points: Sequence[Point]) -> np.ndarray:
        assert self.predict_fn is not None
        return self.predict_fn(points)

    @property
    def held_out_mae(self) -> float | None:
        return float(np.mean([abs(h["error"]) for h in self.held_out])) if self.held_out else None

    @property
    def held_out_max_rel(self) -> float | None:
        return max(abs(h["error"]) / h["loss"] for h in self.held_out) if self.held_out else None

    @property
    def undetermined(self) -> list[str]:
        """Parameters no fitted point moves (their value is the optimiser's start, or a bound)."""
        return [n for n, s in zip(self.names, self.stderr, strict=True) if not math.isfinite(s)]

    def to_dict(self) -> dict[str, Any]:
        boot = (self.bootstrap or {}).get("parameters", {})
        return {
            "law": self.law,
            "parameters": {
                n: {
                    "value": float(v),
                    "stderr": _finite(s),
                    "determined": bool(math.isfinite(s)),
                    **({"bootstrap": boot[n]} if n in boot else {}),
                }
                for n, v, s in zip(self.names, self.values, self.stderr, strict=True)
            },
            "bootstrap": {k: v for k, v in (self.bootstrap or {}).items() if k != "parameters"} or None,
            "goodness_of_fit": self.goodness,
            "train_points": self.n_train,
            "train_rmse": self.train_rmse,
            "held_out": self.held_out,
            "held_out_mae": self.held_out_mae,
            "held_out_max_relative_error": self.held_out_max_rel,
        }


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def check_points(points: Sequence[Point], n_params: int, law: str) -> None:
    """Refuse input that cannot determine the law (see FitError)."""
    if len(points) <= n_params:
        raise FitError(
            f"the {law} law has {n_params} parameters but the fit has {len(points)} points: it needs more points "
            "than parameters (add budgets or subsets, or hold fewer cells out)"
        )
    for q in points:
        if not all(math.isfinite(v) and v > 0 for v in (q.tokens, q.unique, q.loss)):
            raise FitError(f"point {q.label or q.group}: tokens, distinct tokens and loss must be positive numbers")
    by_group: dict[str, set[float]] = {}
    for q in points:
        by_group.setdefault(q.group, set()).add(q.tokens)
    flat = [g for g, budgets in by_group.items() if len(budgets) < 2]
    if flat:
        raise FitError(
            f"subset {flat[0]!r} was trained at only one budget; a scaling law needs at least two per subset"
        )


def solve(law: Law, train: Sequence[Point], starts: Sequence[np.ndarray], budget: int = 4000) -> Any:
    """scipy's least-squares optimum of `law` on `train` in free parameters: a short run from every start, then the
    best one run to convergence (a few starts wander for long); None when no start converged."""
    from scipy.optimize import least_squares

    y = np.array([q.loss for q in train])

    def residuals(x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            r = law.predict(law.natural(x), train) - y
        return np.where(np.isfinite(r), r, 1e3)

    def run(x0: np.ndarray, nfev: int) -> Any:
        try:
            with warnings.catch_warnings():  # trial steps far from the optimum overflow; they are rejected
                warnings.simplefilter("ignore", RuntimeWarning)
                return least_squares(residuals, x0, method="trf", x_scale="jac", max_nfev=nfev, xtol=1e-12, ftol=1e-12)
        except (ValueError, OverflowError):
            return None

    tries = [r for r in (run(x0, 120) for x0 in starts) if r is not None] if len(starts) > 1 else []
    first = min(tries, key=lambda r: r.cost).x if tries else (starts[0] if len(starts) == 1 else None)
    if first is None:
        return None
    best = run(first, budget)
    return best if best is not None else (min(tries, key=lambda r: r.cost) if tries else None)


def fit(law: Law, train: Sequence[Point], held_out: Sequence[Point] = ()) -> Fit:
    """Least-squares fit of `law` on `train`; the error on `held_out` is measured, never fitted."""
    check_points(train, len(law.params), law.name)
    best = solve(law, train, law.starts(train))
    if best is None:
        raise FitError(f"the {law.name} fit did not converge from any start")
    dof = len(train) - len(law.params)
    s2 = 2 * best.cost / dof
    cov = np.linalg.pinv(best.jac.T @ best.jac) * s2
    free_se = np.sqrt(np.clip(np.diag(cov), 0, None))
    values = law.natural(best.x)
    stderr = np.exp(best.x) * free_se  # delta method: |d natural / d free| = exp(free) for every parameter
    # A parameter the fitted points do not move (a half-life of a bucket never repeated, a floor pushed to its
    # bound of 0) has no standard error: the pseudo-inverse would report 0, as if it were known exactly.
    moves = np.linalg.norm(best.jac, axis=0)
    stderr = np.where(moves > 1e-9 * max(float(moves.max()), 1e-300), stderr, np.nan)

    def predict(points: Sequence[Point]) -> np.ndarray:
        return law.predict(values, points)

    held = []
    if held_out:
        for q, pred in zip(held_out, predict(held_out), strict=True):
            held.append({"point": q.label or q.group, "group": q.group, "tokens": q.tokens, "loss": q.loss,
                         "predicted": float(pred), "error": float(pred - q.loss)})  # fmt: skip
    rmse = float(np.sqrt(np.mean(best.fun**2)))
    sigma = np.array([q.sigma for q in train])
    goodness = None
    if (sigma > 0).all():  # chi^2 against the points' measurement noise (evaluation windows; seed noise not in it)
        from scipy.stats import chi2

        stat = float(np.sum((best.fun / sigma) ** 2))
        p_value = float(chi2.sf(stat, dof))
        goodness = {"chi2": stat, "dof": dof, "chi2_per_dof": stat / dof, "p_value": p_value,
                    "fits_within_noise": p_value >= 0.05}  # fmt: skip
    return Fit(law.name, law.params, values, stderr, rmse, len(train), held, predict, law, best.x, None, goodness)


# ---------------------------------------------------------------------------------------------------- advice


@dataclass(frozen=True)
class Advice:
    """Predicted loss of each subset at a budget, best first, and where the best subset changes with compute."""

    budget: float
    ranking: list[tuple[str, float]]
    crossovers: list[dict[str, Any]]  # {tokens, from, to, less_aggressive}
    frontier: dict[str, np.ndarray]  # tokens grid, best loss, best group index


def _curve(fit_: Fit, group: str, unique: float, tokens: np.ndarray) -> np.ndarray:
    return fit_.predict([Point(group, float(n), unique, 1.0) for n in tokens])


def advise(fit_: Fit, unique: dict[str, float], budget: float, low: float, high: float) -> Advice:
    """Rank the subsets (`unique`: group -> distinct tokens) at `budget` and trace the frontier on [low, high]."""
    from scipy.optimize import brentq

    if budget <= 0:
        raise FitError(f"--budget must be a positive number of tokens, got {budget:g}")
    groups = sorted(unique, key=lambda g: unique[g])  # most aggressive (fewest distinct tokens) first
    at = {g: float(_curve(fit_, g, unique[g], np.array([budget]))[0]) for g in groups}
    ranking = sorted(at.items(), key=lambda kv: kv[1])
    grid = np.geomspace(min(low, budget), max(high, budget), 240)
    curves = np.stack([_curve(fit_, g, unique[g], grid) for g in groups])
    best = curves.argmin(axis=0)
    crossovers = []
    for j in np.flatnonzero(np.diff(best)):
        g0, g1 = groups[best[j]], groups[best[j + 1]]

        def gap(log_n: float, g0: str = g0, g1: str = g1) -> float:
            n = np.array([math.exp(log_n)])
            return float(_curve(fit_, g0, unique[g0], n)[0] - _curve(fit_, g1, unique[g1], n)[0])

        try:
            where = math.exp(brentq(gap, math.log(grid[j]), math.log(grid[j + 1])))
        except ValueError:
            where = float(math.sqrt(grid[j] * grid[j + 1]))
        crossovers.append({"tokens": where, "from": g0, "to": g1, "less_aggressive": unique[g1] > unique[g0]})
    return Advice(budget, ranking, crossovers, {"tokens": grid, "loss": curves.min(axis=0), "best": best})


def plot_frontier(
    fit_: Fit, unique: dict[str, float], advice: Advice, points: Sequence[Point], out_stem: str
) -> list[str]:
    """PNG and SVG: each subset's predicted loss against tokens, the frontier, observed points and crossovers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted(unique, key=lambda g: unique[g])
    grid = advice.frontier["tokens"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for g in groups:
        (line,) = ax.plot(grid, _curve(fit_, g, unique[g], grid), lw=1, label=f"{g} (predicted)")
        obs = [q for q in points if q.group == g]
        ax.scatter([q.tokens for q in obs], [q.loss for q in obs], color=line.get_color(), s=18, zorder=3)
    ax.plot(grid, advice.frontier["loss"], color="black", lw=2.2, alpha=0.55, label="frontier (best subset)")
    for c in advice.crossovers:
        ax.axvline(c["tokens"], color="grey", ls="--", lw=1)
        ax.annotate(f"{c['to']} wins", (c["tokens"], ax.get_ylim()[1]), fontsize=7, rotation=90, va="top")
    ax.axvline(advice.budget, color="red", lw=1, label=f"budget {advice.budget:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title(f"{fit_.law}: best subset against compute", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    files = []
    for ext in ("png", "svg"):
        fig.savefig(f"{out_stem}.{ext}", dpi=110)
        files.append(f"{out_stem}.{ext}")
    plt.close(fig)
    return files
