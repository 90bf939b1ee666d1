"""benchmarks/train_speed_bench.py's report and benchmarks/train_profile.py's bucketing, on synthetic event trees
(and one real, tiny profile): each bucket claims an event once, nested operators are not counted twice, the rest is
the step less the buckets, and the target lines say met or missed with the figure."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def mods() -> tuple[ModuleType, ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("train_profile"), importlib.import_module("train_speed_bench")
    finally:
        sys.path.remove(str(BENCH))


def ev(tp: ModuleType, name: str, total: float, *children: object, shapes: tuple = ()) -> object:
    self_us = total - sum(c.total_us for c in children)
    return tp.Event(name, total, self_us, shapes, tuple(children))


def test_matmul_flops_from_shapes(mods) -> None:
    tp, _ = mods
    assert tp.matmul_flops("aten::mm", [[8, 4], [4, 3]]) == 2 * 8 * 4 * 3
    assert tp.matmul_flops("aten::addmm", [[3], [8, 4], [4, 3], [], []]) == 2 * 8 * 4 * 3
    assert tp.matmul_flops("aten::addmm_", [[8, 3], [8, 4], [4, 3]]) == 2 * 8 * 4 * 3
    assert tp.matmul_flops("aten::bmm", [[5, 8, 4], [5, 4, 3]]) == 2 * 5 * 8 * 4 * 3
    assert tp.matmul_flops("aten::linear", [[2, 8, 4], [3, 4], [3]]) == 2 * 16 * 4 * 3
    assert tp.matmul_flops("aten::matmul", [[8, 4], [2, 4, 3]]) == 2 * 2 * 8 * 4 * 3
    assert tp.matmul_flops("aten::mm", [[8, 4], [5, 3]]) is None  # inner sizes disagree
    assert tp.matmul_flops("aten::mm", [[8, 4]]) is None
    assert tp.matmul_flops("aten::linear", [[2, 8, 4], [3, 5]]) is None


def test_buckets_claim_each_event_once(mods) -> None:
    tp, _ = mods
    mm = ev(tp, "aten::mm", 100, shapes=((10, 20), (20, 30)))
    sdpa = ev(tp, "aten::_scaled_dot_product_flash_attention_for_cpu", 50)
    forward = ev(tp, "## Call CompiledFxGraph abc ##", 400, mm, sdpa)
    region = ev(tp, "Torch-Compiled Region: 0/0", 410, ev(tp, "CompiledFunction", 405, forward))
    inner = ev(tp, "aten::matmul", 55, ev(tp, "aten::mm", 50, shapes=((4, 5), (5, 6))))
    linear = ev(tp, "aten::linear", 60, ev(tp, "aten::t", 5), inner, shapes=((4, 5), (6, 5)))
    head = ev(tp, "FusedHeadLoss", 200, linear, ev(tp, "aten::log_softmax", 30, ev(tp, "aten::_log_softmax", 25)))
    loops = (
        ev(tp, "graph_0_cpp_fused_add_native_layer_norm_0", 200),
        ev(tp, "graph_0_cpp_fused__scaled_dot_product_flash_attention_for_cpu_backward_1", 40),
    )
    sdpa_back = ev(tp, "aten::_scaled_dot_product_flash_attention_for_cpu_backward", 100)
    graph_back = ev(tp, "## Call CompiledFxGraph def ##", 490, *loops, sdpa_back)
    backward = ev(tp, "autograd::engine::evaluate_function: CompiledFunctionBackward", 500, graph_back)
    optimizer = ev(tp, "Optimizer.step#AdamW.step", 80, ev(tp, "aten::mul_", 30), ev(tp, "aten::lerp_", 20))
    clip = ev(tp, tp.CLIP_LABEL, 10, ev(tp, "aten::_foreach_norm", 8))
    data = ev(tp, tp.DATA_LABEL, 5)
    b = tp.bucket_events([data, region, head, backward, clip, optimizer], steps=2, window_us=2400)
    assert b.step_us == 1200
    assert b.bucket_us["matmuls"] == (100 + 60) / 2  # aten::linear whole, its inner mm not again
    assert b.bucket_us["attention"] == (50 + 100) / 2  # the fused loop named after sdpa is inductor's
    # the forward graph's own time (400 - 100 - 50) is its fused loops; the backward's loops are timed, so its
    # own time (490 - 340 = 150) is wrapper Python and goes to the rest
    assert b.bucket_us["inductor"] == (250 + 200 + 40) / 2
    assert b.bucket_us["optimizer"] == (80 + 10) / 2
    assert b.bucket_us["data loading"] == 5 / 2
    assert b.bucket_us["other ops"] == (5 + 25) / 2  # aten::log_softmax's own 5 and _log_softmax's 25
    assert b.bucket_us["rest"] == pytest.approx(1200 - (160 + 150 + 490 + 90 + 5 + 30) / 2)
    assert sum(b.bucket_us.values()) == pytest.approx(b.step_us)
    assert b.matmul_flops == (2 * 10 * 20 * 30 + 2 * 4 * 5 * 6) / 2 and b.unsized_matmuls == 0
    assert dict(b.top_ops)["aten::mm"] == 75.0  # self time per step of both mm calls, the nested one included


def test_explain_relates_matmul_rate_and_step_to_the_peak(mods) -> None:
    tp, _ = mods
    buckets = dict.fromkeys(tp.BUCKETS, 0.0) | {"matmuls": 600_000.0, "inductor": 300_000.0, "rest": 100_000.0}
    b = tp.Breakdown(step_us=1_000_000.0, bucket_us=buckets, matmul_flops=48e9, unsized_matmuls=3)
    lines = tp.explain(b, model_flops_per_step=60e9, peak_flops=100e9)
    assert "matmuls are 60% of the step and run at 80% of peak (80.0 GFLOP/s, 80% of the model's FLOPs)" in lines[-2]
    assert "the other 40% (inductor 30%, rest 10%) is what keeps the step at 60% of peak" in lines[-2]
    assert "3 matmul calls had no recorded shapes" in lines[-1]
    assert len(lines) == len(tp.BUCKETS) + 2


def test_a_real_profile_finds_the_matmul_and_restores_clipping(mods) -> None:
    tp, _ = mods
    a, w = torch.randn(64, 32), torch.randn(48, 32)
    original = torch.nn.utils.clip_grad_norm_
    p = torch.nn.Parameter(torch.ones(4))
    p.grad = torch.ones(4)

    def step() -> None:
        with torch.profiler.record_function(tp.DATA_LABEL):
            x = a + 1
        torch.nn.functional.linear(x, w)
        torch.nn.utils.clip_grad_norm_([p], 1.0)

    b, wall, cpu = tp.profile_step(step, steps=2)
    assert torch.nn.utils.clip_grad_norm_ is original
    assert b.matmul_flops == 2 * 64 * 32 * 48 and b.unsized_matmuls == 0
    assert b.bucket_us["matmuls"] > 0 and b.bucket_us["optimizer"] > 0 and b.bucket_us["data loading"] > 0
    assert b.step_us == pytest.approx(wall * 1e6 / 2) and cpu > 0


def test_target_lines_say_met_or_missed_with_the_figure(mods) -> None:
    _, bench = mods
    per_token = 1e6
    two = {"threads": 2, "peak": 100e9, "compiled": 50_000.0, "open_lm": 36_000.0}
    one = {"threads": 1, "peak": 50e9, "compiled": 40_000.0, "open_lm": 20_000.0}
    lines = bench.target_lines([one, two], per_token)
    assert lines[0] == "target compiled >= 1.5x open_lm tokens per CPU-second at 2 threads: missed (1.39x)"
    assert lines[1] == "target >= 70% of peak matmul at 2 threads: missed (50.0%)"
    assert lines[2] == "  for information, 1 thread(s): 2.00x open_lm, 80.0% of peak"
    assert len(lines) == 3  # no caution: the peak matmul had its 2 cores (cpu_per_wall absent counts as 2)
    busy = bench.target_lines([two | {"cpu_per_wall": 1.0}], per_token)
    assert "the machine was busy" in busy[2] and "got 1.00 CPU-seconds per wall-second, not 2" in busy[2]
    assert len(bench.target_lines([two | {"cpu_per_wall": 1.9}], per_token)) == 2
    steady = bench.target_lines([two | {"compiled_vs_open_lm_range": (1.3, 1.5)}], per_token)
    assert steady[0].endswith("missed (1.39x; rounds 1.30-1.50x)") and len(steady) == 2
    noisy = bench.target_lines([two | {"compiled_vs_open_lm_range": (0.6, 2.8)}], per_token)
    assert "the rounds disagree: compiled / open_lm went 0.60-2.80x" in noisy[2]
    fast = two | {"compiled": 72_000.0}
    assert [line.split(": ")[1] for line in bench.target_lines([fast], per_token)] == ["met (2.00x)", "met (72.0%)"]
    alone = {"threads": 2, "peak": 100e9, "compiled": 50_000.0, "open_lm_note": "open_lm is not installed"}
    assert bench.target_lines([alone], per_token)[0].endswith("not measured (open_lm is not installed)")
    assert all(line.endswith("not measured (add 2 to --threads)") for line in bench.target_lines([one], per_token))
