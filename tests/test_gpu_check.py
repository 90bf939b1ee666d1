"""benchmarks/gpu_check.py on the CPU: its refusal without CUDA, FLOP counting, memory sizing, the table and JSON,
and the evaluation comparison (HarnessLM against lm-eval's `hf` model on the same weights)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.tracks import get_track

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "r.json")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert "no CUDA device" in done.stderr
    assert not (tmp_path / "r.json").exists()


def test_flops_per_token_is_6nd_without_input_embedding_plus_attention(gc) -> None:
    m = get_track("412m").model
    dense = 6 * (m.n_params - m.vocab_size * m.d_model)
    attention = 12 * m.n_layers * m.d_model * m.context
    assert gc.flops_per_token(m) == dense + attention
    assert gc.mfu(1e5, gc.flops_per_token(m), 989e12) == pytest.approx(1e5 * (dense + attention) / 989e12)
    assert gc.mfu(1e5, 1.0, None) is None
    assert "6ND" in gc.FLOPS_ACCOUNTING and "attention" in gc.FLOPS_ACCOUNTING


def test_loss_trend_and_batch_sizing(gc) -> None:
    assert gc.loss_trend([5.0] * 10 + [4.0] * 10) == (5.0, 4.0, True)
    assert gc.loss_trend([4.0] * 10 + [float("nan")] * 10)[2] is False
    with pytest.raises(ValueError, match="at least 20"):
        gc.loss_trend([1.0] * 19)
    m = get_track("412m").model
    gib = 2**30
    assert gc.largest_batch(m, 141 * gib) == 16 and gc.largest_batch(m, 40 * gib) == 8
    assert gc.largest_batch(m, 4 * gib) is None
    big = get_track("1b").model
    assert gc.largest_batch(big, 80 * gib) <= gc.largest_batch(m, 80 * gib)
    track = gc.check_track(get_track("412m"), steps=40, batch=8, fsdp=True)
    assert (track.steps, track.recipe.global_batch, track.recipe.grad_accum) == (40, 8, 1)
    assert track.recipe.warmup == 4 and track.recipe.sharding == "fsdp" and track.recipe.lr == 3e-3


def test_table_and_json_report(gc, tmp_path: Path) -> None:
    results = [
        gc.CheckResult("train 412m eager", passed=True, throughput=123456.7, unit="tokens/s", mfu=0.4123,
                       peak_memory_gib=51.25, loss_first=10.9, loss_last=4.2, seconds=30.0, note="200 steps"),
        gc.CheckResult("checkpoint (eager)", passed=False, note="max |Δlogit| 1e-3"),
        gc.CheckResult("train 1b fsdp", passed=True, skipped=True, note="needs 90 GiB"),
    ]  # fmt: skip
    lines = gc.render_table(results).splitlines()
    assert lines[0].split()[:3] == ["check", "result", "throughput"] and set(lines[1]) <= {"-", " "}
    assert "123,457 tokens/s" in lines[2] and "41.2%" in lines[2] and "51.2 GiB" in lines[2]
    assert "10.900 → 4.200" in lines[2]
    assert "FAILED" in lines[3] and "skipped" in lines[4]
    column = lines[0].index("result")  # columns are aligned: every status starts under the header
    assert [line[column:].split()[0] for line in lines[2:]] == ["ok", "FAILED", "skipped"]
    data = gc.report(results, {"gpu": "NVIDIA H200"})
    assert data["passed"] is False and data["gpu"] == "NVIDIA H200" and len(data["checks"]) == 3
    gc.write_report(tmp_path / "r.json", data)
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["checks"][0]["throughput"] == 123456.7 and back["flops_accounting"] == gc.FLOPS_ACCOUNTING


def test_harness_and_lm_eval_hf_agree_on_the_same_weights(gc) -> None:
    track = get_track("debug")
    torch.manual_seed(0)
    from harness.model import build_model

    model = build_model(track)
    ours, hf = gc.eval_models(model, track.model.context, "cpu", 4)
    requests = gc.token_requests(12, track.model.vocab_size, track.model.context)
    ours_rps, hf_rps, diff = gc.compare_eval(ours, hf, requests)
    assert ours_rps > 0 and hf_rps > 0
    assert diff < 1e-3
