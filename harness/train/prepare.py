"""A run folder's fixed inputs: run.json, model.json and params.txt (open_lm's argument names)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.tracks import Track
from harness.train import checkpoint as ck


def prepare_run(
    track: Track,
    data_dir: str,
    out: Path,
    *,
    device: str | None,
    compile: bool | str,
    precision: str | None,
    sharding: str | None = None,
) -> None:
    """Write run.json, model.json and params.txt; refuse to mix a different track or data into a run folder.
    `sharding` (ddp | fsdp) overrides the track's for this launch only: checkpoints hold the full state whatever
    the sharding, so a run may resume under another one, or at another process count."""
    from harness.model import open_lm_model_config
    from harness.train.compiled import normalise_setting

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
        "compile": normalise_setting(compile),
        "precision": precision,
        "sharding": sharding,
    }
    ck.write_json(spec_path, spec)
    ck.write_json(out / "model.json", open_lm_model_config(track.model))
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
