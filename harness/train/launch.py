"""Launching training processes: torchrun on this machine, or a slurm batch script that starts torchrun on every
node (multi-node through torchrun's c10d rendezvous). The harness never schedules jobs itself."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from harness.errors import UsageError
from harness.io.files import write_bytes_atomic

RDZV_PORT = 29500


def torchrun_command(
    *, nproc: int, module: str, args: list[str], nodes: int = 1, rdzv: str | None = None, rdzv_id: str | None = None
) -> list[str]:
    """`python -m torch.distributed.run ... -m MODULE ARGS` (torchrun without relying on the script being on PATH).
    One node: standalone rendezvous on a free local port; several: c10d rendezvous at `rdzv` (host:port)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nodes == 1 and rdzv is None:
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv}"]
        if rdzv_id:
            cmd.append(f"--rdzv-id={rdzv_id}")
    return [*cmd, "-m", module, *args]


#: Values known only when the job runs: written as placeholders, expanded by bash (and nothing else is).
_JOB_VARIABLES = {"\0HEAD\0": '"$HEAD"', "\0SLURM_JOB_ID\0": '"$SLURM_JOB_ID"'}


def _shell_word(arg: str) -> str:
    """Quote for bash: every character literal (a path with `$(...)` or backquotes is a name, never a command),
    except the job variables, which are spliced in double-quoted."""
    word = shlex.quote(arg)
    for placeholder, variable in _JOB_VARIABLES.items():
        word = word.replace(placeholder, f"'{variable}'")
    return word.removesuffix("''")  # an empty literal after a trailing variable


def refuse_control_characters(values: list[str] | tuple[str, ...], what: str = "path") -> None:
    """UsageError naming the first value with a newline or another control character: a batch script is read
    line by line, so a newline in a path written into it would start a command of its own."""
    for value in values:
        if any(not ch.isprintable() and ch != " " for ch in value):
            raise UsageError(f"cannot write a slurm script with the {what} {value!r}: it holds a newline or another "
                             "control character; choose a plainer folder name")  # fmt: skip


def _sbatch_value(value: str) -> str:
    """A value on an `#SBATCH` line (read by sbatch, not bash): one line, double-quoted."""
    if any(ch in value for ch in '\n\r\0"') or not value.isprintable():
        raise UsageError(f"cannot write a slurm script for {value!r}: the run folder's path holds a control "
                         "character or a double quote; choose a plainer --run-dir")  # fmt: skip
    return f'"{value}"'


def resources_line(nproc: int, device: str | None, *, per_node: bool = True) -> str:
    """The `#SBATCH` line asking for what `nproc` processes use: GPUs, or CPUs with `--device cpu`."""
    if device == "cpu":
        return f"#SBATCH --cpus-per-task={nproc}"
    return f"#SBATCH --gpus-per-node={nproc}" if per_node else f"#SBATCH --gpus={nproc}"


def write_slurm_script(
    out_dir: Path, *, nodes: int, nproc: int, module: str, args: list[str], device: str | None = None
) -> Path:
    """Write `out_dir/train.sbatch`: one task per node, each running torchrun with `nproc` processes (GPUs, or
    CPUs with device "cpu"), meeting at the first node of the allocation. Submitting it again resumes from the
    newest checkpoint."""
    refuse_control_characters([str(out_dir.absolute()), sys.executable, module, *args])
    cmd = torchrun_command(
        nproc=nproc, module=module, args=args, nodes=nodes, rdzv=f"\0HEAD\0:{RDZV_PORT}", rdzv_id="\0SLURM_JOB_ID\0"
    )
    job_name = re.sub(r"[^A-Za-z0-9._-]", "_", out_dir.name)[:100]
    script = f"""#!/bin/bash
#SBATCH --job-name=harness-train-{job_name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
{resources_line(nproc, device)}
#SBATCH --output={_sbatch_value(f"{out_dir}/slurm-%j.out")}
set -euo pipefail
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun --kill-on-bad-exit=1 {" ".join(_shell_word(a) for a in cmd)}
"""
    path = out_dir / "train.sbatch"
    write_bytes_atomic(path, script.encode(), durable=True)
    path.chmod(0o755)
    return path
