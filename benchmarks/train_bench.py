"""Training throughput on CPU: the native trainer's step against a plain eager loop, and torch.compile.

    python benchmarks/train_bench.py --track nano                       # the track's shape and batch
    python benchmarks/train_bench.py --track nano --threads 1 --steps 20
    python benchmarks/train_bench.py --shape 128,4,4,256 --batch 32     # d_model,layers,heads,context
    python benchmarks/train_bench.py --track nano --threads 1 --against-loop --rounds 6 --steps 6

`--against-loop` runs the native trainer itself (harness.train.native.Trainer, its shard reader and train_step) and a
plain eager loop (the same reader, `F.cross_entropy`, AdamW; nothing else) on the same synthetic shards and shape,
alternately in rounds, and reports tokens per CPU-second of this process (robust when other jobs share the machine):
the median of each, their ratio, and the spread of the per-round ratios.

Both loops train the same model (same shape, batch, seed) on the same random token batches; the trainer's step adds
what the recipe needs (z-loss, gradient clipping, the lr schedule, accumulation) and is what `harness train` runs.
Timings are medians over steps after `--warmup` discarded steps; the machine's load changes them, so repeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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


def against_loop(track: Track, rounds: int, steps: int, warmup: int) -> None:
    """Trainer and plain loop alternately (which one goes first alternates too), `steps` steps each per round."""
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        _against_loop(track, Path(tmp), rounds, steps, warmup)


def _against_loop(track: Track, root: Path, rounds: int, steps: int, warmup: int) -> None:
    from harness.data.loader import ShardStream
    from harness.data.synthetic import write_synthetic_shards
    from harness.train import prepare_run
    from harness.train.native import Trainer, init_env

    batch, seq_len = track.recipe.global_batch, track.model.context + 1
    data = write_synthetic_shards(root / "data", n_seq=64 * batch, seq_len=seq_len, vocab=track.model.vocab_size)
    prepare_run(track, str(data), root / "run", device="cpu", compile=False, precision=None)
    trainer = Trainer(root / "run", init_env("cpu"))
    trainer_batches = trainer.data.batches(0, batch)

    torch.manual_seed(track.recipe.seed)
    model = build_model(track)
    opt = make_optimizer(model, track.recipe)
    loop_batches = ShardStream(str(data), seq_len=seq_len, seed=track.recipe.seed).batches(0, batch)

    def trainer_once() -> None:
        trainer.recent.append(trainer.train_step(next(trainer_batches)))  # what Trainer.run does per step

    def loop_once() -> None:
        plain_step(model, opt, torch.tensor(next(loop_batches)))

    kinds: dict[str, Callable[[], None]] = {"trainer": trainer_once, "loop": loop_once}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    for fn in kinds.values():
        for _ in range(warmup):
            fn()
    for r in range(rounds):
        for name in _alternate(list(kinds), r):
            start = time.process_time()
            for _ in range(steps):
                kinds[name]()
            rates[name].append(steps * track.tokens_per_step / (time.process_time() - start))
    ratios = [t / p for t, p in zip(rates["trainer"], rates["loop"], strict=True)]
    for name, values in rates.items():
        print(f"{name:8s} {statistics.median(values):12,.0f} tokens per CPU-second (median of {rounds} rounds)")
    ratio = statistics.median(rates["trainer"]) / statistics.median(rates["loop"])
    print(f"trainer / loop: {ratio:.3f}x per CPU-second (per-round ratios {min(ratios):.3f}-{max(ratios):.3f})")


def _alternate(names: list[str], round_index: int) -> Iterator[str]:
    return iter(names if round_index % 2 == 0 else names[::-1])


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
    p.add_argument(
        "--compile",
        action="store_true",
        help="also measure torch.compile(model) (the trainer's own compiled step: train_speed_bench.py)",
    )
    p.add_argument("--only", choices=["plain", "trainer"], help="measure one loop only")
    p.add_argument("--against-loop", action="store_true", help="the trainer against a plain loop, per CPU-second")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds of --against-loop")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    track = bench_track(args)
    m = track.model
    print(f"shape d={m.d_model} L={m.n_layers} H={m.n_heads} ctx={m.context} V={m.vocab_size} ffn={m.ffn_hidden} "
          f"params={track.n_params:,} batch={track.recipe.global_batch} threads={torch.get_num_threads()}")  # fmt: skip
    if args.against_loop:
        against_loop(track, args.rounds, args.steps, args.warmup)
        return
    for kind in [args.only] if args.only else ["plain", "trainer"]:
        for compiled in [False, True] if args.compile else [False]:
            tps = measure(track, kind, args.steps, args.warmup + (5 if compiled else 0), compiled)
            print(f"{kind:8s} {'compiled' if compiled else 'eager':8s} {tps:12,.0f} tokens/s")


if __name__ == "__main__":
    main()
