"""Training: `train(track, data_dir, out_dir)` with the native trainer or open_lm, resumable, with a completion marker.

Light imports only: torch is imported by the trainer itself (harness.train.native), in the process that trains.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError, UsageError
from harness.tracks import Track
from harness.train.prepare import prepare_run
from harness.train.result import SlurmOptions, TrainingPending, TrainResult, read_result

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
    sharding: str | None = None,
    slurm: SlurmOptions | None = None,
) -> TrainResult:
    """Train `track`'s model on the shards in `data_dir` into `out_dir`; re-running resumes, and a finished run
    returns its recorded result at once. nproc > 1 runs under torchrun (the global batch stays the track's), with
    DDP or FSDP as `sharding` says (default: the track's recipe; the native trainer only). launcher "slurm" writes
    `train.sbatch` and submits it (see `slurm`): TrainingPending says the job's id, unless `slurm.follow` waited for
    it to complete. `compile`: "auto" | "on" | "off" (harness.train.compiled; True/False mean on/off)."""
    out = Path(out_dir).resolve()
    done = read_result(out)
    if done is not None:
        return done
    if nproc < 1 or nodes < 1:
        raise UsageError(f"--nproc ({nproc}) and --nodes ({nodes}) must be at least 1")
    if sharding not in (None, "ddp", "fsdp"):
        raise UsageError(f"unknown sharding {sharding!r}: use 'ddp' or 'fsdp'")
    if trainer == "open_lm":
        if sharding is not None:
            raise UsageError("--sharding applies to the native trainer; open_lm's launch follows the track's flags")
        from harness.train.openlm.run import train_open_lm

        return train_open_lm(
            track, data_dir, out, nproc=nproc, nodes=nodes, launcher=launcher, device=device, slurm=slurm
        )
    if trainer != "native":
        raise UsageError(f"unknown trainer {trainer!r}: use 'native' or 'open_lm'")
    if launcher == "slurm":

        def write() -> Path:  # only when a job is to be submitted: never under a running one
            from harness.train.launch import write_slurm_script

            prepare_run(track, data_dir, out, device=device, compile=compile, precision=precision, sharding=sharding)
            return write_slurm_script(
                out, nodes=nodes, nproc=nproc, module="harness.train.native", args=[str(out)], device=device
            )

        return on_slurm(out, write, slurm or SlurmOptions())
    prepare_run(track, data_dir, out, device=device, compile=compile, precision=precision, sharding=sharding)
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


def on_slurm(out: Path, write: Callable[[], Path], slurm: SlurmOptions) -> TrainResult:
    """Hand the training in `out` to Slurm (`write` writes its batch script); the result once a followed job
    completed, else TrainingPending with the job's id and how to follow it."""
    from harness.train.slurm import hand_over

    message = hand_over(
        out, write, what="training", log=f"{out}/slurm-%j.out", submit=slurm.submit, follow=slurm.follow,
        notify=slurm.notify,
    )  # fmt: skip
    if message is not None:
        raise TrainingPending(message)
    result = read_result(out)
    if result is None:
        raise HarnessError(f"the slurm job for {out} completed without training's completion marker; see its "
                           f"output (slurm-*.out there) and re-run to resume")  # fmt: skip
    return result


__all__ = [
    "Launcher",
    "SlurmOptions",
    "TrainResult",
    "Trainer",
    "TrainingPending",
    "prepare_run",
    "read_result",
    "train",
]
