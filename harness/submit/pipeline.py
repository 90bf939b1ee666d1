"""`harness submit`: validate -> tokenize+shuffle -> train -> evaluate -> record, resumable stage by stage
(harness.submit.stages); this module only orchestrates them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.submit.options import SubmitOptions
from harness.submit.stages import (
    Submission,
    prepare,
    run_stage,
    stage_evaluate,
    stage_tokenize,
    stage_train,
    stage_validate,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.records import Record


def stage_record(sub: Submission) -> Record:
    from harness.records import Record, ResultsStore
    from harness.submit.record import build_record

    def work(stage_dir: Path) -> dict[str, Any]:
        record = build_record(sub)
        (stage_dir / "record.json").write_text(record.to_json())
        where = ResultsStore(sub.options.results).add(record)
        return {"record": "record.json", "stored_at": where}

    meta = {k: getattr(sub.options, k) for k in ("name", "authors", "description", "link", "results", "replicates")}
    if sub.options.seeds:  # explicit seeds (sweeps); absent otherwise, so earlier runs' markers stay valid
        meta["seeds"] = list(sub.options.seeds)
    out = run_stage(sub, "record", {"submission": meta}, work)
    return Record.from_json((sub.stage_dir("record") / out["record"]).read_text(), "record.json")


@dataclass(frozen=True)
class SubmitResult:
    """What `submit` did: the entry, its run folder, the record (None with --skip-evaluate) and skipped stages."""

    entry_id: str
    run_dir: Path
    record: Record | None
    skipped: tuple[str, ...]
    site: str | None
    slurm: str | None = None  # with --launcher slurm: which job has the entry (None once its stages are done)


def submit(
    opts: SubmitOptions,
    progress: Progress | None = None,
    on_stage: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> SubmitResult:
    """Run every stage of a submission (see the module docstring); `on_stage(name)` is told as each one starts.
    With launcher "slurm" the stages after validation run in a Slurm job (harness.submit.slurm); `notify` is told
    the job's id and its changes of state."""
    say = on_stage or (lambda _stage: None)
    say("validate")
    sub = prepare(opts, progress)
    if opts.launcher == "slurm":
        from harness.submit.slurm import through_slurm

        done, message = through_slurm(sub, lambda: _stages(sub, progress, say), notify or (lambda _m: None))
        record, site = done or (None, None)
        return SubmitResult(sub.entry_id, sub.run_dir, record, tuple(sub.skipped), site, message)
    record, site = _stages(sub, progress, say)
    return SubmitResult(sub.entry_id, sub.run_dir, record, tuple(sub.skipped), site)


def _stages(sub: Submission, progress: Progress | None, say: Callable[[str], None]) -> tuple[Record | None, str | None]:
    opts = sub.options
    stage_validate(sub, progress)
    for stage, fn in (("tokenize", stage_tokenize), ("train", stage_train)):
        say(stage)
        fn(sub, progress)
    record, site = None, None
    if not opts.skip_evaluate:
        say("evaluate")
        stage_evaluate(sub, progress)
        seeds = opts.replicate_seeds(sub.track)
        if len(seeds) > 1:
            from harness.submit.replicates import run_replicates

            run_replicates(sub, seeds, progress, say)
        say("record")
        record = stage_record(sub)
        if opts.leaderboard:
            from harness.leaderboard.build import build_from_store

            say("leaderboard")
            build_from_store(opts.results, Path(opts.leaderboard))
            site = opts.leaderboard
    return record, site
