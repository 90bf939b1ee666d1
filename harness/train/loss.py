"""The training loss as one autograd function: cross-entropy plus open_lm's z-loss over a single log-softmax.

Written by hand because autograd's version of the same formula is slow on the CPU: `Tensor.logsumexp` and its
backward run as a chain of separate passes over the [tokens, vocab] logits (max, subtract, exp, sum, then exp
again), and every `gather` adds a dense zero-filled gradient of that size. Here the forward is one fused
log-softmax plus two gathers, and the backward one exp, one in-place scale and a sparse correction, about what
F.cross_entropy alone costs.
"""

from __future__ import annotations

from typing import Any

import torch


class CrossEntropyZLoss(torch.autograd.Function):
    """mean(-log p[target]) + z * mean(lse^2) over rows of float32 logits [N, V] (targets [N, 1]).

    With log p = x - lse, lse = x[target] - log p[target]; the gradient with respect to the logits is
    softmax * (1 + 2 z lse) / N minus the one-hot target / N, each scaled by the incoming gradient."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, index: torch.Tensor, z_loss: float) -> torch.Tensor:
        logp = torch.log_softmax(logits, dim=-1)
        target_logp = logp.gather(1, index).squeeze(1)
        lse = logits.gather(1, index).squeeze(1) - target_logp
        ctx.save_for_backward(logp, index, lse)
        ctx.z_loss = z_loss
        return (z_loss * lse.square() - target_logp).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        logp, index, lse = ctx.saved_tensors
        scale = grad / logp.shape[0]
        grad_logits = logp.exp().mul_((scale * (1 + 2 * ctx.z_loss * lse))[:, None])
        grad_logits.scatter_add_(1, index, (-scale).expand(index.shape).to(grad_logits.dtype))
        return grad_logits, None, None
