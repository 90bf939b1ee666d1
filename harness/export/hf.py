"""`harness export --format hf`: a checkpoint -> a Hugging Face model folder that transformers loads.

The folder holds config.json (`model_type` "harness_open_lm", `auto_map` to the two code files), the model code
(`configuration_harness_open_lm.py`, `modeling_harness_open_lm.py`, loaded with `trust_remote_code=True`), the
weights as model.safetensors (open_lm's names under `model.`, so the harness and open_lm read them back by
stripping the prefix), the track's tokenizer.json byte for byte (its sha256 pin still holds) with
tokenizer_config.json and special_tokens_map.json, generation_config.json and a README.md.

No native transformers architecture computes open_lm's function (see the model code's docstring), so the code
ships with the weights. After writing, the folder is loaded with transformers and its logits compared with the
harness model's on a fixed sequence (`verify`), so a folder that is written is known to load and to agree.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, UsageError
from harness.evaluate.checkpoint import HF_MODEL_TYPE

if TYPE_CHECKING:
    import torch

    from harness.evaluate.checkpoint import CheckpointInfo
    from harness.tracks import ModelShape, TokenizerSpec, Track

CODE_DIR = Path(__file__).parent / "hf_code"
CODE_FILES = ("configuration_harness_open_lm.py", "modeling_harness_open_lm.py")
CONFIG_CLASS = "configuration_harness_open_lm.HarnessOpenLMConfig"
MODEL_CLASS = "modeling_harness_open_lm.HarnessOpenLMForCausalLM"
WEIGHTS = "model.safetensors"
DTYPES = ("float32", "bfloat16", "float16")
#: Largest max abs logit difference the float32 check accepts (measured: ~1e-6 on the debug and nano shapes).
TOLERANCE = 1e-4
INSTALL_HINT = "pip install transformers"


@dataclass(frozen=True)
class ExportResult:
    """What `export_hf` wrote: the folder, its files, the source weights, and the verified logit difference."""

    out: Path
    files: tuple[str, ...]
    source: Path
    track: str | None
    dtype: str
    max_abs_diff: float | None  # None when not verified


def require_transformers(what: str) -> None:
    """A clear UsageError (exit 2) when transformers is not importable."""
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        raise UsageError(f"{what} needs transformers, which is not installed: {INSTALL_HINT}")


def hf_config(
    shape: ModelShape, spec: TokenizerSpec, *, track: Track | None, dtype: str = "float32",
    source: str = "", tokens: dict[str, str | None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """config.json for `shape` (read back by `harness.evaluate.checkpoint.shape_from_hf_config`)."""
    from harness import __version__

    if shape.weight_tying:
        raise HarnessError("exporting a model with tied embeddings is not supported (no harness track ties them)")
    if shape.positional != "rotary":
        raise HarnessError(f"positional embedding {shape.positional!r} cannot be exported (only rotary)")
    tokens = tokens or {}
    harness_meta: dict[str, Any] = {
        "track": track.name if track else None,
        "track_version": track.version if track else None,
        "tokenizer": dict(
            name=spec.name, source=spec.source, eot_id=spec.eot_id, pad_id=spec.pad_id, sha256=spec.sha256
        ),
        "source": source,
        "harness_version": __version__,
    }
    return {
        "architectures": ["HarnessOpenLMForCausalLM"],
        "model_type": HF_MODEL_TYPE,
        "auto_map": {"AutoConfig": CONFIG_CLASS, "AutoModelForCausalLM": MODEL_CLASS},
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.d_model,
        "num_hidden_layers": shape.n_layers,
        "num_attention_heads": shape.n_heads,
        "intermediate_size": shape.ffn_hidden,
        "max_position_embeddings": shape.context,
        "norm_type": shape.norm,
        "norm_eps": shape.norm_eps,
        "qk_norm": shape.qk_norm,
        "post_embed_norm": shape.post_embed_norm,
        "rope_theta": 10000.0,
        "ffn_multiple_of": shape.ffn_multiple_of,
        "tie_word_embeddings": False,
        "use_cache": False,
        "bos_token_id": spec.eot_id,
        "eos_token_id": spec.eot_id,
        "pad_token_id": _pad_id(spec, tokens),
        "dtype": dtype,
        "torch_dtype": dtype,  # the name transformers 4.x reads
        "harness": harness_meta,
    }


def _pad_id(spec: TokenizerSpec, tokens: dict[str, str | None]) -> int:
    pad = tokens.get("pad_token")
    return spec.pad_id if pad and pad != tokens.get("eos_token") else spec.eot_id


def hf_state(state: dict[str, torch.Tensor], dtype: str = "float32") -> dict[str, torch.Tensor]:
    """The harness/open_lm state dict -> the exported names (`model.` + open_lm's name), rotary buffers dropped
    (the model code recomputes them), contiguous tensors in `dtype` for safetensors."""
    import torch

    target = getattr(torch, dtype)
    return {
        f"model.{k}": v.detach().to(target).contiguous()
        for k, v in state.items()
        if not k.endswith("pos_embed.inv_freq")
    }


def special_tokens(tokenizer: Any, spec: TokenizerSpec) -> dict[str, str | None]:
    """eos/bos = the track's end-of-document token; pad = the track's pad token when it is a special token of the
    tokenizer (the sandbox's `<|pad|>`), else the end-of-document token (GPT-NeoX's pad id 50256 is ordinary
    whitespace, only ever used to fill the last training sequence)."""
    eot = tokenizer.id_to_token(spec.eot_id)
    if eot is None:
        raise HarnessError(f"tokenizer {spec.name!r} has no token with the end-of-document id {spec.eot_id}")
    specials = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
    pad = tokenizer.id_to_token(spec.pad_id)
    return {"bos_token": eot, "eos_token": eot, "unk_token": eot, "pad_token": pad if pad in specials else eot}


def tokenizer_config(tokens: dict[str, str | None], context: int) -> dict[str, Any]:
    """tokenizer_config.json: a fast tokenizer over tokenizer.json; special-token strings inside text are text
    (`split_special_tokens`, as the harness encodes documents), no BOS added (the harness adds none)."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **tokens,
        "model_max_length": context,
        "split_special_tokens": True,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
    }


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is a file; give a folder to export into")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} exists and is not empty; pass --force to overwrite the export there")


def export_hf(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], *, track: Track | None = None,
    tokenizer_file: str | None = None, force: bool = False, dtype: str = "float32", verify: bool = True,
) -> ExportResult:  # fmt: skip
    """Write the Hugging Face folder `out` for `checkpoint` (what `harness evaluate` accepts). With `verify`,
    load it with transformers and compare logits with the harness model (float32: max abs difference <=
    TOLERANCE, else HarnessError)."""
    from harness.evaluate.checkpoint import load_model, resolve_checkpoint
    from harness.tokenizer import load_tokenizer, resolve_tokenizer_file

    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if verify:
        require_transformers("harness export (to check the exported folder; --no-verify skips the check)")
    out = Path(out)
    _check_out(out, force)
    info = resolve_checkpoint(checkpoint, track=track)
    tok_path = tokenizer_file or info.tokenizer_file
    tokenizer = load_tokenizer(info.tokenizer, path=tok_path)  # checks the sha256 pin
    tok_json = resolve_tokenizer_file(info.tokenizer, path=tok_path)
    if tokenizer.get_vocab_size() > info.shape.vocab_size:
        raise HarnessError(
            f"tokenizer {info.tokenizer.name!r} has {tokenizer.get_vocab_size()} tokens but the model only "
            f"{info.shape.vocab_size} rows: wrong --track or --tokenizer-file?"
        )
    model = load_model(info, "cpu")
    tokens = special_tokens(tokenizer, info.tokenizer)
    from harness.tracks import get_track

    track_obj = track or (get_track(info.track) if info.track else None)
    config = hf_config(info.shape, info.tokenizer, track=track_obj, dtype=dtype, source=str(info.weights),
                       tokens=tokens)  # fmt: skip
    files = _write_folder(out, model, config, tokens, tok_json, info, dtype)
    diff = verify_export(out, model, tokenizer, dtype) if verify else None
    return ExportResult(out, files, info.weights, info.track, dtype, diff)


def _write_folder(
    out: Path, model: Any, config: dict[str, Any], tokens: dict[str, str | None], tok_json: Path,
    info: CheckpointInfo, dtype: str,
) -> tuple[str, ...]:  # fmt: skip
    """Write every file into a sibling staging folder, then move them into `out` (a reader never sees a folder
    with half a weights file)."""
    from safetensors.torch import save_file

    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        save_file(hf_state(model.state_dict(), dtype), str(staging / WEIGHTS), metadata={"format": "pt"})
        dump = lambda name, data: (staging / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")  # noqa: E731
        dump("config.json", config)
        dump("generation_config.json", {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")})
        dump("tokenizer_config.json", tokenizer_config(tokens, info.shape.context))
        dump("special_tokens_map.json", tokens)
        shutil.copyfile(tok_json, staging / "tokenizer.json")
        for name in CODE_FILES:
            shutil.copyfile(CODE_DIR / name, staging / name)
        (staging / "README.md").write_text(model_card(config, info), encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        names = tuple(sorted(p.name for p in staging.iterdir()))
        for name in names:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def model_card(config: dict[str, Any], info: CheckpointInfo) -> str:
    meta = config["harness"]
    track = f"track `{meta['track']}` (version {meta['track_version']})" if meta["track"] else "an open_lm run"
    return (
        f"# open_lm decoder exported by the harness\n\n"
        f"Trained on {track}; exported from `{info.weights.name}` by harness {meta['harness_version']}. "
        f"{config['num_hidden_layers']} layers, width {config['hidden_size']}, {config['num_attention_heads']} "
        f"heads, context {config['max_position_embeddings']}, vocabulary {config['vocab_size']} "
        f"(tokenizer `{meta['tokenizer']['name']}`).\n\n"
        "```python\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        'model = AutoModelForCausalLM.from_pretrained("PATH", trust_remote_code=True)\n'
        'tokenizer = AutoTokenizer.from_pretrained("PATH", trust_remote_code=True)\n'
        "```\n\n"
        "The model code ships in this folder (`trust_remote_code=True`): open_lm normalises queries and keys with "
        "a gain-only LayerNorm over the full width, which no built-in transformers architecture does. Logits are "
        "float32. `lm_eval --model hf --model_args pretrained=PATH,trust_remote_code=True` evaluates it; "
        "`harness evaluate PATH` reads it back.\n"
    )


def probe_ids(tokenizer: Any, context: int, vocab: int) -> list[list[int]]:
    """Two fixed sequences to compare logits on: tokenized text, and ids spread over the whole vocabulary."""
    text = "The river runs north to the old city, where the king sings of gold and silver ships. " * 8
    ids = tokenizer.encode(text, add_special_tokens=False).ids[: min(context, 64)]
    spread = [(i * 7919) % vocab for i in range(len(ids))]
    return [ids, spread]


def verify_export(out: Path, model: Any, tokenizer: Any, dtype: str = "float32") -> float:
    """Load `out` with transformers and return the max abs difference of its float32 logits from the harness
    model's (whose weights are first rounded to `dtype`, as exported). Raises HarnessError above TOLERANCE
    (float32) or when the folder does not load."""
    import torch

    from harness.export.load import load_hf_model

    hf = load_hf_model(out)
    ids = torch.tensor(probe_ids(tokenizer, model.shape.context, model.shape.vocab_size))
    reference = model
    if dtype != "float32":
        import copy

        reference = copy.deepcopy(model)
        with torch.no_grad():
            for p in reference.parameters():
                p.copy_(p.to(getattr(torch, dtype)).float())
    with torch.no_grad():
        diff = float((hf(ids).logits.float() - reference(ids)).abs().max())
    if not diff <= TOLERANCE:
        raise HarnessError(
            f"{out}: the exported model's logits differ from the harness model's by {diff:.3g} (more than "
            f"{TOLERANCE}); the folder is not trustworthy, please report this"
        )
    return diff
