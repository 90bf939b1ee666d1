"""The native trainer: one process, or one of many under torchrun (DDP for small tracks, FSDP for large ones).

Every process runs `run_worker(out_dir)`, which reads `out_dir/run.json`. The run resumes from the newest complete
checkpoint; given the same data, a run killed at any point ends with the same weights as one that never stopped
(bitwise on CPU): the data order is a function of the sample index, the model is seeded from the track, and the
checkpoint holds the optimizer state, the step and the RNG states.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.data.loader import ShardStream
from harness.model import Transformer, build_model
from harness.tracks import Track, track_from_dict
from harness.train import checkpoint as ck
from harness.train.compiled import StepLoss, normalise_setting, wants_compile
from harness.train.recipe import (
    accumulation,
    checkpoint_steps,
    lr_at,
    make_optimizer,
    model_flops_per_token,
    peak_flops,
)

#: Losses averaged into the reported final loss (the last steps of the run).
FINAL_LOSS_WINDOW = 10


@dataclass
class Env:
    """Where this process runs."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_env(device: str | None) -> Env:
    """Join torchrun's process group when launched by it (gloo on CPU, NCCL on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(kind, local_rank) if kind == "cuda" else torch.device(kind)
    if kind == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if kind == "cuda" else "gloo")
    return Env(rank, world, local_rank, dev)


def wrap_model(
    model: Transformer, track: Track, env: Env, *, sharding: str | None = None, precision: str = "fp32"
) -> torch.nn.Module:
    """DDP, or FSDP2 (`fully_shard` per block, then the root) when `sharding` (default: the track's recipe) says
    so, on GPU (NCCL) or CPU (gloo). FSDP needs a process group, which torchrun's processes join; a single process
    uses it only when its caller started one (benchmarks/gpu_check.py does, to check FSDP on one device). FSDP
    keeps bf16 parameter copies for the forward pass only when the run's `precision` is not fp32. torch.compile
    wraps the step's forward and loss around this (harness.train.compiled)."""
    grouped = env.distributed or (torch.distributed.is_available() and torch.distributed.is_initialized())
    fsdp = grouped and (sharding or track.recipe.sharding) == "fsdp"
    if fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        pure = "--fsdp-pure-bf16" in track.recipe.open_lm_flags
        mp = MixedPrecisionPolicy()  # fp32: no casts
        if precision != "fp32":
            reduce = torch.bfloat16 if pure else torch.float32
            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=reduce)
        for block in model.layers:
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
    inner: torch.nn.Module = model
    if env.distributed and not fsdp:
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.device.index] if env.device.type == "cuda" else None
        inner = DistributedDataParallel(inner, device_ids=ids)
    return inner


def is_fsdp(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def chosen_precision(track: Track, env: Env, precision: str | None) -> str:
    """The run's precision: the one asked for, else the track's on GPU and fp32 on CPU."""
    return precision or (track.recipe.precision if env.device.type == "cuda" else "fp32")


def autocast_for(precision: str, env: Env) -> Any:
    """bf16 autocast unless the run's precision is fp32."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=env.device.type, dtype=torch.bfloat16)


def state_dicts(raw: Transformer, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Full (unsharded, CPU) model and optimizer state; collective under FSDP, so every rank calls it."""
    if is_fsdp(raw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        return get_state_dict(raw, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return raw.state_dict(), optimizer.state_dict()


def load_state_dicts(raw: Transformer, optimizer: torch.optim.Optimizer, model_sd: dict, optim_sd: dict) -> None:
    """Load a checkpoint written at any world size, with or without FSDP (its optimizer state in either layout)."""
    fsdp = is_fsdp(raw)
    optim_sd = optimizer_layout(optim_sd, param_names(raw, optimizer), by_name=fsdp)
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        opts = StateDictOptions(full_state_dict=True)
        set_state_dict(raw, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd, options=opts)
        return
    raw.load_state_dict(model_sd)
    optimizer.load_state_dict(optim_sd)


def param_names(raw: Transformer, optimizer: torch.optim.Optimizer) -> list[str]:
    """The optimizer's parameters by name, in the order that numbers them in `optimizer.state_dict()`."""
    names = {p: n for n, p in raw.named_parameters()}
    return [names[p] for group in optimizer.param_groups for p in group["params"]]


def optimizer_layout(optim_sd: dict, names: list[str], *, by_name: bool) -> dict:
    """Optimizer state in the layout that open_lm writes for the run's kind: keyed by parameter number for one
    process or DDP (`optimizer.state_dict()`), by parameter name under FSDP (the full state dict). A checkpoint
    in the other layout is re-keyed, so a run resumes at another world size or sharding."""
    keys = [k for group in optim_sd["param_groups"] for k in group["params"]]
    if all(isinstance(k, str) == by_name for k in keys):
        return optim_sd
    if len(keys) != len(names):
        from harness.errors import HarnessError

        raise HarnessError(f"a checkpoint's optimizer state holds {len(keys)} parameters where the model has "
                           f"{len(names)}: it is not this track's; delete the run folder to train from the start")  # fmt: skip
    table = {i: n for i, n in enumerate(names)} if by_name else {n: i for i, n in enumerate(names)}
    groups = [{**g, "params": [table[k] for k in g["params"]]} for g in optim_sd["param_groups"]]
    return {"state": {table[k]: v for k, v in optim_sd["state"].items()}, "param_groups": groups}


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class Trainer:
    """The state of one process's training run."""

    def __init__(self, out_dir: Path, env: Env) -> None:
        self.out_dir, self.env = out_dir, env
        self.spec = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
        self.track = track_from_dict(self.spec["track"], str(out_dir / "run.json"))
        recipe = self.track.recipe
        self.total_steps = self.track.steps
        self.ckpt_steps = checkpoint_steps(self.total_steps, recipe.checkpoints)
        self.local_batch, self.accum = accumulation(recipe.global_batch, env.world, recipe.grad_accum)
        torch.manual_seed(recipe.seed)  # the same initial weights on every process and every run
        self.raw = build_model(self.track, device=env.device)
        precision = chosen_precision(self.track, env, self.spec.get("precision"))
        self.model = wrap_model(self.raw, self.track, env, sharding=self.spec.get("sharding"), precision=precision)
        self.optimizer = make_optimizer(self.raw, recipe)
        self.autocast = autocast_for(precision, env)
        self.data = ShardStream(self.spec["data_dir"], seq_len=self.track.model.context + 1, seed=recipe.seed)
        self.step, self.wall_before, self.resumed_from = 0, 0.0, None
        self.recent: deque[torch.Tensor] = deque(maxlen=FINAL_LOSS_WINDOW)
        self.log_every = max(1, self.total_steps // 200)
        name = torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else ""
        peak = peak_flops(name) if name else None
        m = self.track.model
        per_token = model_flops_per_token(self.track.n_params, m.vocab_size, m.d_model, m.n_layers, m.context)
        self.peak_total = peak * env.world if peak else None
        self.flops_per_token = per_token
        setting = normalise_setting(self.spec.get("compile"))
        compile = wants_compile(setting, self.track.tokens * per_token, env.device.type, env.world)
        self.loss_fn = StepLoss(self.model, recipe.z_loss, compile=compile, quiet=not env.main)

    # -- checkpoints -----------------------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from the newest complete checkpoint, with every file of the run as it was at that checkpoint:
        the log loses the rows written after it (a torn row included), and killed writers' temporary files go."""
        done = ck.completed_checkpoints(self.out_dir)
        if self.env.main:
            from harness.io.leftovers import sweep_tree

            sweep_tree(self.out_dir)
        if not done:
            if self.env.main:
                ck.truncate_log(self.out_dir / ck.LOG_FILE, 0)  # killed before the first checkpoint: start over
            return
        paths = ck.checkpoint_paths(self.out_dir, done[-1])
        model_ck = torch.load(paths["epoch"], map_location="cpu", weights_only=True)
        optim_ck = torch.load(paths["optimizer"], map_location="cpu", weights_only=True)
        stats = torch.load(paths["stats"], map_location="cpu", weights_only=True)
        load_state_dicts(self.raw, self.optimizer, model_ck["state_dict"], optim_ck["optimizer"])
        set_rng_state(stats["rng"])
        self.step, self.wall_before = int(model_ck["step"]), float(stats["wall_time_s"])
        self.recent.extend(torch.tensor(v) for v in stats["recent_losses"])
        self.resumed_from = str(paths["epoch"])
        if self.env.main:
            ck.truncate_log(self.out_dir / ck.LOG_FILE, self.step)

    def save(self, epoch: int, wall: float) -> None:
        model_sd, optim_sd = state_dicts(self.raw, self.optimizer)
        if not self.env.main:
            return
        paths = ck.checkpoint_paths(self.out_dir, epoch)
        samples = self.step * self.track.recipe.global_batch
        name = self.out_dir.name
        ck.atomic_torch_save(
            paths["epoch"],
            {"epoch": epoch, "name": name, "state_dict": model_sd, "step": self.step, "samples_seen": samples,
             "evaluation_loss": -1},
        )  # fmt: skip
        ck.atomic_torch_save(paths["optimizer"], {"epoch": epoch, "name": name, "optimizer": optim_sd})
        stats = {
            "epoch": epoch, "step": self.step, "samples_seen": samples, "is_final_checkpoint": self.step == self.total_steps,
            "tokens_seen": samples * self.track.model.context, "passes": samples / self.data.num_sequences,
            "rng": rng_state(), "wall_time_s": wall, "recent_losses": [float(v) for v in self.recent],
        }  # fmt: skip
        ck.atomic_torch_save(paths["stats"], stats)  # last: it marks the checkpoint complete

    # -- one optimizer step ----------------------------------------------------------------------------------
    def train_step(self, batch: list[list[int]]) -> torch.Tensor:
        lr = lr_at(self.step, self.track.recipe, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        seqs = torch.tensor(batch, dtype=torch.long, device=self.env.device)
        inputs, targets = seqs[:, :-1], seqs[:, 1:]
        micro = self.local_batch // self.accum
        total = torch.zeros((), device=self.env.device)
        for i in range(self.accum):
            last = i == self.accum - 1
            with self._no_sync(last), self.autocast:
                part = slice(i * micro, (i + 1) * micro)
                loss = self.loss_fn(inputs[part], targets[part]) / self.accum
            loss.backward()
            total += loss.detach()
        if self.track.recipe.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.track.recipe.grad_clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.env.distributed:  # gloo has no AVG: sum, then divide
            torch.distributed.all_reduce(total)
            total /= self.env.world
        self.step += 1
        return total

    def _no_sync(self, last: bool) -> Any:
        """Skip the gradient all-reduce on all but the last micro-batch of a step."""
        if last or not self.env.distributed:
            return nullcontext()
        if hasattr(self.model, "no_sync"):
            return self.model.no_sync()
        self.model.set_requires_gradient_sync(False)  # FSDP2: re-enabled below for the last micro-batch
        return _ResyncFSDP(self.model)

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self, progress: Any = None) -> dict[str, Any]:
        self.resume()
        start = time.perf_counter()
        log = open(self.out_dir / ck.LOG_FILE, "a", encoding="utf-8") if self.env.main else None  # noqa: SIM115
        bar = _Bar(progress, self.total_steps, self.step) if self.env.main else None
        batches = self.data.batches(self.step, self.track.recipe.global_batch, rank=self.env.rank, world=self.env.world)
        last_t, last_step = start, self.step
        try:
            while self.step < self.total_steps:
                loss = self.train_step(next(batches))
                self.recent.append(loss)
                if self.step % self.log_every == 0 or self.step in self.ckpt_steps:
                    now = time.perf_counter()
                    row = self._log_row(loss, now - last_t, self.step - last_step, self.wall_before + now - start)
                    last_t, last_step = now, self.step
                    if log:
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                if self.step in self.ckpt_steps:
                    self.save(self.ckpt_steps.index(self.step) + 1, self.wall_before + time.perf_counter() - start)
                if bar:
                    bar.update(self.step, float(loss))
        finally:
            if log:
                log.close()
            if bar:
                bar.close()
        return self.summary(self.wall_before + time.perf_counter() - start)

    def _log_row(self, loss: torch.Tensor, dt: float, steps: int, wall: float) -> dict[str, Any]:
        tokens_per_step = self.track.tokens_per_step
        tps = tokens_per_step * steps / dt if dt > 0 else 0.0
        row = {
            "step": self.step, "loss": round(float(loss), 6), "lr": lr_at(self.step - 1, self.track.recipe, self.total_steps),
            "tokens": self.step * tokens_per_step, "tokens_per_s": round(tps, 1), "elapsed_s": round(wall, 3),
        }  # fmt: skip
        if self.peak_total:
            row["mfu"] = round(tps * self.flops_per_token / self.peak_total, 4)
        return row

    def summary(self, wall: float) -> dict[str, Any]:
        samples = self.step * self.track.recipe.global_batch
        tokens = samples * self.track.model.context
        return {
            "final_loss": sum(float(v) for v in self.recent) / max(1, len(self.recent)),
            "tokens_seen": tokens,
            "steps": self.step,
            "passes": samples / self.data.num_sequences,
            "wall_time_s": wall,
            "tokens_per_s": tokens / wall if wall > 0 else 0.0,
            "checkpoint": str(ck.checkpoint_paths(self.out_dir, len(self.ckpt_steps))["epoch"]),
            "log": str(self.out_dir / ck.LOG_FILE),
            "trainer": "native",
            "resumed_from": self.resumed_from,
            "threads": torch.get_num_threads(),  # a CPU run re-trains bit for bit only with as many (verify --level train)
            "processes": self.env.world,
            "sharding": "fsdp" if is_fsdp(self.raw) else "ddp" if self.env.distributed else "none",
            "compiled": self.loss_fn.uses_compile,  # and only compiled (or eager) as it was
            "compile_s": round(self.loss_fn.compile_s, 3),
        }


class _ResyncFSDP:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.model.set_requires_gradient_sync(True)  # type: ignore[operator]


class _Bar:
    """A rich progress bar with ETA (the caller's Progress when given, else our own on stderr)."""

    def __init__(self, progress: Any, total: int, done: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.own = progress is None
        self.progress = progress or Progress(
            TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(), console=Console(stderr=True),
        )  # fmt: skip
        if self.own:
            self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done, loss="-")

    def update(self, step: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, loss=f"{loss:.3f}")

    def close(self) -> None:
        if self.own:
            self.progress.stop()


def run_worker(out_dir: Path, progress: Any = None) -> dict[str, Any]:
    """Train (or finish training) the run in `out_dir`; rank 0 writes the completion marker last."""
    spec = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    env = init_env(spec.get("device"))
    try:
        summary = Trainer(out_dir, env).run(progress)
        if env.main:
            ck.write_json(out_dir / ck.COMPLETION_MARKER, summary)
        return summary
    finally:
        if env.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":  # torchrun -m harness.train.native OUT_DIR
    from harness.errors import HarnessError

    try:
        run_worker(Path(sys.argv[1]))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
