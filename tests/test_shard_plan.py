"""Shards sized for open_lm's loader on every shipped track: open_lm runs the track's steps, and on the sandbox
tracks exactly the track's checkpoints, with DCLM's 2 workers on 1, 2 or 4 processes."""

from __future__ import annotations

import pytest

from harness.data import DEFAULT_SHARD_SEQUENCES
from harness.data.shard_plan import (
    OPEN_LM_WORKERS,
    SHARDS_PER_CHECKPOINT,
    LoaderError,
    merges_rest,
    open_lm_checkpoints,
    open_lm_sequences_per_checkpoint,
    shard_sequences_for,
    shard_sizes,
)
from harness.tracks import get_track, track_names

SANDBOX = ("debug", "nano", "micro")


def _plan(name: str, sequences: int, processes: int):
    """open_lm's checkpoints for `sequences` of tokenized data in the track's shards (one pass if it suffices)."""
    track = get_track(name)
    per = shard_sequences_for(track)
    sizes = shard_sizes(sequences, per, merge_rest=merges_rest(track))
    kwargs = {
        "sequences_per_checkpoint": open_lm_sequences_per_checkpoint(track), "checkpoints": track.recipe.checkpoints,
        "global_batch": track.recipe.global_batch, "seed": track.recipe.seed, "processes": processes,
    }  # fmt: skip
    try:
        return open_lm_checkpoints(sizes, **kwargs, multiple_passes=False)
    except LoaderError:
        return open_lm_checkpoints(sizes, **kwargs, multiple_passes=True)


def test_shard_sizes() -> None:
    """DCLM's 8192 sequences on the DCLM tracks; a checkpoint of 8 shards on the small ones (one shard on debug
    was the whole run: fewer shards than workers, so open_lm raised or trained one checkpoint)."""
    sizes = {name: shard_sequences_for(get_track(name)) for name in track_names()}
    small = {"debug": 64, "nano": 160, "micro": 320}
    assert sizes == small | {n: DEFAULT_SHARD_SEQUENCES for n in sizes if n not in SANDBOX}


@pytest.mark.parametrize("name", sorted(track_names()))
@pytest.mark.parametrize("processes", [1, 2, 4])
@pytest.mark.parametrize("data", [1.0, 2.0, 0.6])
def test_open_lm_runs_the_tracks_steps(name: str, processes: int, data: float) -> None:
    """The loader rule (at least workers x processes shards per checkpoint) holds and open_lm's step count is the
    native trainer's, with the data at 0.6, 1 and 2 times the budget. The checkpoints are the track's on debug, and
    on nano with one process and at least the budget's data; elsewhere open_lm may write one short extra checkpoint
    (its loader fills checkpoints with whole shards; DCLM's own runs do the same)."""
    track = get_track(name)
    per_checkpoint = open_lm_sequences_per_checkpoint(track)
    assert -(-per_checkpoint // shard_sequences_for(track)) >= OPEN_LM_WORKERS * processes
    plan = _plan(name, int(track.steps * track.recipe.global_batch * data) + 17, processes)
    assert plan.total_steps == plan.checkpoint_steps[-1] == track.steps
    if name == "debug" or (name == "nano" and data >= 1 and processes == 1):
        assert len(plan.checkpoint_steps) == track.recipe.checkpoints
    else:
        assert len(plan.checkpoint_steps) - track.recipe.checkpoints in (0, 1)
        assert plan.checkpoint_steps[track.recipe.checkpoints - 1] >= 0.85 * track.steps


def test_debug_checkpoints_are_the_native_trainers() -> None:
    """On debug open_lm checkpoints after the same steps as the native trainer (32 and 64)."""
    for processes in (1, 2, 4):
        assert _plan("debug", 5000, processes).checkpoint_steps == (32, 64)


def test_nano_runs_192_steps_not_191() -> None:
    """DCLM's `tokens // checkpoints` is 1,228.8 sequences on nano: open_lm would floor it to 191 steps."""
    track = get_track("nano")
    assert open_lm_sequences_per_checkpoint(track) == 1229
    assert 1229 * 5 // 32 == 192 == track.steps


def test_too_little_data_is_refused() -> None:
    """open_lm reads a checkpoint's shards from one pass: a subset smaller than one checkpoint cannot be served."""
    with pytest.raises(LoaderError, match="cannot fill checkpoint 1"):
        open_lm_checkpoints(
            [64] * 5, sequences_per_checkpoint=512, checkpoints=2, global_batch=16, seed=124, multiple_passes=True
        )


def test_eight_shards_per_checkpoint_on_small_tracks() -> None:
    for name in SANDBOX:
        track = get_track(name)
        per = shard_sequences_for(track)
        shards = -(-open_lm_sequences_per_checkpoint(track) // per)
        assert shards == SHARDS_PER_CHECKPOINT
