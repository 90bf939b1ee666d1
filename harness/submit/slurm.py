"""`harness submit --launcher slurm`: the entry's stages after validation run inside one Slurm job.

The subset is checked here (an invalid one is refused at once, with nothing submitted); then every stage that is
not done (materialise, tokenize+shuffle, train, evaluate, replicates, record) runs in a batch job,
`<run>/submit.sbatch`, which runs this same submission with `--launcher local`, so the job writes the stages'
markers and the record itself. The job is remembered in `<run>/slurm-job.json` (harness.train.slurm): a re-run
while it is queued or running says so and submits nothing; a re-run after it completed finds every stage done and
shows the record; a re-run after it ended early (cancelled, failed, node lost) submits again, and the new job
resumes from the finished stages and the newest training checkpoint.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UsageError
from harness.io.files import write_text_atomic
from harness.submit.options import SubmitOptions
from harness.submit.stages import StageDeferred, Submission

SCRIPT = "submit.sbatch"


def job_argv(opts: SubmitOptions) -> list[str]:
    """The command line the job runs: this submission with `--launcher local`, every value as given (the job runs
    in this folder, so that its stages' recorded inputs are this process's own and a re-run here finds them)."""
    if opts.seeds:
        raise UsageError("a submission with explicit replicate seeds (a sweep's cell) cannot be handed to a slurm "
                         "job as a command line; run the sweep with `harness sweep run --launcher slurm`")  # fmt: skip
    argv = [sys.executable, "-m", "harness", "submit", opts.subset, "--track", opts.track]
    for flag, value in (("--name", opts.name), ("--description", opts.description), ("--link", opts.link)):
        if value:
            argv += [flag, value]
    for author in opts.authors:
        argv += ["--author", author]
    argv += ["--run-dir", opts.run_dir, "--results", opts.results]
    if opts.leaderboard:
        argv += ["--leaderboard", opts.leaderboard]
    argv += ["--trainer", opts.trainer, "--nproc", str(opts.nproc), "--workers", str(opts.workers)]
    if opts.device:
        argv += ["--device", opts.device]
    if opts.skip_evaluate:
        argv.append("--skip-evaluate")
    return [*argv, "--replicates", str(opts.replicates), "--launcher", "local"]


def write_job_script(sub: Submission) -> Path:
    """Write `<run>/submit.sbatch`: one task on one node running the submission's remaining stages."""
    from harness.train.launch import refuse_control_characters, resources_line

    opts = sub.options
    argv = job_argv(opts)
    run, here = sub.run_dir.absolute(), Path.cwd()
    refuse_control_characters([str(run), str(here), sys.executable, opts.subset, opts.run_dir])
    if any(ch in str(p) for p in (run, here) for ch in '"\\'):
        raise UsageError(f"cannot write a slurm script for the run folder {run} from {here}: a double quote or a "
                         "backslash in them; choose plainer folders")  # fmt: skip
    name = re.sub(r"[^A-Za-z0-9._-]", "_", sub.entry_id)[:100]
    script = f"""#!/bin/bash
#SBATCH --job-name=harness-submit-{name}
#SBATCH --nodes=1
#SBATCH --ntasks=1
{resources_line(opts.nproc, opts.device)}
#SBATCH --output="{run}/slurm-%j.out"
#SBATCH --chdir="{here}"
set -euo pipefail
exec {" ".join(shlex.quote(a) for a in argv)}
"""
    path = sub.run_dir / SCRIPT
    write_text_atomic(path, script)
    path.chmod(0o755)
    return path


def through_slurm(sub: Submission, stages: Callable[[], Any], notify: Callable[[str], None]) -> tuple[Any, str | None]:
    """Run `stages()` if every stage is done (it then only reads their markers), else hand the entry to Slurm.
    Returns (what `stages()` returned, None), or (None, the message saying which job has the entry)."""
    from harness.train.slurm import hand_over

    try:
        return stages(), None
    except StageDeferred:
        pass
    opts = sub.options
    message = hand_over(
        sub.run_dir, lambda: write_job_script(sub), what=f"entry {sub.entry_id}'s stages",
        log=f"{sub.run_dir.absolute()}/slurm-%j.out", submit=opts.slurm_submit, follow=opts.slurm_wait,
        notify=notify,
    )  # fmt: skip
    if message is not None:
        return None, message
    sub.skipped.clear()  # the stages are read again, now as the job left them
    try:
        return stages(), None  # the followed job completed: every stage is done
    except StageDeferred as exc:
        where = f"{sub.run_dir}/slurm-*.out"
        raise HarnessError(f"the slurm job for entry {sub.entry_id} completed, yet its stage {exc.args[0]!r} is "
                           f"not done; see its output ({where}) and re-run to resume") from None  # fmt: skip
