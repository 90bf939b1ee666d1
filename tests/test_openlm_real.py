"""`harness submit --trainer open_lm` against the real open_lm (mlfoundations/open_lm), end to end on debug.

Runs where open_lm is importable (docs/organisers.md: "Training with open_lm"); skipped with the reason elsewhere."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.data.loader import shard_infos
from harness.data.shard_plan import open_lm_checkpoints, open_lm_sequences_per_checkpoint
from harness.tracks import get_track

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = [
    pytest.mark.openlm,
    pytest.mark.skipif(
        importlib.util.find_spec("open_lm") is None,
        reason="open_lm is not installed (docs/organisers.md: Training with open_lm)",
    ),
]


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One debug submit trained by open_lm."""
    cwd = tmp_path_factory.mktemp("openlm")
    subset = cwd / "random.jsonl"
    subprocess.run(
        [sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--out", str(subset)], check=True
    )
    proc = _harness("submit", "--track", "debug", str(subset), "--trainer", "open_lm", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return cwd


def test_record_matches_the_native_trainers_counts(run: Path) -> None:
    track = get_track("debug")
    (path,) = (run / "results" / "debug").glob("*.json")
    record = json.loads(path.read_text())
    training = record["training"]
    assert training["trainer"] == "open_lm" and training["steps"] == track.steps == 64
    assert training["tokens_seen"] == track.tokens
    steps = [p[0] for p in training["curve"]]
    assert steps == sorted(steps) and len(steps) >= 4 and steps[-1] in (63, 64)  # open_lm logs step total - 1
    assert all(p[1] == p[0] * track.tokens_per_step for p in training["curve"])
    assert training["curve"][-1][2] < training["curve"][0][2]  # it learned
    assert record["versions"]["open_lm"].startswith(importlib.metadata.version("open_lm"))
    (train,) = (run / "runs" / "debug").glob("*/train")
    assert sorted(p.name for p in (train / "checkpoints").glob("epoch_*.pt")) == ["epoch_2.pt"]  # 2 checkpoints
    log = (train / "open_lm" / "run" / "out.log").read_text()
    assert "Train Epoch: 1 " in log and "Train Epoch: 2 " not in log


def test_plan_predicts_open_lms_checkpoints(run: Path) -> None:
    """harness.data.shard_plan's model of open_lm's loader against open_lm: its shard choice for each checkpoint
    (open_lm.file_utils.get_string_for_epoch) and the steps it ran (its log line at step total - 1)."""
    from open_lm.file_utils import get_string_for_epoch

    track = get_track("debug")
    (train,) = (run / "runs" / "debug").glob("*/train")
    shards = train.parent / "tokenize" / "shards"
    plan = json.loads((train / "open_lm_plan.json").read_text())
    sizes = [s.num_sequences for s in shard_infos(str(shards))]
    per = open_lm_sequences_per_checkpoint(track)
    for workers, processes in ((2, 1), (2, 2), (1, 1)):
        multi = plan["multiple_data_passes"]
        ours = open_lm_checkpoints(sizes, sequences_per_checkpoint=per, checkpoints=2, global_batch=16, seed=124,
                                   processes=processes, workers=workers, multiple_passes=multi)  # fmt: skip
        assert ours.checkpoint_steps[-1] == 64
        nxt = [0]
        for _checkpoint in ours.checkpoint_steps:
            _strings, counts, nxt = get_string_for_epoch(per, nxt, [str(shards / "manifest.jsonl")], None, workers,
                                                         processes, multi_epoch=multi, shard_shuffle_seed=124)  # fmt: skip
            assert counts[0] >= per  # nxt counts shards across passes (pass x 15 + shards taken)
    assert plan["checkpoint_steps"][-1] == 64 and len(plan["checkpoint_steps"]) == 2
    final = torch.load(train / "checkpoints" / "epoch_2.pt", map_location="cpu", weights_only=True)
    assert final["step"] == 64
    # open_lm logs the step before the last one (step == total_steps - 1): with the plan's epoch start it is 63
    last = [json.loads(line) for line in (train / "train_log.jsonl").read_text().splitlines()][-1]
    assert last["step"] == 63


def test_evaluate_open_lms_folder_without_track(run: Path) -> None:
    (train,) = (run / "runs" / "debug").glob("*/train")
    proc = _harness("evaluate", str(train / "open_lm" / "run"), "--out", "olm_eval.json", cwd=run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evaluation = json.loads((run / "olm_eval.json").read_text())
    submitted = json.loads((train.parent / "evaluate" / "eval.json").read_text())
    assert evaluation["track"] == "debug" and evaluation["suite"] == submitted["suite"]
    assert evaluation["aggregates"] == submitted["aggregates"]  # the same weights, scored the same way
