"""The training step's forward and loss under torch.compile (inductor; on the CPU its C++ backend), or eager.

`StepLoss(model, ...)(inputs, targets)` is the loss of one micro-batch, its backward taken by the caller.

Compiled on the CPU in float32 (the bare model, one process), the trunk (embedding, blocks, final norm) is one
graph, in which inductor fuses the norms, rotary and SwiGLU into a few C++ loops around the matmuls, and the output
projection with the loss is `FusedHeadLoss`: chunks of rows whose logits never leave the core's cache. Elsewhere
(GPU, bf16 autocast, DDP/FSDP wrappers) the forward and the loss are one graph; the loss is then written as plain
tensor operations (`plain_lm_loss`) rather than harness.train.loss's autograd.Function, which inductor fuses as
well and which AOTAutograd's cache can store (with the autograd.Function inside, every process re-traced: 36 s
against 8 s on nano). Measured on nano, 1 thread, 2 shared cores: 1.30x the eager step per CPU-second (1.21x
without the fused head); compiling took 65 s with an empty inductor cache and 3-6 s from it.

Compilation happens on the first call, on a forward and backward of that call's batch whose gradients are then
dropped (the batch itself, so that shapes and strides match the later calls and nothing recompiles): if it fails
(no C++ compiler, an operation inductor cannot lower) one line says so and the step runs eager from then on; the
weights, the optimizer and the RNG are untouched by that warm-up. The compiled step reads and updates the very same
parameters as the eager one, and checkpoints are taken from the unwrapped model, so they carry the same names (no
`_orig_mod.` prefix) and move freely between compiled and eager runs. Compiled and eager losses agree to about
1e-7 relative (tests/test_train_compile.py states the tolerance), not bit for bit: a record says which ran.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import torch

from harness.errors import UsageError
from harness.model import Transformer
from harness.train.recipe import lm_loss

CompileSetting = Literal["auto", "on", "off"]
COMPILE_SETTINGS: tuple[str, ...] = ("auto", "on", "off")

#: "auto" compiles a single CPU process's training when it costs at least this many FLOPs (~14.8e12 for nano,
#: 0.23e12 for debug). Measured on 2 shared cores: compiling saves ~23% of each step's time (1.30x), and costs
#: 3-6 s with a warm inductor cache, ~65 s with an empty one; at the CPU's ~70-100 GFLOP/s 4e12 FLOPs is about a
#: minute of eager training, of which compiling saves ~14 s: that repays a warm compilation. A cold one (the first
#: run on a machine) is repaid over a few nano runs (each ~2.5 minutes eager, ~35 s saved), e.g. the demo's three.
AUTO_MIN_TRAIN_FLOPS = 4e12

#: Rows per chunk of FusedHeadLoss: nano's 256 x 2048 float32 logits are 2 MB, one core's L2 cache here.
HEAD_CHUNK = 256


def normalise_setting(value: object) -> CompileSetting:
    """The compile setting from a run.json or an argument: "auto" | "on" | "off" (True/False from older run folders)."""
    if value is True or value is False or value is None:
        return "on" if value else "off"
    if value not in COMPILE_SETTINGS:
        raise UsageError(f"unknown compile setting {value!r}: use one of {', '.join(COMPILE_SETTINGS)}")
    return value  # type: ignore[return-value]


def wants_compile(setting: CompileSetting, train_flops: float, device_type: str, world: int) -> bool:
    """Whether to compile: "on"/"off" as said; "auto" on the CPU, in one process, for runs of at least
    AUTO_MIN_TRAIN_FLOPS (shorter runs would spend more time compiling than compiling saves)."""
    if setting != "auto":
        return setting == "on"
    return device_type == "cpu" and world == 1 and train_flops >= AUTO_MIN_TRAIN_FLOPS


def plain_lm_loss(logits: torch.Tensor, targets: torch.Tensor, z_loss: float) -> torch.Tensor:
    """lm_loss's formula in plain operations (for the compiled graph): mean(lse - logit[target]) + z mean(lse^2)."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    lse = torch.logsumexp(flat, dim=-1)
    target_logit = flat.gather(1, targets.reshape(-1, 1)).squeeze(1)
    return (lse - target_logit).mean() + z_loss * lse.square().mean()


class FusedHeadLoss(torch.autograd.Function):
    """The output projection and lm_loss over row chunks, with both gradients computed in the forward pass.

    Each chunk's logits ([chunk, V], 2 MB for nano's 256 x 2048) are made, turned into the loss and into their
    gradient softmax * (1 + 2 z lse) / N - onehot / N, and multiplied back into the hidden states' and the weight's
    gradients while still in the core's cache: the [N, V] logits, log-probabilities and gradient (64 MB each on
    nano) are never written to memory, and the projection's matmuls run on cache-resident operands. Backward only
    scales the stored gradients by the incoming one."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, z_loss: float, chunk: int
    ) -> torch.Tensor:
        n = hidden.shape[0]
        grad_hidden, grad_weight = torch.empty_like(hidden), torch.zeros_like(weight)
        total = hidden.new_zeros(())
        for start in range(0, n, chunk):
            h, index = hidden[start : start + chunk], targets[start : start + chunk, None]
            logits = h @ weight.t()
            logp = torch.log_softmax(logits, dim=-1)
            target_logp = logp.gather(1, index).squeeze(1)
            lse = logits.gather(1, index).squeeze(1) - target_logp
            total += (z_loss * lse.square() - target_logp).sum()
            grad = logp.exp_().mul_(((1 + 2 * z_loss * lse) / n)[:, None])
            grad.scatter_add_(1, index, grad.new_full(index.shape, -1.0 / n))
            torch.mm(grad, weight, out=grad_hidden[start : start + chunk])
            grad_weight.addmm_(grad.t(), h)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total / n

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None, None]:  # type: ignore[override]
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad, grad_weight * grad, None, None, None


def _say(message: str) -> None:
    print(f"train: {message}", file=sys.stderr, flush=True)


class StepLoss:
    """The loss of one micro-batch through `model`, compiled (with an eager fallback) or eager; called inside the
    step's autocast context, if any."""

    def __init__(
        self, model: torch.nn.Module, z_loss: float, *, compile: bool, quiet: bool = False, head_chunk: int = HEAD_CHUNK
    ) -> None:
        self.model, self.z_loss = model, z_loss
        self.head_chunk = head_chunk  # the compiled step's head in FusedHeadLoss (on the CPU in float32; 0: never)
        self.say: Callable[[str], None] = (lambda _message: None) if quiet else _say
        self.compiled: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self.pending = compile  # compile on the first call
        self.compile_s = 0.0

    @property
    def uses_compile(self) -> bool:
        """Whether the step runs compiled (after the first call; before it, whether it is going to try)."""
        return self.compiled is not None or self.pending

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.pending:
            self._compile(inputs, targets)
        if self.compiled is not None:
            return self.compiled(inputs, targets)
        return lm_loss(self.model(inputs), targets, self.z_loss)

    def _forward_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return plain_lm_loss(self.model(inputs), targets, self.z_loss)

    def _trunk(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.model.hidden_states(inputs)  # type: ignore[operator]

    def _with_fused_head(
        self, trunk: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        weight = self.model.output.weight  # type: ignore[union-attr]

        def step_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            hidden = trunk(inputs, targets)
            flat = hidden.reshape(-1, hidden.shape[-1])
            return FusedHeadLoss.apply(flat, weight, targets.reshape(-1), self.z_loss, self.head_chunk)

        return step_loss

    def _head_applies(self, inputs: torch.Tensor) -> bool:
        """The fused head needs the bare model (a DDP or FSDP wrapper must see the whole forward), the CPU, and
        float32 (under autocast the projection would run in bf16)."""
        model = self.model
        return (
            self.head_chunk > 0
            and isinstance(model, Transformer)
            and inputs.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu")
            and model.output.weight.dtype == torch.float32
        )

    def _compile(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Compile forward and backward on this batch (gradients dropped); on any failure, fall back to eager."""
        self.pending = False
        self.say("compiling the training step (torch.compile; up to a minute or two the first time, seconds once "
                 "inductor's cache holds it)")  # fmt: skip
        start = time.perf_counter()
        self.fused_head = self._head_applies(inputs)
        # static shapes: a process that trains two shapes compiles a graph for each, not one slower dynamic graph
        compiled = torch.compile(self._trunk if self.fused_head else self._forward_loss, dynamic=False)
        if self.fused_head:
            compiled = self._with_fused_head(compiled)
        try:
            compiled(inputs, targets).backward()  # under the caller's autocast, as the step's own calls
        except Exception as exc:  # any compiler failure (no C++ compiler, an unsupported operation): train eager
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            self.say(f"torch.compile failed, training eager instead ({type(exc).__name__}: {first[:200]})")
            torch._dynamo.reset()
            return
        finally:
            for p in self.model.parameters():
                p.grad = None  # the warm-up's gradients are not the step's
        self.compiled, self.compile_s = compiled, time.perf_counter() - start
        self.say(f"compiled in {self.compile_s:.1f} s")
