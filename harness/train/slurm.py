"""Handing work to Slurm: submit a batch script with `sbatch`, ask `squeue` what became of the job, and remember
the job in the folder it works on (`slurm-job.json`), so that a re-run of the same command neither submits a
second job while the first is queued or running nor forgets one that ended before finishing (it submits again, and
the new job resumes from what the old one finished). The harness never schedules anything itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.io.files import write_json_atomic

JOB_FILE = "slurm-job.json"

#: Job states in which Slurm still has the job (or will run it again): a re-run must not submit another.
ACTIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
    "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD",
})  # fmt: skip

#: What an end state means, for the message that reports it.
_ENDED = {
    "NODE_FAIL": "its node was lost",
    "CANCELLED": "it was cancelled (scancel)",
    "TIMEOUT": "it reached its time limit",
    "OUT_OF_MEMORY": "it ran out of memory",
    "PREEMPTED": "it was preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "it passed its deadline",
    "FAILED": "it exited with an error",
}

_UNREACHABLE = ("Unable to contact slurm controller", "Could not establish a configuration source",
                "Zero Bytes were transmitted", "Connection refused", "Socket timed out")  # fmt: skip

#: sbatch's refusals and what to change (matched on its message).
_REFUSALS = {
    "Memory specification": "the nodes have less memory than asked (--slurm-mem, sbatch's --mem)",
    "gres": "the script asks for GPUs (--nproc per node); on a cluster without GPUs pass --device cpu",
    "node configuration is not available": "the cluster has no nodes that match (fewer nodes or CPUs than asked)",
    "Node count specification invalid": "the partition has fewer nodes than --nodes asks for",
    "partition": "set a valid partition (`sinfo` lists them; SBATCH_PARTITION picks one for sbatch)",
    "time limit": "the partition's time limit is shorter than asked; set SBATCH_TIMELIMIT",
}


@dataclass(frozen=True)
class SlurmJob:
    """A job the harness handed to Slurm (kept in `<folder>/slurm-job.json`)."""

    job_id: str
    """Slurm's job id (of the array, for a job array)."""
    what: str
    """What the job does, in words ("training", "the entry's stages", "3 sweep cells")."""
    script: str
    """The batch script submitted."""
    log: str
    """Where the job's output goes (`*` stands for an array task)."""

    def follow(self) -> str:
        """How to follow the job."""
        return (f"follow it with `squeue -j {self.job_id}` and `tail -f {self.log}` (`sacct -j {self.job_id}` "
                "once it ends, where accounting is on)")  # fmt: skip


class SlurmJobFailed(HarnessError):
    """A job ended before finishing its work (cancelled, failed, node lost); a re-run submits it again."""


def _client(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise HarnessError(
            f"`{name}` is not on PATH, so nothing can be handed to Slurm: run this on a machine with Slurm's "
            "client commands (Debian: apt-get install slurm-client) that can reach the cluster (SLURM_CONF), or "
            "pass --no-sbatch to only write the batch script"
        )
    return exe


def _call(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"the Slurm controller did not answer `{' '.join(cmd[:2])} ...` within {timeout:.0f} s; "
                           "check it with `sinfo` and re-run the same command") from None  # fmt: skip


def _message(stderr: str) -> str:
    lines = [line.removeprefix("sbatch: error: ").removeprefix("slurm_load_jobs error: ").strip()
             for line in stderr.splitlines() if line.strip()]  # fmt: skip
    return "; ".join(lines[-2:]) or "no message"


def _unreachable(command: str, message: str) -> HarnessError:
    return HarnessError(
        f"the Slurm controller is not answering ({command}: {message}); nothing was submitted. Check the cluster "
        "with `sinfo` (SLURM_CONF names its slurm.conf), start slurmctld or ask its administrator, then re-run "
        "the same command; finished work is kept"
    )


def sbatch(script: Path, *, what: str, extra: Sequence[str] = ()) -> str:
    """Submit `script` (`sbatch --parsable`); returns the job id. One clear HarnessError when there is no
    sbatch, when the controller does not answer and when Slurm refuses the job."""
    proc = _call([_client("sbatch"), "--parsable", *extra, str(script)])
    if proc.returncode != 0:
        message = _message(proc.stderr)
        if any(s in proc.stderr for s in _UNREACHABLE):
            raise _unreachable("sbatch", message)
        hint = next((f"{h[0].upper()}{h[1:]}. " for key, h in _REFUSALS.items() if key.lower() in message.lower()), "")
        raise HarnessError(f"Slurm refused {what} ({script}): {message}. {hint}Nothing was submitted; fix the "
                           "request and re-run the same command")  # fmt: skip
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise HarnessError(f"sbatch submitted {script} but printed no job id ({proc.stdout.strip()!r})")
    return job_id


def job_states(job_id: str) -> list[tuple[str, str]]:
    """(state, reason) of the job, one per array task, finished ones included while the controller still knows
    them; [] once it has forgotten the job."""
    proc = _call([_client("squeue"), "-h", "-j", job_id, "-t", "all", "-o", "%T|%r"])
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return []
        if any(s in proc.stderr for s in _UNREACHABLE):
            raise _unreachable("squeue", _message(proc.stderr))
        raise HarnessError(f"squeue could not say what became of slurm job {job_id}: {_message(proc.stderr)}")
    return [tuple(line.split("|", 1)) for line in proc.stdout.splitlines() if "|" in line]  # type: ignore[misc]


def cancel(job_ids: Sequence[str]) -> None:
    """scancel the jobs (one clear message when the controller does not answer)."""
    proc = _call([_client("scancel"), *job_ids])
    if proc.returncode != 0 and any(s in proc.stderr for s in _UNREACHABLE):
        raise _unreachable("scancel", _message(proc.stderr))


def read_job(folder: Path) -> SlurmJob | None:
    try:
        return SlurmJob(**json.loads((folder / JOB_FILE).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def active(states: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [s for s in states if s[0] in ACTIVE]


def describe(states: list[tuple[str, str]]) -> str:
    """'RUNNING', '2 PENDING (Resources), 1 RUNNING', ... ."""
    counts: dict[str, int] = {}
    for state, reason in states:
        label = state + (f" ({reason})" if state == "PENDING" and reason not in ("None", "") else "")
        counts[label] = counts.get(label, 0) + 1
    if len(states) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {label}" for label, n in counts.items())


def ended_badly(job: SlurmJob, states: list[tuple[str, str]]) -> str | None:
    """Why the job ended without finishing, or None when it completed (or Slurm has forgotten it)."""
    bad = [s for s, _ in states if s not in ACTIVE and s != "COMPLETED"]
    if not bad:
        return None
    state = bad[0]
    why = _ENDED.get(state.split()[0], "it ended")
    tasks = f" ({len(bad)} of its {len(states)} tasks)" if len(states) > 1 else ""
    return f"slurm job {job.job_id} ended {state}{tasks}: {why}; its output is in {job.log}"


def submit_job(folder: Path, script: Path, *, what: str, log: str, extra: Sequence[str] = ()) -> SlurmJob:
    """sbatch `script` and remember the job in `folder`."""
    job_id = sbatch(script, what=what, extra=extra)
    job = SlurmJob(job_id, what, str(script), log.replace("%j", job_id).replace("%A", job_id).replace("%a", "*"))
    write_json_atomic(folder / JOB_FILE, asdict(job))
    return job


def wait(job: SlurmJob, notify: Callable[[str], None], poll_s: float = 2.0) -> None:
    """Follow `job` until Slurm no longer runs it, telling `notify` each change of state; SlurmJobFailed when it
    ended without completing."""
    seen = ""
    while True:
        states = job_states(job.job_id)
        now = describe(states) if states else "gone"
        if now != seen:
            notify(f"slurm job {job.job_id}: {now}")
            seen = now
        if not active(states):
            break
        time.sleep(poll_s)
    bad = ended_badly(job, states)
    if bad:
        raise SlurmJobFailed(f"{bad}. {job.what[0].upper()}{job.what[1:]} did not finish; what it finished is "
                             "kept, and re-running the same command submits again and resumes")  # fmt: skip


def hand_over(
    folder: Path, write_script: Callable[[], Path], *, what: str, log: str, submit: bool = True,
    follow: bool = False, notify: Callable[[str], None] = lambda _m: None, extra: Sequence[str] = (),
) -> str | None:  # fmt: skip
    """Give `what` (the work in `folder`) to Slurm unless a job of `folder` is queued or running already.

    Returns the message for the user (submitted, already running, or written only when `submit` is False), or
    None when `follow` waited for the job and it completed. The script is (re)written only when a job is to be
    submitted, never under a running one."""
    job = read_job(folder)
    previous = ""
    if job is not None and submit:
        states = job_states(job.job_id)
        if active(states):
            if follow:
                notify(f"{what} is already slurm job {job.job_id} ({describe(states)}); waiting for it")
                wait(job, notify)
                return None
            return (f"{what} is already slurm job {job.job_id} ({describe(states)}); not submitted again. "
                    f"{job.follow()[0].upper()}{job.follow()[1:]}; re-run this command when it ends")  # fmt: skip
        bad = ended_badly(job, states)
        previous = f" ({bad}; this job resumes from what it finished)" if bad else ""
    script = write_script()
    if not submit:
        return f"wrote {script}; submit it with `sbatch {script}`, then re-run this command when it ends"
    job = submit_job(folder, script, what=what, log=log, extra=extra)
    message = f"submitted {what} as slurm job {job.job_id}{previous}; {job.follow()}"
    if not follow:
        return message + "; re-run this command when it ends"
    notify(message)
    wait(job, notify)
    return None
