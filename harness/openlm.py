"""The open_lm backend: train a track with open_lm itself, launched exactly as DCLM launches it.

`open_lm_args` builds DCLM's argument list for a track (reference/dclm-facts.md); `train_open_lm` runs
`torchrun --nproc-per-node N -m open_lm.main <args>` with open_lm's own folder under `out_dir/open_lm/`, then maps
its output into the run folder: `checkpoints/epoch_N.pt` (hard links), `params.txt` (open_lm's lines plus the
harness's track and tokenizer lines) and the completion marker. Re-running resumes (`--resume latest`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UsageError
from harness.tracks import Track
from harness.train import checkpoint as ck

INSTALL_HINT = (
    "open_lm is not installed. It is not on the package index: install it with "
    "`pip install 'harness[openlm]'` (open_lm from its git repository, webdataset==0.2.86 and xformers; needs a "
    "GPU machine), or train with the native trainer (--trainer native)."
)
OPEN_LM_SUBDIR = "open_lm"
RUN_NAME = "run"


def _num(x: float) -> str:
    """Numbers as DCLM writes them (0.003, 3e-05, 1)."""
    return f"{x:g}"


def open_lm_args(
    track: Track, *, model_json: str, manifest: str, logs: str, name: str, multiple_passes: bool
) -> list[str]:
    """DCLM's open_lm argument list for `track` (`--train-num-samples` counts tokens per checkpoint and
    `--epochs` counts checkpoints), plus `--multiple-data-passes` when the data is smaller than the budget."""
    r = track.recipe
    args = [
        "--workers", "2", "--precision", r.precision, "--global-batch-size", str(r.global_batch),
        "--log-every-n-steps", "20", "--grad-clip-norm", _num(r.grad_clip_norm), "--lr", _num(r.lr),
        "--warmup", str(r.warmup), "--model", model_json, "--wd", _num(r.weight_decay), "--beta2", _num(r.beta2),
        "--epochs", str(r.checkpoints), "--resume", "latest", "--seed", str(r.seed), "--accum-freq", str(r.grad_accum),
        "--model-norm", track.model.norm, "--delete-previous-checkpoint", "--lr-cooldown-end", _num(r.cooldown_end_lr),
        "--logs", logs, "--attn-name", "torch_attn", "--log-logit-mean", "--data-tolerate-error-p", "0.09",
        "--data-tolerate-num-ckpts", "0", "--train-num-samples", str(track.tokens // r.checkpoints),
        "--dataset-manifest", manifest, "--data-key", "json.gz", "--name", name, *r.open_lm_flags,
    ]  # fmt: skip
    if track.model.qk_norm:
        args.append("--qk-norm")
    args += ["--z-loss", _num(r.z_loss)]
    if multiple_passes:
        args.append("--multiple-data-passes")
    return args


def check_compatible(track: Track) -> None:
    """open_lm fixes a few things the harness leaves to the track; refuse shapes open_lm would build differently."""
    m = track.model
    if m.ffn_multiple_of != 256:
        raise UsageError(
            f"track {track.name}: open_lm rounds the SwiGLU hidden size to a multiple of 256, the track uses "
            f"{m.ffn_multiple_of}; train this track with --trainer native"
        )
    if m.norm_eps != 1e-5:
        raise UsageError(f"track {track.name}: open_lm's norms use eps 1e-5, the track {m.norm_eps}")
    if track.recipe.beta1 != 0.9 or track.recipe.eps != 1e-8:
        raise UsageError(f"track {track.name}: DCLM's launch leaves beta1 and eps at open_lm's defaults (0.9, 1e-8)")


def data_tokens(manifest_dir: str, context: int) -> int:
    from harness.data.loader import read_manifest

    return sum(s.num_sequences for s in read_manifest(manifest_dir)) * context


def train_open_lm(
    track: Track, data_dir: str, out_dir: Path, *, nproc: int = 1, nodes: int = 1, launcher: str = "local"
) -> Any:
    """Run open_lm on `track` and map its output into `out_dir`; returns a TrainResult."""
    from harness.model import open_lm_model_config
    from harness.train.launch import torchrun_command, write_slurm_script

    if importlib.util.find_spec("open_lm") is None:
        raise HarnessError(INSTALL_HINT)
    check_compatible(track)
    out_dir.mkdir(parents=True, exist_ok=True)
    ck.atomic_write_json(out_dir / "model.json", open_lm_model_config(track.model))
    data_dir = str(data_dir).rstrip("/")
    multiple = data_tokens(data_dir, track.model.context) < track.tokens
    args = open_lm_args(
        track, model_json=str(out_dir / "model.json"), manifest=f"{data_dir}/manifest.jsonl",
        logs=str(out_dir / OPEN_LM_SUBDIR), name=RUN_NAME, multiple_passes=multiple,
    )  # fmt: skip
    if launcher == "slurm":
        from harness.train import TrainingPending

        script = write_slurm_script(out_dir, nodes=nodes, nproc=nproc, module="open_lm.main", args=args)
        raise TrainingPending(f"wrote {script}; submit it with `sbatch {script}`, then re-run to collect the result")
    cmd = torchrun_command(nproc=nproc, module="open_lm.main", args=args)
    start = time.perf_counter()
    if subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode != 0:
        raise HarnessError(f"open_lm failed ({' '.join(cmd)}); its log is in {out_dir / OPEN_LM_SUBDIR / RUN_NAME}")
    return map_output(track, data_dir, out_dir, wall_time_s=time.perf_counter() - start)


def map_output(track: Track, data_dir: str, out_dir: Path, *, wall_time_s: float) -> Any:
    """Bring open_lm's checkpoints and params.txt into the run folder and write the completion marker."""
    import torch

    from harness.model import open_lm_model_config
    from harness.train import TrainResult, native_params

    src = out_dir / OPEN_LM_SUBDIR / RUN_NAME
    ck.atomic_write_json(out_dir / "model.json", open_lm_model_config(track.model))
    ckpts = sorted((src / "checkpoints").glob("epoch_*.pt"), key=lambda p: int(re.findall(r"\d+", p.stem)[0]))
    if not ckpts:
        raise HarnessError(f"open_lm wrote no checkpoint under {src / 'checkpoints'}")
    dest = out_dir / ck.CHECKPOINT_DIR
    dest.mkdir(exist_ok=True)
    for path in (src / "checkpoints").glob("*.pt"):
        _link(path, dest / path.name)
    params = {**native_params(track, data_dir, out_dir), **ck.read_params(src / "params.txt"), "trainer": "open_lm"}
    params["model"] = str(out_dir / "model.json")
    ck.write_params(out_dir / "params.txt", params)
    final = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    samples = int(final.get("samples_seen", 0))
    log = src / "out.log"
    losses = re.findall(r"Loss: ([0-9.]+)", log.read_text(encoding="utf-8")) if log.is_file() else []
    if not losses:
        raise HarnessError(f"{log} reports no training loss: open_lm did not train")
    tokens = samples * track.model.context
    result = TrainResult(
        final_loss=float(losses[-1]), tokens_seen=tokens, steps=samples // track.recipe.global_batch,
        passes=tokens / data_tokens(data_dir, track.model.context), wall_time_s=wall_time_s,
        tokens_per_s=tokens / wall_time_s if wall_time_s > 0 else 0.0, checkpoint=str(dest / ckpts[-1].name),
        log=str(log), trainer="open_lm", resumed_from=None,
    )  # fmt: skip
    from dataclasses import asdict

    ck.atomic_write_json(out_dir / ck.COMPLETION_MARKER, asdict(result))
    return result


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy instead
        shutil.copy2(src, dst)
