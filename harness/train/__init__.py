"""Training: `train(track, data_dir, out_dir)` with the native trainer or open_lm, resumable, with a completion marker.

Light imports only: torch is imported by the trainer itself (harness.train.native), in the process that trains.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError, UsageError
from harness.tracks import Track
from harness.train.prepare import prepare_run
from harness.train.result import TrainingPending, TrainResult, read_result

Trainer = Literal["native", "open_lm"]
Launcher = Literal["local", "slurm"]


def train(
    track: Track,
    data_dir: str,
    out_dir: str | Path,
    *,
    trainer: Trainer = "native",
    nproc: int = 1,
    launcher: Launcher = "local",
    device: str | None = None,
    progress: Any = None,
    compile: bool | str = "auto",
    precision: str | None = None,
    nodes: int = 1,
) -> TrainResult:
    """Train `track`'s model on the shards in `data_dir` into `out_dir`; re-running resumes, and a finished run
    returns its recorded result at once. nproc > 1 runs under torchrun (the global batch stays the track's).
    `compile`: "auto" | "on" | "off" (harness.train.compiled; True/False mean on/off)."""
    out = Path(out_dir).resolve()
    done = read_result(out)
    if done is not None:
        return done
    if nproc < 1 or nodes < 1:
        raise UsageError(f"--nproc ({nproc}) and --nodes ({nodes}) must be at least 1")
    if trainer == "open_lm":
        from harness.train.openlm.run import train_open_lm

        return train_open_lm(track, data_dir, out, nproc=nproc, nodes=nodes, launcher=launcher, device=device)
    if trainer != "native":
        raise UsageError(f"unknown trainer {trainer!r}: use 'native' or 'open_lm'")
    prepare_run(track, data_dir, out, device=device, compile=compile, precision=precision)
    if launcher == "slurm":
        from harness.train.launch import write_slurm_script

        script = write_slurm_script(out, nodes=nodes, nproc=nproc, module="harness.train.native", args=[str(out)])
        raise TrainingPending(f"wrote {script}; submit it with `sbatch {script}` and re-run this command when it ends")
    if launcher != "local":
        raise UsageError(f"unknown launcher {launcher!r}: use 'local' or 'slurm'")
    if nproc == 1 and nodes == 1:
        from harness.train.native import run_worker

        run_worker(out, progress)
    else:
        from harness.train.launch import torchrun_command

        cmd = torchrun_command(nproc=nproc, module="harness.train.native", args=[str(out)])
        if subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode != 0:
            raise HarnessError(f"training failed under torchrun ({' '.join(cmd)}); re-run to resume")
    result = read_result(out)
    if result is None:
        raise HarnessError(f"training in {out} ended without its completion marker; re-run to resume")
    return result


__all__ = ["Launcher", "TrainResult", "Trainer", "TrainingPending", "prepare_run", "read_result", "train"]
