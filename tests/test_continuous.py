"""Continuous metrics (harness.evaluate.continuous) against hand-computed values, and the evaluator recording them
beside unchanged accuracies and aggregates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from evaluate_fixtures import write_checkpoint, write_eval_folder

from harness.cli import main
from harness.evaluate.continuous import (
    Choices,
    best_per_token,
    block_of,
    example_metrics,
    examples_of,
    subtask_metrics,
    task_metrics,
)

LN = math.log
# Choice probabilities 1/2, 1/4, 1/8 with 1, 2, 3 tokens: every choice has 1/2 per token.
A = Choices(gold=0, logprobs=(LN(0.5), LN(0.25), LN(0.125)), tokens=(1, 2, 3), chars=(1, 1, 3), bytes=(4, 1, 5))
# Two choices, the gold one the less likely.
B = Choices(gold=1, logprobs=(LN(0.5), LN(0.25)), tokens=(1, 1), chars=(1, 1), bytes=(2, 2))
# One continuation (language modelling).
C = Choices(gold=0, logprobs=(LN(0.8),), tokens=(2,), chars=(4,), bytes=(4,))


def test_one_example_by_hand() -> None:
    got = example_metrics(A)
    want = {
        "correct_prob": 0.5, "norm_correct_prob": 0.5 / 0.875, "margin": 0.5 - 0.25, "total_prob": 0.875,
        # per token: 1/2, 1/2, 1/2
        "correct_prob_per_token": 0.5, "norm_correct_prob_per_token": 1 / 3, "margin_per_token": 0.0,
        "total_prob_per_token": 1.5,
        # per character: 1/2, 1/4, (1/8)^(1/3) = 1/2
        "correct_prob_per_char": 0.5, "norm_correct_prob_per_char": 0.5 / 1.25, "margin_per_char": 0.0,
        "total_prob_per_char": 1.25,
        "bits_per_byte": 1 / 4,  # -ln(1/2) / (4 bytes x ln 2)
    }  # fmt: skip
    assert got == pytest.approx(want, abs=1e-12) and set(got) == set(want)


def test_gold_not_first_and_a_negative_margin() -> None:
    got = example_metrics(B)
    assert got["correct_prob"] == pytest.approx(0.25)
    assert got["norm_correct_prob"] == pytest.approx(1 / 3)
    assert got["margin"] == pytest.approx(-0.25)
    assert got["bits_per_byte"] == pytest.approx(1.0)  # -ln(1/4) / (2 x ln 2)


def test_one_continuation_has_no_choice_metrics() -> None:
    got = example_metrics(C)
    assert set(got) == {"correct_prob", "correct_prob_per_token", "correct_prob_per_char", "bits_per_byte"}
    assert got["correct_prob_per_token"] == pytest.approx(math.sqrt(0.8))
    assert got["correct_prob_per_char"] == pytest.approx(0.8**0.25)
    assert got["bits_per_byte"] == pytest.approx(-LN(0.8) / 4 / LN(2))


def test_task_value_is_the_mean_over_examples_then_over_subtasks() -> None:
    sub = subtask_metrics([A, B])
    assert sub["correct_prob"] == pytest.approx((0.5 + 0.25) / 2)
    assert sub["norm_correct_prob"] == pytest.approx((0.5 / 0.875 + 1 / 3) / 2)
    assert sub["margin"] == pytest.approx(0.0)
    assert sub["bits_per_byte"] == pytest.approx((0.25 + 1.0) / 2)
    task = task_metrics({"mc": block_of([A, B]), "lm": block_of([C])})
    assert task["correct_prob"] == pytest.approx((0.375 + 0.8) / 2)
    assert "margin" not in task  # the language-modelling subtask has none: no mean over fewer subtasks
    assert examples_of(json.loads(json.dumps(block_of([A, B])))) == [A, B]  # the stored block round-trips


def test_dclm_accuracy_ties_go_to_the_first_choice() -> None:
    assert best_per_token(A) == 0  # all three tie at 1/2 per token
    assert best_per_token(B) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"gold": 2, "logprobs": (0.0, 0.0), "tokens": (1, 1), "chars": (1, 1), "bytes": (1, 1)},
        {"gold": 0, "logprobs": (0.0, 0.0), "tokens": (1,), "chars": (1, 1), "bytes": (1, 1)},
        {"gold": 0, "logprobs": (), "tokens": (), "chars": (), "bytes": ()},
    ],
)
def test_malformed_examples_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Choices(**bad)


# The fixture checkpoint's accuracies and aggregates as the evaluator gave them before it recorded choices
# (commit f74df4c): recording the continuous metrics must not move them.
BEFORE = {
    "aggregates": {"Sandbox_v1": -0.044444444444444446, "heldout_bpb": 4.759045215754921},
    "hits": {
        "fact_cloze": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        "next_sentence": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
        "last_word": [0] * 10,
    },
}


def test_debug_checkpoint_records_choices_and_keeps_its_aggregates(tmp_path: Path) -> None:
    from harness.records import Record
    from harness.submit.record import evaluation_for_record

    run = write_checkpoint(tmp_path / "run", "debug")
    out = tmp_path / "eval.json"
    assert (
        main(["evaluate", str(run), "--mirror", str(write_eval_folder(tmp_path / "eval", n=10)), "--out", str(out)])
        == 0
    )
    data = json.loads(out.read_text())
    assert data["aggregates"]["Sandbox_v1"]["value"] == BEFORE["aggregates"]["Sandbox_v1"]
    assert data["aggregates"]["heldout_bpb"]["value"] == pytest.approx(BEFORE["aggregates"]["heldout_bpb"], rel=1e-6)
    for name, hits in BEFORE["hits"].items():
        task = data["tasks"][name]
        assert task["examples"][name]["values"] == hits
        examples = examples_of(task["choices"][name])
        if name != "last_word":  # DCLM's per-token accuracy, recomputed from the recorded choices
            assert [float(best_per_token(e) == e.gold) for e in examples] == hits
        assert task["continuous"] == pytest.approx(subtask_metrics(examples))
    assert len(examples_of(data["tasks"]["fact_cloze"]["choices"]["fact_cloze"])[0].logprobs) == 4
    assert set(data["tasks"]["last_word"]["continuous"]) == {
        "correct_prob", "correct_prob_per_token", "correct_prob_per_char", "bits_per_byte"
    }  # fmt: skip
    assert not data["tasks"]["heldout"]["continuous"]  # perplexity: its metric is already bits per byte
    block = evaluation_for_record(data)
    assert block["tasks"]["next_sentence"]["continuous"] == data["tasks"]["next_sentence"]["continuous"]
    record = Record.from_data({**_record_shell(), "evaluation": block}, "<test>")
    assert record.evaluation.tasks["fact_cloze"].continuous["norm_correct_prob"] > 0


def _record_shell() -> dict:
    from harness.leaderboard.sample import synthetic_record

    return synthetic_record("debug", 1).to_data()


def test_records_bound_and_check_continuous_metrics() -> None:
    from harness.records import Record, RecordError
    from harness.records.evaluation import MAX_METRICS

    data = _record_shell()
    data["schema_version"] = 2  # made before continuous metrics: still read, with none
    assert all(not t.continuous for t in Record.from_data(data, "<old>").evaluation.tasks.values())
    task = next(iter(data["evaluation"]["tasks"]))
    for bad, message in (({"margin": "high"}, "must be a number"), ({f"m{i}": 0.0 for i in range(MAX_METRICS + 1)},
                                                                      "at most")):  # fmt: skip
        broken = json.loads(json.dumps(data))
        broken["evaluation"]["tasks"][task]["continuous"] = bad
        with pytest.raises(RecordError, match=message):
            Record.from_data(broken, "<bad>")


def test_generation_and_perplexity_tasks_have_no_choices() -> None:
    from types import SimpleNamespace

    from harness.evaluate.choices import choices_of

    sample = {"doc": {}, "arguments": [("question", {"until": ["\n"]})], "resps": [["answer"]]}
    for kind in ("generate_until", "loglikelihood_rolling"):
        assert choices_of(None, SimpleNamespace(OUTPUT_TYPE=kind), [sample]) is None
