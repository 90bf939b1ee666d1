"""Reading open_lm's text log (`out.log`) into the harness's training curve.

open_lm logs through Python's logging as `2026-11-30,19:50:01 | INFO | Train Epoch: 0 [ 320/512 (62%)] Loss: 6.123
Data (t): ... LR: 0.003000` (open_lm/train.py): the epoch (checkpoint, from 0), the sequences the epoch has
trained on so far out of its own total, and the loss averaged since the previous such line. The line carries no
global step: step = the step the epoch started at + sequences / global batch. Where an epoch ends before its
total (a data-loader worker runs out of shards first), only the loader's plan knows where the next one starts
(harness.data.shard_plan); without it each earlier epoch counts as its total / global batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_TRAIN = re.compile(r"Train Epoch: (\d+) \[\s*(\d+)/(\d+) \(\d+%\)\] Loss: ([-+0-9.eEnaif]+)")


@dataclass(frozen=True)
class LogPoint:
    """One training line of open_lm's log."""

    step: int
    """Global optimizer step after which the line was written."""
    tokens: int
    """Tokens trained on by then (step x global batch x context)."""
    loss: float
    """Loss averaged over the steps since the previous line (open_lm's `losses_m.avg`)."""


def read_open_lm_log(
    path: Path, *, global_batch: int, context: int, epoch_starts: Sequence[int] | None = None
) -> list[LogPoint]:
    """The training lines of open_lm's `out.log` with their global steps; [] when the file is missing.
    `epoch_starts[e]`: the global step epoch e starts at (the plan's previous checkpoint).

    A resumed run appends to the same log and repeats the lines of the interrupted checkpoint: a later line for the
    same step replaces the earlier one."""
    if not path.is_file():
        return []
    epoch_total: dict[int, int] = {}
    rows: dict[int, float] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _TRAIN.search(line)
        if m is None:
            continue
        epoch, seen, total, loss = int(m[1]), int(m[2]), int(m[3]), float(m[4])
        epoch_total[epoch] = total
        if epoch_starts is not None and epoch < len(epoch_starts):
            offset = epoch_starts[epoch]
        else:
            offset = sum(epoch_total.get(e, 0) for e in range(epoch)) // global_batch
        rows[offset + seen // global_batch] = loss
    return [LogPoint(s, s * global_batch * context, rows[s]) for s in sorted(rows)]
