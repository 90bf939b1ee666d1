"""Several training processes on CPU (torchrun, gloo): DDP and FSDP2 train the debug track as one process does, and
a run resumes at another world size (1 -> 2 -> 1) on the same data order.

The stated tolerances (docs/organisers.md, "Several processes on CPU"), each with what was measured on the debug
track's random sample of the sandbox (64 steps, torch 2.13 CPU, DDP and FSDP alike): the processes sum gradients
in another order than one process does, so the numbers differ in float32's last bits, never more.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.model import build_model, load_weights
from harness.tracks import Track, get_track
from harness.train import read_result, train
from harness.train.checkpoint import COMPLETION_MARKER, checkpoint_paths, completed_checkpoints
from harness.train.native import optimizer_layout, param_names
from harness.train.recipe import make_optimizer

#: Losses, relative: measured at most 2.8e-7 apart as logged, 1.5e-7 unrounded (each checkpoint keeps its last 10).
LOSS_REL = 1e-5
#: Logged losses, absolute: the log keeps 6 decimals, so two losses 1e-7 apart may be logged 1e-6 apart.
LOGGED_ABS = 2e-6
#: Final weights, absolute: measured at most 1.0e-6 apart ...
WEIGHT_ABS = 1e-5
#: ... but for the token embeddings, 7.9e-5: Adam divides a rare token's tiny gradient by its tiny second moment,
#: which magnifies the last bits in which the sums of that gradient differ.
EMBEDDING_ABS = 5e-4
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def debug_track() -> Track:
    """The debug track with 4 checkpoints instead of 2 (the same steps, model and recipe), so that a run can stop
    after its second and its third."""
    track = get_track("debug")
    return dataclasses.replace(track, recipe=dataclasses.replace(track.recipe, checkpoints=4))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Track, Path, Path]:
    """(track, data, run folder) of the uninterrupted one-process run every other run is compared with."""
    root = tmp_path_factory.mktemp("distributed")
    track = debug_track()
    subset, data = root / "random.jsonl", root / "shards"
    sample = [sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--out", str(subset)]
    tokenize = [sys.executable, "-m", "harness", "tokenize", "--track", "debug", str(subset), "--out", str(data)]
    for command in (sample, tokenize):
        subprocess.run(command, check=True, capture_output=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the torchrun workers (OMP_NUM_THREADS=1)
    try:
        train(track, str(data), root / "one", device="cpu")
    finally:
        torch.set_num_threads(threads)
    return track, data, root / "one"


def stopped_after(src: Path, epoch: int, dst: Path) -> Path:
    """A copy of the run in `src` as a run stopped right after checkpoint `epoch` leaves it (the log's later rows
    are dropped by the resume itself)."""
    shutil.copytree(src, dst)
    (dst / COMPLETION_MARKER).unlink()
    for later in completed_checkpoints(dst)[epoch:]:
        for path in checkpoint_paths(dst, later).values():
            path.unlink()
    assert completed_checkpoints(dst)[-1] == epoch
    return dst


def assert_same_training(ref: Path, other: Path) -> None:
    """The logged curve, the unrounded losses of every checkpoint and the final weights agree within tolerance."""

    def curve(run: Path) -> list[tuple[int, float]]:
        rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
        return [(row["step"], row["loss"]) for row in rows]

    a, b = curve(ref), curve(other)
    assert [s for s, _ in a] == [s for s, _ in b] and a[-1][0] == 64
    assert [v for _, v in b] == pytest.approx([v for _, v in a], rel=LOSS_REL, abs=LOGGED_ABS)
    for epoch in completed_checkpoints(ref):
        want = torch.load(checkpoint_paths(ref, epoch)["stats"], weights_only=True)["recent_losses"]
        got = torch.load(checkpoint_paths(other, epoch)["stats"], weights_only=True)["recent_losses"]
        assert len(got) == 10 and got == pytest.approx(want, rel=LOSS_REL, abs=0)
    wa, wb = load_weights(read_result(ref).checkpoint), load_weights(read_result(other).checkpoint)
    assert wa.keys() == wb.keys()
    for k in wa:
        atol = EMBEDDING_ABS if k == "tok_embeddings.weight" else WEIGHT_ABS
        assert torch.allclose(wa[k], wb[k], rtol=0, atol=atol), (k, float((wa[k] - wb[k]).abs().max()))
    ra, rb = read_result(ref), read_result(other)
    assert (ra.steps, ra.tokens_seen) == (rb.steps, rb.tokens_seen)


def optimizer_keys(run: Path, epoch: int) -> list[int | str]:
    state = torch.load(checkpoint_paths(run, epoch)["optimizer"], weights_only=True)["optimizer"]
    return [k for group in state["param_groups"] for k in group["params"]]


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_processes_train_as_one(one_process: tuple[Track, Path, Path], tmp_path: Path, sharding: str) -> None:
    track, data, ref = one_process
    result = train(track, str(data), tmp_path / "two", device="cpu", nproc=2, sharding=sharding)
    assert (result.processes, result.sharding) == (2, sharding)
    assert_same_training(ref, tmp_path / "two")
    # open_lm's two layouts of the optimizer state: by parameter number (DDP), by parameter name (FSDP)
    keys = optimizer_keys(tmp_path / "two", 4)
    assert len(keys) == len(list(build_model(track).parameters()))
    assert all(isinstance(k, str if sharding == "fsdp" else int) for k in keys)


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_a_run_resumes_at_another_world_size(
    one_process: tuple[Track, Path, Path], tmp_path: Path, sharding: str
) -> None:
    """1 -> 2 -> 1: a one-process checkpoint resumes in two processes, whose checkpoint resumes in one; the curve
    that the three launches leave is the uninterrupted run's."""
    track, data, ref = one_process
    run = stopped_after(ref, 2, tmp_path / "run")
    two = train(track, str(data), run, device="cpu", nproc=2, sharding=sharding)
    assert two.resumed_from == str(checkpoint_paths(run, 2)["epoch"]) and two.processes == 2
    run = stopped_after(run, 3, tmp_path / "again")
    one = train(track, str(data), run, device="cpu")
    assert one.resumed_from == str(checkpoint_paths(run, 3)["epoch"]) and (one.processes, one.sharding) == (1, "none")
    assert_same_training(ref, run)


def test_optimizer_state_moves_between_its_two_layouts() -> None:
    """One process and DDP number the parameters, FSDP's full state dict names them; each loads the other's."""
    track = get_track("debug")
    model = build_model(track)
    optimizer = make_optimizer(model, track.recipe)
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    optimizer.step()
    numbered = optimizer.state_dict()
    names = param_names(model, optimizer)
    assert names[0] == "tok_embeddings.weight" and len(names) == len(numbered["state"])
    named = optimizer_layout(numbered, names, by_name=True)
    assert list(named["state"]) == names and named["param_groups"][1]["params"] == names
    assert named["param_groups"][0] == numbered["param_groups"][0]  # open_lm's empty no-decay group
    back = optimizer_layout(named, names, by_name=False)
    assert back["param_groups"] == numbered["param_groups"]
    assert all(torch.equal(back["state"][i]["exp_avg"], numbered["state"][i]["exp_avg"]) for i in numbered["state"])
    assert optimizer_layout(numbered, names, by_name=False) is numbered  # already in the wanted layout
    with pytest.raises(HarnessError, match="not this track's"):
        optimizer_layout(numbered, names[:-1], by_name=True)
