"""The driver of tokenize + shuffle on datatrove's executors (harness.data.staged holds the stages and their tasks).

Local and Ray run the stages one after the other and check each before the next, so a failed task stops the run
with its message. Slurm gets the five stages as a chain of dependent job arrays (harness.scores.slurm, recorded in
`<work>/slurm-jobs.json`) and the call returns; re-running it while they are queued or running submits nothing, and
once they end it writes the manifest and stats (`wait`: the call follows them and finishes). Any finished task is
kept across runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.data import DEFAULT_SHARD_SEQUENCES
from harness.data.outputs import (
    RunKey,
    TokenizeStats,
    atomic_output,
    existing_stats,
    is_local,
    local_path,
    run_key,
    shard_ranges,
    write_outputs,
)
from harness.data.staged import STAGES, StagedJob, StageStep, exists, read_plan
from harness.errors import HarnessError

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.scores.run import ExecutorOptions
    from harness.tracks import TokenizerSpec

#: Most tasks of the sort and write stages (fixed by the first run of an output folder).
MAX_GATHER = 1024


def tokenize_staged(
    inputs: Sequence[str],
    out_dir: str,
    *,
    tokenizer_spec: TokenizerSpec,
    context: int,
    seed: int,
    executor: ExecutorOptions,
    shard_sequences: int = DEFAULT_SHARD_SEQUENCES,
    merge_rest: bool = False,
    subset_hash: str = "",
    progress: Progress | None = None,
    tokenizer_path: str | None = None,
    work_dir: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> TokenizeStats | None:
    """harness.data.tokenize.tokenize_shuffle's output (the same bytes) computed by datatrove tasks on `executor`.

    Returns the stats, or None when Slurm jobs were submitted or are still running (`notify` is told their ids and
    how to follow them; re-run the same call once they end, or set `executor.wait`). `work_dir`: the
    folder every worker reads and writes (default `<out_dir>/_work`; a shared file system or object store URL when
    the workers are on several machines).
    """
    from harness.data import staged
    from harness.tokenizer import resolve_tokenizer_file

    out_dir = str(out_dir)
    key = run_key(inputs, tokenizer_spec, tokenizer_path, context=context, seed=seed, shard_sequences=shard_sequences,
                  subset_hash=subset_hash, merge_rest=merge_rest)  # fmt: skip
    fingerprint = key.fingerprint
    done = existing_stats(out_dir, fingerprint)
    if done is not None:
        return done
    work = (work_dir or f"{out_dir.rstrip('/')}/_work").rstrip("/")
    if executor.kind == "slurm" and not is_local(work):
        raise HarnessError(f"--executor slurm keeps its job records and Slurm's logs in the work folder, which must be "
                           f"a shared file system, not {work}; give a work folder there")  # fmt: skip
    gather = _claim_work(work, fingerprint, _gather_tasks(key, executor.workers, staged.BUCKET_BYTES),
                         executor.kind)  # fmt: skip
    job = StagedJob(
        files=tuple((f.url, f.size) for f in key.files), work=work, out=out_dir,
        tokenizer_json=resolve_tokenizer_file(tokenizer_spec, path=tokenizer_path).read_text(encoding="utf-8"),
        eot_id=tokenizer_spec.eot_id, pad_id=tokenizer_spec.pad_id, seqlen=context + 1, seed=seed,
        shard_sequences=shard_sequences, merge_rest=merge_rest, gather=gather, batch_bytes=staged.BATCH_BYTES,
        run_bytes=staged.RUN_BYTES, bucket_bytes=staged.BUCKET_BYTES, chunk_rows=staged.CHUNK_ROWS,
    )  # fmt: skip
    if not _run_stages(job, executor, progress, notify or (lambda _m: None)):
        return None
    plan = read_plan(job)
    ranges = shard_ranges(plan["sequences"], shard_sequences, merge_rest)
    stats = key.stats(plan, plan["sequences"], len(ranges))
    missing = [k for k in range(len(ranges)) if not exists(f"{out_dir.rstrip('/')}/shard_{k:08d}.tar")]
    if missing:
        raise HarnessError(f"{out_dir}: shard {missing[0]} is missing although its task is marked done; delete "
                           f"{work} and re-run")  # fmt: skip
    write_outputs(out_dir, [hi - lo for lo, hi in ranges], stats)
    _remove(work)
    return stats


def _gather_tasks(key: RunKey, workers: int, bucket_bytes: int) -> int:
    """Tasks of the sort and write stages: about one per bucket (guessed from the input sizes), at least `workers`."""
    return max(workers, min(MAX_GATHER, math.ceil(key.text_bytes_guess() / 3 * 4 / bucket_bytes)), 1)


def _claim_work(work: str, fingerprint: str, gather: int, kind: str) -> int:
    """The work folder's task layout; one left by other inputs or settings is emptied first (nothing is reusable),
    unless Slurm jobs still work in it."""
    params = f"{work}/params.json"
    busy = _slurm_jobs_in(work)
    if exists(params):
        saved = json.loads(_cat(params))
        if saved.get("fingerprint") == fingerprint:
            if busy and kind != "slurm":
                raise HarnessError(f"slurm jobs {busy} are still tokenizing into {work}: wait for them to end (or "
                                   "scancel them), then re-run")  # fmt: skip
            if kind != "slurm":  # a slurm re-run clears them when it submits, not under running jobs
                _remove(f"{work}/errors")
            return int(saved["gather"])
        if busy:
            raise HarnessError(
                f"{work} holds the work of another tokenize run (other inputs or settings) that slurm "
                f"jobs {busy} are still doing: wait for them or scancel them, or give another --out"
            )
        _remove(work)
    _makedirs(work)
    with atomic_output(params) as fh:
        fh.write(json.dumps({"fingerprint": fingerprint, "gather": gather}).encode())
    return gather


def _slurm_jobs_in(work: str) -> str | None:
    """The ids of slurm jobs (of `--executor slurm`) still queued or running in the work folder."""
    from harness.scores.slurm import CHAIN_FILE, chain_running

    if not is_local(work) or not local_path(work).joinpath(CHAIN_FILE).is_file():
        return None
    return chain_running(local_path(work))


def _makedirs(url: str) -> None:
    """Create the folder `url` (object stores need none: a no-op there)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)


def _cat(url: str) -> bytes:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs.cat_file(path)


def _remove(url: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _run_stages(
    job: StagedJob, executor: ExecutorOptions, progress: Progress | None, notify: Callable[[str], None]
) -> bool:
    """Run (or hand to Slurm) every stage; True when all are complete."""
    from harness.data.staged_ray import ray_executor
    from harness.scores.run import make_executor, quiet_datatrove_logs, watch_completions

    for sub in ("ids", "runs", "sorted", "done", "errors"):
        _makedirs(job.url(sub))
    stages = [(name, job.tasks(kind)) for name, kind in STAGES]
    bars = [(f"tokenize: {name}", tasks, job.url("_logs", name, "completions")) for name, tasks in stages]
    with quiet_datatrove_logs(), watch_completions(progress, bars):
        if executor.kind == "slurm":
            from harness.scores.slurm import run_chain

            chain = [(name, make_executor(executor, [StageStep(name, job)], tasks, job.url("_logs", name),
                                          name=f"harness-tokenize-{name}")) for name, tasks in stages]  # fmt: skip
            return run_chain(
                chain, local_path(job.work), what=f"tokenize+shuffle into {job.out}", follow=executor.wait, notify=notify,
                failure=lambda stage, why: _failure(job, stage, dict(chain)[stage], job.tasks(dict(STAGES)[stage]), why),
                before_submit=lambda: (_remove(job.url("errors")), _makedirs(job.url("errors"))),
            )  # fmt: skip
        for name, tasks in stages:  # one after the other, each checked before the next
            step, logs = StageStep(name, job), job.url("_logs", name)
            if executor.kind == "ray":  # a killed task fails instead of hanging (harness.data.staged_ray)
                ex = ray_executor([step], tasks, executor.workers, logs, executor.cpus_per_task)
            else:
                ex = make_executor(executor, [step], tasks, logs, name=f"harness-tokenize-{name}")
            try:
                ex.run()
            except Exception as exc:  # a task failed: its message is in the errors folder (the first one is shown)
                raise _failure(job, name, ex, tasks) from exc
            if ex.get_incomplete_ranks(range(tasks)):
                raise _failure(job, name, ex, tasks)
    return True


def _failure(job: StagedJob, stage: str, ex: Any, tasks: int, slurm: str = "") -> HarnessError:
    """The stage's first task error (`<work>/errors/`), else how its worker or (`slurm`) its job ended."""
    import fsspec

    incomplete = ex.get_incomplete_ranks(range(tasks))
    fs, path = fsspec.core.url_to_fs(job.url("errors"))
    found = sorted(fs.glob(f"{path}/{stage}-*.txt")) if fs.exists(path) else []
    died = slurm or "its worker process died (killed, or out of memory?)"
    reason = fs.cat_file(found[0]).decode() + (f" ({slurm})" if slurm else "") if found else died
    return HarnessError(
        f"tokenize stopped in its {stage} stage ({len(incomplete)} of {tasks} tasks unfinished): {reason}. Finished "
        f"tasks are kept (task logs: {job.url('_logs', stage, 'logs')}): fix the cause and re-run the same command "
        "to resume"
    )
