"""Scoring continuations that share a context with one forward pass over that context.

A multiple-choice item asks for log p(choice | context) of each of its choices: scored one sequence per choice, the
context runs through the model once per choice. Here the distinct contexts of a batch run once, their keys and
values are kept per layer, and each choice's tokens then attend to its context's cache: the first choice token is
scored from the context's last position, the rest from a pass over the choice tokens alone. Same model, same
positions (rotary at the token's place in context + choice), same masks; only the shapes of the matrix products
differ, so log-likelihoods agree with the one-sequence path to float rounding (tests/test_evaluate.py states the
bound) and greedy flags agree except on exact ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: Contexts per forward pass (each with all of its continuations).
CONTEXTS_PER_BATCH = 16


def shared_groups(items: Sequence[tuple[list[int], list[int]]], window: int) -> dict[tuple[int, ...], list[int]]:
    """Indices of items by context, for contexts that two or more items share and that fit the window untruncated
    (a truncated context differs per continuation, so it is scored the usual way)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, cont) in enumerate(items):
        if ctx and cont and len(ctx) + len(cont) <= window:
            groups.setdefault(tuple(ctx), []).append(i)
    return {ctx: members for ctx, members in groups.items() if len(members) > 1}


def _rotary(attention: torch.nn.Module, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The layer's rotary embedding at explicit positions [B, T] (the model's own cos_sin computes arange(T))."""
    inv_freq = attention.pos_embed.inv_freq.to(device=x.device, dtype=torch.float32)
    freqs = positions.to(torch.float32)[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)[:, :, None, :]
    return attention.pos_embed(x, emb.cos(), emb.sin()).to(x.dtype)


def _block(
    layer: torch.nn.Module,
    x: torch.Tensor,
    positions: torch.Tensor,
    past: tuple[torch.Tensor, torch.Tensor] | None,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One block of harness.model.Transformer with the keys and values of earlier tokens prepended."""
    a = layer.attention
    b, t, _ = x.shape
    q, k, v = a.in_proj(layer.attention_norm(x)).chunk(3, dim=-1)
    q, k = a.q_norm(q), a.k_norm(k)
    q, k, v = (z.view(b, t, a.n_heads, a.head_dim) for z in (q, k, v))
    q, k = _rotary(a, q, positions).to(v.dtype), _rotary(a, k, positions).to(v.dtype)
    if past is not None:
        k, v = torch.cat((past[0], k), dim=1), torch.cat((past[1], v), dim=1)
    if mask is None:
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
    else:
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    h = x + a.out_proj(out.transpose(1, 2).reshape(b, t, -1))
    return h + layer.feed_forward(layer.ffn_norm(h)), (k, v)


@torch.inference_mode()
def score_shared(
    model: torch.nn.Module,
    items: Sequence[tuple[list[int], list[int]]],
    groups: dict[tuple[int, ...], list[int]],
    pad_id: int,
    device: torch.device,
) -> dict[int, tuple[float, bool]]:
    """(sum log p(continuation | context), continuation is greedy) of every item in `groups`, by item index."""
    out: dict[int, tuple[float, bool]] = {}
    contexts = sorted(groups, key=len, reverse=True)
    for start in range(0, len(contexts), CONTEXTS_PER_BATCH):
        batch = contexts[start : start + CONTEXTS_PER_BATCH]
        out.update(_score_batch(model, items, [(list(c), groups[c]) for c in batch], pad_id, device))
    return out


def _score_batch(
    model: torch.nn.Module,
    items: Sequence[tuple[list[int], list[int]]],
    batch: list[tuple[list[int], list[int]]],
    pad_id: int,
    device: torch.device,
) -> dict[int, tuple[float, bool]]:
    m = model
    lengths = torch.tensor([len(ctx) for ctx, _ in batch], device=device)
    width = int(lengths.max())
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long, device=device)
    for j, (ctx, _) in enumerate(batch):
        ids[j, : len(ctx)] = torch.tensor(ctx, device=device)
    positions = torch.arange(width, device=device).expand(len(batch), width)
    x = m.post_embed_norm(m.tok_embeddings(ids))
    cache = []
    for layer in m.layers:  # causal: the padding after a context never reaches it
        x, kv = _block(layer, x, positions, None, None)
        cache.append(kv)
    last = x[torch.arange(len(batch), device=device), lengths - 1]
    first_logp = F.log_softmax(m.output(m.norm(last)).float(), dim=-1)  # predicts every continuation's first token

    members = [(j, i) for j, (_, group) in enumerate(batch) for i in group]
    rest = max(len(items[i][1]) - 1 for _, i in members)
    scores: dict[int, list[torch.Tensor]] = {}
    if rest:
        owner = torch.tensor([j for j, _ in members], device=device)
        cont_ids = torch.full((len(members), rest), pad_id, dtype=torch.long, device=device)
        for r, (_, i) in enumerate(members):
            tail = items[i][1][:-1]
            cont_ids[r, : len(tail)] = torch.tensor(tail, dtype=torch.long, device=device)
        offset = torch.arange(rest, device=device)
        pos = lengths[owner][:, None] + offset[None, :]
        keys = torch.arange(width + rest, device=device)
        # A choice token sees its context (not the padding after it) and the choice tokens up to itself.
        sees_context = keys[None, None, :width] < lengths[owner][:, None, None]
        sees_choice = keys[None, None, width:] - width <= offset[None, :, None]
        mask = torch.cat((sees_context.expand(-1, rest, -1), sees_choice.expand(len(members), -1, -1)), dim=2)
        y = m.post_embed_norm(m.tok_embeddings(cont_ids))
        for layer, (k, v) in zip(m.layers, cache, strict=True):
            y, _ = _block(layer, y, pos, (k[owner], v[owner]), mask[:, None])
        counts = [len(items[i][1]) - 1 for _, i in members]
        valid = offset[None, :] < torch.tensor(counts, device=device)[:, None]
        rest_logp = F.log_softmax(m.output(m.norm(y[valid])).float(), dim=-1)  # the projection skips the padding
        for (_, i), part in zip(members, rest_logp.split(counts), strict=True):
            scores[i] = [part]
    result = {}
    for j, i in members:
        cont = torch.tensor(items[i][1], device=device)
        dists = torch.cat([first_logp[j : j + 1], *scores.get(i, [])])  # one distribution per continuation token
        token_ll = dists.gather(1, cont[:, None])[:, 0]
        result[i] = (token_ll.sum().item(), bool((dists.argmax(-1) == cont).all()))
    return result
