"""Configuration of the open_lm decoder exported by the harness (`harness export --format hf`).

Copied into the exported folder and loaded with `trust_remote_code=True`; it needs only transformers.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class HarnessOpenLMConfig(PretrainedConfig):
    """open_lm's decoder: pre-norm blocks, rotary (base `rope_theta`, halves rotated), SwiGLU with fused gate/up
    weights, qk-norm over the full width, gain-only LayerNorm (or RMSNorm), no biases.

    `norm_type`: "gain_only_layer_norm", "gain_only_lp_layer_norm" (the same in float32; under autocast it runs
    in the autocast dtype) or "rms_norm". The feed-forward width is `intermediate_size` (open_lm rounds
    8 * hidden_size / 3 up to a multiple of `ffn_multiple_of`)."""

    model_type = "harness_open_lm"

    def __init__(
        self,
        vocab_size: int = 50432,
        hidden_size: int = 1024,
        num_hidden_layers: int = 24,
        num_attention_heads: int = 8,
        intermediate_size: int = 2816,
        max_position_embeddings: int = 2048,
        norm_type: str = "gain_only_lp_layer_norm",
        norm_eps: float = 1e-5,
        qk_norm: bool = True,
        post_embed_norm: bool = False,
        rope_theta: float = 10000.0,
        ffn_multiple_of: int = 256,
        tie_word_embeddings: bool = False,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.norm_type = norm_type
        self.norm_eps = norm_eps
        self.qk_norm = qk_norm
        self.post_embed_norm = post_embed_norm
        self.rope_theta = rope_theta
        self.ffn_multiple_of = ffn_multiple_of
        kwargs.setdefault("use_cache", False)  # the model recomputes the whole prefix (no key/value cache)
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
