"""The open_lm decoder as a transformers model (`harness export --format hf`), computing what the harness's
`harness/model.py` computes, with open_lm's parameter names under `model.`.

Copied into the exported folder and loaded with `trust_remote_code=True`; it needs only torch and transformers.
No native transformers architecture computes this function: open_lm normalises queries and keys with a
LayerNorm (mean subtracted) over the full width, before the heads are split. OLMo-2/OLMoE normalise over the full
width with RMSNorm (no mean subtraction); Cohere, StableLM, Chameleon and Qwen3 normalise per head; Llama has no
qk-norm. Generation recomputes the whole prefix at each step (no key/value cache): correct, and fast enough for
evaluation suites; use open_lm or the harness for long generations with large models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_harness_open_lm import HarnessOpenLMConfig


class GainOnlyNorm(nn.Module):
    """Gain-only LayerNorm (open_lm `gain_only_layer_norm` / `gain_only_lp_layer_norm`) or open_lm's `rms_norm`."""

    def __init__(self, dim: int, eps: float, kind: str) -> None:
        super().__init__()
        if kind not in ("gain_only_layer_norm", "gain_only_lp_layer_norm", "rms_norm"):
            raise ValueError(f"unknown norm_type {kind!r}")
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "rms_norm":
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight
        if self.kind == "gain_only_lp_layer_norm" and torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            with torch.autocast(device_type=x.device.type, enabled=False):
                return F.layer_norm(x.to(dtype), (x.shape[-1],), self.weight.to(dtype), None, self.eps)
        return F.layer_norm(x, (x.shape[-1],), self.weight, None, self.eps)


def _norm(config: HarnessOpenLMConfig, dim: int) -> GainOnlyNorm:
    return GainOnlyNorm(dim, config.norm_eps, config.norm_type)


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [B, T, 1, head_dim] in float32 for integer positions [B, T] (halves layout, as open_lm)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions.to(torch.float32)[..., None] * inv_freq.to(positions.device)
    emb = torch.cat((freqs, freqs), dim=-1)[:, :, None, :]
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x.float() * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: HarnessOpenLMConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.n_heads = config.num_attention_heads
        self.head_dim = d // self.n_heads
        self.in_proj = nn.Linear(d, 3 * d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.q_norm = _norm(config, d) if config.qk_norm else nn.Identity()
        self.k_norm = _norm(config, d) if config.qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None):
        b, t, _ = x.shape
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)  # over the full width, before the heads are split
        q, k, v = (z.view(b, t, self.n_heads, self.head_dim) for z in (q, k, v))
        q, k = apply_rotary(q, cos, sin).to(v.dtype), apply_rotary(k, cos, sin).to(v.dtype)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, config: HarnessOpenLMConfig) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.feed_forward = SwiGLU(config.hidden_size, config.intermediate_size)
        self.attention_norm = _norm(config, config.hidden_size)
        self.ffn_norm = _norm(config, config.hidden_size)

    def forward(self, x, cos, sin, mask):
        h = x + self.attention(self.attention_norm(x), cos, sin, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class OpenLMTransformer(nn.Module):
    """open_lm's `Transformer`, with its parameter names (tok_embeddings, layers.N..., norm, output)."""

    def __init__(self, config: HarnessOpenLMConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.tok_embeddings = nn.Embedding(config.vocab_size, d)
        self.post_embed_norm = _norm(config, d) if config.post_embed_norm else nn.Identity()
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm = _norm(config, d)
        self.output = nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, input_ids, attention_mask=None, position_ids=None) -> torch.Tensor:
        b, t = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(t, device=input_ids.device)[None].expand(b, t)
        cos, sin = rotary_tables(position_ids, self.config.hidden_size // self.config.num_attention_heads,
                                 self.config.rope_theta)  # fmt: skip
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            causal = torch.ones(t, t, dtype=torch.bool, device=input_ids.device).tril()
            mask = causal[None] & attention_mask.bool()[:, None, :]
            mask = (mask | torch.eye(t, dtype=torch.bool, device=input_ids.device))[:, None]  # no empty rows
        x = self.post_embed_norm(self.tok_embeddings(input_ids))
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.output(self.norm(x)).float()  # float32 logits whatever the weights' dtype, as open_lm


class HarnessOpenLMForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = HarnessOpenLMConfig
    base_model_prefix = "model"
    _no_split_modules = ("Block",)
    main_input_name = "input_ids"

    def __init__(self, config: HarnessOpenLMConfig) -> None:
        super().__init__(config)
        self.model = OpenLMTransformer(config)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """open_lm's initialisation for random models (from_config); loaded weights replace it."""
        if isinstance(module, nn.Linear | nn.Embedding):
            std = module.weight.shape[1] ** -0.5  # 1 / sqrt(fan in) for both
            nn.init.trunc_normal_(module.weight, std=std, a=-3 * std, b=3 * std)
        elif isinstance(module, GainOnlyNorm):
            nn.init.ones_(module.weight)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.tok_embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.tok_embeddings = value

    def get_output_embeddings(self) -> nn.Module:
        return self.model.output

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.model.output = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None, **kwargs):
        logits = self.model(input_ids, attention_mask, position_ids)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)  # fmt: skip
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        """The whole sequence at every step (the model keeps no key/value cache); positions count real tokens
        only, so a left-padded sequence is scored as if it were alone."""
        position_ids = None
        if attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
