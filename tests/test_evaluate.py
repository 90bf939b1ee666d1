"""Evaluation: the lm-eval adapter against direct forward passes, DCLM's aggregate arithmetic, missing data,
suites as data, and the sandbox suite end to end on a debug checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from evaluate_fixtures import write_checkpoint, write_eval_folder

from cli_helpers import command_options
from harness.cli import main
from harness.evaluate.aggregate import centered, compute_aggregates
from harness.evaluate.suites import AggregateSpec, Suite, SuiteTask, get_suite

DCLM_REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dclm-eval"


@pytest.fixture(scope="module")
def lm():
    from harness.evaluate.lm import HarnessLM
    from harness.model import build_model
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    track = get_track("debug")
    torch.manual_seed(0)
    model = build_model(track).eval()
    spec = track.tokenizer
    return HarnessLM.from_model(model, load_tokenizer(spec), eot_id=spec.eot_id, pad_id=spec.pad_id,
                                max_length=track.model.context, batch_size=3)  # fmt: skip


def _direct(lm, ctx: list[int], cont: list[int]) -> tuple[float, bool]:
    with torch.no_grad():
        logp = F.log_softmax(lm.model(torch.tensor([ctx + cont]))[0], dim=-1)
    rows = logp[len(ctx) - 1 : len(ctx) + len(cont) - 1]
    target = torch.tensor(cont)
    return rows.gather(1, target[:, None]).sum().item(), bool((rows.argmax(-1) == target).all())


def test_loglikelihood_equals_forward_pass_in_any_batch(lm):
    texts = [("The river runs", " north"), ("A king", " sings to the queen"), ("x", " y z"), ("long " * 20, " end")]
    reqs = [(None, lm.tok_encode(c), lm.tok_encode(t)) for c, t in texts]
    got = lm._loglikelihood_tokens(reqs)
    for (_, ctx, cont), (ll, greedy) in zip(reqs, got, strict=True):
        want_ll, want_greedy = _direct(lm, ctx, cont)
        assert ll == pytest.approx(want_ll, abs=1e-4)
        assert greedy == want_greedy
    lm.batch_size = 1
    try:
        assert [r[0] for r in lm._loglikelihood_tokens(reqs)] == pytest.approx([r[0] for r in got], abs=1e-4)
    finally:
        lm.batch_size = 3


def test_choices_of_a_shared_context_score_as_whole_sequences(lm, monkeypatch):
    """Continuations that share a context are scored from one pass over it (harness.evaluate.shared_context): the
    same log-likelihoods as one sequence each, to float rounding (measured: 2.2e-6 relative on the nano demo's
    checkpoint over the sandbox suite's 1,600 shared-context requests), the same greedy flags; contexts of
    different lengths in one batch, single-token choices, and a context too long to keep whole (scored the usual
    way, since truncation differs per choice)."""
    import harness.evaluate.shared_context as shared

    monkeypatch.setattr(shared, "CONTEXTS_PER_BATCH", 2)  # several batches, mixed lengths in each
    contexts = ["The river runs", "A king of the old city sings", "x", "long " * 40, "The river runs"]
    choices = [" north", " to the queen at night", " y z", " end", " ."]
    items = [(lm.tok_encode(c), lm.tok_encode(t)) for c in contexts for t in choices]
    items.append((lm.tok_encode("unique context"), lm.tok_encode(" alone")))
    items.append((lm.tok_encode("word " * 200), lm.tok_encode(" a b")))  # beyond the context: truncated
    items.append((lm.tok_encode("word " * 200), lm.tok_encode(" c")))
    window = lm.max_length + 1
    groups = shared.shared_groups(items, window)
    assert len(groups) == 4 and sum(map(len, groups.values())) == 4 * 5 + 5  # the repeated context is one group
    shared_scores, each = lm._score(items), lm._score(items, share=False)
    for (ll, greedy), (want_ll, want_greedy) in zip(shared_scores, each, strict=True):
        assert ll == pytest.approx(want_ll, rel=1e-5, abs=1e-5)
        assert greedy == want_greedy
    for (ctx, cont), (ll, _) in zip(items[:10], shared_scores, strict=False):
        assert ll == pytest.approx(_direct(lm, ctx, cont)[0], abs=1e-4)


def test_greedy_flag(lm):
    ctx = lm.tok_encode("The old city")
    with torch.no_grad():
        seq = list(ctx)
        for _ in range(3):
            seq.append(int(lm.model(torch.tensor([seq]))[0, -1].argmax()))
    greedy = seq[len(ctx) :]
    other = [*greedy[:-1], (greedy[-1] + 1) % 2048]
    (_, is_greedy), (_, not_greedy) = lm._loglikelihood_tokens([(None, ctx, greedy), (None, ctx, other)])
    assert is_greedy and not not_greedy


def test_rolling_loglikelihood_matches(lm):
    from lm_eval.api.instance import Instance

    text = "the gold ship sails south to the silver city"
    ids = lm.tok_encode(text)
    want, _ = _direct(lm, [lm.eot_token_id], ids)
    req = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
    assert lm.loglikelihood_rolling([req])[0] == pytest.approx(want, abs=1e-4)
    long = " ".join([text] * 40)  # several windows of the 128-token context
    ids = lm.tok_encode(long)
    assert len(ids) > 2 * lm.max_length
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    windows = [make_disjoint_window(w) for w in get_rolling_token_windows(ids, lm.eot_token_id, lm.max_length, 1)]
    want = sum(_direct(lm, ctx, cont)[0] for ctx, cont in windows)
    assert sum(len(c) for _, c in windows) == len(ids)
    got = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (long,), 0)])[0]
    assert got == pytest.approx(want, abs=1e-3)


def _suite(tasks: list[SuiteTask], aggregates: list[AggregateSpec]) -> Suite:
    names = tuple(t.name for t in tasks)
    return Suite("t", 3, "", "X_v2", tuple(tasks), tuple(aggregates), {"t": names})


def _task(name: str, category: str, v1: float, v2: float) -> SuiteTask:
    return SuiteTask(name=name, category=category, kind="multiple_choice", shots=0, baselines={"v1": v1, "v2": v2},
                     metric="acc_per_token", yaml="x.yaml")  # fmt: skip


def test_centered_accuracy_by_hand_v1_and_v2():
    assert centered(0.5, 0.2) == pytest.approx(0.375)
    assert centered(0.1, 0.25) == pytest.approx(-0.2)  # below chance is not clipped
    suite = _suite(
        [_task("csqa", "cs", 0.2, 0.403), _task("arc", "wk", 0.25, 0.25), _task("lang", "wk", 0.091, 0.25)],
        [AggregateSpec(name="X", kind="centered_mean", versions=("v1", "v2"), by_category=True)],
    )
    aggs = compute_aggregates(suite, {"csqa": 0.5, "arc": 0.625, "lang": 0.25})
    v1 = (0.375 + 0.5 + (0.25 - 0.091) / 0.909) / 3
    v2 = ((0.5 - 0.403) / 0.597 + 0.5 + 0.0) / 3
    assert aggs["X_v1"].value == pytest.approx(v1) and aggs["X_v1"].stamp == "t@3/v1"
    assert aggs["X_v2"].value == pytest.approx(v2) and aggs["X_v2"].stamp == "t@3/v2"
    assert aggs["X_v2/wk"].value == pytest.approx(0.25)


def test_missing_task_makes_aggregate_absent_and_names_it():
    suite = _suite(
        [_task("a", "one", 0.25, 0.25), _task("b", "two", 0.5, 0.5)],
        [AggregateSpec(name="X", kind="centered_mean", versions=("v2",), by_category=True)],
    )
    aggs = compute_aggregates(suite, {"a": 0.5, "b": None})
    assert aggs["X_v2"].value is None and aggs["X_v2"].missing == ("b",) and "b" in aggs["X_v2"].reason
    assert aggs["X_v2/one"].value == pytest.approx(1 / 3)  # a category with all its tasks is still reported
    assert aggs["X_v2/two"].value is None


def test_shipped_suites():
    core, ext = get_suite("core"), get_suite("extended")
    assert len(core.tasks) == 22 and len(ext.tasks) == 53 and core.primary == "Core_v2"
    assert core.task("commonsense_qa").baselines == {"v1": 0.2, "v2": 0.403}
    assert core.task("bigbench_language_identification").baselines == {"v1": 0.091, "v2": 0.25}
    assert ext.aggregate_tasks(next(a for a in ext.aggregates if a.name == "Core")) == tuple(t.name for t in core.tasks)
    assert get_suite("mmlu").task("mmlu").icl == "mmlu_fewshot" and get_suite("mmlu").task("mmlu").shots == 5
    assert all(t.icl == t.name for t in ext.tasks)  # every DCLM task is rendered as DCLM renders it
    assert [t.name for t in get_suite("sandbox").tasks] == ["fact_cloze", "next_sentence", "last_word", "heldout"]


def test_missing_or_altered_data_names_task_and_fix(tmp_path):
    from harness.evaluate.data import MissingData
    from harness.evaluate.icl.files import load_rows

    with pytest.raises(MissingData, match=r"task jeopardy: data file local_data/world_knowledge/jeopardy_all.jsonl "
                       r"is not in .*harness eval-data fetch"):  # fmt: skip
        load_rows("jeopardy", tmp_path, "local_data/world_knowledge/jeopardy_all.jsonl")
    altered = tmp_path / "local_data" / "commonsense_reasoning" / "copa.jsonl"
    altered.parent.mkdir(parents=True)
    altered.write_text('{"query": "q", "choices": ["a", "b"], "gold": 0}\n')
    with pytest.raises(MissingData, match=r"task copa: .*copa.jsonl is not DCLM's file \(sha256 "):
        load_rows("copa", tmp_path, "local_data/commonsense_reasoning/copa.jsonl")


def test_evaluate_command_options():
    assert command_options("evaluate") == {
        "checkpoint", "--suite", "--track", "--limit", "--out", "--mirror", "--eval-data", "--device",
        "--batch-size", "--tokenizer-file",
    }  # fmt: skip


def test_sandbox_suite_end_to_end_on_debug_checkpoint(tmp_path):
    run = write_checkpoint(tmp_path / "run", "debug")
    evald = write_eval_folder(tmp_path / "eval", n=10)
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--mirror", str(evald), "--out", str(out)]) == 0  # suite from the track
    data = json.loads(out.read_text())
    assert data["suite"] == "sandbox" and data["track"] == "debug" and not data["missing"]
    assert set(data["tasks"]) == {"fact_cloze", "next_sentence", "last_word", "heldout"}
    for task in data["tasks"].values():
        assert task["metrics"] and task["data"] and task["n_samples"] > 0
    assert data["tasks"]["fact_cloze"]["chance"] == pytest.approx(0.25)
    accs = [data["tasks"][t]["accuracy"] for t in ("fact_cloze", "next_sentence", "last_word")]
    want = ((accs[0] - 0.25) / 0.75 + (accs[1] - 0.25) / 0.75 + accs[2]) / 3
    assert data["aggregates"]["Sandbox_v1"]["value"] == pytest.approx(want)
    assert data["primary_value"] == data["aggregates"]["Sandbox_v1"]["value"]
    assert data["aggregates"]["heldout_bpb"]["value"] == pytest.approx(data["tasks"]["heldout"]["accuracy"])
    assert data["tasks"]["heldout"]["accuracy"] > 0
    assert data["versions"]["lm_eval"] and data["seeds"]["fewshot"] == 1234
    for entry in (*data["tasks"].values(), *data["aggregates"].values()):  # bootstrap over examples, fixed seed
        assert entry["interval"]["seed"] == 1234 and entry["interval"]["low"] <= entry["interval"]["high"]


def test_open_lm_checkpoint_without_track_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    from harness.evaluate.checkpoint import load_model, resolve_checkpoint
    from harness.tracks import get_track

    run = write_checkpoint(tmp_path / "run", "debug")
    (run / "params.txt").write_text("model: model.json\nqk_norm: True\n")  # open_lm style: no harness track
    info = resolve_checkpoint(run)
    assert info.shape == get_track("debug").model and info.weights.name == "epoch_1.pt"
    state = torch.load(info.weights, weights_only=True)["state_dict"]
    save_file({f"module.{k}": v for k, v in state.items() if "inv_freq" not in k}, run / "model.safetensors")
    info = resolve_checkpoint(run / "model.safetensors", track=get_track("debug"))
    model = load_model(info)
    assert torch.equal(model.output.weight, state["output.weight"])


@pytest.mark.slow
@pytest.mark.skipif(not (DCLM_REF / "local_data").is_dir(), reason=f"DCLM reference folder {DCLM_REF} is absent")
def test_core_suite_on_dclm_local_data_tree(tmp_path):
    """Every CORE task whose file is in the tree runs (on DCLM's requests); Core is absent and names the others."""
    run = write_checkpoint(tmp_path / "run", "debug")
    out = tmp_path / "core.json"
    args = ["evaluate", str(run), "--suite", "core", "--limit", "2", "--eval-data", str(DCLM_REF), "--out", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    absent = {"hellaswag", "hellaswag_zeroshot", "squad", "coqa"}  # large files the reference copy lacks
    assert set(data["missing"]) == absent and len(data["tasks"]) == 18
    assert "harness eval-data fetch" in data["missing"]["squad"]
    assert data["aggregates"]["Core_v2"]["value"] is None and set(data["aggregates"]["Core_v2"]["missing"]) == absent
    jeopardy = data["tasks"]["jeopardy"]
    assert len(jeopardy["subtasks"]) == 5 and jeopardy["n_samples"] == 10  # 2 per category, mean over categories
    assert jeopardy["accuracy"] == pytest.approx(sum(jeopardy["subtasks"].values()) / 5)
    tasks = data["tasks"]  # continuous metrics on multiple choice, schema and language modelling, none on generation
    assert {"norm_correct_prob", "margin_per_token", "bits_per_byte"} <= set(tasks["piqa"]["continuous"])
    assert {"norm_correct_prob", "margin_per_char"} <= set(tasks["winograd"]["continuous"])
    assert (
        "bits_per_byte" in tasks["lambada_openai"]["continuous"]
        and "margin" not in tasks["lambada_openai"]["continuous"]
    )
    assert "correct_prob" in jeopardy["continuous"] and len(jeopardy["choices"]) == 5  # language modelling
    assert [len(lp) for lp in tasks["piqa"]["choices"]["piqa"]["logprobs"]] == [2, 2]
    piqa = data["tasks"]["piqa"]["data"]["piqa"]
    assert piqa["source"] == "dclm-local_data" and piqa["splits"]["test"] == (
        "d2870e73aec5154df3faf259b7700876e11608eebdf69e9d6667435673dbe4e0"
    )
