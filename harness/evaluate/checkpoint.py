"""Finding and loading a checkpoint to evaluate: ours and open_lm's (params.txt + model JSON), safetensors, or a
folder written by `harness export --format hf` (config.json + model.safetensors + tokenizer.json).

Weights load tensors-only (`harness.model.load_weights`, weights_only=True): a checkpoint never runs code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, UsageError
from harness.train.checkpoint import read_params

if TYPE_CHECKING:
    from harness.tracks import ModelShape, TokenizerSpec, Track

#: The stage folder of a `harness submit` entry folder (runs/<track>/<entry>/) that holds its training run.
ENTRY_TRAIN = "train"

#: `model_type` in the config.json of a folder written by `harness export --format hf`.
HF_MODEL_TYPE = "harness_open_lm"

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
    tokenizer_file: Path | None = None  # the tokenizer.json to load (an exported folder's own), else the spec's


def _epoch(p: Path) -> int:
    m = re.search(r"epoch_(\d+)\.pt$", p.name)
    return int(m.group(1)) if m else -1


def find_weights(path: Path) -> Path:
    """The file to load: the path itself, or the newest `epoch_N.pt` / a `.safetensors` file in a folder: a run
    folder, its checkpoints/ folder, or an entry folder of `harness submit` (runs/<track>/<entry>: its train/)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise UsageError(
            f"checkpoint {path} does not exist (give an entry folder runs/<track>/<entry>, a run folder, a "
            "checkpoints/ folder or a file)"
        )
    for folder in (path / "checkpoints", path, path / ENTRY_TRAIN / "checkpoints", path / ENTRY_TRAIN):
        epochs = sorted(folder.glob("epoch_*.pt"), key=_epoch)
        if epochs:
            return epochs[-1]
        safes = sorted(folder.glob("*.safetensors"))
        if len(safes) == 1:
            return safes[0]
    raise UsageError(_no_checkpoint(path))


def _no_checkpoint(path: Path) -> str:
    """Why `path` holds no checkpoint, and which folder to pass instead."""
    if (path / ENTRY_TRAIN).is_dir():
        return (
            f"entry folder {path} has no checkpoint in {path / ENTRY_TRAIN / 'checkpoints'} yet (its train stage has "
            "not finished): re-run the same `harness submit` to resume it, then evaluate this folder again"
        )
    if (path / "checkpoints").is_dir():
        return f"no checkpoint in {path / 'checkpoints'} yet: the training run has not written its first one"
    entries = sorted(p for p in path.iterdir() if p.is_dir() and (p / ENTRY_TRAIN).is_dir())
    if entries:
        names = ", ".join(p.name for p in entries[:3]) + (", ..." if len(entries) > 3 else "")
        return f"{path} holds entry folders ({names}), not a checkpoint: pass one of them, e.g. {entries[0]}"
    return (
        f"no checkpoint in {path}: pass the entry folder that `harness submit` printed (runs/<track>/<entry>), a "
        "training run folder (holding checkpoints/epoch_N.pt), its checkpoints/ folder, or an epoch_N.pt or "
        ".safetensors file"
    )


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
    exported = read_exported_config(weights.parent) if weights.suffix == ".safetensors" else None
    if exported is not None:
        return _exported_info(weights, exported, track, tokenizer)
    params_file = _find_params(weights)
    params = read_params(params_file) if params_file else {}
    if track is None and params.get("track"):
        track = get_track(params["track"])
    if track is None:  # open_lm's own run folder: its model JSON, and the tokenizer of the data it trained on
        shape = _shape_from_params(params, params_file, weights)
        spec = tokenizer or _data_tokenizer(params) or TokenizerSpec(name=NEOX, source="hub", eot_id=0, pad_id=1)
        track = _track_of(shape, spec)
    if track is not None:
        shape, spec = track.model, tokenizer or track.tokenizer
    epoch = _read_epoch(weights)
    return CheckpointInfo(weights, shape, spec, track.name if track else None, epoch, params)


def read_exported_config(folder: Path) -> dict[str, Any] | None:
    """The config.json of a folder that `harness export --format hf` wrote, None for any other folder."""
    file = folder / "config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{file}: not valid JSON ({exc})") from exc
    return config if isinstance(config, dict) and config.get("model_type") == HF_MODEL_TYPE else None


def shape_from_hf_config(config: dict[str, Any]) -> ModelShape:
    """The model shape an exported config.json describes (the inverse of `harness.export.hf.hf_config`)."""
    from harness.tracks import ModelShape

    try:
        shape = ModelShape(
            d_model=int(config["hidden_size"]), n_layers=int(config["num_hidden_layers"]),
            n_heads=int(config["num_attention_heads"]), vocab_size=int(config["vocab_size"]),
            context=int(config["max_position_embeddings"]), ffn_multiple_of=int(config.get("ffn_multiple_of", 256)),
            norm=config["norm_type"], norm_eps=float(config["norm_eps"]), qk_norm=bool(config["qk_norm"]),
            post_embed_norm=bool(config.get("post_embed_norm", False)),
            weight_tying=bool(config.get("tie_word_embeddings", False)),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"exported config.json does not describe a model shape ({exc})") from exc
    if shape.ffn_hidden != int(config.get("intermediate_size", shape.ffn_hidden)):
        raise HarnessError(
            f"exported config.json: intermediate_size {config['intermediate_size']} is not open_lm's SwiGLU width "
            f"{shape.ffn_hidden} for hidden_size {shape.d_model} and ffn_multiple_of {shape.ffn_multiple_of}"
        )
    return shape


def _exported_info(
    weights: Path, config: dict[str, Any], track: Track | None, tokenizer: TokenizerSpec | None
) -> CheckpointInfo:
    """An exported folder: its shape from config.json, its track and tokenizer from the `harness` entry, the
    folder's own tokenizer.json."""
    from harness.tracks import TokenizerSpec, get_track

    meta = config.get("harness") or {}
    shape = shape_from_hf_config(config)
    if track is None and meta.get("track"):
        try:
            known = get_track(meta["track"])
        except HarnessError:
            known = None  # a track this harness does not ship: evaluate by the shape alone
        track = known if known is not None and known.model == shape else None
    if track is not None and track.model != shape:
        raise UsageError(f"{weights.parent}: the exported model's shape is not track {track.name!r}'s")
    spec = tokenizer
    if spec is None and isinstance(meta.get("tokenizer"), dict):
        try:
            spec = TokenizerSpec(**meta["tokenizer"])
        except (TypeError, ValueError) as exc:
            raise HarnessError(f"{weights.parent / 'config.json'}: bad harness.tokenizer entry ({exc})") from exc
    if spec is None:
        spec = track.tokenizer if track else TokenizerSpec(name=NEOX, source="hub", eot_id=0, pad_id=1)
    own = weights.parent / "tokenizer.json"
    return CheckpointInfo(weights, shape, spec, track.name if track else None, None, {},
                          own if own.is_file() and tokenizer is None else None)  # fmt: skip


def _shape_from_params(params: dict[str, str], params_file: Path | None, weights: Path) -> ModelShape:
    from harness.model import shape_from_open_lm_config

    model = params.get("model")
    if not model:
        raise UsageError(
            f"{weights}: cannot tell the model shape: no params.txt with 'track' or 'model' beside it; "
            "pass --track NAME"
        )
    json_path = _model_json(model, params_file)
    try:
        config = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{json_path}: not valid JSON ({exc})") from exc
    qk = params.get("qk_norm")
    extra: dict[str, Any] = {"model_norm": params.get("model_norm", "gain_only_lp_layer_norm")}
    if qk is not None:
        extra["qk_norm"] = qk
    return shape_from_open_lm_config(config, extra)


def _model_json(model: str, params_file: Path | None) -> Path:
    """The model JSON that params.txt's `model` names: a path, or a name as open_lm writes it (the stem of the
    JSON it was given, or one of its built-in configs): `<name>.json` in the run folder or the two folders above it
    (the harness keeps `model.json` in the training folder holding `open_lm/<run>/`), else open_lm's own."""
    path = Path(model)
    if path.is_file():
        return path
    folders = list(params_file.parents[:3]) if params_file is not None else []
    candidates = [f / model for f in folders] if path.suffix == ".json" else [f / f"{model}.json" for f in folders]
    builtin = _open_lm_configs()
    if builtin is not None:
        candidates.append(builtin / f"{path.stem}.json")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates) or "nowhere (no params.txt)"
    hint = "" if builtin is not None else "; open_lm is not installed, so its built-in configs are not available"
    raise UsageError(f"{params_file}: model config {model!r} not found (looked at {where}{hint}); pass --track NAME")


def _open_lm_configs() -> Path | None:
    """open_lm's built-in model configs (`open_lm/model_configs/`), found without importing open_lm."""
    import importlib.util

    spec = importlib.util.find_spec("open_lm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    return folder if folder.is_dir() else None


def _data_tokenizer(params: dict[str, str]) -> TokenizerSpec | None:
    """The tokenizer named by params.txt, else by the stats.json of the tokenized data that open_lm's
    `dataset_manifest` points at (data written by `harness tokenize`)."""
    import ast

    from harness.tracks import TokenizerSpec

    if params.get("tokenizer"):
        name, sha, eot, pad = (
            params["tokenizer"],
            params.get("tokenizer_sha256", ""),
            params.get("eot_id", "0"),
            params.get("pad_id", "1"),
        )
    else:
        try:
            manifests = ast.literal_eval(params.get("dataset_manifest", "None"))
        except (ValueError, SyntaxError):
            return None
        manifest = manifests[0] if isinstance(manifests, list) and manifests else manifests
        stats = Path(str(manifest)).parent / "stats.json" if isinstance(manifest, str) else None
        if stats is None or not stats.is_file():
            return None
        data = json.loads(stats.read_text(encoding="utf-8"))
        name, sha, eot, pad = data["tokenizer"], data.get("tokenizer_sha256", ""), data["eot_id"], data["pad_id"]
    return TokenizerSpec(name=name, source=_tokenizer_source(name), eot_id=int(eot), pad_id=int(pad), sha256=sha)


def _tokenizer_source(name: str) -> str:
    from harness.tracks import all_tracks

    sources = {t.tokenizer.name: t.tokenizer.source for t in all_tracks()}
    return sources.get(name, "hub")


def _track_of(shape: ModelShape, tokenizer: TokenizerSpec) -> Track | None:
    """The shipped track with this model shape and tokenizer, when exactly one has them (its suite and pool are then
    the ones to evaluate on); None otherwise."""
    from harness.tracks import all_tracks

    same = [t for t in all_tracks() if t.model == shape and t.tokenizer.name == tokenizer.name]
    return same[0] if len(same) == 1 else None


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
