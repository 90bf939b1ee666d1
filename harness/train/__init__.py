"""Training: `train(track, data_dir, out_dir)` with the native trainer or open_lm, resumable, with a completion marker.

Light imports only: torch is imported by the trainer itself (harness.train.native), in the process that trains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError, UsageError
from harness.tracks import Track
from harness.train import checkpoint as ck

Trainer = Literal["native", "open_lm"]
Launcher = Literal["local", "slurm"]


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class TrainingPending(HarnessError):
    """Training was handed to a scheduler (slurm); re-run once the job has finished to collect the result."""


def read_result(out_dir: str | Path) -> TrainResult | None:
    """The result of a finished run (its completion marker), or None while it is unfinished."""
    marker = Path(out_dir) / ck.COMPLETION_MARKER
    if not marker.is_file():
        return None
    return TrainResult.from_dict(json.loads(marker.read_text(encoding="utf-8")))


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
    compile: bool = False,
    precision: str | None = None,
    nodes: int = 1,
) -> TrainResult:
    """Train `track`'s model on the shards in `data_dir` into `out_dir`; re-running resumes, and a finished run
    returns its recorded result at once. nproc > 1 runs under torchrun (the global batch stays the track's)."""
    out = Path(out_dir).resolve()
    done = read_result(out)
    if done is not None:
        return done
    if nproc < 1 or nodes < 1:
        raise UsageError(f"--nproc ({nproc}) and --nodes ({nodes}) must be at least 1")
    if trainer == "open_lm":
        from harness.openlm import train_open_lm

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


def prepare_run(
    track: Track, data_dir: str, out: Path, *, device: str | None, compile: bool, precision: str | None
) -> None:
    """Write run.json, model.json and params.txt; refuse to mix a different track or data into a run folder."""
    from harness.model import open_lm_model_config

    out.mkdir(parents=True, exist_ok=True)
    data_dir = str(data_dir) if "://" in str(data_dir) else str(Path(data_dir).resolve())
    spec_path = out / "run.json"
    if spec_path.is_file():
        old = json.loads(spec_path.read_text(encoding="utf-8"))
        if old["track"] != track.to_dict() or old["data_dir"] != data_dir:
            raise UsageError(
                f"{out} holds a run of another track or data ({old['track']['name']}, {old['data_dir']}): "
                "choose a new --out, or delete that folder to start over"
            )
    spec = {
        "track": track.to_dict(),
        "data_dir": data_dir,
        "device": device,
        "compile": compile,
        "precision": precision,
    }
    ck.atomic_write_json(spec_path, spec)
    ck.atomic_write_json(out / "model.json", open_lm_model_config(track.model))
    ck.write_params(out / "params.txt", native_params(track, data_dir, out))


def native_params(track: Track, data_dir: str, out: Path) -> dict[str, Any]:
    """params.txt of a native run, with open_lm's argument names where open_lm has one, so the evaluator reads
    ours and open_lm's the same way."""
    r, m = track.recipe, track.model
    return {
        "model": str(out / "model.json"), "track": track.name, "track_version": track.version,
        "track_sha256": track.sha256, "tokenizer": track.tokenizer.name, "tokenizer_source": track.tokenizer.source,
        "tokenizer_sha256": track.tokenizer.sha256, "eot_id": track.tokenizer.eot_id, "pad_id": track.tokenizer.pad_id,
        "trainer": "native", "seed": r.seed, "lr": r.lr, "warmup": r.warmup, "wd": r.weight_decay,
        "lr_cooldown_end": r.cooldown_end_lr, "beta1": r.beta1, "beta2": r.beta2, "eps": r.eps,
        "z_loss_coefficient": r.z_loss, "grad_clip_norm": r.grad_clip_norm, "global_batch_size": r.global_batch,
        "accum_freq": r.grad_accum, "precision": r.precision, "epochs": r.checkpoints,
        "train_num_samples": track.tokens // r.checkpoints, "total_steps": track.steps, "seq_len": m.context,
        "vocab_size": m.vocab_size, "model_norm": m.norm, "qk_norm": m.qk_norm, "dataset_manifest": f"{data_dir}/manifest.jsonl",
        "name": out.name, "harness_python": sys.version.split()[0],
    }  # fmt: skip


def result_dict(result: TrainResult) -> dict[str, Any]:
    return asdict(result)
