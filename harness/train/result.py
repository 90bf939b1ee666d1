"""What a finished training run reports (its completion marker), and the signal that a scheduler has it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.train.checkpoint import COMPLETION_MARKER


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run reports (also the content of the completion marker)."""

    final_loss: float
    tokens_seen: int
    steps: int
    passes: float
    wall_time_s: float
    tokens_per_s: float
    checkpoint: str
    log: str
    trainer: str
    resumed_from: str | None
    open_lm: str = ""  # open_lm's version (and git commit) when open_lm trained
    threads: int = 0  # CPU threads of the training process (torch.get_num_threads()); 0: not recorded
    processes: int = 0  # training processes (world size) of the launch that finished the run; 0: not recorded
    sharding: str = ""  # how that launch spread the model: "none" (one process), "ddp" or "fsdp"; "": not recorded
    compiled: bool = False  # whether the step ran under torch.compile (harness.train.compiled)
    compile_s: float = 0.0  # seconds spent compiling (the first step's warm-up), part of wall_time_s

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class SlurmOptions:
    """How work handed to Slurm (`--launcher slurm`) is submitted."""

    submit: bool = True
    """Run sbatch on the written script (False: `--no-sbatch`, write it only)."""
    follow: bool = False
    """Wait for the job to end (`--wait`) instead of returning once it is queued."""
    notify: Callable[[str], None] = field(default=lambda _message: None, compare=False)
    """Told each line worth showing: the job's id, its changes of state."""


class TrainingPending(HarnessError):
    """Training was handed to a scheduler (slurm); re-run once the job has finished to collect the result."""


def read_result(out_dir: str | Path) -> TrainResult | None:
    """The result of a finished run (its completion marker), or None while it is unfinished."""
    marker = Path(out_dir) / COMPLETION_MARKER
    if not marker.is_file():
        return None
    return TrainResult.from_dict(json.loads(marker.read_text(encoding="utf-8")))
