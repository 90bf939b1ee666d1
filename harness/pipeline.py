"""`harness submit`: validate -> tokenize+shuffle -> train -> evaluate -> record, resumable stage by stage.

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
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness import __version__
from harness.config import doc, to_dict
from harness.errors import HarnessError, UsageError
from harness.pools.io import write_json_atomic

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.records import Record
    from harness.submission import ValidationReport
    from harness.tracks import Track

STAGES = ("validate", "tokenize", "train", "evaluate", "record")
MARKER = "_COMPLETE.json"


class SubsetInvalid(HarnessError):
    """The subset broke the track's rules; nothing was trained."""


class StageFailed(HarnessError):
    """A stage raised; earlier stages are intact and a re-run resumes."""


@dataclass(frozen=True, kw_only=True)
class SubmitOptions:
    """Everything `harness submit` takes (the track and the subset decide the entry; the rest is how to run)."""

    track: str = doc("Track name.")
    subset: str = doc("Subset file, directory or glob (local or fsspec URL).")
    name: str = doc("Display name of the entry ('' = the subset's file name).", default="")
    authors: tuple[str, ...] = doc("Authors shown on the leaderboard.", default=())
    description: str = doc("What the curation does.", default="")
    link: str = doc("URL of the curation code or paper.", default="")
    run_dir: str = doc("Root of run folders: <run_dir>/<track>/<entry-id>/<stage>/.", default="runs")
    results: str = doc("Results store URL (local folder or s3://).", default="results")
    leaderboard: str | None = doc("Rebuild the static leaderboard into this folder after recording.", default=None)
    trainer: Literal["native", "open_lm"] = doc("Training backend.", default="native")
    nproc: int = doc("Training processes on this node (torchrun when > 1).", default=1)
    launcher: Literal["local", "slurm"] = doc("How training is started.", default="local")
    workers: int = doc("Processes for tokenization.", default=1)
    device: str | None = doc("Training/evaluation device (default: cuda when available, else cpu).", default=None)
    skip_evaluate: bool = doc("Stop after training (no evaluation and no record).", default=False)
    replicates: int = doc("Train with the track's first K seeds; the record keeps each and their spread.", default=1)

    def __post_init__(self) -> None:
        from harness.fields import submission_problems
        from harness.tracks import get_track

        get_track(self.track)  # an unknown track is a usage error before anything is shown or done
        problems = submission_problems(
            name=self.display_name, authors=self.authors, description=self.description, link=self.link,
            name_required=True,
        )  # fmt: skip
        if problems:  # refused before any work starts, not after training
            raise UsageError("the submission's fields are not acceptable: " + "; ".join(problems))

    @property
    def display_name(self) -> str:
        """The entry's name on the leaderboard: --name, else the subset's file name."""
        return self.name or Path(self.subset.rstrip("/")).name


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


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_stage(
    sub: Submission, stage: str, inputs: dict[str, Any], work: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """Run `work(stage_dir)` unless the stage is done with the same inputs; a stale stage and its successors are
    removed first. Returns the stage's outputs (also kept in its marker)."""
    stage_dir = sub.stage_dir(stage)
    previous = STAGES[STAGES.index(stage) - 1] if stage != STAGES[0] else None
    inputs = json.loads(json.dumps({**inputs, "upstream": _digest(sub.outputs.get(previous)) if previous else None}))
    marker = read_marker(stage_dir)
    if marker is not None and marker.get("inputs") == inputs:
        sub.outputs[stage] = marker["outputs"]
        sub.skipped.append(stage)
        return marker["outputs"]
    if marker is not None:  # stale: the same entry with changed inputs (a new track version, another trainer)
        for later in STAGES[STAGES.index(stage) :]:
            shutil.rmtree(sub.stage_dir(later), ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
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
        {"stage": stage, "inputs": inputs, "outputs": outputs, "seconds": round(time.monotonic() - started, 2)},
    )
    sub.outputs[stage] = outputs
    return outputs


# ------------------------------------------------------------------------------------------------ stages


def fingerprint(subset: str) -> str | None:
    """sha256 over the subset's files (names relative to the input and bytes): finds an earlier validation.
    None when a file cannot be read (validation then reports it)."""
    from harness.pools.io import expand_inputs, open_raw
    from harness.reader import InputError, describe_failure

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
    from harness.submission import validate_subset

    report = validate_subset(track, opts.subset, progress=progress)
    if not report.ok:
        raise SubsetInvalid(report)  # the CLI renders the report; nothing else has run
    return report, entry_id(track.name, report.subset_hash)


def prepare(opts: SubmitOptions, progress: Progress | None = None) -> Submission:
    """Validate (or find an earlier validation of the same bytes) and open the entry's run folder."""
    from harness.leftovers import sweep_tree
    from harness.replicates import seeds_for
    from harness.tracks import get_track

    track = get_track(opts.track)
    seeds_for(track, opts.replicates)  # a wrong --replicates fails before any work
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
        from harness.submission import materialize_subset

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

    from harness.decontam import check_files, enforce

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
        return {"eval": "eval.json"}

    return run_stage(sub, "evaluate", {"track": sub.track.sha256, "suite": sub.track.suite}, work)


def stage_record(sub: Submission) -> Record:
    from harness.records import Record, ResultsStore

    def work(stage_dir: Path) -> dict[str, Any]:
        record = build_record(sub)
        (stage_dir / "record.json").write_text(record.to_json())
        where = ResultsStore(sub.options.results).add(record)
        return {"record": "record.json", "stored_at": where}

    meta = {k: getattr(sub.options, k) for k in ("name", "authors", "description", "link", "results", "replicates")}
    out = run_stage(sub, "record", {"submission": meta}, work)
    return Record.from_json((sub.stage_dir("record") / out["record"]).read_text(), "record.json")


# ------------------------------------------------------------------------------------------------ record


def git_commit() -> str:
    """The harness checkout's commit ('' for an installed wheel or without git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _hardware(device: str | None) -> dict[str, Any]:
    import torch

    if (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
        return {"accelerator": torch.cuda.get_device_name(0), "count": 1, "cpu": platform.processor()}
    return {"accelerator": "cpu", "count": 1, "cpu": platform.processor() or platform.machine()}


def _curve(log: Path) -> list[list[float]]:
    from harness.records import downsample_curve

    points = []
    if log.is_file():
        for number, line in enumerate(log.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
            except ValueError:  # training repairs its log when it resumes; a log damaged otherwise is refused
                raise HarnessError(
                    f"{log}, line {number}: not a JSON row; delete {log.parent} and re-run to train again"
                ) from None
            if "loss" in row and "step" in row:
                points.append([row["step"], row.get("tokens", row.get("tokens_seen", 0)), row["loss"]])
    return downsample_curve(points)


def build_record(sub: Submission) -> Record:
    """The leaderboard record of a finished submission, with full provenance."""
    import lm_eval
    import torch

    from harness.records import SCHEMA_VERSION, Record, now_iso
    from harness.replicates import replicates_block
    from harness.tokenizer import tokenizer_sha256
    from harness.trackscale import scale_of

    opts, track = sub.options, sub.track
    val, tok, tr = sub.outputs["validate"], sub.outputs["tokenize"], sub.outputs["train"]
    evaluation = json.loads((sub.stage_dir("evaluate") / "eval.json").read_text())
    stats = val["stats"]
    data = {
        "schema_version": SCHEMA_VERSION,
        "entry_id": sub.entry_id,
        "created_at": now_iso(),
        "submission": {
            "name": opts.display_name,
            "authors": list(opts.authors),
            "description": opts.description,
            "link": opts.link,
        },
        "track": {"name": track.name, "version": track.version, "sha256": track.sha256, **_scale(scale_of(track))},
        "pool": val["pool"],
        "subset": {
            "sha256": val["subset_hash"],
            "documents": stats["documents"],
            "unique_documents": stats["unique_documents"],
            "tokens": tok["tokens"] - tok.get("padding_tokens", 0),
            "unique_tokens": stats.get("unique_tokens") or 0,
        },
        "tokenizer_sha256": tokenizer_sha256(track.tokenizer),
        "versions": {
            "harness": __version__,
            "git_commit": git_commit(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lm_eval": getattr(lm_eval, "__version__", ""),
            "open_lm": tr.get("open_lm", ""),
        },
        "hardware": _hardware(opts.device),
        "seeds": {"train": track.recipe.seed, "shuffle": tok.get("seed", track.recipe.seed), **evaluation["seeds"]},
        "training": {
            "trainer": tr["trainer"],
            "tokens_seen": tr["tokens_seen"],
            "passes": tr["passes"],
            "unique_passes": tr["tokens_seen"] / stats["unique_tokens"] if stats.get("unique_tokens") else 0.0,
            "steps": tr["steps"],
            "final_loss": tr["final_loss"],
            "wall_time_s": tr["wall_time_s"],
            "curve": _curve(Path(tr["log"])),
        },
        "evaluation": evaluation_for_record(evaluation),
        "replicates": replicates_block(sub, opts.replicates),
        "contamination": val["contamination"],
    }
    return Record.from_data(data, "<new record>")


def _scale(base_scale: tuple[str, float]) -> dict[str, Any]:
    base, scale = base_scale
    return {"base": base, "scale": scale}


def evaluation_for_record(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The record's `evaluation` block from an eval.json (harness.evaluate.run.EvalResult.to_json()).

    Each task's baseline and centered accuracy use the newest baseline version of its suite (v2 where DCLM
    corrected it); the raw metrics are kept whole so aggregates can be recomputed under any version.
    """
    from harness.evaluate.aggregate import centered
    from harness.evaluate.suites import get_suite

    suite = get_suite(evaluation["suite"])
    lower_better = {t.name for t in suite.tasks if t.metric == "bits_per_byte"}
    tasks = {}
    for name, t in evaluation["tasks"].items():
        if t["accuracy"] is None:
            continue  # a missing task: its absence is visible in the aggregates' `missing`
        spec = suite.task(name)
        baseline = spec.baselines[max(spec.baselines)] if spec.baselines else None
        tasks[name] = {
            "metric": t["metric"],
            "value": t["accuracy"],
            "higher_is_better": name not in lower_better,
            "baseline": baseline,
            "centered": None if baseline is None else centered(t["accuracy"], baseline),
            "shots": t["shots"],
            "n_samples": t["n_samples"],
            "metrics": {k: v for k, v in t["metrics"].items() if isinstance(v, int | float) and v == v},
            "stderr": {k: v for k, v in t["stderr"].items() if isinstance(v, int | float) and v == v},
            "data_hash": _digest(t["data"]),
        }
    descriptions = {spec.name: spec.description for spec in suite.aggregates}
    aggregates = {}
    for name, agg in evaluation["aggregates"].items():
        aggregates[name] = {
            "value": agg["value"],
            "version": agg["stamp"],
            "n_tasks": len(agg["tasks"]),
            "missing": agg["missing"],
            "reason": agg["reason"],
            "higher_is_better": not set(agg["tasks"]) <= lower_better,
            "description": descriptions.get(name.split("_v")[0].split("/")[0], descriptions.get(name, "")),
        }
    return {
        "suite": evaluation["suite"],
        "suite_version": evaluation["suite_version"],
        "primary_aggregate": evaluation["primary"],
        "tasks": tasks,
        "aggregates": aggregates,
        "heldout_lm": evaluation.get("heldout_lm") or {},
    }


# -------------------------------------------------------------------------------------------------- submit


@dataclass(frozen=True)
class SubmitResult:
    """What `submit` did: the entry, its run folder, the record (None with --skip-evaluate) and skipped stages."""

    entry_id: str
    run_dir: Path
    record: Record | None
    skipped: tuple[str, ...]
    site: str | None


def submit(
    opts: SubmitOptions, progress: Progress | None = None, on_stage: Callable[[str], None] | None = None
) -> SubmitResult:
    """Run every stage of a submission (see the module docstring); `on_stage(name)` is told as each one starts."""
    say = on_stage or (lambda _stage: None)
    say("validate")
    sub = prepare(opts, progress)
    stage_validate(sub, progress)
    for stage, fn in (("tokenize", stage_tokenize), ("train", stage_train)):
        say(stage)
        fn(sub, progress)
    record, site = None, None
    if not opts.skip_evaluate:
        say("evaluate")
        stage_evaluate(sub, progress)
        if opts.replicates > 1:
            from harness.replicates import run_replicates

            run_replicates(sub, opts.replicates, progress, say)
        say("record")
        record = stage_record(sub)
        if opts.leaderboard:
            from harness.leaderboard.build import build_from_store

            say("leaderboard")
            build_from_store(opts.results, Path(opts.leaderboard))
            site = opts.leaderboard
    return SubmitResult(sub.entry_id, sub.run_dir, record, tuple(sub.skipped), site)


# ------------------------------------------------------------------------------------------------ display


def make_progress(console: Any) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip


def submit_with_display(opts: SubmitOptions, console: Any) -> SubmitResult | None:
    """`submit` under one rich display: a line per stage, each component's progress bars beneath it.
    Returns None when the subset is invalid (its report has been printed)."""
    from rich.markup import escape

    from harness.submission import render_report

    names = [*STAGES[: 3 if opts.skip_evaluate else 5], *(["leaderboard"] if opts.leaderboard else [])]
    with make_progress(console) as progress:
        overall = progress.add_task(f"[bold]submit[/] {escape(opts.track)}: starting", total=len(names))

        def on_stage(stage: str) -> None:
            done = names.index(stage) if stage in names else names.index("evaluate")  # replicates: after evaluate
            progress.update(
                overall, completed=done, description=f"[bold]submit[/] stage {done + 1}/{len(names)}: {stage}"
            )

        try:
            result = submit(opts, progress, on_stage)
        except SubsetInvalid as exc:
            progress.stop()
            render_report(exc.args[0], console)
            console.print("[bold red]The subset is invalid; nothing was trained.[/] Fix the lines above and re-run.")
            return None
        except StageFailed:
            progress.update(overall, description="[bold red]submit failed[/]")
            raise
        progress.update(overall, completed=len(names), description=f"[bold green]submit done[/] {result.entry_id}")
    return result


def render_summary(result: SubmitResult, console: Any) -> None:
    from rich.table import Table

    from harness.fields import plain

    if result.skipped:
        console.print(f"Reused finished stages: {', '.join(result.skipped)} (same subset and track).")
    console.print(f"Entry [bold]{result.entry_id}[/] in {plain(str(result.run_dir))}")
    record = result.record
    if record is None:
        console.print("Evaluation skipped (--skip-evaluate); re-run without it to score and record the entry.")
        return
    table = Table(title=f"{plain(record.submission.name)} on {record.track.name}")  # user text is never markup
    table.add_column("aggregate")
    table.add_column("value", justify="right")
    table.add_column("version")
    for name, agg in record.evaluation.aggregates.items():
        star = " (ranked by)" if name == record.evaluation.primary_aggregate else ""
        value = "absent: " + agg.reason if agg.value is None else f"{agg.value:.4f}"
        table.add_row(name + star, value, str(agg.version))
    console.print(table)
    from harness.replicates import render_uncertainty

    render_uncertainty(record, console)
    t = record.training
    console.print(
        f"trained {t.tokens_seen:,} tokens ({t.passes:.2f} passes) in {t.wall_time_s:.0f} s, final loss {t.final_loss:.3f}"
    )
    console.print(f"record: {plain(str(result.run_dir / 'record' / 'record.json'))}")
    if result.site:
        console.print(f"leaderboard: {plain(str(Path(result.site).resolve() / 'index.html'))}")
