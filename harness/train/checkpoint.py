"""The run folder of a training run, in open_lm's layout, with atomic writes.

out_dir/
  run.json                  what to train (track, data, options): read by every process
  model.json                open_lm's model config (`--model`)
  params.txt                open_lm-style `name: value` lines (model, track, tokenizer, seed, recipe ...)
  train_log.jsonl           one row per logged step
  checkpoints/epoch_N.pt    {epoch, name, state_dict, step, samples_seen, evaluation_loss}
  checkpoints/optimizer_N.pt {epoch, name, optimizer}
  checkpoints/stats_N.pt    {is_final_checkpoint, step, RNG states, losses, wall time}: written last, so a
                            checkpoint counts only once its stats file exists
  train_done.json           the TrainResult, written last when training finished
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.io.files import write_bytes_atomic, write_json_atomic

CHECKPOINT_DIR = "checkpoints"
COMPLETION_MARKER = "train_done.json"
LOG_FILE = "train_log.jsonl"


def write_json(path: Path, data: Any) -> None:
    """A JSON file of the run folder (indent 2, fsynced: it must survive a power loss)."""
    write_json_atomic(path, data, indent=2, durable=True)


def atomic_torch_save(path: Path, obj: Any) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue(), durable=True)


def checkpoint_paths(out_dir: Path, epoch: int) -> dict[str, Path]:
    ckpt = out_dir / CHECKPOINT_DIR
    return {k: ckpt / f"{k}_{epoch}.pt" for k in ("epoch", "optimizer", "stats")}


def completed_checkpoints(out_dir: Path) -> list[int]:
    """Epoch numbers whose three files are all present (stats is written last), ascending."""
    ckpt = out_dir / CHECKPOINT_DIR
    if not ckpt.is_dir():
        return []
    epochs = sorted(int(m.group(1)) for p in ckpt.iterdir() if (m := re.fullmatch(r"stats_(\d+)\.pt", p.name)))
    return [e for e in epochs if all(p.is_file() for p in checkpoint_paths(out_dir, e).values())]


def write_params(path: Path, params: dict[str, Any]) -> None:
    """open_lm's params.txt: one `name: value` line per argument, sorted by name."""
    write_bytes_atomic(path, "".join(f"{k}: {params[k]}\n" for k in sorted(params)).encode(), durable=True)


def read_params(path: Path) -> dict[str, str]:
    """Parse a params.txt (ours or open_lm's) into strings."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def truncate_log(path: Path, last_step: int) -> None:
    """Drop log rows after `last_step` (they came from the part of a killed run that is being redone)."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = []
    for line in rows:
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError):
            break  # a torn last line from a kill: everything after it is dropped too
    write_bytes_atomic(path, "".join(f"{line}\n" for line in kept).encode(), durable=True)
