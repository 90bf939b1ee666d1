"""The open_lm backend: train a track with open_lm itself, launched exactly as DCLM launches it.

`open_lm_args` builds DCLM's argument list for a track (reference/dclm-facts.md). `train_open_lm` checks first what
open_lm's loader will do with the tokenized data (harness.data.shard_plan), then runs open_lm with its own folder
under `out_dir/open_lm/`: `python -m open_lm.main ARGS` for one process, torchrun (or a Slurm script) through
`harness.train.openlm.main` for several. It then maps open_lm's output into the run folder: `checkpoints/epoch_N.pt`
(hard links), `params.txt` (open_lm's lines plus the harness's track and tokenizer lines), the training curve read
from open_lm's `out.log` as the native trainer's `train_log.jsonl`, and the completion marker. Re-running resumes
(`--resume latest`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.data.shard_plan import (
    OPEN_LM_WORKERS,
    LoaderError,
    LoaderPlan,
    open_lm_checkpoints,
    open_lm_sequences_per_checkpoint,
)
from harness.errors import HarnessError, UsageError
from harness.io.files import write_bytes_atomic
from harness.tracks import Track
from harness.train import checkpoint as ck

INSTALL_HINT = (
    "open_lm is not installed. It is not on the package index: install it from its git repository with "
    "`pip install 'harness[openlm]'` (open_lm at the verified commit, webdataset==0.2.86, xformers; see docs/organisers.md, "
    "'Training with open_lm'), or train with the native trainer (--trainer native)."
)
CPU_PROCESSES = (
    "open_lm cannot train several processes on a CPU: its DDP hands torch device_ids=[cpu], which torch refuses "
    "for a CPU model, and its --fsdp trains but fails to save a checkpoint (torch's full state dict with "
    "offload_to_cpu on CPU parameters, pytorch/pytorch#188989). Train with --nproc 1, on GPUs, or with "
    "--trainer native, which runs DDP and FSDP on CPUs."
)
OPEN_LM_SUBDIR = "open_lm"
RUN_NAME = "run"
ARGS_FILE = "open_lm_args.json"
PLAN_FILE = "open_lm_plan.json"


def _num(x: float) -> str:
    """Numbers as DCLM writes them (0.003, 3e-05, 1)."""
    return f"{x:g}"


def train_num_samples(track: Track) -> int:
    """`--train-num-samples` (tokens per checkpoint): DCLM's `tokens // checkpoints`, unless open_lm would then run
    fewer steps than the track (it counts whole sequences per checkpoint: nano's 314,572 tokens are 1,228
    sequences, 191 steps over 5 checkpoints instead of 192)."""
    sequences = open_lm_sequences_per_checkpoint(track)
    dclm = track.tokens // track.recipe.checkpoints
    return dclm if dclm // track.model.context == sequences else sequences * track.model.context


def open_lm_args(
    track: Track,
    *,
    model_json: str,
    manifest: str,
    logs: str,
    name: str,
    multiple_passes: bool,
    dist_backend: str | None = None,
) -> list[str]:
    """DCLM's open_lm argument list for `track` (`--train-num-samples` counts tokens per checkpoint and
    `--epochs` counts checkpoints), plus `--multiple-data-passes` when one pass over the data cannot feed every
    checkpoint, and `--dist-backend` when given (gloo for several processes on CPU; open_lm's default is NCCL)."""
    r = track.recipe
    args = [
        "--workers", str(OPEN_LM_WORKERS), "--precision", r.precision, "--global-batch-size", str(r.global_batch),
        "--log-every-n-steps", "20", "--grad-clip-norm", _num(r.grad_clip_norm), "--lr", _num(r.lr),
        "--warmup", str(r.warmup), "--model", model_json, "--wd", _num(r.weight_decay), "--beta2", _num(r.beta2),
        "--epochs", str(r.checkpoints), "--resume", "latest", "--seed", str(r.seed), "--accum-freq", str(r.grad_accum),
        "--model-norm", track.model.norm, "--delete-previous-checkpoint", "--lr-cooldown-end", _num(r.cooldown_end_lr),
        "--logs", logs, "--attn-name", "torch_attn", "--log-logit-mean", "--data-tolerate-error-p", "0.09",
        "--data-tolerate-num-ckpts", "0", "--train-num-samples", str(train_num_samples(track)),
        "--dataset-manifest", manifest, "--data-key", "json.gz", "--name", name, *r.open_lm_flags,
    ]  # fmt: skip
    if track.model.qk_norm:
        args.append("--qk-norm")
    args += ["--z-loss", _num(r.z_loss)]
    if multiple_passes:
        args.append("--multiple-data-passes")
    if dist_backend:
        args += ["--dist-backend", dist_backend]
    return args


def check_compatible(track: Track) -> None:
    """open_lm fixes a few things the harness leaves to the track; refuse shapes open_lm would build differently."""
    m = track.model
    if m.ffn_multiple_of != 256:
        raise UsageError(
            f"track {track.name}: open_lm rounds the SwiGLU hidden size to a multiple of 256, the track uses "
            f"{m.ffn_multiple_of}; train this track with --trainer native"
        )
    if m.norm_eps != 1e-5:
        raise UsageError(f"track {track.name}: open_lm's norms use eps 1e-5, the track {m.norm_eps}")
    if track.recipe.beta1 != 0.9 or track.recipe.eps != 1e-8:
        raise UsageError(f"track {track.name}: DCLM's launch leaves beta1 and eps at open_lm's defaults (0.9, 1e-8)")


def data_tokens(manifest_dir: str, context: int) -> int:
    from harness.data.loader import shard_infos

    return sum(s.num_sequences for s in shard_infos(manifest_dir)) * context


def loader_plan(track: Track, data_dir: str, processes: int) -> tuple[LoaderPlan, bool]:
    """What open_lm's loader will do with the data (its checkpoints), reading it once if it can, else with
    `--multiple-data-passes`; a UsageError when it cannot serve the track at all."""
    from harness.data.loader import shard_infos

    sizes = [s.num_sequences for s in shard_infos(data_dir)]
    r = track.recipe
    kwargs = {
        "sequences_per_checkpoint": train_num_samples(track) // track.model.context, "checkpoints": r.checkpoints,
        "global_batch": r.global_batch, "seed": r.seed, "processes": processes,
    }  # fmt: skip
    try:
        return open_lm_checkpoints(sizes, **kwargs, multiple_passes=False), False
    except LoaderError:
        pass
    try:
        return open_lm_checkpoints(sizes, **kwargs, multiple_passes=True), True
    except LoaderError as exc:
        raise UsageError(
            f"{data_dir}: {exc}. open_lm reads each checkpoint's shards from a single pass, so the subset must hold "
            f"at least one checkpoint's data ({kwargs['sequences_per_checkpoint']} sequences) in at least "
            f"{OPEN_LM_WORKERS * processes} shards; add documents, use fewer processes, or train with --trainer native"
        ) from exc


def _on_cpu(device: str | None) -> bool:
    if device is not None:
        return not device.startswith("cuda")
    import torch

    return not torch.cuda.is_available()


def train_open_lm(
    track: Track,
    data_dir: str,
    out_dir: Path,
    *,
    nproc: int = 1,
    nodes: int = 1,
    launcher: str = "local",
    device: str | None = None,
    slurm: Any = None,
) -> Any:
    """Run open_lm on `track` and map its output into `out_dir`; returns a TrainResult. With launcher "slurm" the
    written script is submitted (harness.train.slurm) and the output is mapped once the job has completed."""
    from harness.train.launch import torchrun_command

    if launcher == "local" and nproc * nodes > 1 and _on_cpu(device):
        raise UsageError(CPU_PROCESSES)
    if importlib.util.find_spec("open_lm") is None:
        raise HarnessError(INSTALL_HINT)
    check_compatible(track)
    data_dir = str(data_dir).rstrip("/")
    several = nproc * nodes > 1 or launcher == "slurm"
    if launcher == "slurm":
        return _on_slurm(track, data_dir, out_dir, nproc=nproc, nodes=nodes, device=device, slurm=slurm)
    args = _prepare(track, data_dir, out_dir, nproc * nodes, several=several, device=device)
    entry = [str(out_dir / ARGS_FILE)]
    if several:
        cmd = torchrun_command(nproc=nproc, module="harness.train.openlm.main", args=entry)
    else:
        cmd = [sys.executable, "-m", "open_lm.main", *args]
    start = time.perf_counter()
    # open_lm prints to stdout (e.g. "Saving epoch_1 in ..."): keep the harness's stdout for its own output (--json)
    if subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=_stderr_fd()).returncode != 0:
        raise HarnessError(
            f"open_lm failed ({' '.join(cmd)}); its log is {out_dir / OPEN_LM_SUBDIR / RUN_NAME / 'out.log'}. "
            "Re-run to resume from its newest checkpoint."
        )
    return map_output(track, data_dir, out_dir, wall_time_s=time.perf_counter() - start)


def _prepare(track: Track, data_dir: str, out_dir: Path, world: int, *, several: bool, device: str | None) -> list[str]:
    """Write open_lm's model, plan and argument files into `out_dir`; returns open_lm's arguments."""
    from harness.model import open_lm_model_config

    out_dir.mkdir(parents=True, exist_ok=True)
    plan, multiple = loader_plan(track, data_dir, world)
    _warn_if_plan_differs(track, plan)
    ck.write_json(out_dir / PLAN_FILE, {**asdict(plan), "multiple_data_passes": multiple})
    ck.write_json(out_dir / "model.json", open_lm_model_config(track.model))
    args = open_lm_args(
        track, model_json=str(out_dir / "model.json"), manifest=f"{data_dir}/manifest.jsonl",
        logs=str(out_dir / OPEN_LM_SUBDIR), name=RUN_NAME, multiple_passes=multiple,
        dist_backend="gloo" if several and _on_cpu(device) else None,
    )  # fmt: skip
    ck.write_json(out_dir / ARGS_FILE, args)
    return args


def _on_slurm(track: Track, data_dir: str, out_dir: Path, *, nproc: int, nodes: int, device: str | None,
              slurm: Any) -> Any:  # fmt: skip
    """open_lm under a Slurm job: submitted (or followed) through harness.train.slurm; a job that completed has
    its output mapped into the run folder, here or on the re-run after it."""
    from harness.train import slurm as jobs
    from harness.train.launch import write_slurm_script
    from harness.train.result import SlurmOptions, TrainingPending

    opts = slurm or SlurmOptions()
    job = jobs.read_job(out_dir)
    if job is not None and opts.submit:
        states = jobs.job_states(job.job_id)
        if states and all(s == "COMPLETED" for s, _ in states):
            return map_output(track, data_dir, out_dir, wall_time_s=0.0)

    def write() -> Path:
        _prepare(track, data_dir, out_dir, nproc * nodes, several=True, device=device)
        module, entry = "harness.train.openlm.main", [str(out_dir / ARGS_FILE)]
        return write_slurm_script(out_dir, nodes=nodes, nproc=nproc, module=module, args=entry, device=device)

    message = jobs.hand_over(
        out_dir, write, what="training", log=f"{out_dir}/slurm-%j.out", submit=opts.submit, follow=opts.follow,
        notify=opts.notify,
    )  # fmt: skip
    if message is not None:
        raise TrainingPending(message)
    return map_output(track, data_dir, out_dir, wall_time_s=0.0)


def _stderr_fd() -> int | None:
    """This process's stderr for a child's stdout (None, i.e. inherit stdout, where stderr is no real file)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _warn_if_plan_differs(track: Track, plan: LoaderPlan) -> None:
    """open_lm's checkpoint count follows its loader, not the track: say so when they differ (DCLM's own tracks
    with 8192-sequence shards and 2 workers per process end with one short extra checkpoint, as in DCLM)."""
    k = track.recipe.checkpoints
    if len(plan.checkpoint_steps) != k:
        print(
            f"note: open_lm will write {len(plan.checkpoint_steps)} checkpoints (after steps "
            f"{', '.join(map(str, plan.checkpoint_steps))}) where the track has {k}: its loader fills each "
            "checkpoint with whole shards, a multiple of workers x processes of them.",
            file=sys.stderr,
        )


def open_lm_version() -> str:
    """open_lm's package version and, where it can be told, its git commit ('0.0.34+git.9bb92ef...'), read
    without importing open_lm: pip's record of a VCS install, or the git checkout an editable install points at."""
    try:
        dist = importlib.metadata.distribution("open_lm")
    except importlib.metadata.PackageNotFoundError:
        return ""
    commit = ""
    direct = dist.read_text("direct_url.json")
    if direct:
        commit = json.loads(direct).get("vcs_info", {}).get("commit_id", "")
    spec = importlib.util.find_spec("open_lm")
    if not commit and spec is not None and spec.origin:
        commit = _git_commit_of(Path(spec.origin).resolve().parent)
    return f"{dist.version}+git.{commit}" if commit else dist.version


def _git_commit_of(package_dir: Path) -> str:
    """HEAD of the git checkout holding `package_dir` as its top-level `open_lm/` (not of an unrelated repository
    that merely contains a virtual environment)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=package_dir, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() / "open_lm" != package_dir:
        return ""
    return lines[1]


def map_output(track: Track, data_dir: str, out_dir: Path, *, wall_time_s: float) -> Any:
    """Bring open_lm's checkpoints, params.txt and training curve into the run folder; write the completion marker."""
    import torch

    from harness.model import open_lm_model_config
    from harness.train.openlm.log import read_open_lm_log
    from harness.train.prepare import native_params
    from harness.train.result import TrainResult

    src = out_dir / OPEN_LM_SUBDIR / RUN_NAME
    ck.write_json(out_dir / "model.json", open_lm_model_config(track.model))
    ckpts = sorted((src / "checkpoints").glob("epoch_*.pt"), key=lambda p: int(re.findall(r"\d+", p.stem)[0]))
    if not ckpts:
        raise HarnessError(f"open_lm wrote no checkpoint under {src / 'checkpoints'}")
    dest = out_dir / ck.CHECKPOINT_DIR
    dest.mkdir(exist_ok=True)
    for path in (src / "checkpoints").glob("*.pt"):
        _link(path, dest / path.name)
    params = {**native_params(track, data_dir, out_dir), **ck.read_params(src / "params.txt"), "trainer": "open_lm"}
    params["model"] = str(out_dir / "model.json")
    ck.write_params(out_dir / "params.txt", params)
    final = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    r, context = track.recipe, track.model.context
    plan_file = out_dir / PLAN_FILE
    plan = json.loads(plan_file.read_text(encoding="utf-8")) if plan_file.is_file() else None
    starts = [0, *plan["checkpoint_steps"][:-1]] if plan else None
    points = read_open_lm_log(src / "out.log", global_batch=r.global_batch, context=context, epoch_starts=starts)
    if not points:
        raise HarnessError(f"{src / 'out.log'} reports no training loss: open_lm did not train")
    log = out_dir / ck.LOG_FILE
    rows = [{"step": p.step, "tokens": p.tokens, "loss": p.loss} for p in points]
    write_bytes_atomic(log, "".join(json.dumps(row) + "\n" for row in rows).encode(), durable=True)
    steps = int(final.get("step", int(final.get("samples_seen", 0)) // r.global_batch))
    tokens = steps * r.global_batch * context
    result = TrainResult(
        final_loss=points[-1].loss, tokens_seen=tokens, steps=steps,
        passes=tokens / data_tokens(data_dir, context), wall_time_s=wall_time_s,
        tokens_per_s=tokens / wall_time_s if wall_time_s > 0 else 0.0, checkpoint=str(dest / ckpts[-1].name),
        log=str(log), trainer="open_lm", resumed_from=None, open_lm=open_lm_version(),
    )  # fmt: skip
    ck.write_json(out_dir / ck.COMPLETION_MARKER, asdict(result))
    return result


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy instead
        shutil.copy2(src, dst)
