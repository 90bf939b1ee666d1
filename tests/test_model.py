"""The open_lm decoder: names and shapes as open_lm's, the pieces against their formulas, weight loading."""

from __future__ import annotations

import math

import pytest
import torch

from harness.errors import HarnessError
from harness.model import (
    Rotary,
    Transformer,
    build_model,
    load_state,
    load_weights,
    open_lm_model_config,
    shape_from_open_lm_config,
)
from harness.tracks import ModelShape, all_tracks, get_track
from harness.train.recipe import lm_loss

SMALL = ModelShape(d_model=32, n_layers=2, n_heads=4, vocab_size=64, context=16, ffn_multiple_of=256)


def open_lm_names(d: int, layers: int, vocab: int, hidden: int, head_dim: int) -> dict[str, tuple[int, ...]]:
    """open_lm's state dict for a qk-norm, gain-only-norm model (reference/dclm-facts.md)."""
    names = {"tok_embeddings.weight": (vocab, d)}
    for i in range(layers):
        p = f"layers.{i}."
        names |= {
            p + "attention.in_proj.weight": (3 * d, d),
            p + "attention.out_proj.weight": (d, d),
            p + "attention.pos_embed.inv_freq": (head_dim // 2,),
            p + "attention.q_norm.weight": (d,),
            p + "attention.k_norm.weight": (d,),
            p + "feed_forward.w12.weight": (2 * hidden, d),
            p + "feed_forward.w3.weight": (d, hidden),
            p + "attention_norm.weight": (d,),
            p + "ffn_norm.weight": (d,),
        }
    return names | {"norm.weight": (d,), "output.weight": (vocab, d)}


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_small_model_has_open_lm_names_and_shapes() -> None:
    # open_lm: hidden = 256 * ceil(int(8 * 32 / 3) / 256) = 256
    assert shapes(build_model(SMALL)) == open_lm_names(32, 2, 64, 256, 8)


def test_412m_model_has_open_lm_names_shapes_and_dclm_parameter_count() -> None:
    track = get_track("412m")
    model = build_model(track, device="meta")
    assert shapes(model) == open_lm_names(1024, 24, 50432, 2816, 128)
    counted = sum(p.numel() for n, p in model.named_parameters() if not n.endswith(("q_norm.weight", "k_norm.weight")))
    assert counted == track.n_params == 411_616_256


@pytest.mark.parametrize("name", [t.name for t in all_tracks()])
def test_every_track_builds_with_its_declared_parameter_count(name: str) -> None:
    track = get_track(name)
    model = build_model(track, device="meta")
    counted = sum(p.numel() for n, p in model.named_parameters() if not n.endswith(("q_norm.weight", "k_norm.weight")))
    assert counted == track.n_params


def test_init_follows_open_lm_std_per_layer() -> None:
    torch.manual_seed(0)
    shape = ModelShape(d_model=256, n_layers=4, n_heads=4, vocab_size=512, context=8)
    model = build_model(shape)
    base = 1 / math.sqrt(256)
    trunc = math.sqrt(1 - 6 * math.exp(-4.5) / math.sqrt(2 * math.pi) / (2 * 0.99865 - 1))  # std of N(0,1) cut at 3
    for i, layer in enumerate(model.layers):
        depth = math.sqrt(2 * (i + 1))
        assert layer.attention.in_proj.weight.std().item() == pytest.approx(base * trunc, rel=0.03)
        assert layer.attention.out_proj.weight.std().item() == pytest.approx(base / depth * trunc, rel=0.03)
        w3_std = 1 / math.sqrt(shape.ffn_hidden) / depth
        assert layer.feed_forward.w3.weight.std().item() == pytest.approx(w3_std * trunc, rel=0.03)
        assert layer.attention.in_proj.weight.abs().max().item() <= 3 * base
    assert model.tok_embeddings.weight.std().item() == pytest.approx(base * trunc, rel=0.03)
    assert torch.equal(model.norm.weight, torch.ones(256))


def test_rotary_matches_the_rotation_formula() -> None:
    head_dim, seq = 8, 5
    rot = Rotary(head_dim)
    assert torch.allclose(rot.inv_freq, torch.tensor([10000 ** (-2 * i / head_dim) for i in range(head_dim // 2)]))
    x = torch.randn(1, seq, 1, head_dim)
    cos, sin = rot.cos_sin(seq, x.device)
    y = rot(x, cos, sin)
    half = head_dim // 2
    for p in range(seq):
        for i in range(half):  # dims i and i + half rotate together by the angle p * inv_freq[i]
            a = p * rot.inv_freq[i].item()
            x1, x2 = x[0, p, 0, i].item(), x[0, p, 0, i + half].item()
            assert y[0, p, 0, i].item() == pytest.approx(x1 * math.cos(a) - x2 * math.sin(a), abs=1e-5)
            assert y[0, p, 0, i + half].item() == pytest.approx(x2 * math.cos(a) + x1 * math.sin(a), abs=1e-5)


def test_attention_is_direct_formula_with_full_width_qk_norm() -> None:
    torch.manual_seed(0)
    model = build_model(SMALL)
    attn = model.layers[0].attention
    with torch.no_grad():
        attn.q_norm.weight.copy_(torch.rand(32) + 0.5)  # a non-trivial gain, so a per-head norm would differ
    x = torch.randn(2, 6, 32)
    q, k, v = (x @ attn.in_proj.weight.T).chunk(3, dim=-1)

    def norm(z: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-5) * gain

    q, k = norm(q, attn.q_norm.weight), norm(k, attn.k_norm.weight)
    q, k, v = (z.view(2, 6, 4, 8) for z in (q, k, v))
    cos, sin = attn.pos_embed.cos_sin(6, x.device)
    q, k = attn.pos_embed(q, cos, sin), attn.pos_embed(k, cos, sin)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(8)
    scores = scores.masked_fill(torch.triu(torch.ones(6, 6, dtype=torch.bool), 1), float("-inf"))
    out = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(2, 6, 32) @ attn.out_proj.weight.T
    assert torch.allclose(attn(x), out, atol=1e-5)


def test_forward_is_causal_and_float32() -> None:
    torch.manual_seed(0)
    model = build_model(SMALL)
    ids = torch.randint(0, 64, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 64
    a, b = model(ids), model(changed)
    assert a.dtype == torch.float32 and a.shape == (2, 10, 64)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6) and not torch.allclose(a[:, 6:], b[:, 6:])


def test_z_loss_is_cross_entropy_plus_mean_squared_logsumexp() -> None:
    logits, targets = torch.randn(3, 4, 11), torch.randint(0, 11, (3, 4))
    ce = -torch.log_softmax(logits, -1).gather(-1, targets[..., None]).mean()
    z = (torch.logsumexp(logits, -1) ** 2).mean()
    assert lm_loss(logits, targets, 1e-4).item() == pytest.approx((ce + 1e-4 * z).item(), rel=1e-6)
    assert lm_loss(logits, targets, 0.0).item() == pytest.approx(ce.item(), rel=1e-6)


def test_z_loss_gradient_is_autograds_of_the_formula() -> None:
    from harness.train.loss import CrossEntropyZLoss

    torch.manual_seed(0)
    logits = (4 * torch.randn(6, 13, dtype=torch.float64)).requires_grad_()
    index = torch.randint(0, 13, (6, 1))
    assert torch.autograd.gradcheck(lambda x: CrossEntropyZLoss.apply(x, index, 0.3), (logits,))
    reference = logits.detach().clone().requires_grad_()
    lse = reference.logsumexp(-1)
    ((lse - reference.gather(1, index)[:, 0]).mean() + 0.3 * lse.square().mean()).mul(2.5).backward()
    CrossEntropyZLoss.apply(logits, index, 0.3).mul(2.5).backward()
    assert torch.allclose(logits.grad, reference.grad, atol=1e-12)


def test_load_weights_strips_prefixes_from_pt_and_safetensors(tmp_path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = build_model(SMALL)
    sd = model.state_dict()
    wrapped = {f"module._orig_mod.{k}": v for k, v in sd.items()}
    torch.save({"epoch": 1, "state_dict": wrapped, "step": 3}, tmp_path / "epoch_1.pt")
    loaded = load_weights(tmp_path / "epoch_1.pt")
    assert loaded.keys() == sd.keys() and all(torch.equal(loaded[k], sd[k]) for k in sd)
    no_buffers = {f"model.{k}": v.contiguous() for k, v in sd.items() if not k.endswith("inv_freq")}
    save_file(no_buffers, tmp_path / "m.safetensors")
    fresh = Transformer(SMALL)
    load_state(fresh, load_weights(tmp_path / "m.safetensors"))  # inv_freq buffers are rebuilt
    ids = torch.randint(0, 64, (1, 8))
    assert torch.equal(fresh(ids), model(ids))


def test_load_weights_refuses_pickled_code_and_wrong_shapes(tmp_path) -> None:
    torch.save({"state_dict": {"x": object()}}, tmp_path / "bad.pt")
    with pytest.raises(HarnessError, match="weights-only"):
        load_weights(tmp_path / "bad.pt")
    with pytest.raises(HarnessError, match="does not exist"):
        load_weights(tmp_path / "missing.pt")
    other = build_model(ModelShape(d_model=64, n_layers=2, n_heads=4, vocab_size=64, context=16)).state_dict()
    with pytest.raises(HarnessError, match="does not match"):
        load_state(Transformer(SMALL), other)


def test_open_lm_config_round_trips_the_shape() -> None:
    for name in ("debug", "nano", "412m", "7b"):
        shape = get_track(name).model
        config = open_lm_model_config(shape)
        assert {"hidden_dim", "n_layers", "n_heads", "seq_len", "vocab_size", "post_embed_norm", "weight_tying"} <= set(
            config
        )
        assert shape_from_open_lm_config(config) == shape
    dclm_411m = {"hidden_dim": 1024, "n_layers": 24, "n_heads": 8, "seq_len": 2048, "vocab_size": 50432,
                 "post_embed_norm": False, "weight_tying": False}  # fmt: skip
    params = {"model_norm": "gain_only_lp_layer_norm", "qk_norm": "True"}
    assert shape_from_open_lm_config(dclm_411m, params) == get_track("412m").model


def test_bf16_autocast_runs_the_low_precision_norms_in_bf16() -> None:
    torch.manual_seed(0)
    model = build_model(SMALL)
    ids = torch.randint(0, 64, (2, 8))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        normed = model.layers[0].attention_norm(torch.randn(2, 8, 32))
        logits = model(ids)
    assert normed.dtype == torch.bfloat16  # open_lm's gain_only_lp_layer_norm: no upcast to float32
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert torch.allclose(logits, model(ids), atol=0.1)
