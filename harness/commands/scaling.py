"""`harness scaling fit|advise`: fit compute-aware data scaling laws to records and advise a filter per budget.

Input: an experiment (its sweep's finished cells; subsets are the cells without their multiplier and seed, nested
top fractions when the experiment varies the filter) or any results store with `--track BASE` (every record of the
base track and its multipliers; each distinct subset is its own bucket).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scaling", help="fit data scaling laws (utility decay, effective data) and advise a filter")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    fit = verbs.add_parser("fit", help="fit both laws; print parameters with uncertainty and the held-out error")
    _common(fit)
    fit.add_argument(
        "--bootstrap", type=int, default=200, metavar="N",
        help="cell resamples for the bootstrap parameter intervals (default 200; 0: delta method only)",
    )  # fmt: skip
    fit.set_defaults(run=_fit)
    adv = verbs.add_parser("advise", help="rank subsets (filter strengths) for a token budget and plot the frontier")
    _common(adv)
    adv.add_argument("--budget", type=float, required=True, help="training tokens to advise for (e.g. 2e7)")
    adv.add_argument(
        "--law", choices=("auto", "utility-decay", "utility-decay-per-bucket", "effective-data"), default="auto",
        help="law to advise with (default auto: the one with the smallest error on the held-out cells)",
    )  # fmt: skip
    adv.add_argument(
        "--bootstrap", type=int, default=200, metavar="N",
        help="cell resamples for the prediction and crossover intervals (default 200; 0: no intervals)",
    )  # fmt: skip
    adv.set_defaults(run=_advise)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", default=None, help="experiment file whose sweep to fit")
    p.add_argument("--out", default=None, help="sweep folder (default: sweeps/<experiment name>)")
    p.add_argument("--results", default=None, help="results store (default: the sweep's, or $HARNESS_RESULTS)")
    p.add_argument("--track", default=None, help="without an experiment: the base track whose records to fit")
    p.add_argument(
        "--hold-out-scale",
        type=float,
        default=None,
        help="multiplier whose cells are held out of the fit (default: the largest, when there are 3+)",
    )
    p.add_argument("--save", default=None, help="folder for fit.json and plots (default: <sweep>/scaling or .)")


def _fit(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace
    from pathlib import Path

    from rich.console import Console

    from harness.experiments.scaling import LAWS, FitError, choose_by_held_out, fit
    from harness.experiments.scaling_checks import bootstrap
    from harness.experiments.scaling_data import load_points, split_held_out

    console = Console()
    data = load_points(args.experiment, args.out, args.results, args.track)
    train, held, scale = split_held_out(data, args.hold_out_scale)
    console.print(f"{len(data.points)} points on track {data.track} (version {data.version}); "
                  f"{len(train)} fitted, {len(held)} held out" + (f" (scale {scale:g}x)" if held else ""))  # fmt: skip
    results = {}
    for key, make in LAWS.items():
        try:
            result = fit(make(data.groups), train, held)
        except FitError as exc:
            if key == "utility-decay":
                raise
            console.print(f"[yellow]{key}: not fitted[/]: {exc}")
            continue
        if args.bootstrap > 0:
            result = replace(result, bootstrap=bootstrap(result, train, resamples=args.bootstrap))
        results[key] = result
        _print_fit(console, result)
    chosen = choose_by_held_out(results)
    if chosen is None:
        console.print("model choice: no held-out cells, so no law is chosen by measurement (hold a multiplier out)")
    else:
        others = ", ".join(f"{k} {r.held_out_mae:.4f}" for k, r in results.items() if k != chosen)
        console.print(f"[bold]model choice by held-out error: {chosen}[/] (mean absolute error "
                      f"{results[chosen].held_out_mae:.4f}; {others}); `advise --law auto` uses it")  # fmt: skip
    save = Path(args.save) if args.save else data.default_save
    save.mkdir(parents=True, exist_ok=True)
    blob = {"track": data.track, "version": data.version, "held_out_scale": scale, "unique_tokens": data.unique,
            "chosen_by_held_out_error": chosen, "fits": {k: r.to_dict() for k, r in results.items()}}  # fmt: skip
    (save / "fit.json").write_text(json.dumps(blob, indent=1) + "\n", encoding="utf-8")
    console.print(f"wrote {save / 'fit.json'}")
    return 0


def _print_fit(console: Any, result: Any) -> None:
    import math

    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{result.law}: {result.n_train} points, train RMSE {result.train_rmse:.4f}")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    table.add_column("± stderr (delta method)", justify="right")
    boot = (result.bootstrap or {}).get("parameters") or {}
    if boot:
        table.add_column(f"{result.bootstrap['level']:.0%} bootstrap over cells", justify="right")
    for name, value, se in zip(result.names, result.values, result.stderr, strict=True):
        row = [escape(name), f"{value:.5g}", f"{se:.2g}" if math.isfinite(se) else "not determined"]
        if boot:
            iv = boot.get(name)
            row.append(f"[{iv['low']:.4g}, {iv['high']:.4g}]" if iv else "not determined")
        table.add_row(*row)
    console.print(table)
    if result.bootstrap:
        b = result.bootstrap
        console.print(f"  bootstrap: {b['resamples']} cell resamples refitted ({b['failed']} failed); where it is "
                      "wider than the delta method, the delta method understates the uncertainty")  # fmt: skip
    g = result.goodness
    if g is not None:
        verdict = "fits within measurement noise" if g["fits_within_noise"] else (
            f"does NOT fit within measurement noise: its residuals are {math.sqrt(g['chi2_per_dof']):.1f} times the "
            "evaluation noise, so its errors understate how far its predictions can be off")  # fmt: skip
        console.print(
            f"  chi^2/dof {g['chi2_per_dof']:.2f} ({g['dof']} dof, p = {g['p_value']:.2g}): the law {verdict}"
        )
    if not all(math.isfinite(se) for se in result.stderr):
        console.print("  not determined: no fitted point depends on it (a bucket never repeated) or it sits at its "
                      "bound (a floor of 0)")  # fmt: skip
    for h in result.held_out:
        console.print(f"  held out {h['point']}: measured {h['loss']:.4f}, predicted {h['predicted']:.4f} "
                      f"(error {h['error']:+.4f})")  # fmt: skip
    if result.held_out:
        console.print(f"  held-out mean absolute error {result.held_out_mae:.4f}, "
                      f"max relative error {result.held_out_max_rel:.2%}")  # fmt: skip


def _advise(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape

    from harness.experiments.scaling import Point, advise, plot_frontier
    from harness.experiments.scaling_checks import advice_intervals, depends_on, resample_fits
    from harness.experiments.scaling_data import load_points, split_held_out

    console = Console()
    data = load_points(args.experiment, args.out, args.results, args.track)
    train, held, _ = split_held_out(data, args.hold_out_scale)
    result = _law_for_advice(console, args.law, data, train, held)
    tokens = [q.tokens for q in data.points]
    low, high = min(tokens) / 4, max(tokens) * 8
    advice = advise(result, data.unique, args.budget, low, high)
    deps = dict(zip(data.unique, depends_on(result, [Point(g, args.budget, u, 1.0) for g, u in data.unique.items()]),
                    strict=True))  # fmt: skip
    if any(deps.values()):
        return _refuse(console, result, data.unique, args.budget, advice, deps, low, high)
    draws = resample_fits(result, train, resamples=args.bootstrap)[0] if args.bootstrap > 0 else []
    iv = advice_intervals(result, draws, data.unique, args.budget, advice.crossovers, low, high)
    level = f"{iv['level']:.0%}"
    console.print(f"[bold]{result.law}[/] at a budget of {args.budget:,.0f} tokens (best first"
                  + (f"; {level} intervals over {iv['resamples']} cell resamples" if iv["subsets"] else "") + "):")  # fmt: skip
    for rank, (group, loss) in enumerate(advice.ranking, 1):
        passes = args.budget / data.unique[group]
        b = iv["subsets"].get(group)
        spread = f" [{b['low']:.4f}, {b['high']:.4f}], best in {b['best_share']:.0%} of resamples" if b else ""
        console.print(f"  {rank}. {group}: predicted loss {loss:.4f}{spread} ({passes:.1f} passes over its distinct "
                      "tokens)")  # fmt: skip
    for c, ci in zip(advice.crossovers, iv["crossovers"] or [None] * len(advice.crossovers), strict=True):
        kind = "a less aggressive filter starts to win" if c["less_aggressive"] else "a more aggressive one wins"
        at = [Point(g, c["tokens"], data.unique[g], 1.0) for g in (c["from"], c["to"])]
        undetermined = sorted({n for d in depends_on(result, at) for n in d})
        caveat = f"; not determined: depends on {escape(', '.join(undetermined))}" if undetermined else ""
        where = "" if ci is None else (
            f" [{ci['low']:,.0f}, {ci['high']:,.0f}] (in {ci['share']:.0%} of resamples)" if ci["low"] is not None
            else f" (in {ci['share']:.0%} of resamples: too few for an interval)")  # fmt: skip
        console.print(f"  crossover at {c['tokens']:,.0f} tokens{where}: {c['to']} overtakes {c['from']} "
                      f"({kind}{caveat})")  # fmt: skip
    if not advice.crossovers:
        console.print("  no crossover in the plotted range")
    save = data.default_save if args.save is None else Path(args.save)
    save.mkdir(parents=True, exist_ok=True)
    files = plot_frontier(result, data.unique, advice, data.points, str(save / "frontier"))
    console.print("wrote " + ", ".join(files))
    return 0


def _law_for_advice(console: Any, law: str, data: Any, train: list[Any], held: list[Any]) -> Any:
    """The named law's fit, or with `auto` every law's, keeping the smallest held-out error (a law that cannot be
    fitted on these cells is skipped; without held-out cells `auto` is refused: nothing measured can choose)."""
    from harness.errors import UsageError
    from harness.experiments.scaling import LAWS, FitError, choose_by_held_out, fit

    if law != "auto":
        return fit(LAWS[law](data.groups), train, held)
    if not held:
        raise UsageError("--law auto chooses by the error on held-out cells, and none are held out (a sweep needs 3+ "
                         f"multipliers, or pass --hold-out-scale); name the law: --law {'|'.join(LAWS)}")  # fmt: skip
    fits = {}
    for key, make in LAWS.items():
        try:
            fits[key] = fit(make(data.groups), train, held)
        except FitError as exc:
            console.print(f"[yellow]{key}: not fitted[/]: {exc}")
    if not fits:
        raise FitError("no law could be fitted to these cells (see above)")
    chosen = choose_by_held_out(fits)
    assert chosen is not None
    console.print(f"law chosen by held-out error: {chosen} (mean absolute error {fits[chosen].held_out_mae:.4f})")
    return fits[chosen]


def _refuse(console: Any, result: Any, unique: dict[str, float], budget: float, advice: Any,
            deps: dict[str, list[str]], low: float, high: float) -> int:  # fmt: skip
    """No ranking where a prediction at the budget rests on a parameter the fit did not determine: its value is
    the optimiser's start, and another start moves the prediction (by 2x at 30M tokens on the compute-aware sweep)
    and can reorder the subsets. Exit 1, so that a script never takes it for advice."""
    from rich.markup import escape

    from harness.experiments.scaling_checks import determining_cells

    console.print(f"[bold red]{result.law}: no ranking at {budget:,.0f} tokens[/]: the predictions of "
                  f"{escape(', '.join(g for g, d in deps.items() if d))} depend on parameters the fit did not determine "
                  "(their value is the optimiser's start, not a measurement)")  # fmt: skip
    for group, loss in advice.ranking:
        note = f"depends on {escape(', '.join(deps[group]))}" if deps[group] else "determined"
        console.print(
            f"  {escape(group)}: {'not predictable' if deps[group] else f'predicted loss {loss:.4f}'} ({note})"
        )
    needed = {n for d in deps.values() for n in d}
    for name, cells in determining_cells(result, unique, low, max(high, budget)).items():
        if name in needed:
            where = escape("; ".join(cells)) or "no subset in range"
            console.print(f"  {escape(name)} would be determined by cells of: {where}", highlight=False)
    console.print("  train those cells (a larger multiplier in the experiment), or advise at a budget whose "
                  "predictions do not depend on them")  # fmt: skip
    return 1
