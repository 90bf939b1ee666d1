"""Training throughput on CPU: the native trainer's step against a plain eager loop, and torch.compile.

    python benchmarks/train_bench.py --track nano                       # the track's shape and batch
    python benchmarks/train_bench.py --track nano --threads 1 --steps 20
    python benchmarks/train_bench.py --shape 128,4,4,256 --batch 32     # d_model,layers,heads,context

Both loops train the same model (same shape, batch, seed) on the same random token batches; the trainer's step adds
what the recipe needs (z-loss, gradient clipping, the lr schedule, accumulation) and is what `harness train` runs.
Timings are medians over steps after `--warmup` discarded steps; the machine's load changes them, so repeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F

from harness.model import build_model
from harness.tracks import ModelShape, Track, get_track
from harness.train.recipe import lm_loss, lr_at, make_optimizer


def plain_step(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: torch.Tensor) -> None:
    logits = model(batch[:, :-1])
    F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def trainer_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, batch: torch.Tensor, track: Track, step: int
) -> None:
    """The native trainer's step (harness/train/native.py Trainer.train_step without data loading)."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, track.recipe, track.steps)
    accum = track.recipe.grad_accum
    micro = batch.shape[0] // accum
    for i in range(accum):
        part = batch[i * micro : (i + 1) * micro]
        (lm_loss(model(part[:, :-1]), part[:, 1:], track.recipe.z_loss) / accum).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), track.recipe.grad_clip_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)


def measure(track: Track, kind: str, steps: int, warmup: int, compile: bool) -> float:
    """Median tokens/s of `kind` ("plain" or "trainer")."""
    torch.manual_seed(track.recipe.seed)
    model = build_model(track)
    opt = make_optimizer(model, track.recipe)
    run = torch.compile(model) if compile else model
    shape = (track.recipe.global_batch, track.model.context + 1)
    times = []
    for step in range(warmup + steps):
        batch = torch.randint(0, track.model.vocab_size, shape)
        start = time.perf_counter()
        if kind == "plain":
            plain_step(run, opt, batch)
        else:
            trainer_step(run, opt, batch, track, step)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return track.tokens_per_step / statistics.median(times)


def bench_track(args: argparse.Namespace) -> Track:
    track = get_track(args.track)
    if args.shape:
        d, layers, heads, context = (int(x) for x in args.shape.split(","))
        shape = ModelShape(d_model=d, n_layers=layers, n_heads=heads, vocab_size=track.model.vocab_size,
                           context=context, ffn_multiple_of=track.model.ffn_multiple_of)  # fmt: skip
        track = dataclasses.replace(track, model=shape)
    if args.batch:
        track = dataclasses.replace(track, recipe=dataclasses.replace(track.recipe, global_batch=args.batch))
    return track


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--track", default="nano")
    p.add_argument("--shape", help="d_model,n_layers,n_heads,context (overrides the track's)")
    p.add_argument("--batch", type=int, help="global batch in sequences (overrides the track's)")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile")
    p.add_argument("--only", choices=["plain", "trainer"], help="measure one loop only")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    track = bench_track(args)
    m = track.model
    print(f"shape d={m.d_model} L={m.n_layers} H={m.n_heads} ctx={m.context} V={m.vocab_size} ffn={m.ffn_hidden} "
          f"params={track.n_params:,} batch={track.recipe.global_batch} threads={torch.get_num_threads()}")  # fmt: skip
    for kind in [args.only] if args.only else ["plain", "trainer"]:
        for compiled in [False, True] if args.compile else [False]:
            tps = measure(track, kind, args.steps, args.warmup + (5 if compiled else 0), compiled)
            print(f"{kind:8s} {'compiled' if compiled else 'eager':8s} {tps:12,.0f} tokens/s")


if __name__ == "__main__":
    main()
