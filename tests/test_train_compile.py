"""torch.compile in the native trainer: the same losses as eager within a stated tolerance, interchangeable
checkpoints both ways, and a failed compilation (no C++ compiler) that trains eager, bit for bit, after one line.

Measured on the debug shape over 64 steps (one thread, AVX-512): compiled and eager losses differ by at most 2.2e-7
relative and the final weights by 2.8e-5; the tolerances below leave a 45x and 7x margin for other CPUs' kernels.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harness.data.synthetic import write_synthetic_shards
from harness.errors import UsageError
from harness.model import load_weights
from harness.tracks import Budget, Track, get_track
from harness.train import prepare_run, read_result, train
from harness.train.checkpoint import checkpoint_paths
from harness.train.compiled import AUTO_MIN_TRAIN_FLOPS, FusedHeadLoss, normalise_setting, wants_compile
from harness.train.recipe import model_flops_per_token

LOSS_RTOL = 1e-5
WEIGHT_ATOL = 2e-4


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def debug_track(steps: int) -> Track:
    base = get_track("debug")
    return dataclasses.replace(base, budget=Budget(tokens=steps * base.tokens_per_step))


def shards(root: Path, track: Track) -> Path:
    return write_synthetic_shards(root / "data", n_seq=256, seq_len=track.model.context + 1, vocab=64)


def train_flops(track: Track) -> float:
    m = track.model
    return track.tokens * model_flops_per_token(track.n_params, m.vocab_size, m.d_model, m.n_layers, m.context)


def log_losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_auto_compiles_cpu_runs_long_enough_to_repay_it() -> None:
    nano, debug = train_flops(get_track("nano")), train_flops(get_track("debug"))
    assert debug < AUTO_MIN_TRAIN_FLOPS <= nano
    assert wants_compile("auto", nano, "cpu", 1) and not wants_compile("auto", debug, "cpu", 1)
    assert not wants_compile("auto", nano, "cuda", 1) and not wants_compile("auto", nano, "cpu", 2)
    assert wants_compile("on", debug, "cuda", 4) and not wants_compile("off", nano, "cpu", 1)
    assert [normalise_setting(v) for v in (True, False, None, "auto")] == ["on", "off", "off", "auto"]
    with pytest.raises(UsageError, match="compile setting 'yes'"):
        normalise_setting("yes")


def test_fused_head_loss_equals_the_projection_then_lm_loss() -> None:
    """Loss and both gradients, in float64 to 1e-12, with a ragged last chunk and a scaled incoming gradient."""
    torch.manual_seed(0)
    h, w = torch.randn(37, 8, dtype=torch.float64), torch.randn(50, 8, dtype=torch.float64)
    targets = torch.randint(0, 50, (37,))
    a_h, a_w = h.clone().requires_grad_(), w.clone().requires_grad_()
    logits = a_h @ a_w.t()  # open_lm's CrossEntropyLossWithZLoss, in float64
    expected = F.cross_entropy(logits, targets) + 0.01 * torch.logsumexp(logits, -1).square().mean()
    (expected * 3).backward()
    b_h, b_w = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss = FusedHeadLoss.apply(b_h, b_w, targets, 0.01, 16)
    (loss * 3).backward()
    assert float(loss) == pytest.approx(float(expected), rel=1e-12)
    assert torch.allclose(a_h.grad, b_h.grad, atol=1e-12) and torch.allclose(a_w.grad, b_w.grad, atol=1e-12)


def test_train_command_takes_compile_alone_or_with_a_setting() -> None:
    import argparse

    from harness.commands.train import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    base = ["train", "--track", "debug", "--data", "d", "--out", "o"]
    assert parser.parse_args(base).compile == "auto"
    assert parser.parse_args([*base, "--compile"]).compile == "on"
    assert parser.parse_args([*base, "--compile", "off"]).compile == "off"


def test_without_a_cpp_compiler_it_says_so_once_and_trains_eager_bit_for_bit(tmp_path: Path) -> None:
    track = debug_track(12)
    data = shards(tmp_path, track)
    eager = train(track, str(data), tmp_path / "eager", device="cpu", compile="off")
    prepare_run(track, str(data), tmp_path / "nocxx", device="cpu", compile="on", precision=None)
    env = {**os.environ, "CXX": "/nonexistent", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "harness.train.native", str(tmp_path / "nocxx")], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = [line for line in proc.stderr.splitlines() if "torch.compile failed" in line]
    assert len(said) == 1 and "training eager instead" in said[0] and "C++ compiler" in said[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    fallback = read_result(tmp_path / "nocxx")
    assert fallback is not None and not fallback.compiled and not eager.compiled
    a, b = load_weights(eager.checkpoint), load_weights(fallback.checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log_losses(tmp_path / "eager") == log_losses(tmp_path / "nocxx")


@pytest.mark.slow
def test_compiled_matches_eager_and_checkpoints_move_both_ways(tmp_path: Path) -> None:
    track = debug_track(24)  # checkpoints after steps 12 and 24
    data = shards(tmp_path, track)
    eager = train(track, str(data), tmp_path / "eager", device="cpu", compile="off")
    compiled = train(track, str(data), tmp_path / "compiled", device="cpu", compile="on")
    assert compiled.compiled and not eager.compiled and compiled.compile_s > 0
    e, c = log_losses(tmp_path / "eager"), log_losses(tmp_path / "compiled")
    assert len(e) == len(c) == 24
    assert all(x == pytest.approx(y, rel=LOSS_RTOL) for x, y in zip(e, c, strict=True)), (e, c)
    e_weights, c_weights = load_weights(eager.checkpoint), load_weights(compiled.checkpoint)
    assert max_difference(e_weights, c_weights) <= WEIGHT_ATOL
    assert not any(k.startswith("_orig_mod.") for k in c_weights)  # the same names as eager's

    # resume each run's first checkpoint the other way: compiled -> eager, eager -> compiled
    for source, out, mode in (("compiled", "c-then-e", "off"), ("eager", "e-then-c", "on")):
        prepare_run(track, str(data), tmp_path / out, device="cpu", compile=mode, precision=None)
        (tmp_path / out / "checkpoints").mkdir()
        for path in checkpoint_paths(tmp_path / source, 1).values():
            shutil.copy(path, tmp_path / out / "checkpoints" / path.name)
        result = train(track, str(data), tmp_path / out, device="cpu", compile=mode)
        assert result.resumed_from and result.resumed_from.endswith("epoch_1.pt")
        assert result.compiled == (mode == "on")
        assert max_difference(load_weights(result.checkpoint), e_weights) <= WEIGHT_ATOL
        assert result.final_loss == pytest.approx(eager.final_loss, rel=LOSS_RTOL)
