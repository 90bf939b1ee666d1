"""Shards sized for open_lm's loader, and the checkpoints that loader makes from a manifest.

open_lm (`--dataset-manifest`) trains checkpoint by checkpoint (open_lm/file_utils.py `_single_epoch_string`,
open_lm/data.py `get_wds_dataset`, open_lm/main.py). For each checkpoint it

1. takes shards from the manifest, shuffled with numpy's `default_rng(seed)` (seed + pass on later passes), from
   where the previous checkpoint stopped, until it holds at least `workers x processes` shards and at least
   `--train-num-samples` sequences; past the manifest's end it raises IndexError, or with
   `--multiple-data-passes` restarts at the next pass, skipping the shards the last pass had left;
2. keeps the largest multiple of `workers x processes` of those shards (the rest are taken by the next checkpoint);
3. runs `floor(sequences / (global batch x workers)) x workers` steps over them, fewer when a worker's shards run
   out (each process reads shards `rank::processes`, each worker of a process every `workers`-th of those);
4. stops the whole run at `(train-num-samples / context) x epochs // global batch` steps.

So a track with small data per checkpoint needs small shards, or the loader raises (fewer shards than workers) or
trains the whole run in one checkpoint. `shard_sequences_for` sizes them: DCLM's 8192 sequences where a
checkpoint already spans many shards (the DCLM tracks), else so that one checkpoint is exactly
SHARDS_PER_CHECKPOINT equal shards holding a whole number of steps per worker, with the rest of the data in the
last shard rather than a short shard of its own (`merges_rest`). `open_lm_checkpoints` predicts
the checkpoints open_lm will write for a manifest, so the harness can say before launching what open_lm will do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.data import DEFAULT_SHARD_SEQUENCES

if TYPE_CHECKING:
    from harness.tracks import Track

#: DCLM's `--workers 2` (data-loader processes per training process).
OPEN_LM_WORKERS = 2
#: Shards per checkpoint on small tracks: open_lm then runs with workers x processes = 1, 2, 4 or 8
#: (DCLM's 2 workers on 1, 2 or 4 processes).
SHARDS_PER_CHECKPOINT = 8


class LoaderError(ValueError):
    """open_lm's loader cannot serve a checkpoint from this manifest (it would raise)."""


def open_lm_sequences_per_checkpoint(track: Track) -> int:
    """Sequences per checkpoint (`--train-num-samples` / context) such that open_lm's step count
    (sequences x checkpoints // global batch) equals the track's. DCLM's `tokens // checkpoints` where that is
    already so (every DCLM track), else rounded up (nano: 1,228 sequences would give 191 steps, 1,229 give 192)."""
    r, context = track.recipe, track.model.context
    return max(track.tokens // r.checkpoints // context, math.ceil(track.steps * r.global_batch / r.checkpoints))


def open_lm_steps_per_checkpoint(track: Track, workers: int = OPEN_LM_WORKERS) -> int:
    """Steps each of a small track's checkpoints runs under open_lm: the fewest, in whole multiples of `workers`
    (open_lm's loader runs whole batches per worker), with which the track's checkpoints cover its steps."""
    per = math.ceil(track.steps / track.recipe.checkpoints)
    return math.ceil(per / workers) * workers


def shard_sequences_for(track: Track) -> int:
    """Sequences per shard for `track`'s tokenized data: 8192 (DCLM) when a checkpoint spans at least
    SHARDS_PER_CHECKPOINT such shards, else one checkpoint's steps split into SHARDS_PER_CHECKPOINT shards."""
    if open_lm_sequences_per_checkpoint(track) >= SHARDS_PER_CHECKPOINT * DEFAULT_SHARD_SEQUENCES:
        return DEFAULT_SHARD_SEQUENCES
    steps = open_lm_steps_per_checkpoint(track)
    return math.ceil(steps * track.recipe.global_batch / SHARDS_PER_CHECKPOINT)


def merges_rest(track: Track) -> bool:
    """Whether the last shard also holds the rest of the data. A short last shard leaves the checkpoint that reads
    it short of steps, and open_lm may then write one checkpoint more; a long one is safe where a checkpoint is
    exactly SHARDS_PER_CHECKPOINT shards (debug): 7 shards, the long one among them, never hold a checkpoint, so
    the loader still takes 8. Elsewhere (nano, whose checkpoint is not a whole number of 2-worker steps, and the
    DCLM tracks) the last shard is short, as DCLM writes it."""
    per = shard_sequences_for(track)
    return per != DEFAULT_SHARD_SEQUENCES and open_lm_sequences_per_checkpoint(track) == SHARDS_PER_CHECKPOINT * per


def shard_sizes(sequences: int, per_shard: int, *, merge_rest: bool) -> list[int]:
    """Sequences in each shard that tokenization writes for `sequences` sequences (harness.data.tokenize)."""
    if merge_rest:
        count = max(1, sequences // per_shard)
        return [per_shard] * (count - 1) + [sequences - per_shard * (count - 1)]
    return [per_shard] * (sequences // per_shard) + ([sequences % per_shard] if sequences % per_shard else [])


@dataclass(frozen=True)
class LoaderPlan:
    """What open_lm's loader will do with a manifest."""

    total_steps: int
    """Steps of the whole run (open_lm's `total_steps`)."""
    checkpoint_steps: tuple[int, ...]
    """Global step at each checkpoint open_lm writes, the last one equal to total_steps."""
    passes: int
    """Passes over the manifest that were started (1 = the data is read at most once)."""


def _shuffled(sizes: Sequence[int], seed: int) -> list[int]:
    """Shard indices in the order open_lm reads them: numpy `default_rng(seed).shuffle` of the manifest's lines."""
    import numpy as np

    order = list(range(len(sizes)))
    np.random.default_rng(seed).shuffle(order)
    return order


def _checkpoint_shards(
    sizes: Sequence[int], start: int, order: list[int], needed: int, workers_total: int
) -> list[int]:
    """Shards (manifest indices) of one checkpoint of one pass starting at `start`; raises IndexError like open_lm."""
    taken: list[int] = []
    held = 0
    while len(taken) < workers_total or held < needed:
        taken.append(order[start + len(taken)])  # IndexError past the manifest's end, as in open_lm
        held += sizes[taken[-1]]
    return taken[: len(taken) // workers_total * workers_total]


def _steps(sizes: Sequence[int], shards: list[int], global_batch: int, workers: int, processes: int) -> int:
    """Steps open_lm runs over `shards`: whole batches per worker, capped by the worker holding the least."""
    per_worker = sum(sizes[i] for i in shards) // (global_batch * workers)
    local_batch = global_batch // processes
    steps = None
    for rank in range(processes):
        mine = shards[rank::processes]
        batches = sum(min(sum(sizes[i] for i in mine[w::workers]) // local_batch, per_worker) for w in range(workers))
        steps = batches if steps is None else min(steps, batches)
    return steps or 0


def open_lm_checkpoints(
    sizes: Sequence[int],
    *,
    sequences_per_checkpoint: int,
    checkpoints: int,
    global_batch: int,
    seed: int,
    processes: int = 1,
    workers: int = OPEN_LM_WORKERS,
    multiple_passes: bool,
) -> LoaderPlan:
    """The checkpoints open_lm writes for a manifest with these shard sizes (in manifest order), launched with
    these arguments; LoaderError where open_lm's loader would raise."""
    total = sequences_per_checkpoint * checkpoints // global_batch
    workers_total = workers * processes
    step, next_shard, marks, passes = 0, 0, [], 1
    while step < total:
        pass_idx = next_shard // len(sizes)
        for _attempt in range(3 if multiple_passes else 1):  # open_lm tries 3 passes, then gives up
            order = _shuffled(sizes, seed + pass_idx if multiple_passes else seed)
            try:
                shards = _checkpoint_shards(
                    sizes, next_shard % len(sizes), order, sequences_per_checkpoint, workers_total
                )
                break
            except IndexError:
                pass_idx += 1
                next_shard = pass_idx * len(sizes)
        else:
            raise LoaderError(
                f"open_lm's loader cannot fill checkpoint {len(marks) + 1}: it needs {sequences_per_checkpoint} "
                f"sequences in at least {workers_total} shards (workers x processes) from one pass over "
                f"{len(sizes)} shards of {sum(sizes)} sequences"
            )
        passes = max(passes, pass_idx + 1)
        next_shard += len(shards)
        done = _steps(sizes, shards, global_batch, workers, processes)
        if done == 0:
            raise LoaderError(f"open_lm's loader would run no step in checkpoint {len(marks) + 1}")
        step = min(total, step + done)
        marks.append(step)
    return LoaderPlan(total, tuple(marks), passes)
