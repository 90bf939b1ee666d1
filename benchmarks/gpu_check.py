"""GPU readiness: one command that runs every GPU path of the harness and prints one table (also written as JSON).

    python benchmarks/gpu_check.py                      # ~5 min on one H100 (277 s with --steps 100, 2026-12-06)
    python benchmarks/gpu_check.py --steps 100 --batch 8 --out gpu_check.json --skip big

Checks, all in bf16 autocast with the track's recipe (AdamW, z-loss, clipping, cosine schedule), except that the
global batch is `--batch` sequences (one micro-batch per step) and the warm-up a tenth of the steps, so that a few
hundred steps take seconds each; the data are learnable synthetic shards read through the trainer's own loader:

  train 412m eager       the native trainer's step (harness.train.native.Trainer.train_step): tokens/s, MFU, peak
                         memory, and the loss of the last 10 steps against the first 10
  train 412m compile     the same under torch.compile (compilation happens in the untimed warm-up steps)
  train 412m fsdp        FSDP2 `fully_shard` (per block, then the root) on one device, in a one-process group
  checkpoint (eager)     the trainer's checkpoint written, resumed by a fresh trainer (strict load): equal logits
  checkpoint (fsdp)      the same through the full (gathered) state dict of the FSDP run
  eval harness / hf      HarnessLM against lm-eval's `hf` model (HFLM) on the same weights and the same token
                         requests, fp32 as `harness evaluate` runs: requests/s, and the log-likelihoods agree
  train 1b fsdp          a short FSDP run of the 1b shape, skipped when the estimated memory does not fit

MFU = tokens/s x FLOPs per token / the GPU's dense bf16 peak (harness.train.recipe.PEAK_BF16_FLOPS, or
$HARNESS_PEAK_FLOPS). FLOPs per token = 6 x (N - V x d) + 12 x L x d x T: 6·N·D over the parameters without the
input embedding (a lookup, no multiply), plus the attention score and value products counted over the full
T x T matrix (PaLM's accounting, as `harness train` logs it). Exit status: 0 every check passed, 1 one failed,
2 no CUDA device.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.tracks import ModelShape, Track

#: How the MFU column counts FLOPs (also written into the JSON).
FLOPS_ACCOUNTING = (
    "6*(N - V*d) + 12*L*d*T per token: 6ND without the input-embedding lookup, plus attention over the full "
    "T x T matrix (PaLM); harness.train.recipe.model_flops_per_token"
)
#: Steps averaged at each end of a run to decide that the loss went down.
LOSS_WINDOW = 10
#: Requests per evaluation throughput measurement, and the batch both models use.
EVAL_REQUESTS, EVAL_BATCH = 1024, 32
#: Bytes per parameter of training state: fp32 weights, gradients and AdamW's two moments.
STATE_BYTES_PER_PARAM = 16
#: Part of the GPU's memory the estimate may fill before a configuration counts as not fitting.
MEMORY_HEADROOM = 0.85


@dataclass(frozen=True)
class CheckResult:
    """One row of the table."""

    name: str
    passed: bool
    throughput: float | None = None  # per second, in `unit`
    unit: str = ""
    mfu: float | None = None
    peak_memory_gib: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    seconds: float = 0.0
    note: str = ""
    skipped: bool = False


# -- arithmetic and reporting (CPU-side, tested) ------------------------------------------------------------------


def flops_per_token(shape: ModelShape) -> float:
    from harness.train.recipe import model_flops_per_token

    return model_flops_per_token(shape.n_params, shape.vocab_size, shape.d_model, shape.n_layers, shape.context)


def mfu(tokens_per_s: float, per_token: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation, or None when the GPU's peak is unknown."""
    return tokens_per_s * per_token / peak if peak else None


def loss_trend(losses: Sequence[float], window: int = LOSS_WINDOW) -> tuple[float, float, bool]:
    """(mean of the first `window` losses, mean of the last `window`, whether it went down and stayed finite)."""
    if len(losses) < 2 * window:
        raise ValueError(f"need at least {2 * window} losses to compare both ends, got {len(losses)}")
    first, last = statistics.fmean(losses[:window]), statistics.fmean(losses[-window:])
    return first, last, math.isfinite(last) and last < first


def training_memory_bytes(shape: ModelShape, batch: int) -> float:
    """A rough upper estimate of one training step's peak memory: training state, bf16 activations (about 34
    bytes per token, layer and width unit, Korthikanti et al. 2022, without attention scores: SDPA is fused) and
    the logits (bf16 output, float32 copy, log-softmax and gradient: 14 bytes per vocabulary entry per token)."""
    tokens = batch * shape.context
    return (
        STATE_BYTES_PER_PARAM * shape.n_params
        + 34.0 * tokens * shape.d_model * shape.n_layers
        + 14.0 * tokens * shape.vocab_size
    )


def largest_batch(shape: ModelShape, memory: float, choices: Sequence[int] = (16, 8, 4, 2, 1)) -> int | None:
    """The largest batch whose estimated training memory fits in MEMORY_HEADROOM of `memory` bytes, or None."""
    return next((b for b in choices if training_memory_bytes(shape, b) <= MEMORY_HEADROOM * memory), None)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table_rows(results: Sequence[CheckResult]) -> list[list[str]]:
    rows = [["check", "result", "throughput", "MFU", "peak memory", "loss first → last", "note"]]
    for r in results:
        status = "skipped" if r.skipped else ("ok" if r.passed else "FAILED")
        through = f"{r.throughput:,.0f} {r.unit}" if r.throughput is not None else "–"
        loss = f"{r.loss_first:.3f} → {r.loss_last:.3f}" if r.loss_first is not None else "–"
        memory = f"{_fmt(r.peak_memory_gib, '.1f')} GiB" if r.peak_memory_gib is not None else "–"
        pct = f"{100 * r.mfu:.1f}%" if r.mfu is not None else "–"
        rows.append([r.name, status, through, pct, memory, loss, r.note])
    return rows


def render_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table, one line per check, columns padded to their widest cell."""
    rows = table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(results: Sequence[CheckResult], machine: dict[str, Any]) -> dict[str, Any]:
    """What the JSON file holds: the machine, the FLOP accounting and every check."""
    return {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        **machine,
        "flops_accounting": FLOPS_ACCOUNTING,
        "passed": all(r.passed for r in results),
        "checks": [asdict(r) for r in results],
    }


def write_report(path: Path, data: dict[str, Any]) -> None:
    from harness.train.checkpoint import write_json

    write_json(path, data)


def require_cuda() -> None:
    """Exit with status 2 and one line when there is no CUDA device (nothing else is done)."""
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(f"gpu_check: no CUDA device visible (torch {torch.__version__}, {build}); run it on a GPU machine",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)


# -- training checks (GPU) ----------------------------------------------------------------------------------------


def check_track(base: Track, *, steps: int, batch: int, fsdp: bool) -> Track:
    """`base` with a global batch of `batch` sequences in one micro-batch, `steps` steps, a warm-up of a tenth."""
    from harness.tracks import Budget

    recipe = dataclasses.replace(
        base.recipe, global_batch=batch, grad_accum=1, warmup=max(1, steps // 10), checkpoints=1,
        sharding="fsdp" if fsdp else "ddp",
    )  # fmt: skip
    return dataclasses.replace(base, recipe=recipe, budget=Budget(tokens=steps * batch * base.model.context))


class ProcessGroup:
    """A one-process NCCL group, so that FSDP2 can shard over one device."""

    def __enter__(self) -> ProcessGroup:
        import torch.distributed as dist

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("nccl", rank=0, world_size=1)
        return self

    def __exit__(self, *exc: object) -> None:
        import torch.distributed as dist

        dist.destroy_process_group()


def make_trainer(track: Track, data: Path, out: Path, *, compile: bool) -> Any:
    from harness.train import prepare_run
    from harness.train.native import Trainer, init_env

    prepare_run(track, str(data), out, device="cuda", compile=compile, precision=None)
    return Trainer(out, init_env("cuda"))


def timed_training(name: str, trainer: Any, steps: int, warmup: int) -> CheckResult:
    """Run `warmup` untimed steps, then `steps` timed ones (CUDA-synchronised), through Trainer.train_step."""
    import torch

    batches = trainer.data.batches(0, trainer.track.recipe.global_batch)
    torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        trainer.train_step(next(batches))
    torch.cuda.synchronize()
    start = time.perf_counter()
    losses = [trainer.train_step(next(batches)) for _ in range(steps)]
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    values = torch.stack(losses).float().tolist()
    first, last, down = loss_trend(values)
    tps = steps * trainer.track.tokens_per_step / seconds
    name_gpu = torch.cuda.get_device_name()
    from harness.train.recipe import peak_flops

    util = mfu(tps, flops_per_token(trainer.track.model), peak_flops(name_gpu))
    note = f"{steps} steps of {trainer.track.tokens_per_step:,} tokens"
    if util is None:
        note += "; peak FLOP/s of this GPU unknown: set HARNESS_PEAK_FLOPS"
    return CheckResult(
        name, passed=down, throughput=tps, unit="tokens/s", mfu=util,
        peak_memory_gib=torch.cuda.max_memory_allocated() / 2**30, loss_first=first, loss_last=last,
        seconds=seconds, note=note if down else f"loss did not go down; {note}",
    )  # fmt: skip


def checkpoint_round_trip(name: str, trainer: Any, out: Path) -> CheckResult:
    """Save the trainer's checkpoint, resume a fresh trainer from it (strict load), compare logits bitwise."""
    import torch

    from harness.train.native import Trainer

    start = time.perf_counter()
    trainer.save(1, 0.0)
    fresh = Trainer(out, trainer.env)
    fresh.resume()
    ids = torch.randint(0, trainer.track.model.vocab_size, (2, 128), device="cuda")
    trainer.model.eval()
    fresh.model.eval()
    with torch.no_grad(), trainer.autocast:
        a, b = trainer.model(ids), fresh.model(ids)
    same = torch.equal(a, b) and fresh.step == trainer.step
    diff = float((a - b).abs().max())
    note = f"resumed at step {fresh.step}, max |Δlogit| {diff:.2e}"
    del fresh
    return CheckResult(name, passed=same, seconds=time.perf_counter() - start, note=note)


def free_cuda() -> None:
    import torch

    gc.collect()
    torch.cuda.empty_cache()


def guarded(name: str, fn: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run one check; an exception (out of memory included) becomes a failed row, not an aborted run."""
    import torch

    print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
    try:
        return fn()
    except torch.OutOfMemoryError as exc:
        return [CheckResult(name, passed=False, note=f"out of memory: {str(exc).splitlines()[0][:120]}")]
    except Exception as exc:  # a check that crashes must still leave the others and the table
        return [CheckResult(name, passed=False, note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")]
    finally:
        free_cuda()


def train_checks(base: Track, root: Path, args: argparse.Namespace, batch: int) -> list[CheckResult]:
    from harness.data.synthetic import write_synthetic_shards

    shape = base.model
    data = write_synthetic_shards(root / f"data-{base.name}", n_seq=max(256, 4 * batch),
                                  seq_len=shape.context + 1, vocab=shape.vocab_size)  # fmt: skip
    total = args.steps + args.warmup + 15  # the compiled run warms up longer (compilation)
    track = check_track(base, steps=total, batch=batch, fsdp=False)
    results: list[CheckResult] = []

    def eager() -> list[CheckResult]:
        trainer = make_trainer(track, data, root / "eager", compile=False)
        row = timed_training(f"train {base.name} eager", trainer, args.steps, args.warmup)
        trip = checkpoint_round_trip("checkpoint (eager)", trainer, root / "eager")
        return [row, trip]

    def compiled() -> list[CheckResult]:
        trainer = make_trainer(track, data, root / "compile", compile=True)
        return [timed_training(f"train {base.name} compile", trainer, args.steps, args.warmup + 15)]

    def fsdp() -> list[CheckResult]:
        with ProcessGroup():
            trainer = make_trainer(check_track(base, steps=total, batch=batch, fsdp=True), data, root / "fsdp",
                                   compile=False)  # fmt: skip
            row = timed_training(f"train {base.name} fsdp", trainer, args.steps, args.warmup)
            trip = checkpoint_round_trip("checkpoint (fsdp)", trainer, root / "fsdp")
            del trainer
            return [row, trip]

    for name, fn in (("eager", eager), ("compile", compiled), ("fsdp", fsdp)):
        if name in args.skip:
            continue
        results += guarded(f"train {base.name} {name}", fn)
    return results


def big_check(base: Track, root: Path, args: argparse.Namespace) -> list[CheckResult]:
    """A short FSDP run of a larger shape, when its estimated memory fits."""
    import torch

    from harness.data.synthetic import write_synthetic_shards

    name = f"train {base.name} fsdp"
    total_memory = torch.cuda.get_device_properties(0).total_memory
    batch = largest_batch(base.model, total_memory)
    if batch is None:
        need = training_memory_bytes(base.model, 1) / 2**30
        return [CheckResult(name, passed=True, skipped=True,
                            note=f"needs about {need:.0f} GiB at batch 1, the GPU has {total_memory / 2**30:.0f}")]  # fmt: skip
    steps = max(2 * LOSS_WINDOW, args.steps // 5)
    data = write_synthetic_shards(root / f"data-{base.name}", n_seq=max(128, 4 * batch),
                                  seq_len=base.model.context + 1, vocab=base.model.vocab_size)  # fmt: skip

    def run() -> list[CheckResult]:
        with ProcessGroup():
            track = check_track(base, steps=steps + args.warmup, batch=batch, fsdp=True)
            trainer = make_trainer(track, data, root / f"fsdp-{base.name}", compile=False)
            row = timed_training(name, trainer, steps, args.warmup)
            del trainer
            return [row]

    return guarded(name, run)


# -- evaluation throughput (GPU; the adapter itself is tested on CPU) -----------------------------------------------


class HFShell:
    """Our Transformer behind what lm-eval's `hf` model uses of a transformers model: `.config`, `.device`,
    `.eval()`, and `model(ids).logits`; so HFLM runs on exactly the same weights as HarnessLM."""

    def __init__(self, model: Any, max_length: int) -> None:
        from transformers import PretrainedConfig

        self.inner = model
        self.config = PretrainedConfig(max_position_embeddings=max_length, vocab_size=model.shape.vocab_size)

    @property
    def device(self) -> Any:
        return next(self.inner.parameters()).device

    def eval(self) -> HFShell:
        self.inner.eval()
        return self

    def __call__(self, input_ids: Any, **_: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.inner(input_ids))


def token_requests(n: int, vocab: int, max_len: int, seed: int = 0) -> list[tuple[tuple[str, str], list, list]]:
    """lm-eval's token-level log-likelihood requests: ((context key, continuation key), context ids, continuation
    ids), contexts of 16..max_len/2 tokens and continuations of 1..8 (multiple-choice and cloze tasks' shapes)."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        ctx = [rng.randrange(vocab) for _ in range(rng.randint(16, max(16, max_len // 2)))]
        cont = [rng.randrange(vocab) for _ in range(rng.randint(1, 8))]
        out.append(((f"c{i}", f"x{i}"), ctx, cont))
    return out


def eval_models(model: Any, max_length: int, device: str, batch: int) -> tuple[Any, Any]:
    """(HarnessLM, lm-eval's HFLM) over the same module, with the sandbox tokenizer (shipped, no download)."""
    from lm_eval.models.huggingface import HFLM
    from transformers import PreTrainedTokenizerFast

    from harness.evaluate.lm import HarnessLM
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    spec = get_track("nano").tokenizer
    tokenizer = load_tokenizer(spec)
    ours = HarnessLM.from_model(model, tokenizer, eot_id=spec.eot_id, pad_id=spec.pad_id, max_length=max_length,
                                device=device, batch_size=batch)  # fmt: skip
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|pad|>")
    hf = HFLM(pretrained=HFShell(model, max_length), tokenizer=hf_tok, batch_size=batch, max_length=max_length,
              backend="causal")  # fmt: skip
    return ours, hf


def compare_eval(ours: Any, hf: Any, requests: list, repeats: int = 1) -> tuple[float, float, float]:
    """(our requests/s, hf requests/s, largest |log-likelihood difference|) over the same requests."""
    import torch

    def timed(lm: Any) -> tuple[float, list[float]]:
        lm._loglikelihood_tokens(requests[:64], disable_tqdm=True)  # warm-up
        best, values = math.inf, []
        for _ in range(repeats):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            values = [ll for ll, _ in lm._loglikelihood_tokens(requests, disable_tqdm=True)]
            best = min(best, time.perf_counter() - start)
        return len(requests) / best, values

    ours_rps, ours_ll = timed(ours)
    hf_rps, hf_ll = timed(hf)
    return ours_rps, hf_rps, max(abs(a - b) for a, b in zip(ours_ll, hf_ll, strict=True))


def eval_check(base: Track) -> list[CheckResult]:
    import torch

    from harness.model import build_model

    def run() -> list[CheckResult]:
        torch.manual_seed(0)
        model = build_model(base, device="cuda")
        ours, hf = eval_models(model, base.model.context, "cuda", EVAL_BATCH)
        requests = token_requests(EVAL_REQUESTS, base.model.vocab_size, base.model.context)
        ours_rps, hf_rps, diff = compare_eval(ours, hf, requests, repeats=2)
        agree = diff <= 1e-2
        note = f"{EVAL_REQUESTS} requests, batch {EVAL_BATCH}, fp32; max |Δ loglik| {diff:.1e}"
        return [
            CheckResult(f"eval {base.name} harness", passed=agree, throughput=ours_rps, unit="requests/s",
                        note=f"{ours_rps / hf_rps:.2f}x lm-eval hf; {note}"),
            CheckResult(f"eval {base.name} lm-eval hf", passed=True, throughput=hf_rps, unit="requests/s",
                        note="same weights (HarnessLM's module behind HFLM)"),
        ]  # fmt: skip

    return guarded(f"eval {base.name}", run)


# -- the command --------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import torch

    props = torch.cuda.get_device_properties(0)
    return {
        "gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1), "gpus_visible": torch.cuda.device_count(),
        "torch": torch.__version__, "cuda": torch.version.cuda,
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="timed training steps per configuration (default 200)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before timing (compile gets 15 more)")
    p.add_argument("--batch", type=int, help="sequences per step (default: the largest of 16/8/4/2/1 that fits)")
    p.add_argument("--track", default="412m", help="the main shape (default 412m)")
    p.add_argument("--big-track", default="1b", help="the short larger run (default 1b)")
    p.add_argument("--skip", nargs="*", default=[], choices=["eager", "compile", "fsdp", "eval", "big"])
    p.add_argument(
        "--out", type=Path, default=Path("gpu_check.json"), help="the JSON report (default ./gpu_check.json)"
    )
    args = p.parse_args(argv)
    if args.steps < 2 * LOSS_WINDOW:
        p.error(f"--steps must be at least {2 * LOSS_WINDOW} (the loss is compared over {LOSS_WINDOW} steps each end)")
    require_cuda()
    import torch

    from harness.tracks import get_track

    torch.backends.cuda.matmul.allow_tf32 = False  # the recipe's numbers: bf16 autocast, fp32 elsewhere
    base = get_track(args.track)
    memory = torch.cuda.get_device_properties(0).total_memory
    batch = args.batch or largest_batch(base.model, memory)
    if batch is None:
        print(f"gpu_check: the {base.name} shape does not fit this GPU's {memory / 2**30:.0f} GiB", file=sys.stderr)
        return 2
    info = machine_info()
    print(f"gpu_check: {info['gpu']} ({info['gpu_memory_gib']} GiB), torch {info['torch']}, CUDA {info['cuda']}; "
          f"{base.name} at batch {batch} x {base.model.context} tokens", file=sys.stderr, flush=True)  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        results = train_checks(base, root, args, batch)
        if "eval" not in args.skip:
            results += eval_check(base)
        if "big" not in args.skip:
            results += big_check(get_track(args.big_track), root, args)
    table = render_table(results)
    print(table)
    data = report(
        results, {**info, "batch": batch, "steps": args.steps, "wall_s": round(time.perf_counter() - started, 1)}
    )
    write_report(args.out, data)
    print(f"\nMFU counts {FLOPS_ACCOUNTING}.\nwritten: {args.out}")
    return 0 if data["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
