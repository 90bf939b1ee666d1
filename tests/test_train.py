"""The native trainer: recipe formulas, the shard reader, training, exact resume (also after kill -9), DDP."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import command_options
from harness.data.loader import ShardStream
from harness.errors import HarnessError
from harness.model import load_weights
from harness.tracks import Budget, ModelShape, Track, get_track
from harness.train import prepare_run, read_result, train
from harness.train.checkpoint import completed_checkpoints, read_params
from harness.train.launch import write_slurm_script
from harness.train.native import run_worker
from harness.train.recipe import accumulation, checkpoint_steps, lr_at

VOCAB = 64


def tiny_track(
    *, steps: int = 12, d: int = 32, context: int = 16, batch: int = 8, accum: int = 2, ckpts: int = 3
) -> Track:
    base = get_track("debug")
    shape = ModelShape(d_model=d, n_layers=2, n_heads=2, vocab_size=VOCAB, context=context, ffn_multiple_of=64)
    recipe = dataclasses.replace(base.recipe, global_batch=batch, grad_accum=accum, warmup=2, checkpoints=ckpts)
    return dataclasses.replace(
        base, name="tiny", model=shape, recipe=recipe, budget=Budget(tokens=steps * batch * context)
    )


def write_shards(out: Path, n_seq: int, seq_len: int, per_shard: int = 16, seed: int = 0) -> Path:
    """Learnable sequences (arithmetic progressions mod VOCAB) in open_lm's webdataset layout."""
    out.mkdir(parents=True, exist_ok=True)
    rng, manifest = random.Random(seed), []
    for first in range(0, n_seq, per_shard):
        name, count = f"shard_{first // per_shard:08d}", min(per_shard, n_seq - first)
        with tarfile.open(out / f"{name}.tar", "w") as tar:
            for i in range(count):
                a, step = rng.randrange(VOCAB), rng.randrange(1, 4)
                blob = gzip.compress(json.dumps([(a + step * j) % VOCAB for j in range(seq_len)]).encode())
                info = tarfile.TarInfo(f"{first + i:09d}.json.gz")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        manifest.append({"shard": name, "num_sequences": count})
    (out / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    return out


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP threads spinning against other jobs make tiny
    models tens of times slower; results are bitwise the same whatever the count within a comparison."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    return write_shards(tmp_path / "shards", 40, 17)


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_weights(read_result(out).checkpoint)


# -- recipe ------------------------------------------------------------------------------------------------------


def test_lr_schedule_is_open_lms_warmup_then_cosine() -> None:
    recipe = get_track("412m").recipe  # lr 3e-3, warmup 2000, cooldown end 3e-5
    total = 10_000
    assert lr_at(0, recipe, total) == pytest.approx(3e-3 / 2000)
    assert lr_at(1999, recipe, total) == pytest.approx(3e-3)  # warm-up ends at the peak
    assert lr_at(2000, recipe, total) == pytest.approx(3e-3)
    assert lr_at(6000, recipe, total) == pytest.approx((3e-3 + 3e-5) / 2)  # cosine midpoint
    assert lr_at(total, recipe, total) == pytest.approx(3e-5)
    assert lr_at(total - 1, recipe, total) > 3e-5


def test_checkpoint_steps_and_accumulation() -> None:
    assert checkpoint_steps(100, 5) == [20, 40, 60, 80, 100]
    assert checkpoint_steps(7, 2) == [3, 7]
    assert accumulation(512, 8, 8) == (64, 8)
    assert accumulation(16, 2, 1) == (8, 1)
    assert accumulation(12, 2, 4) == (6, 6)  # 4 does not divide 6: the next divisor up
    with pytest.raises(HarnessError):
        accumulation(10, 3, 1)


# -- the shard reader --------------------------------------------------------------------------------------------


def test_stream_is_deterministic_seekable_and_reshuffles_each_pass(shards: Path) -> None:
    stream = ShardStream(str(shards), seq_len=17, seed=7)
    assert stream.num_sequences == 40
    first = [stream.decode(raw, url)[0] for _, (_, raw, url) in zip(range(120), stream.raw_from(0), strict=False)]
    again = [stream.decode(raw, url)[0] for _, (_, raw, url) in zip(range(50), stream.raw_from(70), strict=False)]
    assert again == first[70:120]
    passes = [first[0:40], first[40:80], first[80:120]]
    assert sorted(passes[0]) == sorted(passes[1]) == sorted(passes[2])  # every pass sees every sequence once
    assert passes[0] != passes[1] != passes[2]


def test_process_slices_make_up_the_global_batch(shards: Path) -> None:
    stream = ShardStream(str(shards), seq_len=17, seed=7)
    whole = next(stream.batches(3, 8))
    halves = [next(stream.batches(3, 8, rank=r, world=2)) for r in (0, 1)]
    assert halves[0] + halves[1] == whole


def test_reader_rejects_bad_data(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"manifest\.jsonl does not exist"):
        ShardStream(str(tmp_path), seq_len=17, seed=0)
    bad = write_shards(tmp_path / "short", 4, 9)
    with pytest.raises(HarnessError, match="context \\+ 1"):
        next(ShardStream(str(bad), seq_len=17, seed=0).batches(0, 2))
    (bad / "manifest.jsonl").write_text('{"shard": "shard_00000000", "num_sequences": 5}\n')
    with pytest.raises(HarnessError, match="manifest.jsonl says 5"):
        next(ShardStream(str(bad), seq_len=9, seed=0).batches(0, 2))


# -- training ----------------------------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_writes_open_lm_layout(shards: Path, tmp_path: Path) -> None:
    track = tiny_track(steps=40, ckpts=2)
    out = tmp_path / "run"
    result = train(track, str(shards), out, device="cpu")
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] > 4.0 > result.final_loss  # ln(64) = 4.16 at the start
    assert {"step", "loss", "lr", "tokens", "tokens_per_s"} <= set(rows[0])
    assert result.steps == 40 and result.tokens_seen == track.tokens
    assert result.passes == pytest.approx(40 * 8 / 40)
    assert completed_checkpoints(out) == [1, 2]
    ckpt = torch.load(out / "checkpoints" / "epoch_2.pt", weights_only=True)
    assert ckpt["step"] == 40 and ckpt["samples_seen"] == 320 and ckpt["epoch"] == 2
    stats = torch.load(out / "checkpoints" / "stats_2.pt", weights_only=True)
    assert stats["is_final_checkpoint"]
    params = read_params(out / "params.txt")
    assert params["model"] == str(out / "model.json") and params["tokenizer"] == "sandbox-bpe-2k"
    assert params["seed"] == "124" and json.loads((out / "model.json").read_text())["hidden_dim"] == 32
    # a finished run answers from its completion marker without training again
    assert train(track, str(shards), out) == result


@pytest.mark.slow
def test_debug_track_training_lowers_the_loss(tmp_path: Path) -> None:
    track = get_track("debug")
    data = write_shards(tmp_path / "shards", 256, track.model.context + 1, per_shard=128)
    result = train(track, str(data), tmp_path / "run", device="cpu")
    rows = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert result.steps == track.steps and result.tokens_seen == track.steps * track.tokens_per_step
    assert rows[0]["loss"] > 7.0 and result.final_loss < rows[0]["loss"] - 2.0  # ln(2048) = 7.6 at the start


def test_gradient_accumulation_does_not_change_the_result(shards: Path, tmp_path: Path) -> None:
    one = train(tiny_track(accum=1), str(shards), tmp_path / "a", device="cpu")
    four = train(tiny_track(accum=4), str(shards), tmp_path / "b", device="cpu")
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert one.final_loss == pytest.approx(four.final_loss, rel=1e-4)


def test_a_run_folder_refuses_another_track(shards: Path, tmp_path: Path) -> None:
    prepare_run(tiny_track(), str(shards), tmp_path / "run", device=None, compile=False, precision=None)
    with pytest.raises(HarnessError, match="another track"):
        train(tiny_track(steps=13), str(shards), tmp_path / "run")


def _worker(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.train.native", str(out)], stderr=subprocess.DEVNULL, env=env
    )


def test_kill_minus_9_then_resume_gives_bitwise_the_same_weights(tmp_path: Path) -> None:
    """The acceptance: a run killed mid-way and restarted ends with the same weights as an uninterrupted run."""
    data = write_shards(tmp_path / "shards", 48, 65)
    track = tiny_track(steps=48, d=64, context=64, batch=16, ckpts=4)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for out in (whole, killed):
        prepare_run(track, str(data), out, device="cpu", compile=False, precision=None)
    run_worker(whole)  # in this process, one thread like the workers
    proc = _worker(killed)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "stats_1.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # somewhere inside the next segment
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_result(killed) is None and 1 <= len(completed_checkpoints(killed)) < 4, "killed too late"
    assert _worker(killed).wait(timeout=300) == 0
    result = read_result(killed)
    assert result.resumed_from and result.resumed_from.endswith(f"epoch_{result.resumed_from[-4]}.pt")
    a, b = final_weights(whole), final_weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line)["step"] for line in (killed / "train_log.jsonl").read_text().splitlines()]
    assert log == sorted(set(log)) and log[-1] == 48  # the redone steps are logged once


def test_slurm_script_starts_torchrun_on_every_node(tmp_path: Path) -> None:
    script = write_slurm_script(tmp_path, nodes=4, nproc=8, module="harness.train.native", args=[str(tmp_path)])
    text = script.read_text()
    assert "#SBATCH --nodes=4" in text and "#SBATCH --gpus-per-node=8" in text
    assert "srun" in text and "torch.distributed.run" in text and "--nnodes=4" in text
    assert "'--rdzv-endpoint='\"$HEAD\"':29500'" in text and "'--rdzv-id='\"$SLURM_JOB_ID\"" in text
    assert text.index("--rdzv-id") < text.index("-m harness.train.native")


def test_train_command_options() -> None:
    assert command_options("train") == {
        "--track", "--data", "--out", "--trainer", "--nproc", "--nodes", "--launcher", "--device", "--precision",
        "--sharding", "--compile", "--json", "--no-sbatch", "--wait",
    }  # fmt: skip
