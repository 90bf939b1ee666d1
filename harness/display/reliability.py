"""`harness reliability` and `harness transfer` on screen: one row per task x metric."""

from __future__ import annotations

from typing import Any

from harness.analysis.reliability import MIN_CHANCE_MARGIN, MIN_MONOTONICITY, MIN_SNR, Reliability
from harness.analysis.transfer import Transfer


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "—" if x is None else format(x, fmt)


def render_reliability(r: Reliability, console: Any, *, scored_only: bool = False) -> None:
    from rich.table import Table

    seeds = sorted(set(r.seeds_per_entry))
    console.print(
        f"track {r.track}: {len(r.entries)} entries, {'/'.join(map(str, seeds))} seeds each "
        f"({sum(r.seeds_per_entry)} runs)",
        highlight=False,
    )
    table = Table(title=f"Reliability on {r.track} (FineWeb keeps: monotonicity >= {MIN_MONOTONICITY}, "
                        f"SNR > {MIN_SNR:g}, > {MIN_CHANCE_MARGIN:g} seed stds above chance)")  # fmt: skip
    columns = ["task", "metric", "mean", "seed std", "FineWeb SNR", "AI2 SNR", "monotonic", "chance margin"]
    columns += [f"MDE K={k}" for k in r.k] + ["keep"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    for u in r.units:
        if scored_only and not u.scored:
            continue
        ai2 = _num(u.ai2_snr) + ("" if u.ai2_snr is None or u.noise_from == "checkpoints" else "*")
        keep = {True: "[green]yes[/]", False: "[red]no[/]", None: "—"}[u.fineweb_keep]
        table.add_row(
            u.task, u.metric + ("" if u.higher_is_better else " ↓"), _num(u.mean, ".4g"), _num(u.seed_std),
            _num(u.fineweb_snr), ai2, _num(u.monotonicity, ".2f"), _num(u.chance_margin, ".2f"),
            *(_num(u.mde.get(str(k))) for k in r.k), keep,
        )  # fmt: skip
    console.print(table)
    if any(u.monotonicity is None for u in r.units):
        console.print(
            "monotonic: — = no intermediate-checkpoint scores in the records, so not measured (and `keep` cannot "
            "be decided); * AI2 SNR with the relative seed spread as noise (no checkpoint scores)",
            highlight=False,
        )
    console.print(
        "MDE K=n: the smallest difference of two n-seed means a 5% test detects with 80% power; ↓ lower is better",
        highlight=False,
    )


def render_transfer(t: Transfer, console: Any, *, scored_only: bool = False) -> None:
    from rich.table import Table

    console.print(
        f"{len(t.entries)} subsets on both {t.small} and {t.target}; seeds per entry (small/target): "
        + ", ".join(f"{a}/{b}" for a, b in t.seeds),
        highlight=False,
    )
    if t.average_last > 1:
        console.print(f"{t.small}: each run's mean over its last {t.average_last} checkpoint scores (Signal and Noise's "
                      f"checkpoint averaging); {t.target}: final checkpoints", highlight=False)  # fmt: skip
    table = Table(title=f"Does {t.small}'s ranking predict {t.target}'s? (95% bootstrap over seeds, {t.resamples} "
                        "resamples)")  # fmt: skip
    for col in ("task", f"{t.small} metric", f"{t.target} metric", "pairs", "decision acc", "95% interval",
                "Kendall tau", "95% interval ", "ties (target/small)"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("task", f"{t.small} metric", f"{t.target} metric") else "right")
    for a in t.agreements:
        if scored_only and a.metric != a.target_metric:
            continue
        best = " [bold]best[/]" if t.best.get(a.task) == a.metric else ""
        table.add_row(
            a.task + (f" → {a.target_task}" if a.target_task else ""), a.metric + best, a.target_metric, str(a.pairs), _num(a.decision_accuracy, ".3f"),
            f"[{_num(a.decision_low, '.2f')}, {_num(a.decision_high, '.2f')}]", _num(a.kendall_tau, ".3f"),
            f"[{_num(a.tau_low, '.2f')}, {_num(a.tau_high, '.2f')}]", f"{a.target_ties}/{a.small_ties}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "Ties: a pair the target ties is left out (nothing to predict); a pair the small track ties counts one half.",
        highlight=False,
    )
    if t.best:
        console.print("Best predictor per task: " + ", ".join(f"{k}: {v}" for k, v in t.best.items()), highlight=False)
    if not scored_only and (rows := t.by_metric()):
        console.print(
            "Mean decision accuracy over tasks, per metric: "
            + ", ".join(f"{m} {r['decision_accuracy']:.3f} ({r['tasks']:g})" for m, r in rows.items()),
            highlight=False,
        )
