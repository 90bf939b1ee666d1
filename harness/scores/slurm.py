"""datatrove stages as a chain of Slurm job arrays, handed to Slurm by the harness (`--executor slurm` of `harness
score` and `harness tokenize`).

Each stage with unfinished tasks becomes one job array (an array task per unfinished datatrove task, several per
array task past MAX_ARRAY), waiting for the stage before it (`--dependency=afterok`). Every array task runs
datatrove's own code on the pickled executor (`python -m datatrove.tools.launch_pickled_pipeline`), so the task
logs, stats and completion markers are datatrove's and any re-run resumes per task. The batch scripts are ours:
they ask only for what the command was given (partition, time, memory: else the cluster's defaults) and run the
interpreter that submitted them, so no console script has to be on the nodes' PATH.

The chain's job ids are kept in `slurm-jobs.json` (in the folder of the stages' logs), so re-running the command
- while a job of the chain is queued or running says so and submits nothing (`--wait`: follows them instead);
- once every task is complete lets the caller finish (manifest, stats);
- after a job ended early (scancel, a failed task, a lost node, a time limit) cancels the jobs left waiting for it,
  names how it ended and submits the unfinished stages again, which skip every finished task.
The harness never schedules anything itself: harness.train.slurm submits (`sbatch --parsable`) and asks `squeue`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.io.files import write_json_atomic
from harness.train import slurm as jobs
from harness.train.launch import refuse_control_characters

CHAIN_FILE = "slurm-jobs.json"
#: Array tasks per job at most (Slurm's default MaxArraySize is 1001: indices 0-1000).
MAX_ARRAY = 1000
#: squeue's reason for a job whose dependency failed (Slurm leaves it pending unless kill_invalid_depend is set).
NEVER = "DependencyNeverSatisfied"

#: A stage: its name and its datatrove SlurmPipelineExecutor (the pipeline, tasks, logging folder and job options).
Stage = tuple[str, Any]
#: The message of a chain that ended before finishing: (stage, why) -> the error to raise.
Failure = Callable[[str, str], HarnessError]


@dataclass(frozen=True)
class StageJob:
    """One stage's job array in a chain (kept in `slurm-jobs.json`)."""

    stage: str
    """The stage it runs."""
    job: jobs.SlurmJob
    """Slurm's job (id, script, output files)."""
    tasks: int
    """The datatrove tasks it was given (the stage's unfinished ones when it was submitted)."""


def run_chain(
    stages: Sequence[Stage], folder: Path, *, what: str, follow: bool, notify: Callable[[str], None],
    failure: Failure, before_submit: Callable[[], None] = lambda: None, poll_s: float = 1.0,
) -> bool:  # fmt: skip
    """Hand the unfinished tasks of `stages` to Slurm unless a chain of `folder` is still queued or running.

    True when every task of every stage is complete (the caller finishes the output); False when the jobs are queued
    or running (`notify` was told which and how to follow them). With `follow`, waits for the jobs instead, and
    raises `failure(stage, why)` when they ended with tasks unfinished. `before_submit` runs before a new chain is
    submitted (the caller clears what the last chain's failed tasks left)."""
    missing = [name for name in ("sbatch", "squeue", "scancel") if shutil.which(name) is None]
    if missing:
        raise HarnessError(f"`{missing[0]}` is not on PATH, so nothing can be handed to Slurm: run this on a machine "
                           "with Slurm's client commands (Debian: apt-get install slurm-client) that can reach the "
                           "cluster (SLURM_CONF), or use --executor local or ray")  # fmt: skip
    chain, earlier = read_chain(folder), ""
    if chain:
        states = _states(chain)
        if _running(chain, states):
            listing = _listing(chain, states)
            if not follow:
                notify(f"{what} is already slurm jobs {listing}; not submitted again: {_follow_hint(chain)}; re-run "
                       "this command when they end (or add --wait)")  # fmt: skip
                return False
            notify(f"{what} is already slurm jobs {listing}; waiting for them")
            return _finish(stages, chain, _wait(chain, notify, poll_s), failure)
        bad = _settle(chain, states)
        if bad and _unfinished(stages):
            earlier = f" ({bad[1]}; these jobs resume from what it finished)"
    if not _unfinished(stages):
        return True
    before_submit()
    chain = _submit(stages, folder, what)
    listing = ", ".join(f"{j.job.job_id} ({j.stage}: {j.tasks} task{'s' * (j.tasks != 1)})" for j in chain)
    notify(f"submitted {what} as slurm jobs {listing}, each waiting for the one before{earlier}; {_follow_hint(chain)}"
           + ("" if follow else "; re-run this command when they end (or add --wait)"))  # fmt: skip
    if not follow:
        return False
    return _finish(stages, chain, _wait(chain, notify, poll_s), failure)


def read_chain(folder: Path) -> list[StageJob]:
    try:
        saved = json.loads((folder / CHAIN_FILE).read_text())
        return [StageJob(j["stage"], jobs.SlurmJob(**j["job"]), int(j["tasks"])) for j in saved["jobs"]]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return []


def chain_running(folder: Path) -> str | None:
    """The ids of the jobs of `folder`'s chain still queued or running (for a caller about to discard the folder)."""
    chain = read_chain(folder)
    if not chain:
        return None
    states = _states(chain)
    return ",".join(j.job.job_id for j in chain if _is_running(chain, states, j)) or None


# ---------------------------------------------------------------------------------------------------------------


def _unfinished(stages: Sequence[Stage]) -> list[tuple[str, Any, list[int]]]:
    return [(name, ex, ranks) for name, ex in stages if (ranks := ex.get_incomplete_ranks(range(ex.world_size)))]


def _states(chain: Sequence[StageJob]) -> dict[str, list[tuple[str, str]]]:
    return {j.job.job_id: jobs.job_states(j.job.job_id) for j in chain}


def _stuck(chain: Sequence[StageJob], states: dict[str, list[tuple[str, str]]], index: int) -> bool:
    """Job `index` waits for a job that ended without completing (or for one that is itself stuck): it never runs."""
    mine = states[chain[index].job.job_id]
    if not mine or any(state != "PENDING" for state, _ in mine):
        return False
    if any(reason == NEVER for _, reason in mine):
        return True
    if index == 0:
        return False
    before = chain[index - 1]
    return bool(jobs.ended_badly(before.job, states[before.job.job_id])) or _stuck(chain, states, index - 1)


def _is_running(chain: Sequence[StageJob], states: dict[str, list[tuple[str, str]]], job: StageJob) -> bool:
    return bool(jobs.active(states[job.job.job_id])) and not _stuck(chain, states, chain.index(job))


def _running(chain: Sequence[StageJob], states: dict[str, list[tuple[str, str]]]) -> bool:
    return any(_is_running(chain, states, j) for j in chain)


def _listing(chain: Sequence[StageJob], states: dict[str, list[tuple[str, str]]]) -> str:
    described = (jobs.describe(states[j.job.job_id]) if states[j.job.job_id] else "gone" for j in chain)
    return ", ".join(f"{j.job.job_id} ({j.stage}: {d})" for j, d in zip(chain, described, strict=True))


def _follow_hint(chain: Sequence[StageJob]) -> str:
    ids = ",".join(j.job.job_id for j in chain)
    logs = os.path.commonpath([str(Path(j.job.log).parent) for j in chain])
    return f"follow them with `squeue -j {ids}`; their output is in {logs} (a file per array task)"


def _settle(chain: Sequence[StageJob], states: dict[str, list[tuple[str, str]]]) -> tuple[str, str] | None:
    """Cancel the jobs that wait for one that ended early; (stage, how that one ended), the first in the chain."""
    stuck = [j.job.job_id for i, j in enumerate(chain) if _stuck(chain, states, i)]
    if stuck:
        jobs.cancel(stuck)
    for j in chain:
        bad = jobs.ended_badly(j.job, states[j.job.job_id])
        if bad:
            return j.stage, f"{bad} ({j.stage} stage)"
    return None


def _wait(chain: Sequence[StageJob], notify: Callable[[str], None], poll_s: float) -> dict[str, list[tuple[str, str]]]:
    """Follow the chain until none of its jobs is queued or running, telling `notify` each change."""
    seen = ""
    while True:
        states = _states(chain)
        now = _listing(chain, states)
        if now != seen:
            notify(f"slurm jobs {now}")
            seen = now
        if not _running(chain, states):
            return states
        time.sleep(poll_s)


def _finish(
    stages: Sequence[Stage], chain: Sequence[StageJob], states: dict[str, list[tuple[str, str]]], failure: Failure
) -> bool:
    """After following the chain to its end: True when every task is complete, else the failure of its first stage
    with unfinished tasks (how its job ended, when Slurm says it ended early)."""
    bad = _settle(chain, states)
    unfinished = _unfinished(stages)
    if not unfinished:
        return True
    if bad:
        raise failure(*bad)
    name, _, ranks = unfinished[0]
    raise failure(name, f"its jobs ended with {len(ranks)} task(s) unfinished")


def _submit(stages: Sequence[Stage], folder: Path, what: str) -> list[StageJob]:
    """sbatch a job array per stage with unfinished tasks, each depending on the one before; the chain is recorded
    after each submission. A refusal cancels the jobs this call submitted (one message, nothing left queued)."""
    chain: list[StageJob] = []
    try:
        for name, ex, ranks in _unfinished(stages):
            after = chain[-1].job.job_id if chain else None
            chain.append(_submit_stage(name, ex, ranks, after, what))
            write_json_atomic(folder / CHAIN_FILE, {"what": what, "jobs": [asdict(j) for j in chain]})
    except BaseException:
        if chain:
            with contextlib.suppress(HarnessError):
                jobs.cancel([j.job.job_id for j in chain])
            (folder / CHAIN_FILE).unlink(missing_ok=True)
        raise
    return chain


def _submit_stage(name: str, ex: Any, ranks: list[int], after: str | None, what: str) -> StageJob:
    """Pickle the stage's executor with the ranks to run (datatrove's in-job side reads both) and sbatch its array."""
    import dill

    per = math.ceil(len(ranks) / MAX_ARRAY)  # datatrove runs ranks [i * per, (i + 1) * per) in array task i
    array = math.ceil(len(ranks) / per)
    ex.tasks_per_job, ex.depends = per, None
    with ex.logging_dir.open("ranks_to_run.json", "w") as fh:
        json.dump(ranks, fh)
    with ex.logging_dir.open("executor.pik", "wb") as fh:
        dill.dump(ex, fh)
    logs = Path(ex.slurm_logs_folder).absolute()
    logs.mkdir(parents=True, exist_ok=True)
    script = logs / "stage.sbatch"
    script.write_text(batch_script(ex, array, logs, ex.logging_dir.resolve_paths("executor.pik")))
    extra = [f"--dependency=afterok:{after}"] if after else []
    job = jobs.sbatch(script, what=f"{what} ({name} stage)", extra=extra)
    return StageJob(name, jobs.SlurmJob(job, f"{what}'s {name} stage", str(script), f"{logs}/{job}_*.out"), len(ranks))


def batch_script(ex: Any, array: int, logs: Path, pickled: str) -> str:
    """The job array's script: `array` tasks, at most `ex.workers` at once, each running the pickled executor."""
    refuse_control_characters([str(logs), pickled, os.getcwd(), sys.executable])
    if '"' in f"{logs}{os.getcwd()}":
        raise HarnessError(f"cannot write a slurm script for {logs} from {os.getcwd()}: a path holds a double quote; "
                           "choose a plainer folder name")  # fmt: skip
    throttle = f"%{ex.workers}" if 0 < ex.workers < array else ""
    options = {
        "job-name": ex.job_name, "array": f"0-{array - 1}{throttle}", "ntasks": 1,
        "cpus-per-task": ex.cpus_per_task, "partition": ex.partition, "time": ex.time, **ex._sbatch_args,
        "output": f'"{logs}/%A_%a.out"', "chdir": f'"{os.getcwd()}"',
    }  # fmt: skip
    lines = [f"#SBATCH --{key}={value}" for key, value in options.items() if value not in ("", None)]
    run = " ".join(shlex.quote(w) for w in (sys.executable, "-m", "datatrove.tools.launch_pickled_pipeline", pickled))
    return "\n".join(["#!/bin/bash", *lines, "export PYTHONUNBUFFERED=1", f"exec {run}", ""])
