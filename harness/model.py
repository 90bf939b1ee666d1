"""The open_lm decoder in plain torch, with open_lm's parameter names and shapes.

Pre-norm blocks, rotary position embedding (head dim, halves rotated, base 10000, an `inv_freq` buffer per layer),
SwiGLU feed-forward with fused gate/up weights (`w12`) and `w3`, qk-norm over the full width, gain-only LayerNorm,
no biases, no weight tying. A state dict of this module loads into open_lm's `Transformer` and back without
renaming, so checkpoints move freely between the native trainer, open_lm and the evaluator.

Initialisation follows open_lm: truncated normal (at 3 std) with std 1/sqrt(fan_in), and the output projections of
attention and feed-forward further divided by sqrt(2 * (layer + 1)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.tracks import ModelShape, Track

#: Prefixes that wrappers add to parameter names: DDP, torch.compile, Hugging Face wrappers.
STRIP_PREFIXES = ("module.", "_orig_mod.", "model.")
ROTARY_BASE = 10000.0


def _trunc_normal_(weight: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(weight, std=std, a=-3 * std, b=3 * std)


class GainOnlyLayerNorm(nn.Module):
    """LayerNorm with a gain and no bias (open_lm `gain_only_layer_norm`).

    `low_precision=True` is open_lm's `gain_only_lp_layer_norm`: under autocast the input and gain are cast to the
    autocast dtype and the norm runs there instead of being upcast to float32 as autocast would do.
    """

    def __init__(self, dim: int, eps: float, *, low_precision: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.low_precision = low_precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.low_precision and torch.is_autocast_enabled(x.device.type)):
            return F.layer_norm(x, (x.shape[-1],), self.weight, None, self.eps)
        dtype = torch.get_autocast_dtype(x.device.type)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.layer_norm(x.to(dtype), (x.shape[-1],), self.weight.to(dtype), None, self.eps)


class RmsNorm(nn.Module):
    """open_lm's `rms_norm`: x / rms(x) (computed in float32) times a gain."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def make_norm(shape: ModelShape, dim: int) -> nn.Module:
    if shape.norm == "rms_norm":
        return RmsNorm(dim, shape.norm_eps)
    return GainOnlyLayerNorm(dim, shape.norm_eps, low_precision=shape.norm == "gain_only_lp_layer_norm")


class Rotary(nn.Module):
    """Rotary embedding over the head dim, rotating the two halves (GPT-NeoX / xformers layout, as open_lm)."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.register_buffer("inv_freq", self.default_inv_freq(head_dim))

    @staticmethod
    def default_inv_freq(head_dim: int) -> torch.Tensor:
        return 1.0 / (ROTARY_BASE ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))

    def cos_sin(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin tables [1, T, 1, head_dim] in float32 (computed per call: cheap, and compile-friendly)."""
        t = torch.arange(seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.to(device=device, dtype=torch.float32))
        emb = torch.cat((freqs, freqs), dim=-1)[None, :, None, :]
        return emb.cos(), emb.sin()

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotate x [B, T, H, D]: x * cos + rotate_half(x) * sin, with rotate_half(a, b) = (-b, a)."""
        x1, x2 = x.float().chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
        return (x.float() * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, shape: ModelShape, layer_id: int) -> None:
        super().__init__()
        d = shape.d_model
        self.n_heads, self.head_dim = shape.n_heads, shape.head_dim
        self.in_proj = nn.Linear(d, 3 * d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.pos_embed = Rotary(shape.head_dim)
        # open_lm normalises q and k over the full width (before splitting into heads)
        self.q_norm = make_norm(shape, d) if shape.qk_norm else nn.Identity()
        self.k_norm = make_norm(shape, d) if shape.qk_norm else nn.Identity()
        self.layer_id = layer_id

    def reset_parameters(self) -> None:
        std = 1.0 / math.sqrt(self.in_proj.in_features)
        _trunc_normal_(self.in_proj.weight, std)
        _trunc_normal_(self.out_proj.weight, std / math.sqrt(2 * (self.layer_id + 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (z.view(b, t, self.n_heads, self.head_dim) for z in (q, k, v))
        cos, sin = self.pos_embed.cos_sin(t, x.device)
        q, k = self.pos_embed(q, cos, sin).to(v.dtype), self.pos_embed(k, cos, sin).to(v.dtype)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    """out = w3(silu(gate) * up) with [gate, up] = w12(x).chunk(2) (xformers' SwiGLU layout, as open_lm)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, shape: ModelShape, layer_id: int) -> None:
        super().__init__()
        self.attention = Attention(shape, layer_id)
        self.feed_forward = SwiGLU(shape.d_model, shape.ffn_hidden)
        self.attention_norm = make_norm(shape, shape.d_model)
        self.ffn_norm = make_norm(shape, shape.d_model)
        self.layer_id = layer_id

    def reset_parameters(self) -> None:
        self.attention.reset_parameters()
        _trunc_normal_(self.feed_forward.w12.weight, 1.0 / math.sqrt(self.feed_forward.w12.in_features))
        std = 1.0 / math.sqrt(self.feed_forward.w3.in_features) / math.sqrt(2 * (self.layer_id + 1))
        _trunc_normal_(self.feed_forward.w3.weight, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x))
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """The open_lm decoder. `forward(input_ids [B, T]) -> logits [B, T, V]` in float32."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.shape = shape
        d = shape.d_model
        self.tok_embeddings = nn.Embedding(shape.vocab_size, d)
        self.post_embed_norm = make_norm(shape, d) if shape.post_embed_norm else nn.Identity()
        self.layers = nn.ModuleList(Block(shape, i) for i in range(shape.n_layers))
        self.norm = make_norm(shape, d)
        self.output = nn.Linear(d, shape.vocab_size, bias=False)
        if shape.weight_tying:
            self.tok_embeddings.weight = self.output.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """open_lm's initialisation (norm gains are ones, set at construction)."""
        for layer in self.layers:
            layer.reset_parameters()
        std = 1.0 / math.sqrt(self.shape.d_model)
        _trunc_normal_(self.output.weight, std)
        _trunc_normal_(self.tok_embeddings.weight, std)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # like open_lm (and llama), logits are returned in float32 whatever the compute dtype
        return self.output(self.hidden_states(input_ids)).float()

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The final norm's output [B, T, d], which `output` projects to the logits."""
        x = self.post_embed_norm(self.tok_embeddings(input_ids))
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def build_model(track_or_shape: Track | ModelShape, device: str | torch.device | None = None) -> Transformer:
    """A freshly initialised model (seed torch first for a reproducible init). `device="meta"` allocates nothing."""
    shape = getattr(track_or_shape, "model", track_or_shape)
    with torch.device(device or "cpu"):
        return Transformer(shape)


def strip_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    """Remove wrapper prefixes (`module.`, `_orig_mod.`, `model.`), however they are nested."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def load_weights(path_or_state: str | Path | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A clean state dict from a checkpoint file (.pt with or without "state_dict", .safetensors; local or an
    fsspec URL) or from a dict. Loads tensors only (weights_only=True), never pickled code."""
    if isinstance(path_or_state, Mapping):
        state: Any = path_or_state
    else:
        state = _read_weights_file(str(path_or_state))
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HarnessError(f"{path_or_state}: not a model checkpoint (expected a state dict of tensors)")
    return strip_prefixes(state)


def _read_weights_file(path: str) -> Any:
    import fsspec

    try:
        with fsspec.open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError as exc:
        raise HarnessError(f"checkpoint {path} does not exist") from exc
    if path.endswith(".safetensors"):
        from safetensors.torch import load

        return load(blob)
    import io

    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors of many kinds: all mean "not a weights-only checkpoint"
        raise HarnessError(f"{path}: cannot be read as a weights-only torch checkpoint ({exc})") from exc


def load_state(model: Transformer, state: Mapping[str, torch.Tensor]) -> None:
    """Load a (cleaned) state dict strictly; rotary `inv_freq` buffers may be absent (e.g. safetensors exports)."""
    state = dict(state)
    for name, buf in model.named_buffers():
        if name.endswith("pos_embed.inv_freq") and name not in state:
            state[name] = Rotary.default_inv_freq(2 * buf.numel())
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise HarnessError(f"checkpoint does not match the model shape: {detail[:500]}") from exc


def open_lm_model_config(shape: ModelShape) -> dict[str, Any]:
    """open_lm's model JSON (the file passed as `--model`). open_lm reads the first keys; it ignores
    `ffn_multiple_of` and `norm_eps`, which we keep so the shape can be rebuilt exactly (open_lm itself always
    rounds the SwiGLU hidden size to a multiple of 256)."""
    return {
        "hidden_dim": shape.d_model,
        "n_layers": shape.n_layers,
        "n_heads": shape.n_heads,
        "seq_len": shape.context,
        "vocab_size": shape.vocab_size,
        "post_embed_norm": shape.post_embed_norm,
        "weight_tying": shape.weight_tying,
        "model_norm": shape.norm,
        "qk_norm": shape.qk_norm,
        "positional_embedding_type": shape.positional,
        "ffn_type": "swiglu",
        "ffn_multiple_of": shape.ffn_multiple_of,
        "norm_eps": shape.norm_eps,
    }


def shape_from_open_lm_config(config: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> ModelShape:
    """Rebuild a ModelShape from an open_lm model JSON; `params` (parsed params.txt) supplies `model_norm` and
    `qk_norm` when the JSON lacks them, as open_lm does."""
    from harness.tracks import ModelShape

    params = params or {}
    ffn_type = config.get("ffn_type", params.get("ffn_type", "swiglu"))
    if ffn_type not in ("swiglu", "swiglu_torch"):
        raise HarnessError(f"open_lm ffn_type {ffn_type!r} is not supported (only SwiGLU)")
    qk = config.get("qk_norm", params.get("qk_norm", False))
    return ModelShape(
        d_model=int(config["hidden_dim"]),
        n_layers=int(config["n_layers"]),
        n_heads=int(config["n_heads"]),
        vocab_size=int(config["vocab_size"]),
        context=int(config["seq_len"]),
        ffn_multiple_of=int(config.get("ffn_multiple_of", 256)),
        norm=config.get("model_norm", params.get("model_norm", "gain_only_lp_layer_norm")),
        norm_eps=float(config.get("norm_eps", 1e-5)),
        qk_norm=qk in (True, "True", "true"),
        weight_tying=bool(config.get("weight_tying", False)),
        post_embed_norm=bool(config.get("post_embed_norm", False)),
    )
