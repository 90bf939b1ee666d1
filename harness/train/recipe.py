"""The pieces of the training recipe that are plain formulas: learning rate, loss, optimizer, batching.

Each one follows open_lm exactly so that the native trainer and `--trainer open_lm` train the same way.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from harness.tracks import Recipe


def lr_at(step: int, recipe: Recipe, total_steps: int) -> float:
    """open_lm's `cosine_lr` for the optimizer step `step` (0-based, set before the step is taken): linear warm-up
    `lr * (step + 1) / warmup`, then cosine from `lr` to `cooldown_end_lr` over the remaining steps."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    elapsed, span = step - recipe.warmup, total_steps - recipe.warmup
    return recipe.cooldown_end_lr + 0.5 * (1 + math.cos(math.pi * elapsed / span)) * (
        recipe.lr - recipe.cooldown_end_lr
    )


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, z_loss: float) -> torch.Tensor:
    """Cross-entropy plus `z_loss * mean(logsumexp(logits)^2)` (open_lm's CrossEntropyLossWithZLoss), in float32,
    through one log-softmax with a hand-written backward (harness.train.loss: autograd's own version made the
    trainer's step 10% slower than a plain F.cross_entropy loop on the CPU)."""
    from harness.train.loss import CrossEntropyZLoss

    flat = logits.reshape(-1, logits.shape[-1]).float()
    return CrossEntropyZLoss.apply(flat, targets.reshape(-1, 1), float(z_loss))


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW with weight decay on every parameter, laid out as open_lm does (an empty no-decay group first, so
    optimizer state files have the same two groups)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [{"params": [], "weight_decay": 0.0}, {"params": params, "weight_decay": recipe.weight_decay}],
        lr=recipe.lr,
        betas=(recipe.beta1, recipe.beta2),
        eps=recipe.eps,
    )


def checkpoint_steps(total_steps: int, checkpoints: int) -> list[int]:
    """The optimizer steps after which checkpoints 1..K are written, evenly spread, the last one at the end."""
    return [total_steps * k // checkpoints for k in range(1, checkpoints + 1)]


def accumulation(global_batch: int, world: int, grad_accum: int) -> tuple[int, int]:
    """(per-process batch, micro-batches per step). The global batch never changes with the process count; the
    track's accumulation is kept when it divides the per-process batch, else the next divisor up is used."""
    from harness.errors import UsageError

    if global_batch % world:
        raise UsageError(f"the global batch of {global_batch} sequences cannot be split over {world} processes")
    local = global_batch // world
    accum = next(a for a in range(min(grad_accum, local), local + 1) if local % a == 0)
    return local, accum


def model_flops_per_token(n_params: int, vocab: int, d_model: int, n_layers: int, context: int) -> float:
    """Training FLOPs per token for MFU: 6 x (parameters minus the embedding lookup) plus attention's
    12 x layers x d x context (PaLM's accounting)."""
    return 6.0 * (n_params - vocab * d_model) + 12.0 * n_layers * d_model * context


#: Dense bf16 peak FLOP/s by GPU name fragment, for MFU (override with $HARNESS_PEAK_FLOPS).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12, "V100": 125e12}


def peak_flops(device_name: str) -> float | None:
    import os

    if os.environ.get("HARNESS_PEAK_FLOPS"):
        return float(os.environ["HARNESS_PEAK_FLOPS"])
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in device_name), None)
