"""`harness reliability` and `harness transfer`: statistics on synthetic scores with known signal and noise,
decision accuracy and Kendall's tau on hand-worked rankings (ties included), and the commands on record files."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.reliability import Z_80, Z_95, mde, pooled_seed_std, reliability, spearman
from harness.analysis.scoretable import AGGREGATE, EntryScores, NotEnoughData, TrackScores, UnitInfo
from harness.analysis.transfer import decision_accuracy, kendall_tau_b, transfer
from harness.cli import main

UNIT = ("fact_cloze", "acc")


def _scores(track: str, values: list[list[float]], trajectories: list[list[list[tuple[int, float]]]] | None = None,
            *, chance: float | None = 0.25, subsets: list[str] | None = None, suite: str = "1") -> TrackScores:  # fmt: skip
    entries = []
    for i, vals in enumerate(values):
        entries.append(EntryScores(
            entry_id=f"{track}-{i:012x}", name=f"recipe {i}", subset=(subsets or [f"s{n}" for n in range(99)])[i],
            track=track, suite=("sandbox", suite), seeds=tuple(range(124, 124 + len(vals))), values={UNIT: tuple(vals)},
            trajectories={UNIT: tuple(tuple(run) for run in trajectories[i])} if trajectories else {},
        ))  # fmt: skip
    return TrackScores(track, tuple(entries), {UNIT: UnitInfo(True, chance, True)})


# ------------------------------------------------------------------------------------------- hand-worked values


def test_pooled_seed_std_and_spearman_by_hand() -> None:
    # groups [1, 2, 3] (ss 2, df 2), [5, 5] (ss 0, df 1), [7] (no df): sqrt(2 / 3)
    assert pooled_seed_std([[1, 2, 3], [5, 5], [7]]) == pytest.approx(math.sqrt(2 / 3))
    assert pooled_seed_std([[1], [2]]) is None
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    # ranks of y with a tie: [1, 2.5, 2.5, 4]; Pearson of [1, 2, 3, 4] with it = 4.5 / sqrt(5 x 4.5)
    assert spearman([1, 2, 3, 4], [1, 5, 5, 9]) == pytest.approx(4.5 / math.sqrt(5 * 4.5))
    assert spearman([1, 2, 3], [4, 4, 4]) is None
    assert mde(0.01, 3) == pytest.approx((Z_95 + Z_80) * 0.01 * math.sqrt(2 / 3)) == pytest.approx(0.022875, abs=1e-6)


def test_decision_accuracy_by_hand_with_ties() -> None:
    # all six pairs ordered by the target; the small track ties (1, 2): counts one half -> 5.5 / 6
    assert decision_accuracy([3, 2, 2, 1], [4, 3, 2, 1]) == (pytest.approx(5.5 / 6), 6, 0, 1)
    # the target ties (1, 2): left out, 5 pairs left, all agree
    assert decision_accuracy([3, 2, 2, 1], [4, 3, 3, 1]) == (1.0, 5, 1, 0)
    # both tie the same pair, the small track also ties (0, 1), which the target orders: 4.5 / 5
    assert decision_accuracy([3, 3, 2, 1], [4, 3, 3, 1]) == (pytest.approx(4.5 / 5), 5, 1, 1)
    assert decision_accuracy([1, 2, 3], [3, 2, 1]) == (0.0, 3, 0, 0)  # reversed
    assert decision_accuracy([1, 2], [5, 5]) == (None, 0, 1, 0)  # nothing to predict


def test_kendall_tau_b_by_hand() -> None:
    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x ties one pair: 5 concordant, 0 discordant, tau-b = 5 / sqrt(5 x 6)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    assert kendall_tau_b([1, 1], [1, 2]) is None
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, 9).astype(float), rng.integers(0, 4, 9).astype(float)
    assert kendall_tau_b(x, y) == pytest.approx(kendalltau(x, y).statistic)  # tau-b, as scipy computes it


# ------------------------------------------------------------------------------- synthetic signal and noise


def test_reliability_recovers_known_signal_and_noise() -> None:
    """8 recipes 0.05 apart, seed noise 0.01, 20 seeds each: seed std ~0.01, FineWeb SNR ~47.5, AI2 SNR ~35."""
    rng = random.Random(3)
    true = [0.3 + 0.05 * i for i in range(8)]
    r = reliability(_scores("nano", [[m + rng.gauss(0, 0.01) for _ in range(20)] for m in true]), k=(1, 3))
    (u,) = r.units
    assert u.seed_std == pytest.approx(0.01, rel=0.2)
    assert u.fineweb_snr == pytest.approx(0.475 / 0.01, rel=0.2)
    assert u.ai2_snr == pytest.approx(0.35 / 0.01, rel=0.25) and u.noise_from == "seeds"
    assert u.chance_margin == pytest.approx((0.475 - 0.25) / 0.01, rel=0.2)
    assert u.mde["3"] == pytest.approx(mde(u.seed_std, 3))
    assert u.monotonicity is None and u.fineweb_keep is None  # no checkpoint scores: cannot be decided


def test_monotonicity_and_checkpoint_noise_from_trajectories() -> None:
    """Improving runs give monotonicity ~1 and flat ones ~0; checkpoint noise is the relative std of the last 5."""
    rng = random.Random(5)
    steps = range(10, 110, 10)

    def runs(slope: float, base: float) -> list[list[tuple[int, float]]]:
        return [[(s, base + slope * s + rng.gauss(0, 0.002)) for s in steps] for _ in range(3)]

    rising = [runs(0.003, 0.3 + 0.05 * i) for i in range(4)]
    finals = [[run[-1][1] for run in entry] for entry in rising]
    r = reliability(_scores("nano", finals, rising))
    assert r.units[0].monotonicity > 0.95 and r.units[0].noise_from == "checkpoints"
    flat = [runs(0.0, 0.5) for _ in range(40)]
    u = reliability(_scores("nano", [[run[-1][1] for run in e] for e in flat], flat)).units[0]
    assert abs(u.monotonicity) < 0.15
    assert u.ai2_noise == pytest.approx(0.002 / 0.5, rel=0.25)  # std (ddof 0) of 5 points ~ 0.9 sigma


def test_reliability_needs_seeds_and_recipes() -> None:
    with pytest.raises(NotEnoughData, match="each of the 3 entries has one seed.*--replicates 3"):
        reliability(_scores("nano", [[0.3], [0.4], [0.5]]))
    with pytest.raises(NotEnoughData, match="only one entry"):
        reliability(_scores("nano", [[0.3, 0.31]]))


def test_transfer_of_a_perfect_and_a_noisy_predictor() -> None:
    small = _scores("nano", [[0.1, 0.12], [0.2, 0.22], [0.3, 0.31], [0.4, 0.42]])
    target = _scores("micro", [[1.0, 1.1], [2.0, 2.1], [3.0, 3.2], [4.0, 4.1]])
    (a,) = transfer(small, target, resamples=200).agreements
    assert (a.decision_accuracy, a.kendall_tau, a.pairs) == (1.0, pytest.approx(1.0), 6)
    assert a.decision_low == a.decision_high == 1.0  # seeds never swap well-separated entries
    noisy = _scores("nano", [[0.1, 0.3], [0.2, 0.1], [0.3, 0.2], [0.25, 0.4]])
    (b,) = transfer(noisy, target, resamples=500).agreements
    assert b.decision_low < b.decision_accuracy <= b.decision_high and b.decision_low < 0.75


def test_checkpoint_averaging_ranks_by_the_mean_of_each_runs_last_checkpoints() -> None:
    """Signal and Noise's smoothing, by hand: entry 0 ends on a spike above entry 1, but its last two checkpoints
    average below entry 1's; the target keeps its final scores."""
    traj = [[[(1, 0.20), (2, 0.30), (3, 0.50)], [(1, 0.20), (2, 0.30), (3, 0.50)]],
            [[(1, 0.30), (2, 0.45), (3, 0.45)], [(1, 0.30), (2, 0.45), (3, 0.45)]]]  # fmt: skip
    small = _scores("nano", [[0.50, 0.50], [0.45, 0.45]], traj)
    target = _scores("micro", [[1.0, 1.0], [2.0, 2.0]])
    final, averaged = transfer(small, target, resamples=10), transfer(small, target, resamples=10, average_last=2)
    assert (final.agreements[0].decision_accuracy, averaged.agreements[0].decision_accuracy) == (0.0, 1.0)
    assert averaged.average_last == 2 and averaged.to_dict()["average_last"] == 2
    assert transfer(small, target, resamples=10, average_last=3).agreements[0].decision_accuracy == 1.0  # 1/3 vs .4
    with pytest.raises(NotEnoughData, match="3 checkpoint scores per run, fewer than the 4 to average"):
        transfer(small, target, average_last=4)
    with pytest.raises(NotEnoughData, match="no checkpoint scores.*--checkpoint-scores"):
        transfer(_scores("nano", [[0.5, 0.5], [0.4, 0.4]]), target, average_last=2)


def test_transfer_bad_input_names_what_is_missing() -> None:
    small = _scores("nano", [[0.1, 0.2], [0.3, 0.4], [0.5, 0.5]], subsets=["a", "b", "c"])
    target = _scores("micro", [[1.0], [2.0], [3.0]], subsets=["a", "b", "z"])
    with pytest.raises(NotEnoughData, match=r"same subset on the other track for 2 entries.*--shared-only"):
        transfer(small, target)
    assert transfer(small, target, shared_only=True, resamples=10).agreements[0].pairs == 1
    lone = _scores("micro", [[1.0], [2.0]], subsets=["a", "y"])
    with pytest.raises(NotEnoughData, match="share 1 subset"):
        transfer(small, lone, shared_only=True)
    other = _scores("micro", [[1.0], [2.0], [3.0]], subsets=["a", "b", "c"], suite="2")
    with pytest.raises(NotEnoughData, match="suite sandbox v1 and micro with sandbox v2"):
        transfer(small, other)


# ------------------------------------------------------------------------------------ the commands on records


def _record(track: str, subset: int, quality: float, seeds: int, rng: random.Random) -> dict:
    """A synthetic sandbox record on `track` for subset number `subset`, with `seeds` replicates of known quality."""
    import hashlib

    from harness.leaderboard.sample import synthetic_record
    from harness.records import entry_id

    data = synthetic_record(track, subset).to_data()
    data["subset"]["sha256"] = hashlib.sha256(f"subset {subset}".encode()).hexdigest()
    data["entry_id"] = entry_id(track, data["subset"]["sha256"])
    runs = []
    for n in range(seeds):
        acc = quality + rng.gauss(0, 0.01)
        runs.append({
            "seed": 124 + n, "tokens_seen": 1000, "final_loss": 3.0, "wall_time_s": 1.0,
            "tasks": {"fact_cloze": acc, "next_sentence": 0.5, "last_word": 0.1, "heldout": 2.0 - acc},
            "aggregates": {"Sandbox_v1": (acc - 0.25) / 0.75, "heldout_bpb": 2.0 - acc},
            "continuous": {"fact_cloze": {"norm_correct_prob": acc / 2, "bits_per_byte": 3.0 - acc}},
        })  # fmt: skip
    data["replicates"] = {
        "seeds": [r["seed"] for r in runs], "runs": runs, "note": "synthetic",
        "aggregates": {"Sandbox_v1": {"n": seeds, "mean": 0.0, "std": None, "low": 0.0, "high": 0.0}},
    }  # fmt: skip
    data["evaluation"]["tasks"]["fact_cloze"]["continuous"] = runs[0]["continuous"]["fact_cloze"]
    return data


def _store(tmp_path: Path, tracks: dict[str, int], subsets: int = 4) -> Path:
    rng = random.Random(11)
    for track, seeds in tracks.items():
        (tmp_path / track).mkdir(parents=True)
        for s in range(subsets):
            data = _record(track, s, 0.3 + 0.1 * s, seeds, rng)
            (tmp_path / track / f"{data['entry_id']}.json").write_text(json.dumps(data))
    return tmp_path


def test_reliability_and_transfer_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path / "results", {"nano": 3, "micro": 2})
    assert main(["reliability", "--track", "nano", "--results", str(store), "--json", "--k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    units = {(u["task"], u["metric"]): u for u in out["units"]}
    assert out["seeds_per_entry"] == [3, 3, 3, 3] and set(units[("fact_cloze", "acc")]["mde"]) == {"2"}
    assert units[("fact_cloze", "acc")]["seed_std"] == pytest.approx(0.01, rel=0.6)
    assert units[("Sandbox_v1", AGGREGATE)]["chance"] == 0.0 and ("fact_cloze", "norm_correct_prob") in units
    assert main(["transfer", "nano", "micro", "--results", str(store), "--json", "--resamples", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {(a["task"], a["metric"]): a for a in out["agreements"]}
    assert rows[("Sandbox_v1", AGGREGATE)]["decision_accuracy"] == 1.0 and rows[("Sandbox_v1", AGGREGATE)]["pairs"] == 6
    assert rows[("fact_cloze", "bits_per_byte")]["target_metric"] == "acc"  # lower bpb predicts higher accuracy
    assert rows[("fact_cloze", "bits_per_byte")]["kendall_tau"] == pytest.approx(1.0)
    # per metric, the mean over tasks: acc is measured on fact_cloze (1.0) and last_word (no pair: left out)
    assert out["by_metric"]["acc"] == {"decision_accuracy": 1.0, "tasks": 1}
    assert main(["reliability", "--track", "nano", "--results", str(store)]) == 0
    assert "Reliability on nano" in capsys.readouterr().out
    assert main(["transfer", "nano", "micro", "--results", str(store), "--scored-only", "--resamples", "20"]) == 0
    assert "decision acc" in capsys.readouterr().out


def test_command_options_pinned() -> None:
    from cli_helpers import command_options

    assert command_options("reliability") == {
        "records", "--track", "--results", "--k", "--scored-only", "--json", "--derive-signal"
    }  # fmt: skip
    assert command_options("transfer") == {
        "small", "target", "--results", "--shared-only", "--resamples", "--average-last", "--scored-only", "--json"
    }  # fmt: skip


def test_commands_refuse_what_cannot_be_answered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path / "results", {"nano": 1, "micro": 1})
    assert main(["reliability", "--track", "nano", "--results", str(store)]) == 1
    assert "each of the 4 entries has one seed" in " ".join(capsys.readouterr().err.split())
    assert main(["reliability", "--track", "micro-2x", "--results", str(store)]) == 2
    assert "no records of track micro-2x" in " ".join(capsys.readouterr().err.split())
    (next((store / "micro").glob("*.json"))).unlink()
    assert main(["transfer", "nano", "micro", "--results", str(store)]) == 1
    assert "same subset on the other track for 1 entries" in " ".join(capsys.readouterr().err.split())
    assert main(["transfer", "nano", "micro", "--results", str(store), "--average-last", "0"]) == 2
    assert "--average-last must be at least 1, got 0" in " ".join(capsys.readouterr().err.split())


def test_records_carry_checkpoint_trajectories_to_reliability(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records whose replicate runs hold checkpoint scores give monotonicity and checkpoint noise."""
    from harness.records import Record

    rng = random.Random(2)
    store = tmp_path / "results" / "nano"
    store.mkdir(parents=True)
    for s in range(3):
        data = _record("nano", s, 0.3 + 0.1 * s, 2, rng)
        for run in data["replicates"]["runs"]:
            final = run["tasks"]["fact_cloze"]
            run["trajectory"] = {
                "steps": [40, 80, 120, 160, 200],
                "tasks": {"fact_cloze": {"acc": [final - 0.04, final - 0.03, final - 0.02, final - 0.01, final]}},
                "aggregates": {"Sandbox_v1": [0.0, 0.01, 0.0, 0.02, 0.01]},
            }
        Record.from_data(data, "<test>")
        (store / f"{data['entry_id']}.json").write_text(json.dumps(data))
    assert main(["reliability", "--track", "nano", "--results", str(tmp_path / "results"), "--json"]) == 0
    units = {(u["task"], u["metric"]): u for u in json.loads(capsys.readouterr().out)["units"]}
    assert units[("fact_cloze", "acc")]["monotonicity"] == pytest.approx(1.0)
    assert units[("fact_cloze", "acc")]["noise_from"] == "checkpoints"
    # ranks of [0, .01, 0, .02, .01]: [1.5, 3.5, 1.5, 5, 3.5]; against steps 1..5: 5.5 / sqrt(10 x 9), every run
    assert units[("Sandbox_v1", AGGREGATE)]["monotonicity"] == pytest.approx(5.5 / math.sqrt(90))
    assert units[("fact_cloze", "norm_correct_prob")]["monotonicity"] is None  # not in the trajectories


@pytest.mark.parametrize(
    ("trajectory", "message"),
    [
        ({"steps": [1, 2], "tasks": {"t": {"acc": [0.1]}}}, "one per step"),
        ({"steps": list(range(65)), "tasks": {}}, "at most 64"),
        ({"steps": [1], "tasks": {"t": {"acc": ["x"]}}}, "numbers only"),
        ({"steps": [1], "extra": {}}, "steps, tasks and aggregates"),
    ],
)
def test_trajectories_are_checked_and_bounded(trajectory: dict, message: str) -> None:
    from harness.records import Record, RecordError

    data = _record("nano", 0, 0.5, 1, random.Random(0))
    data["replicates"]["runs"][0]["trajectory"] = trajectory
    with pytest.raises(RecordError, match=message):
        Record.from_data(data, "<bad>")
