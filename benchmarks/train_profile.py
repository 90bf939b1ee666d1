"""Where a training step's time goes: torch.profiler (CPU activity) over a few steps, bucketed without double counts.

Used by benchmarks/train_speed_bench.py for a missed target. The profiler records, on the main thread, every
operator's and annotation's start and end; the buckets claim events from the top of each call tree down, and an
event claimed whole (a matrix multiply, an attention kernel, the optimizer's step) is not looked into again:

- matmuls: aten::mm, addmm(_), bmm, baddbmm, linear, matmul and oneDNN's (mkldnn) linear and matmul ops, forward
  and backward (inductor calls them as extern kernels inside its graphs; the fused head calls them in eager mode);
- attention: scaled_dot_product_attention's kernels and their backward;
- inductor: the compiled graphs' own time (the `## Call CompiledFxGraph ... ##` event less the operators it calls):
  the generated cpp_fused_* loops and the Python wrapper between them; the loops are timed on their own only when
  inductor's `cpp.enable_kernel_profile` was on at compile time (`graph_N_cpp_fused_*` events; the wrapper's own
  time then goes to the rest);
- optimizer: `Optimizer.step#...` and `Optimizer.zero_grad#...` (torch.optim's own annotations) and gradient
  clipping (annotated here while profiling);
- data loading: the benchmark's annotation around taking the next batch;
- other ops: the self time of every other operator (the head's log-softmax and exp, fills, copies, reductions);
- rest: the step's wall time less all of the above: Python, the dispatcher, the autograd engine, the profiler.

Times are the main thread's wall clock (the profiler measures no CPU time per event): on an idle machine the same
shares as CPU time; on a loaded one, parallel operators stretch more than serial Python, so the matmul rate is
compared with the peak matmul's wall rate measured just before the profiled steps, under the same load.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The buckets, in the order they are printed.
BUCKETS = ("matmuls", "attention", "inductor", "optimizer", "data loading", "other ops", "rest")
#: What each bucket holds, for the printed breakdown.
BUCKET_LABELS = {
    "matmuls": "matrix multiplies (mm/addmm/bmm/linear, forward and backward)",
    "attention": "attention (scaled_dot_product_attention and its backward)",
    "inductor": "inductor's fused C++ loops (the compiled graphs' own time)",
    "optimizer": "optimizer (AdamW step, zero_grad, gradient clipping)",
    "data loading": "data loading (next batch from the shards)",
    "other ops": "other operators (head's log-softmax/exp, fills, copies, sums)",
    "rest": "rest: Python, dispatcher, autograd engine (step less the above)",
}
DATA_LABEL = "data loading"
CLIP_LABEL = "grad clipping"

MATMUL_OPS = frozenset(
    {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::baddbmm_", "aten::linear",
     "aten::matmul", "aten::_addmm_activation", "mkldnn::_linear_pointwise", "aten::mkldnn_linear",
     "mkldnn::_linear_pointwise.binary", "aten::_weight_int8pack_mm", "onednn::qlinear_pointwise"}
)  # fmt: skip
_KERNEL = re.compile(r"^(graph_\d+_)?cpp_fused_")
_GRAPH_CALL = "## Call CompiledFxGraph"


@dataclass(frozen=True)
class Event:
    """One profiled call, with the calls made inside it."""

    name: str
    """The operator's or annotation's name as the profiler gives it (`aten::mm`, `Optimizer.step#AdamW.step`)."""
    total_us: float
    """Wall time from its start to its end, children included, in microseconds."""
    self_us: float
    """total_us less its children's total_us."""
    shapes: tuple[tuple[int, ...], ...] = ()
    """Its inputs' shapes (empty tuples for scalars and None), when recorded."""
    children: tuple[Event, ...] = ()
    """The calls made inside it, in order."""


@dataclass(frozen=True)
class Breakdown:
    """Where the profiled steps' time went."""

    step_us: float
    """Wall time of one profiled step, in microseconds (the profiled window over the number of steps)."""
    bucket_us: dict[str, float]
    """Microseconds per step in each of BUCKETS; "rest" is step_us less the others."""
    matmul_flops: float
    """FLOPs per step of the matmuls whose shapes were recorded (2 m k n each)."""
    unsized_matmuls: int = 0
    """Matmul calls (over all profiled steps) whose FLOPs could not be told from their recorded shapes."""
    top_ops: tuple[tuple[str, float], ...] = field(default=())
    """The operators with most self time, (name, microseconds per step), for the curious."""

    def share(self, bucket: str) -> float:
        """The bucket's fraction of the step."""
        return self.bucket_us[bucket] / self.step_us


def classify(name: str) -> str | None:
    """The bucket that claims an event whole (its children included), or None to look inside it."""
    if _KERNEL.match(name):  # before attention: a fused loop may be named after an sdpa it feeds
        return "inductor"
    if name in MATMUL_OPS:
        return "matmuls"
    if "scaled_dot_product" in name:
        return "attention"
    if name.startswith(("Optimizer.step#", "Optimizer.zero_grad#")) or name == CLIP_LABEL:
        return "optimizer"
    if name == DATA_LABEL:
        return "data loading"
    return None


def _is_operator(name: str) -> bool:
    return "::" in name and not name.startswith(("autograd::", "torch::autograd::"))


def matmul_flops(name: str, shapes: Sequence[Sequence[int]]) -> float | None:
    """2 m k n (times the batch) for a matmul operator's recorded input shapes; None when they do not tell."""
    dims = [tuple(s) for s in shapes if s is not None]
    try:
        if name in ("aten::addmm", "aten::addmm_", "aten::baddbmm", "aten::baddbmm_", "aten::_addmm_activation"):
            a, b = dims[1], dims[2]  # (self or bias, mat1, mat2, ...)
        elif name in ("aten::linear", "mkldnn::_linear_pointwise", "aten::mkldnn_linear",
                      "mkldnn::_linear_pointwise.binary"):  # fmt: skip
            x, w = dims[0], dims[1]  # weight [n, k]
            if len(w) != 2 or not x or x[-1] != w[1]:
                return None
            rows = 1
            for n in x[:-1]:
                rows *= n
            return 2.0 * rows * w[1] * w[0]
        else:
            a, b = dims[0], dims[1]
    except IndexError:
        return None
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        return None
    batch = 1
    for n in a[:-2] if len(a) >= len(b) else b[:-2]:
        batch *= n
    return 2.0 * batch * a[-2] * a[-1] * b[-1]


def bucket_events(roots: Sequence[Event], steps: int, window_us: float, top: int = 12) -> Breakdown:
    """Per-step microseconds in each bucket from the profiled window's call trees (see the module's docstring)."""
    acc = dict.fromkeys(BUCKETS, 0.0)
    flops, unsized = 0.0, 0
    by_self: dict[str, float] = {}

    def walk(ev: Event) -> None:
        nonlocal flops, unsized
        by_self[ev.name] = by_self.get(ev.name, 0.0) + ev.self_us
        bucket = classify(ev.name)
        if bucket is not None:
            acc[bucket] += ev.total_us
            if bucket == "matmuls":
                f = matmul_flops(ev.name, ev.shapes)
                flops, unsized = (flops + f, unsized) if f is not None else (flops, unsized + 1)
            _count_self(ev.children, by_self)
            return
        if ev.name.startswith(_GRAPH_CALL):
            timed_loops = any(_KERNEL.match(c.name) for c in ev.children)
            acc["rest" if timed_loops else "inductor"] += ev.self_us
        elif _is_operator(ev.name):
            acc["other ops"] += ev.self_us
        for child in ev.children:
            walk(child)

    for root in roots:
        walk(root)
    acc["rest"] += window_us - sum(acc.values())
    per_step = {k: v / steps for k, v in acc.items()}
    ranked = sorted(by_self.items(), key=lambda kv: -kv[1])[:top]
    return Breakdown(window_us / steps, per_step, flops / steps, unsized, tuple((n, t / steps) for n, t in ranked))


def _count_self(events: Sequence[Event], by_self: dict[str, float]) -> None:
    for ev in events:
        by_self[ev.name] = by_self.get(ev.name, 0.0) + ev.self_us
        _count_self(ev.children, by_self)


def explain(b: Breakdown, model_flops_per_step: float, peak_flops: float) -> list[str]:
    """The breakdown as printed lines: each bucket's share, then the matmuls' rate and what keeps the step below
    the peak. Rates are per second of the same clock as the breakdown and peak_flops."""
    lines = [f"    {b.bucket_us[k] / 1e3:8.1f} ms {b.share(k):6.1%}  {BUCKET_LABELS[k]}" for k in BUCKETS]
    mm_s = b.bucket_us["matmuls"] / 1e6
    mm_rate = b.matmul_flops / mm_s if mm_s > 0 else 0.0
    step_frac = model_flops_per_step / (b.step_us / 1e6) / peak_flops
    others = ", ".join(f"{k} {b.share(k):.0%}" for k in BUCKETS[1:] if b.share(k) >= 0.005)
    lines.append(
        f"  matmuls are {b.share('matmuls'):.0%} of the step and run at {mm_rate / peak_flops:.0%} of peak "
        f"({mm_rate / 1e9:,.1f} GFLOP/s, {b.matmul_flops / model_flops_per_step:.0%} of the model's FLOPs); "
        f"the other {1 - b.share('matmuls'):.0%} ({others}) is what keeps the step at {step_frac:.0%} of peak"
    )
    if b.unsized_matmuls:
        lines.append(f"  ({b.unsized_matmuls} matmul calls had no recorded shapes: their FLOPs are not counted)")
    return lines


def from_profiler(prof: Any) -> list[Event]:
    """The main thread's call trees from a finished torch.profiler.profile."""
    events = list(prof.events())
    if not events:
        return []
    main = statistics.mode(e.thread for e in events)

    def convert(e: Any) -> Event:
        shapes = tuple(tuple(s) if isinstance(s, list | tuple) else () for s in (e.input_shapes or ()))
        return Event(e.name, float(e.cpu_time_total), float(e.self_cpu_time_total), shapes,
                     tuple(convert(c) for c in e.cpu_children))  # fmt: skip

    return [convert(e) for e in events if e.thread == main and e.cpu_parent is None]


@contextlib.contextmanager
def clipping_labelled() -> Iterator[None]:
    """torch.nn.utils.clip_grad_norm_ inside a CLIP_LABEL annotation while profiling (the trainer looks it up on
    each call); restored afterwards."""
    import torch

    original = torch.nn.utils.clip_grad_norm_

    def labelled(*args: Any, **kwargs: Any) -> Any:
        with torch.profiler.record_function(CLIP_LABEL):
            return original(*args, **kwargs)

    torch.nn.utils.clip_grad_norm_ = labelled
    try:
        yield
    finally:
        torch.nn.utils.clip_grad_norm_ = original


def profile_step(step: Callable[[], None], steps: int) -> tuple[Breakdown, float, float]:
    """(breakdown, wall seconds, CPU seconds) of `steps` calls of step under the profiler."""
    from torch.profiler import ProfilerActivity, profile

    with clipping_labelled(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return bucket_events(from_profiler(prof), steps, wall * 1e6), wall, cpu
