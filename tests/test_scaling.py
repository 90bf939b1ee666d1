"""Scaling laws: each fit recovers the parameters of synthetic curves drawn from the same law, predicts held-out
points, refuses degenerate input, and the advice finds the crossover the law implies."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.experiments.scaling import (
    FitError,
    Groups,
    Point,
    advise,
    effective_data_law,
    fit,
    plot_frontier,
    utility_decay_law,
)

NAMES = ("top 10%", "top 30%", "all")
UNIQUE = (1e5, 3e5, 1e6)
BUDGETS = (5e4, 2e5, 8e5, 2e6, 6e6)
#: Recovery tolerance (relative, per parameter) on noise-free curves from the same law.
TOLERANCE = 1e-3
#: Goyal et al.'s law: a, d, b per bucket (utility, < 0), tau per bucket (half-life in passes).
GOYAL = np.array([2e-4, 2.0, -0.30, -0.20, -0.12, 3.0, 8.0, 20.0])
#: Muennighoff et al.'s law at a fixed model: E, beta, R*, B per subset.
MUENNIGHOFF = np.array([1.5, 0.35, 5.0, 300.0, 200.0, 150.0])


def _curves(law, true: np.ndarray, noise: float = 0.0) -> list[Point]:
    grid = [Point(g, n, u, 1.0, f"{g}@{n:g}") for g, u in zip(NAMES, UNIQUE, strict=True) for n in BUDGETS]
    losses = law.predict(true, grid) * (1 + noise * np.random.default_rng(0).standard_normal(len(grid)))
    return [Point(q.group, q.tokens, q.unique, float(v), q.label) for q, v in zip(grid, losses, strict=True)]


@pytest.mark.parametrize(
    ("make", "groups", "true"),
    [
        (utility_decay_law, Groups.nested(NAMES, UNIQUE), GOYAL),
        (effective_data_law, Groups.separate(NAMES), MUENNIGHOFF),
    ],
)
def test_fit_recovers_known_parameters_and_predicts_held_out_points(make, groups, true) -> None:
    law = make(groups)
    points = _curves(law, true)
    train = [q for q in points if q.tokens < BUDGETS[-1]]
    held = [q for q in points if q.tokens == BUDGETS[-1]]
    result = fit(law, train, held)
    np.testing.assert_allclose(result.values, true, rtol=TOLERANCE)
    assert result.held_out_max_rel < 1e-4 and len(result.held_out) == len(NAMES)
    assert np.all(np.isfinite(result.stderr)) and result.to_dict()["parameters"]["a" if "a" in law.params else "E"]


@pytest.mark.parametrize(
    ("make", "groups", "floor"),
    [(utility_decay_law, Groups.nested(NAMES, UNIQUE), "d"), (effective_data_law, Groups.separate(NAMES), "E")],
)
def test_irreducible_loss_is_never_negative(make, groups, floor: str) -> None:
    """Losses falling straight in log tokens (no floor in sight) pulled unconstrained fits below zero."""
    law = make(groups)
    points = [
        Point(g, n, u, 3.0 - 0.25 * np.log(n / BUDGETS[0]) - 0.1 * i, f"{g}@{n:g}")
        for i, (g, u) in enumerate(zip(NAMES, UNIQUE, strict=True))
        for n in BUDGETS
    ]
    result = fit(law, points)
    assert result.values[law.params.index(floor)] >= 0


def test_noisy_curves_give_uncertainties_that_cover_the_truth() -> None:
    law = effective_data_law(Groups.separate(NAMES))
    result = fit(law, _curves(law, MUENNIGHOFF, noise=0.002))
    z = np.abs(result.values - MUENNIGHOFF) / result.stderr
    assert np.all(result.stderr > 0) and np.all(z < 4)


def test_degenerate_input_is_refused() -> None:
    law = utility_decay_law(Groups.nested(NAMES, UNIQUE))
    points = _curves(law, GOYAL)
    with pytest.raises(FitError, match="8 parameters but the fit has 6 points"):
        fit(law, points[:6])
    one_budget = [q for q in points if q.tokens == BUDGETS[2]] * 4
    with pytest.raises(FitError, match="only one budget"):
        fit(law, one_budget)
    with pytest.raises(FitError, match="positive numbers"):
        fit(law, [*points[:-1], Point("all", 1e6, 1e6, float("nan"))])
    with pytest.raises(FitError, match="grow strictly"):
        Groups.nested(NAMES, (1e5, 1e5, 1e6))


def test_records_of_different_track_versions_are_not_mixed() -> None:
    from harness.experiments.scaling_data import _check_versions

    def record(version: int, base: str = "nano") -> SimpleNamespace:
        return SimpleNamespace(track=SimpleNamespace(name=f"{base}-2x", base=base, version=version))

    assert _check_versions([record(1), record(1)], "store") == ("nano", 1)
    with pytest.raises(FitError, match="different track versions"):
        _check_versions([record(1), record(2)], "store")
    with pytest.raises(FitError, match="different tracks"):
        _check_versions([record(1), record(1, "debug")], "store")


def test_advice_ranks_filters_and_finds_where_the_less_aggressive_one_wins(tmp_path) -> None:
    law = utility_decay_law(Groups.nested(NAMES, UNIQUE))
    points = _curves(law, GOYAL)
    result = fit(law, points)
    unique = dict(zip(NAMES, UNIQUE, strict=True))
    small = advise(result, unique, 5e4, 1e4, 1e8)
    large = advise(result, unique, 5e7, 1e4, 1e8)
    assert small.ranking[0][0] == "top 10%"  # the most aggressive filter wins at small compute ...
    assert large.ranking[0][0] != "top 10%"  # ... and loses once its few documents are repeated too often
    first = small.crossovers[0]
    assert first["from"] == "top 10%" and first["less_aggressive"]
    n = np.array([first["tokens"]])
    before = [law.predict(result.values, [Point(g, x, unique[g], 1.0)])[0] for g in (first["from"], first["to"])
              for x in n * 0.9]  # fmt: skip
    after = [law.predict(result.values, [Point(g, x, unique[g], 1.0)])[0] for g in (first["from"], first["to"])
             for x in n * 1.1]  # fmt: skip
    assert before[0] < before[1] and after[0] > after[1]
    files = plot_frontier(result, unique, large, points, str(tmp_path / "frontier"))
    assert all((tmp_path / f"frontier.{ext}").stat().st_size > 1000 for ext in ("png", "svg")) and len(files) == 2


def test_effective_data_counts_only_the_distinct_tokens_seen() -> None:
    """Below one pass a model has seen n distinct tokens, not the subset's U: D' = n, not U (which would make the
    loss flat in the budget for any subset bigger than it)."""
    law = effective_data_law(Groups.separate(["all"]))
    e, beta, r_star, big_b = 1.0, 0.5, 5.0, 100.0
    small, large, repeated = law.predict(
        np.array([e, beta, r_star, big_b]), [Point("all", n, u, 1.0) for n, u in ((1e4, 1e6), (4e4, 1e6), (4e4, 1e4))]
    )
    assert small == pytest.approx(e + big_b * 1e4**-beta) and large == pytest.approx(e + big_b * 4e4**-beta)
    d_eff = 1e4 + 1e4 * r_star * (1 - np.exp(-3 / r_star))  # 4 passes over 1e4: 3 repetitions
    assert repeated == pytest.approx(e + big_b * d_eff**-beta)


def test_parameters_no_point_depends_on_have_no_standard_error() -> None:
    """Subsets never repeated leave their half-lives undetermined: reported as such, never as ± 0."""
    groups = Groups.nested(NAMES, UNIQUE)
    law = utility_decay_law(groups)
    points = [q for q in _curves(law, GOYAL, noise=0.002) if q.tokens <= q.unique or q.group == NAMES[0]]
    result = fit(law, points)
    se = dict(zip(law.params, result.stderr, strict=True))
    assert np.isnan(se[f"tau[{groups.buckets[2]}]"]) and np.isfinite(se[f"tau[{groups.buckets[0]}]"])
    assert result.to_dict()["parameters"][f"tau[{groups.buckets[2]}]"]["stderr"] is None


def test_predictions_that_rest_on_an_undetermined_parameter_are_named_with_the_cells_that_would_fix_it() -> None:
    """Issue 24: advise ranked with half-lives the fit marks 'not determined' (their value is the optimiser's start);
    `depends_on` finds them and `determining_cells` says which cells would determine them."""
    from rich.console import Console

    from harness.commands.scaling import _refuse
    from harness.experiments.scaling_checks import depends_on, determining_cells

    groups = Groups.nested(NAMES, UNIQUE)
    law = utility_decay_law(groups)
    points = [q for q in _curves(law, GOYAL, noise=0.002) if q.tokens <= q.unique or q.group == NAMES[0]]
    result = fit(law, points)
    tau_all = f"tau[{groups.buckets[2]}]"
    assert tau_all in result.undetermined and not result.to_dict()["parameters"][tau_all]["determined"]
    unique = dict(zip(NAMES, UNIQUE, strict=True))
    inside = depends_on(result, [Point(g, 5e5, unique[g], 1.0) for g in ("top 10%", "all")])
    assert inside == [[], []]  # 'all' seen less than once at 5e5 tokens: no half-life enters its prediction
    beyond = depends_on(result, [Point("all", 3e6, 1e6, 1.0)])[0]  # 3 passes: bucket 3's half-life matters
    assert tau_all in beyond
    cells = determining_cells(result, unique, 1e4, 1e8)[tau_all]
    assert cells and cells[0].startswith("all at 1,0") and "passes" in cells[0]  # just past one pass over 'all'
    console = Console(record=True, width=200)
    advice = advise(result, unique, 3e6, 1e4, 1e8)
    deps = dict(zip(unique, depends_on(result, [Point(g, 3e6, u, 1.0) for g, u in unique.items()]), strict=True))
    assert _refuse(console, result, unique, 3e6, advice, deps, 1e4, 1e8) == 1
    out = console.export_text()
    all_line = next(line for line in out.splitlines() if line.strip().startswith("all:"))
    assert "no ranking at 3,000,000 tokens" in out and "not predictable" in all_line and tau_all in all_line
    assert "top 10%: predicted loss" in out  # a subset no undetermined parameter touches keeps its prediction
    assert f"{tau_all} would be determined by cells of: all at" in out


#: Bootstrap coverage check: noisy datasets drawn from the law, cell resamples per dataset, the interval's level,
#: and the band the pooled coverage (all 6 parameters) must fall in: nominal 90% within 15 points (the 120
#: indicators are correlated within a dataset and 30 resamples place a 5% tail coarsely).
COVERAGE_DATASETS, COVERAGE_RESAMPLES, COVERAGE_LEVEL, COVERAGE_BAND = 20, 30, 0.90, (0.75, 0.99)


def test_bootstrap_intervals_cover_the_true_parameters_at_about_their_level() -> None:
    from harness.experiments.scaling_checks import bootstrap

    law = effective_data_law(Groups.separate(NAMES))
    grid = [Point(g, n, u, 1.0) for g, u in zip(NAMES, UNIQUE, strict=True) for n in BUDGETS]
    clean = law.predict(MUENNIGHOFF, grid)
    covered = []
    for d in range(COVERAGE_DATASETS):
        y = clean * (1 + 0.01 * np.random.default_rng([7, d]).standard_normal(len(grid)))
        points = [Point(q.group, q.tokens, q.unique, float(v), sigma=0.01 * c) for q, v, c in zip(grid, y, clean,
                  strict=True)]  # fmt: skip
        result = fit(law, points)
        boot = bootstrap(result, points, resamples=COVERAGE_RESAMPLES, level=COVERAGE_LEVEL)
        assert boot["resamples"] >= 0.8 * COVERAGE_RESAMPLES
        for name, true in zip(law.params, MUENNIGHOFF, strict=True):
            covered.append(boot["parameters"][name]["low"] <= true <= boot["parameters"][name]["high"])
    assert COVERAGE_BAND[0] <= np.mean(covered) <= COVERAGE_BAND[1]
    assert result.goodness is not None and result.goodness["dof"] == len(grid) - len(law.params)


def test_goodness_of_fit_says_when_the_law_does_not_fit_within_noise() -> None:
    law = effective_data_law(Groups.separate(NAMES))
    clean = _curves(law, MUENNIGHOFF)
    rng = np.random.default_rng(0)  # a draw at the noise (a p-value of 0.71; 1 seed in 20 fails the 5% test)
    within = [Point(q.group, q.tokens, q.unique, q.loss + 0.01 * rng.standard_normal(), sigma=0.01) for q in clean]
    assert fit(law, within).goodness["fits_within_noise"]
    # A bend the law cannot follow (the loss rises again at the largest budget), 10x the stated noise.
    bent = [Point(q.group, q.tokens, q.unique, q.loss + (0.1 if q.tokens == BUDGETS[-1] else 0.0), sigma=0.01)
            for q in clean]  # fmt: skip
    g = fit(law, bent).goodness
    assert not g["fits_within_noise"] and g["chi2_per_dof"] > 10
    assert fit(law, clean).goodness is None  # no measurement noise given: no chi^2


#: The per-bucket variant: a_i per bucket, then d, b_i and tau_i as GOYAL.
GOYAL_PER_BUCKET = np.array([5e-4, 2e-4, 5e-5, 2.0, -0.30, -0.20, -0.12, 3.0, 8.0, 20.0])


def test_per_bucket_scale_is_the_shared_law_when_the_scales_agree_and_is_recovered_when_they_differ() -> None:
    from harness.experiments.scaling import LAWS, choose_by_held_out

    groups = Groups.nested(NAMES, UNIQUE)
    shared, per_bucket = utility_decay_law(groups), LAWS["utility-decay-per-bucket"](groups)
    assert per_bucket.params[:4] == ("a[bucket 1 (top 10%)]", "a[bucket 2 (top 30%)]", "a[bucket 3 (all)]", "d")
    grid = _curves(shared, GOYAL)
    same = np.concatenate([[GOYAL[0]] * 3, GOYAL[1:]])
    np.testing.assert_allclose(per_bucket.predict(same, grid), shared.predict(GOYAL, grid), rtol=1e-12)
    points = _curves(per_bucket, GOYAL_PER_BUCKET)
    train = [q for q in points if q.tokens < BUDGETS[-1]]
    held = [q for q in points if q.tokens == BUDGETS[-1]]
    result = fit(per_bucket, train, held)
    np.testing.assert_allclose(result.values, GOYAL_PER_BUCKET, rtol=TOLERANCE)
    # Model choice by held-out error: the shared scale cannot follow curves whose scales differ.
    fits = {"utility-decay": fit(shared, train, held), "utility-decay-per-bucket": result}
    assert fits["utility-decay"].held_out_mae > 100 * result.held_out_mae
    assert choose_by_held_out(fits) == "utility-decay-per-bucket"
    assert choose_by_held_out({"utility-decay": fit(shared, train)}) is None  # nothing held out: nothing chooses


def test_advice_intervals_from_resampled_fits_cover_the_true_prediction_and_crossover() -> None:
    """advise's intervals: over repeated noisy draws of curves with a known crossover (2 cells per subset and budget,
    0.3% noise), the law refitted on cell resamples puts the true prediction at the budget and the true crossover
    inside its 95% intervals at about their nominal rate (at least 80% over 10 draws: 30 predictions, 10
    crossovers), and the shares of resamples in which each subset is best add up to one."""
    from harness.experiments.scaling_checks import advice_intervals, resample_fits

    law = effective_data_law(Groups.separate(NAMES))
    true = np.array([1.5, 0.35, 2.0, 100.0, 150.0, 200.0])  # top 10% wins at small budgets, then loses to repeats
    unique = dict(zip(NAMES, UNIQUE, strict=True))
    grid = [Point(g, n, u, 1.0, f"{g}@{n:g}") for g, u in zip(NAMES, UNIQUE, strict=True) for n in BUDGETS]
    clean = law.predict(true, grid)
    budget = 3e5
    truth = advise(SimpleNamespace(predict=lambda pts: law.predict(true, pts)), unique, budget, 1e4, 1e8)
    crossing = truth.crossovers[0]
    rng = np.random.default_rng(5)
    covered, crossed = [], []
    for _ in range(10):
        noisy = np.concatenate([clean, clean]) * (1 + 0.003 * rng.standard_normal(2 * len(grid)))
        points = [Point(q.group, q.tokens, q.unique, float(v)) for q, v in zip(grid + grid, noisy, strict=True)]
        result = fit(law, points)
        advice = advise(result, unique, budget, 1e4, 1e8)
        draws, failed = resample_fits(result, points, resamples=60)
        assert failed <= 10
        iv = advice_intervals(result, draws, unique, budget, advice.crossovers, 1e4, 1e8)
        assert iv["resamples"] == len(draws) >= 50
        assert sum(s["best_share"] for s in iv["subsets"].values()) == pytest.approx(1.0)
        for g, u in unique.items():
            value = float(law.predict(true, [Point(g, budget, u, 1.0)])[0])
            covered.append(iv["subsets"][g]["low"] <= value <= iv["subsets"][g]["high"])
        same = [c for c in iv["crossovers"] if (c["from"], c["to"]) == (crossing["from"], crossing["to"])]
        crossed.append(bool(same) and same[0]["low"] <= crossing["tokens"] <= same[0]["high"])
    assert np.mean(covered) >= 0.8 and np.mean(crossed) >= 0.8, (np.mean(covered), np.mean(crossed))


def test_a_point_with_replicate_seeds_is_their_mean_with_seed_and_window_noise() -> None:
    """A sweep cell with 3 seeds is one point: the mean of its seeds' held-out losses, with the seeds' standard
    error of that mean and the evaluation windows' (the same text for every seed) added in quadrature; one seed is
    its own loss with the windows' error."""
    import json
    import math
    import random

    from reliability_fixtures import record as synthetic

    from harness.experiments.scaling_data import _point
    from harness.records import Record

    def made(losses: tuple[float, ...]) -> Record:
        data = synthetic("nano", 0, 0.5, len(losses), random.Random(0))
        data["evaluation"]["heldout_lm"] = {"loss": losses[0], "loss_stderr": 0.01, "accuracy": 0.5,
                                            "perplexity": math.exp(losses[0])}  # fmt: skip
        data["subset"]["unique_tokens"] = 1000
        for run, loss in zip(data["replicates"]["runs"], losses, strict=True):
            run["heldout_lm"] = {"loss": loss}
        return Record.from_json(json.dumps(data).encode(), "synthetic")

    q = _point(made((2.0, 2.1, 2.3)), "top")
    assert q.loss == pytest.approx(6.4 / 3)
    assert q.sigma == pytest.approx(math.sqrt(np.var([2.0, 2.1, 2.3], ddof=1) / 3 + 0.01**2))
    single = _point(made((2.0,)), "top")
    assert (single.loss, single.sigma) == (2.0, 0.01)


def test_the_cli_offers_exactly_the_fitted_laws() -> None:
    """`--law`'s choices are written out so the CLI starts without numpy; this keeps them equal to LAWS."""
    from harness.cli import build_parser
    from harness.experiments.scaling import LAWS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    scaling_verbs = next(a for a in sub.choices["scaling"]._actions if a.dest == "verb")
    law = next(a for a in scaling_verbs.choices["advise"]._actions if a.dest == "law")
    assert set(law.choices) == {"auto", *LAWS}


def test_auto_without_held_out_cells_is_refused_naming_every_law() -> None:
    from harness.commands.scaling import _law_for_advice
    from harness.errors import UsageError
    from harness.experiments.scaling import LAWS

    with pytest.raises(UsageError, match="none are held out") as refused:
        _law_for_advice(None, "auto", None, [], [])
    assert f"--law {'|'.join(LAWS)}" in str(refused.value)
