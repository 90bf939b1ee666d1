"""Launching training processes: torchrun on this machine, or a slurm batch script that starts torchrun on every
node (multi-node through torchrun's c10d rendezvous). The harness never schedules jobs itself."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from harness.train.checkpoint import atomic_write_bytes

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


def _shell_word(arg: str) -> str:
    """Quote for bash, leaving `$VARIABLES` (allocation values known only when the job runs) expandable."""
    return f'"{arg}"' if "$" in arg else shlex.quote(arg)


def write_slurm_script(out_dir: Path, *, nodes: int, nproc: int, module: str, args: list[str]) -> Path:
    """Write `out_dir/train.sbatch`: one task per node, each running torchrun with `nproc` processes, meeting at
    the first node of the allocation. Submitting it again resumes from the newest checkpoint."""
    cmd = torchrun_command(
        nproc=nproc, module=module, args=args, nodes=nodes, rdzv=f"$HEAD:{RDZV_PORT}", rdzv_id="$SLURM_JOB_ID"
    )
    script = f"""#!/bin/bash
#SBATCH --job-name=harness-train-{out_dir.name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={nproc}
#SBATCH --output={out_dir}/slurm-%j.out
set -euo pipefail
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun --kill-on-bad-exit=1 {" ".join(_shell_word(a) for a in cmd)}
"""
    path = out_dir / "train.sbatch"
    atomic_write_bytes(path, script.encode())
    path.chmod(0o755)
    return path
