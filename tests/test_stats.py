"""Uncertainty: bootstrap intervals (reproducible, paired), replicate spread, and `harness compare` verdicts on
constructed records with known differences, plus its bad-input messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.compare import NotComparable, compare_records
from harness.analysis.stats import (
    bootstrap_intervals,
    difference,
    metric_of,
    pack_examples,
    resampled_task,
    spread,
    unpack_examples,
)
from harness.cli import main
from harness.evaluate.aggregate import compute_aggregates
from harness.evaluate.suites import get_suite
from harness.leaderboard.sample import synthetic_record
from harness.records import Record

CHOICE_TASKS = ("fact_cloze", "next_sentence", "last_word")


def _examples(rng: np.random.Generator, p: float, bpb: float, n: int = 400) -> dict[str, dict]:
    """Per task (one subtask each): 0/1 outcomes with success rate about p; held-out text at about `bpb`."""
    ex = {t: {t: {"kind": "mean", "values": (rng.random(n) < p).astype(float).tolist()}} for t in CHOICE_TASKS}
    nbytes = rng.integers(200, 400, 60)
    ll = -(bpb + rng.normal(0, 0.05, 60)) * nbytes * np.log(2)
    ex["heldout"] = {"heldout": {"kind": "bits_per_byte", "values": ll.tolist(), "weights": nbytes.tolist()}}
    return ex


def replicated(seed: int, name: str, ps: list[float], bpb: float, *, track: str = "debug") -> Record:
    """A synthetic record whose replicates have per-example outcomes at success rates `ps` (one per seed)."""
    suite = get_suite("sandbox")
    data = synthetic_record(track, seed, name=name).to_data()
    runs = []
    for k, p in enumerate(ps):
        ex = _examples(np.random.default_rng([seed, k]), p, bpb)
        tasks = {t: sum(metric_of(e) for e in ex[t].values()) / len(ex[t]) for t in ex}
        aggs = {n: a.value for n, a in compute_aggregates(suite, tasks).items()}
        runs.append({"seed": 124 + k, "tokens_seen": 1000, "final_loss": 3.0, "wall_time_s": 1.0, "tasks": tasks,
                     "aggregates": aggs, "examples": {t: pack_examples(e) for t, e in ex.items()}})  # fmt: skip
    stats = {}
    for agg in runs[0]["aggregates"]:
        s = spread([r["aggregates"][agg] for r in runs], 0.01)
        stats[agg] = {"n": s.n, "mean": s.mean, "std": s.std, "low": s.low, "high": s.high, "example_stderr": 0.01}
    data["replicates"] = {"seeds": [124 + k for k in range(len(ps))], "runs": runs, "aggregates": stats, "note": ""}
    data["evaluation"]["aggregates"]["Sandbox_v1"]["value"] = runs[0]["aggregates"]["Sandbox_v1"]
    return Record.from_data(data, f"<{name}>")


def test_bootstrap_is_reproducible_and_brackets_the_estimate() -> None:
    suite = get_suite("sandbox")
    ex = _examples(np.random.default_rng(0), 0.6, 2.0)
    first = bootstrap_intervals(suite, ex)
    assert first == bootstrap_intervals(suite, ex)  # fixed resampling seed: identical on every run
    tasks, aggs = first
    for t in CHOICE_TASKS:
        point = metric_of(ex[t][t])
        assert tasks[t]["low"] < point < tasks[t]["high"] and tasks[t]["seed"] == 1234
        assert tasks[t]["stderr"] == pytest.approx(np.sqrt(point * (1 - point) / 400), rel=0.15)  # binomial
    assert tasks["heldout"]["low"] < metric_of(ex["heldout"]["heldout"]) < tasks["heldout"]["high"]
    assert aggs["Sandbox_v1"]["low"] < aggs["Sandbox_v1"]["high"] and set(aggs) == {"Sandbox_v1", "heldout_bpb"}
    # Another seed gives other resamples; the same examples under another task name too.
    assert bootstrap_intervals(suite, ex, seed=7) != first
    assert not np.array_equal(resampled_task("x", ex["fact_cloze"]), resampled_task("y", ex["fact_cloze"]))


def test_packed_examples_round_trip() -> None:
    ex = _examples(np.random.default_rng(1), 0.5, 2.0, n=37)
    for t, per_sub in ex.items():
        back = unpack_examples(json.loads(json.dumps(pack_examples(per_sub))))
        for sub, e in per_sub.items():
            assert np.array_equal(np.asarray(back[sub]["values"]), np.asarray(e["values"])), t
    assert "bits" in pack_examples(ex["fact_cloze"])["fact_cloze"]  # 0/1 outcomes travel as a bit string


def test_spread_of_one_and_of_several_replicates() -> None:
    one = spread([0.3], example_stderr=0.01)
    assert one.std is None and one.low == pytest.approx(0.3 - 1.96 * 0.01, abs=1e-3)
    three = spread([0.30, 0.32, 0.34], example_stderr=0.0)
    assert three.std == pytest.approx(0.02) and three.mean == pytest.approx(0.32)
    assert three.high - three.mean == pytest.approx(4.303 * 0.02 / np.sqrt(3), rel=1e-3)  # t with 2 df


def test_compare_verdicts_on_known_differences() -> None:
    good = replicated(1, "good", [0.62, 0.60, 0.61], bpb=1.8)
    bad = replicated(2, "bad", [0.40, 0.41, 0.39], bpb=2.2)
    same = replicated(3, "same as good", [0.61, 0.60, 0.62], bpb=1.8)
    ab = {d.aggregate: d for d in compare_records(good, bad).differences}
    assert next(d.aggregate for d in compare_records(good, bad).differences) == "Sandbox_v1"  # primary first
    assert ab["Sandbox_v1"].verdict == "A better" and ab["Sandbox_v1"].low > 0
    assert ab["heldout_bpb"].verdict == "A better" and ab["heldout_bpb"].high < 0  # lower bits per byte is better
    ba = {d.aggregate: d for d in compare_records(bad, good).differences}
    assert ba["Sandbox_v1"].verdict == "B better" and ba["Sandbox_v1"].diff == pytest.approx(-ab["Sandbox_v1"].diff)
    tie = {d.aggregate: d for d in compare_records(good, same).differences}
    assert (
        tie["Sandbox_v1"].verdict == "not distinguishable at 95%" and tie["Sandbox_v1"].low < 0 < tie["Sandbox_v1"].high
    )
    d = ab["Sandbox_v1"]
    assert d.seed_stderr > 0 and d.example_stderr > 0 and not d.note


def test_compare_with_single_replicates_says_what_the_interval_covers() -> None:
    a, b = replicated(4, "a", [0.6], bpb=2.0), replicated(5, "b", [0.6], bpb=2.0)
    d = compare_records(a, b).differences[0]
    assert d.seed_stderr == 0 and "seed spread unknown" in d.note and d.verdict == "no verdict"
    c = replicated(6, "c", [0.55, 0.65, 0.6], bpb=2.0)
    d = compare_records(a, c).differences[0]
    assert d.seed_stderr > 0 and "taken from the other side" in d.note


def _write(tmp_path: Path, record: Record, name: str) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(record.to_json())
    return str(path)


def test_compare_cli_prints_difference_interval_and_verdict(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path, replicated(1, "good", [0.62, 0.60, 0.61], bpb=1.8), "a")
    b = _write(tmp_path, replicated(2, "bad", [0.40, 0.41, 0.39], bpb=2.2), "b")
    assert main(["compare", a, b]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Sandbox_v1: A - B = +0.2" in out and "95% interval [" in out and ": A better" in out
    assert main(["compare", a, b, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["differences"][0]["verdict"] == "A better" and data["track"]["name"] == "debug"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("track", "only entries of one track version are comparable"),
        ("version", "different aggregate versions (Sandbox_v1: sandbox@1/v1 vs sandbox@2/v1)"),
        ("no-replicates", "has no replicates (schema"),
    ],
)
def test_compare_bad_input_is_one_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture, change: str, message: str
) -> None:
    a = replicated(1, "a", [0.6, 0.61], bpb=2.0)
    if change == "track":
        b = replicated(2, "b", [0.6, 0.61], bpb=2.0, track="nano")
    elif change == "version":
        data = replicated(2, "b", [0.6, 0.61], bpb=2.0).to_data()
        data["evaluation"]["aggregates"]["Sandbox_v1"]["version"] = "sandbox@2/v1"
        b = Record.from_data(data, "<b>")
    else:
        b = synthetic_record("debug", 2)
    with pytest.raises(NotComparable):
        compare_records(a, b)
    code = main(["compare", _write(tmp_path, a, "a"), _write(tmp_path, b, "b")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and message in err and "Traceback" not in err


def test_compare_across_budgets_takes_one_tracks_multipliers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    small = replicated(1, "1x", [0.40, 0.41, 0.39], bpb=2.2)
    data = replicated(2, "2x", [0.62, 0.60, 0.61], bpb=1.8, track="debug-2x").to_data()
    data["track"].update(base="debug", scale=2.0)
    large = _write(tmp_path, Record.from_data(data, "<2x>"), "b")
    assert main(["compare", large, _write(tmp_path, small, "a")]) == 1  # rivals share a budget
    assert "--across-budgets compares one track's compute multipliers" in " ".join(capsys.readouterr().err.split())
    assert main(["compare", large, str(tmp_path / "a.json"), "--across-budgets", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["differences"][0]["verdict"] == "A better" and (out["a"]["track"], out["b"]["track"]) == (
        "debug-2x",
        "debug",
    )
    assert main(["compare", large, str(tmp_path / "a.json"), "--across-budgets"]) == 0
    assert "A on track debug-2x, B on debug" in " ".join(capsys.readouterr().out.split())


def test_compare_unknown_entry_and_unfinished_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", "debug-000000000000", "debug-111111111111", "--results", str(tmp_path)]) == 2
    assert "no record 'debug-000000000000'" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["compare", str(tmp_path / "run"), "debug-111111111111", "--results", str(tmp_path)]) == 2
    assert "without record/record.json" in capsys.readouterr().err


#: Monte-Carlo draws per replicate count in the false-positive simulation, and the tolerance on the 5% level:
#: 3 binomial standard errors of a rate of 5% over that many draws (sqrt(0.05 * 0.95 / 4000) = 0.34%).
FP_DRAWS = 4000
FP_TOLERANCE = 3 * np.sqrt(0.05 * 0.95 / FP_DRAWS)


def test_one_replicate_each_gives_no_verdict_and_says_what_would_decide() -> None:
    d = difference("x", "v1", True, [0.61], [0.40], None)  # a large gap, but no seed noise measured on either side
    assert d.verdict == "no verdict" and "--replicates" in d.note and "seed spread unknown" in d.note
    d = difference("x", "v1", True, [0.61], [0.40], np.random.default_rng(0).normal(0, 0.01, 1000))
    assert d.verdict == "no verdict" and d.low < d.diff < d.high  # examples-only interval shown, never decided
    d = difference("x", "v1", True, [0.5, 0.5], [0.4, 0.4], None)  # zero-width interval: no noise measured at all
    assert d.high == d.low and d.verdict == "no verdict" and "zero width" in d.note


def test_borrowed_seed_variance_counts_its_degrees_of_freedom_once() -> None:
    """1 vs k: B's variance s^2 stands for both sides, s^2 (1 + 1/k), one estimate with k - 1 df: an exact t."""
    b = [0.30, 0.34, 0.32]
    d = difference("x", "v1", True, [0.40], b, None)
    half = (d.high - d.low) / 2
    assert half == pytest.approx(4.303 * 0.02 * np.sqrt(1 + 1 / 3), rel=1e-3)  # t with 2 df, not 4
    assert "2 degrees of freedom" in d.note


@pytest.mark.parametrize(
    "sides", [(1, k) for k in range(2, 6)] + [(k, 1) for k in (2, 5)] + [(k, k) for k in range(2, 6)]
)
def test_false_positive_rate_at_equal_means_is_at_most_five_percent(sides: tuple[int, int]) -> None:
    """Both sides drawn from one distribution (seed noise only): compare's verdicts are wrong at most 5% of the time
    (within FP_TOLERANCE) for every replicate count it decides; before issue 24, 1 vs 1 said 'better' every time
    and 1 vs k counted the borrowed variance's degrees of freedom twice."""
    ka, kb = sides
    rng = np.random.default_rng([24, ka, kb])
    wrong = 0
    for _ in range(FP_DRAWS):
        v = rng.normal(0.5, 0.02, ka + kb)
        verdict = difference("x", "v1", True, v[:ka], v[ka:], None).verdict
        assert verdict != "no verdict"
        wrong += verdict != "not distinguishable at 95%"
    assert wrong / FP_DRAWS <= 0.05 + FP_TOLERANCE
