"""Finding and loading a checkpoint to evaluate: ours and open_lm's (params.txt + model JSON), or safetensors.

Weights load tensors-only (`harness.model.load_weights`, weights_only=True): a checkpoint never runs code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, UsageError

if TYPE_CHECKING:
    from harness.tracks import ModelShape, TokenizerSpec, Track

#: The tokenizer of DCLM's tracks, for open_lm checkpoints that name no harness track.
NEOX = "EleutherAI/gpt-neox-20b"


@dataclass(frozen=True)
class CheckpointInfo:
    """What `resolve_checkpoint` found: the weights file, the shape to build and the tokenizer to use."""

    weights: Path
    shape: ModelShape
    tokenizer: TokenizerSpec
    track: str | None
    epoch: int | None  # N of epoch_N.pt (open_lm's checkpoint number), None for other files
    params: dict[str, str]


def read_params(path: Path) -> dict[str, str]:
    """open_lm's params.txt: one `name: value` line per argument."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def _epoch(p: Path) -> int:
    m = re.search(r"epoch_(\d+)\.pt$", p.name)
    return int(m.group(1)) if m else -1


def find_weights(path: Path) -> Path:
    """The file to load: the path itself, or the newest `epoch_N.pt` / a `.safetensors` file in a folder."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise UsageError(f"checkpoint {path} does not exist (give a run folder, a checkpoints/ folder or a file)")
    for folder in (path / "checkpoints", path):
        epochs = sorted(folder.glob("epoch_*.pt"), key=_epoch)
        if epochs:
            return epochs[-1]
        safes = sorted(folder.glob("*.safetensors"))
        if len(safes) == 1:
            return safes[0]
    raise UsageError(f"no checkpoint in {path}: expected checkpoints/epoch_N.pt, epoch_N.pt or one .safetensors file")


def _find_params(weights: Path) -> Path | None:
    for folder in (weights.parent, weights.parent.parent):
        if (folder / "params.txt").is_file():
            return folder / "params.txt"
    return None


def resolve_checkpoint(
    path: str | Path, *, track: Track | None = None, tokenizer: TokenizerSpec | None = None
) -> CheckpointInfo:
    """Which weights, which model shape and which tokenizer: an explicit track wins, then params.txt's `track`,
    then params.txt's model JSON (open_lm) with the GPT-NeoX tokenizer of DCLM."""
    from harness.tracks import TokenizerSpec, get_track

    weights = find_weights(Path(path))
    params_file = _find_params(weights)
    params = read_params(params_file) if params_file else {}
    if track is None and params.get("track"):
        track = get_track(params["track"])
    if track is not None:
        shape, spec = track.model, tokenizer or track.tokenizer
    else:
        shape = _shape_from_params(params, params_file, weights)
        spec = tokenizer or TokenizerSpec(name=params.get("tokenizer") or NEOX, source="hub", eot_id=0, pad_id=1)
    epoch = _read_epoch(weights)
    return CheckpointInfo(weights, shape, spec, track.name if track else None, epoch, params)


def _shape_from_params(params: dict[str, str], params_file: Path | None, weights: Path) -> ModelShape:
    from harness.model import shape_from_open_lm_config

    model = params.get("model")
    if not model:
        raise UsageError(
            f"{weights}: cannot tell the model shape: no params.txt with 'track' or 'model' beside it; "
            "pass --track NAME"
        )
    json_path = Path(model)
    if not json_path.is_absolute() and params_file is not None and not json_path.is_file():
        json_path = params_file.parent / model
    if not json_path.is_file():
        raise UsageError(f"{params_file}: model config {model} not found; pass --track NAME or fix the path")
    try:
        config = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{json_path}: not valid JSON ({exc})") from exc
    qk = params.get("qk_norm")
    extra: dict[str, Any] = {"model_norm": params.get("model_norm", "gain_only_lp_layer_norm")}
    if qk is not None:
        extra["qk_norm"] = qk
    return shape_from_open_lm_config(config, extra)


def _read_epoch(weights: Path) -> int | None:
    m = re.search(r"epoch_(\d+)\.pt$", weights.name)
    return int(m.group(1)) if m else None


def load_model(info: CheckpointInfo, device: str = "cpu") -> Any:
    """The model with the checkpoint's weights, in eval mode on `device`."""
    from harness.model import build_model, load_state, load_weights

    state = load_weights(info.weights)
    embed = state.get("tok_embeddings.weight")
    if embed is not None and tuple(embed.shape) != (info.shape.vocab_size, info.shape.d_model):
        raise HarnessError(
            f"{info.weights}: embedding is {tuple(embed.shape)} but the shape expects "
            f"({info.shape.vocab_size}, {info.shape.d_model}); is --track right?"
        )
    model = build_model(info.shape, device="meta")
    model = model.to_empty(device=device)
    load_state(model, state)
    return model.eval()
