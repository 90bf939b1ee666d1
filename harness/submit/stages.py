"""The stages of one submit and their completion markers.

A run lives in `runs/<track>/<entry-id>/` with one folder per stage. A stage is done when its folder holds
`_COMPLETE.json`, written last and atomically, which also records the stage's inputs (track hash, subset hash,
options, the upstream stage's marker). Re-running the same command skips done stages; a stage whose recorded
inputs differ from the current ones is stale and is redone together with every stage after it. Training resumes
from its newest checkpoint on its own, and tokenization from its finished buckets and shards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import to_dict
from harness.errors import HarnessError
from harness.io.files import write_json_atomic
from harness.submit.options import StageFailed, SubmitOptions, SubsetInvalid

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.submit.report import ValidationReport
    from harness.tracks import Track

STAGES = ("validate", "tokenize", "train", "evaluate", "record")
MARKER = "_COMPLETE.json"


class StageDeferred(Exception):
    """A stage has work to do while the submission hands its work to Slurm (`--launcher slurm`): the job does it."""


@dataclass
class Submission:
    """The state of one submit while it runs: where its stages live and what they produced."""

    options: SubmitOptions
    track: Track
    run_dir: Path
    entry_id: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage


# ----------------------------------------------------------------------------------------------- markers


def read_marker(stage_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((stage_dir / MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_stage(
    sub: Submission, stage: str, inputs: dict[str, Any], work: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """Run `work(stage_dir)` unless the stage is done with the same inputs; a stale stage and its successors are
    removed first. Returns the stage's outputs (also kept in its marker)."""
    stage_dir = sub.stage_dir(stage)
    previous = STAGES[STAGES.index(stage) - 1] if stage != STAGES[0] else None
    inputs = json.loads(json.dumps({**inputs, "upstream": digest(sub.outputs.get(previous)) if previous else None}))
    marker = read_marker(stage_dir)
    if marker is not None and marker.get("inputs") == inputs:
        sub.outputs[stage] = marker["outputs"]
        sub.skipped.append(stage)
        return marker["outputs"]
    if sub.options.launcher == "slurm":  # the work is the slurm job's (harness.submit.slurm), not this process's
        raise StageDeferred(stage)
    if marker is not None:  # stale: the same entry with changed inputs (a new track version, another trainer)
        for later in STAGES[STAGES.index(stage) :]:
            shutil.rmtree(sub.stage_dir(later), ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    started, cpu = time.monotonic(), _cpu_seconds()
    try:
        outputs = work(stage_dir)
    except (HarnessError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise StageFailed(
            f"stage {stage!r} failed: {type(exc).__name__}: {exc}. Earlier stages are kept in {sub.run_dir}; "
            "fix the cause and re-run the same command to resume."
        ) from exc
    write_json_atomic(
        stage_dir / MARKER,
        {"stage": stage, "inputs": inputs, "outputs": outputs, "seconds": round(time.monotonic() - started, 2),
         "cpu_seconds": round(_cpu_seconds() - cpu, 2)},
    )  # fmt: skip
    sub.outputs[stage] = outputs
    return outputs


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have ended (a stage's worker processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ------------------------------------------------------------------------------------------------ stages


def fingerprint(subset: str) -> str | None:
    """sha256 over the subset's files (names relative to the input and bytes): finds an earlier validation.
    None when a file cannot be read (validation then reports it)."""
    from harness.io.files import open_raw
    from harness.io.reader import InputError, describe_failure, expand_inputs

    h = hashlib.sha256()
    try:
        for url in expand_inputs(subset):
            h.update(os.path.basename(url).encode() + b"\0")
            try:
                with open_raw(url) as fh:
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)
            except Exception as exc:  # any failure here means the input cannot be read
                raise describe_failure(url, exc) from None
    except InputError:
        return None
    return h.hexdigest()


def _validate(opts: SubmitOptions, track: Track, progress: Progress | None) -> tuple[ValidationReport, str]:
    from harness.records import entry_id
    from harness.submit.validate import validate_subset

    report = validate_subset(track, opts.subset, progress=progress)
    if not report.ok:
        raise SubsetInvalid(report)  # the CLI renders the report; nothing else has run
    return report, entry_id(track.name, report.subset_hash)


def prepare(opts: SubmitOptions, progress: Progress | None = None) -> Submission:
    """Validate (or find an earlier validation of the same bytes) and open the entry's run folder."""
    from harness.io.leftovers import sweep_tree
    from harness.tracks import get_track

    track = get_track(opts.track)
    opts.replicate_seeds(track)  # a wrong --replicates or seed list fails before any work
    root = Path(opts.run_dir) / track.name
    sweep_tree(root)  # temporary files of killed runs (live runs' files are left alone)
    print_ = fingerprint(opts.subset)
    known = root / "_inputs" / f"{print_}-{track.sha256[:16]}.json"
    if print_ and known.is_file():
        entry = json.loads(known.read_text())["entry_id"]
        sub = Submission(opts, track, root / entry, entry)
        if read_marker(sub.stage_dir("validate")) is not None:
            return sub
    report, entry = _validate(opts, track, progress)
    sub = Submission(opts, track, root / entry, entry)
    sub.stage_dir("validate").mkdir(parents=True, exist_ok=True)
    write_json_atomic(sub.stage_dir("validate") / "report.json", report.to_dict())
    if print_:
        known.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(known, {"entry_id": entry, "subset": opts.subset})
    return sub


def stage_validate(sub: Submission, progress: Progress | None) -> dict[str, Any]:
    """Materialize the validated subset (pool text resolved, edits applied) for tokenization."""

    def work(stage_dir: Path) -> dict[str, Any]:
        from harness.submit.materialize import materialize_subset

        report = json.loads((stage_dir / "report.json").read_text())
        shutil.rmtree(stage_dir / "subset", ignore_errors=True)
        files = materialize_subset(sub.options.subset, sub.track, stage_dir / "subset", progress=progress)
        contamination = check_files(sub.track, [str(f) for f in files])
        write_json_atomic(stage_dir / "contamination.json", contamination.to_dict())
        return {
            "subset_hash": report["subset_hash"],
            "files": [str(Path(f).relative_to(stage_dir)) for f in files],
            "stats": report["stats"],
            "pool": report["pool"],
            "contamination": contamination.for_record(sub.track.rules.contamination),
        }

    from harness.submit.decontam import check_files, enforce

    out = run_stage(sub, "validate", {"track": sub.track.sha256, "entry": sub.entry_id}, work)
    enforce(sub.track, out["contamination"])  # a track that rejects contamination stops here, every time
    return out


def stage_tokenize(sub: Submission, progress: Progress | None) -> dict[str, Any]:
    def work(stage_dir: Path) -> dict[str, Any]:
        from harness.data.tokenize import tokenize_for_track

        files = [str(sub.stage_dir("validate") / f) for f in sub.outputs["validate"]["files"]]
        stats = tokenize_for_track(
            sub.track, files, str(stage_dir / "shards"), workers=sub.options.workers, progress=progress,
            subset_hash=sub.outputs["validate"]["subset_hash"],
        )  # fmt: skip
        return to_dict(stats)

    return run_stage(sub, "tokenize", {"track": sub.track.sha256}, work)


def stage_train(sub: Submission, progress: Progress | None) -> dict[str, Any]:
    opts = sub.options

    def work(stage_dir: Path) -> dict[str, Any]:
        from harness.train import train

        result = train(
            sub.track, str(sub.stage_dir("tokenize") / "shards"), stage_dir, trainer=opts.trainer,
            nproc=opts.nproc, launcher=opts.launcher, device=opts.device, progress=progress,
        )  # fmt: skip
        return to_dict(result)

    return run_stage(sub, "train", {"track": sub.track.sha256, "trainer": opts.trainer}, work)


def stage_evaluate(sub: Submission, progress: Progress | None) -> dict[str, Any]:
    def work(stage_dir: Path) -> dict[str, Any]:
        from harness.evaluate.run import evaluate_checkpoint

        result = evaluate_checkpoint(
            str(sub.stage_dir("train")), suite=sub.track.suite, track=sub.track, device=sub.options.device,
            progress=progress,
        )  # fmt: skip
        result.write(stage_dir / "eval.json")
        if not sub.options.checkpoint_scores:
            return {"eval": "eval.json"}
        from harness.submit.checkpoint_scores import FOLDER, score_checkpoints

        score_checkpoints(sub.stage_dir("train"), stage_dir, sub.track, sub.options.device, progress)
        return {"eval": "eval.json", "checkpoints": FOLDER}

    inputs: dict[str, Any] = {"track": sub.track.sha256, "suite": sub.track.suite}
    if sub.options.checkpoint_scores:  # absent otherwise, so earlier runs' markers stay valid
        inputs["checkpoint_scores"] = True
    return run_stage(sub, "evaluate", inputs, work)
