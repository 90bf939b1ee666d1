"""`harness sweep run`: build every cell's subset, then train each cell as an ordinary entry (`harness submit`).

A sweep lives in one folder (default `sweeps/<experiment>/`):

    base.jsonl                 the base subset's distinct documents (built once)
    cells/<key>/subset.jsonl   the cell's subset; cell.json: its levels and measured figures
    cells/<key>/DONE.json      written last, atomically, once the cell's record is stored (entry id, track)
    runs/, results/            the cells' run folders and results store (as `harness submit` writes them)
    logs/<key>.log             each cell's output
    sweep.sbatch, cells.txt    with --launcher slurm: a job array, one task per pending cell, submitted with sbatch
    slurm-job.json             the array's job id (harness.train.slurm): a re-run while it runs submits nothing

Cells run as separate `harness sweep run --cell KEY` processes, `jobs` at a time (each with one thread on CPU, or
pinned to one GPU). A cell is resumable like any submit; a re-run skips cells with DONE.json and resumes the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError, UsageError
from harness.experiments.spec import Cell, Experiment
from harness.experiments.transforms import Docs, duplicate, sample_fraction, top_fraction, write_subset
from harness.io.files import write_json_atomic, write_text_atomic

DONE = "DONE.json"


@dataclass(frozen=True)
class SweepPaths:
    """Where a sweep's files live."""

    root: Path
    results: str

    @classmethod
    def of(cls, experiment: Experiment, out: str | None = None, results: str | None = None) -> SweepPaths:
        root = Path(out) if out else Path("sweeps") / experiment.name
        return cls(root, results or str(root / "results"))

    def cell(self, cell: Cell) -> Path:
        return self.root / "cells" / cell.key

    def done(self, cell: Cell) -> dict[str, Any] | None:
        try:
            return json.loads((self.cell(cell) / DONE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


# ------------------------------------------------------------------------------------------------- base subset


def _pool_docs(experiment: Experiment) -> tuple[Any, np.ndarray]:
    """The pool and its per-row token counts (+1 end-of-document each)."""
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    track = get_track(experiment.track)
    pool = ensure_pool(track.pool)
    tokens = pool.token_counts(track.tokenizer)
    if tokens is None:
        raise HarnessError(f"pool {pool.id!r} has no token counts for tokenizer {track.tokenizer.name}; re-index it")
    return pool, np.asarray(tokens, dtype=np.int64) + 1


def _base_ids(experiment: Experiment, paths: SweepPaths) -> list[str]:
    base = experiment.base
    if base.subset:
        source = experiment.resolve(base.subset)
    elif base.recipe == "pool":
        return []  # every row
    else:
        from harness.baselines import BASELINES
        from harness.baselines import write_subset as write_baseline

        source = paths.root / f"base-{base.recipe}.jsonl"
        write_baseline(next(b for b in BASELINES if b.key == base.recipe), experiment.track, source)
    if not source.is_file():
        raise UsageError(f"{experiment.source}: [base].subset {source} does not exist")
    ids = []
    for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                ids.append(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UsageError(f"{source}:{n}: expected a JSON object with an 'id'") from None
    return list(dict.fromkeys(ids))  # distinct, first occurrence order


def base_docs(experiment: Experiment, paths: SweepPaths) -> tuple[Docs, np.ndarray]:
    """The base subset's distinct documents and their pool rows (pool order for the whole pool)."""
    pool, tokens = _pool_docs(experiment)
    ids = _base_ids(experiment, paths)
    if not ids:
        from harness.pools.ids import u64_to_id

        rows = np.arange(len(pool))
        id_list = [u64_to_id(h, lo) for h, lo in zip(pool.index.hi, pool.index.lo, strict=True)]
    else:
        rows = pool.rows(ids)
        if (rows < 0).any():
            bad = ids[int(np.flatnonzero(rows < 0)[0])]
            raise UsageError(f"{experiment.source}: base document {bad} is not in pool {pool.id!r}")
        id_list = ids
    return Docs(np.array(id_list, dtype=object), tokens[rows]), rows


def read_scores(experiment: Experiment, n_rows: int, rows_of: Any) -> np.ndarray:
    """The filter column per pool row (NaN where a row has no score) from `harness score` Parquet files."""
    import pyarrow.parquet as pq

    spec = experiment.filter
    assert spec is not None
    where = experiment.resolve(spec.scores)
    files = sorted(where.rglob("*.parquet")) if where.is_dir() else [where]
    if not files or not files[0].is_file():
        raise UsageError(f"{experiment.source}: [filter].scores {where} holds no Parquet files; run `harness score`")
    scores = np.full(n_rows, np.nan)
    for f in files:
        names = pq.read_schema(f).names
        for col in (spec.id_column, spec.column):
            if col not in names:
                from harness.errors import unknown_name

                raise unknown_name(f"score column in {f}", col, names)
        table = pq.read_table(f, columns=[spec.id_column, spec.column])
        rows = rows_of(table.column(spec.id_column).to_pylist())
        values = np.asarray(table.column(spec.column).to_numpy(zero_copy_only=False), dtype=np.float64)
        ok = rows >= 0
        scores[rows[ok]] = values[ok]
    return scores if spec.descending else -scores


# ------------------------------------------------------------------------------------------------------- cells


def definition(experiment: Experiment) -> str:
    """Hash of what decides a cell's subset besides its levels: track, base, transform seed, scores, and with a
    duplication factor the duplication transform's version and its number of copied documents."""
    from harness.config import to_dict

    what = {k: to_dict(getattr(experiment, k)) for k in ("track", "base", "seed", "filter")}
    if experiment.factors.duplication:  # v2: copies of `duplication_sources` chosen documents (the study's)
        what["duplication"] = {"version": 2, "sources": experiment.duplication_sources}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def build_cells(experiment: Experiment, paths: SweepPaths) -> list[Cell]:
    """Write every cell's subset (skipping those written before) and its cell.json; returns the cells."""
    cells = experiment.cells()
    for cell in cells:
        previous = paths.cell(cell) / "cell.json"
        if previous.is_file() and json.loads(previous.read_text()).get("definition") != definition(experiment):
            raise UsageError(
                f"{paths.root} holds cells of an earlier definition of {experiment.name} (its track, base, seed or "
                "filter changed); use a new --out folder, or delete that one to start over"
            )
    todo = [c for c in cells if not (paths.cell(c) / "cell.json").is_file()]
    if not todo:
        return cells
    docs, rows = base_docs(experiment, paths)
    scores = None
    if experiment.factors.filter:
        from harness.pools import ensure_pool
        from harness.tracks import get_track

        pool = ensure_pool(get_track(experiment.track).pool)
        scores = read_scores(experiment, len(pool), pool.rows)[rows]
        if np.isnan(scores).any():
            missing = int(np.isnan(scores).sum())
            raise UsageError(
                f"{experiment.source}: {missing:,} of the {len(docs):,} base documents have no "
                f"{experiment.filter.column!r} score in {experiment.filter.scores}; score the same pool"  # type: ignore[union-attr]
            )
    built = [(cell, *_transform(cell, docs, scores)) for cell in todo]  # every level is checked before writing
    for cell, subset, repeats in built:
        figures = write_subset(subset, repeats, paths.cell(cell) / "subset.jsonl")
        write_json_atomic(paths.cell(cell) / "cell.json", {
            "experiment": experiment.name, "definition": definition(experiment), "key": cell.key,
            "levels": cell.levels, "track": cell.track,
            "base_documents": len(docs), "base_tokens": int(docs.tokens.sum()), **figures,
        })  # fmt: skip
    return cells


def _transform(cell: Cell, docs: Docs, scores: np.ndarray | None) -> tuple[Docs, np.ndarray]:
    seed = cell.experiment.seed
    try:
        out = docs
        if (f := cell.level("filter")) is not None:
            out = top_fraction(docs, scores, f)  # type: ignore[arg-type]
        if (s := cell.level("size")) is not None:
            out = sample_fraction(out, s, seed)
        d = cell.level("duplication")
        repeats = (
            duplicate(out, d, seed, sources=cell.experiment.duplication_sources)
            if d is not None
            else np.ones(len(out), np.int64)
        )
    except HarnessError as exc:
        raise UsageError(f"{cell.experiment.source}: cell {cell.key}: {exc}") from None
    return out, repeats


def cell_figures(paths: SweepPaths, cell: Cell) -> dict[str, Any]:
    return json.loads((paths.cell(cell) / "cell.json").read_text())


# --------------------------------------------------------------------------------------------------- run cells


def run_cell(experiment: Experiment, paths: SweepPaths, cell: Cell, device: str | None = None) -> dict[str, Any]:
    """Train and record one cell through the ordinary submit pipeline; writes DONE.json last."""
    from harness.submit.options import SubmitOptions
    from harness.submit.pipeline import submit

    done = paths.done(cell)
    if done is not None:
        return done
    opts = SubmitOptions(
        track=cell.track, subset=str(paths.cell(cell) / "subset.jsonl"), name=f"{experiment.name}: {cell.label}",
        description=f"Cell {cell.key} of experiment {experiment.name}: {experiment.description}",
        run_dir=str(paths.root / "runs"), results=paths.results, device=device, seeds=experiment.factors.seed,
    )  # fmt: skip
    result = submit(opts)
    assert result.record is not None
    marker = {"key": cell.key, "entry_id": result.entry_id, "track": cell.track, "levels": cell.levels}
    write_json_atomic(paths.cell(cell) / DONE, marker)
    return marker


def cell_command(experiment: Experiment, paths: SweepPaths, cell_arg: str, device: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "harness", "sweep", "run", str(Path(experiment.source).resolve()),
           "--out", str(paths.root.resolve()), "--results", paths.results, "--cell", cell_arg]  # fmt: skip
    return [*cmd, "--device", device] if device else cmd


def gpu_count(device: str | None) -> int:
    """CUDA devices the cells may use (0 on CPU machines or with --device cpu)."""
    if device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_jobs(device: str | None) -> int:
    """Parallel cells: one per GPU on CUDA machines, else one per CPU core (each cell then uses one thread)."""
    return gpu_count(device) or os.cpu_count() or 1


def run_local(
    experiment: Experiment, paths: SweepPaths, cells: list[Cell], *, jobs: int, device: str | None, progress: Any
) -> dict[str, str]:
    """Run the pending cells as `jobs` parallel processes; returns {cell key: failure message} for failed cells."""
    pending = [c for c in cells if paths.done(c) is None]
    bar = progress.add_task(f"sweep {experiment.name}", total=len(cells), completed=len(cells) - len(pending))
    (paths.root / "logs").mkdir(parents=True, exist_ok=True)
    gpus = gpu_count(device) if jobs > 1 else 0  # each cell pinned to one GPU, round-robin
    running: dict[str, tuple[subprocess.Popen[bytes], Any, int]] = {}  # key -> process, log, GPU (-1: none)
    failed: dict[str, str] = {}
    queue = list(pending)
    try:
        while queue or running:
            while queue and len(running) < (min(jobs, gpus) if gpus else jobs):
                cell = queue.pop(0)
                env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
                gpu = min(set(range(gpus)) - {g for _, _, g in running.values()}, default=-1)
                if gpu >= 0:
                    env["CUDA_VISIBLE_DEVICES"] = str(gpu)
                log = (paths.root / "logs" / f"{cell.key}.log").open("ab")
                cmd = cell_command(experiment, paths, cell.key, device)
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                running[cell.key] = (proc, log, gpu)
            time.sleep(0.2)
            for key, (proc, log, _gpu) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[key]
                if proc.returncode != 0:
                    failed[key] = f"exit {proc.returncode}; see {paths.root / 'logs' / f'{key}.log'}"
                progress.advance(bar)
            names = ", ".join(running) or "-"
            progress.update(bar, description=f"sweep {experiment.name}: running {names}")
    finally:
        for proc, log, _gpu in running.values():  # interrupted: stop the children; their stages resume on a re-run
            proc.terminate()
            proc.wait()
            log.close()
    return failed


def write_slurm_array(experiment: Experiment, paths: SweepPaths, cells: list[Cell], device: str | None) -> Path | None:
    """Write `sweep.sbatch`, a job array over the pending cells (one GPU each, or one CPU with device "cpu");
    None when nothing is pending."""
    from harness.train.launch import refuse_control_characters, resources_line

    cmd = cell_command(experiment, paths, "$KEY", device)
    refuse_control_characters([str(paths.root.resolve()), *cmd, experiment.name])  # before anything is written
    pending = [c for c in cells if paths.done(c) is None]
    if not pending:
        return None
    (paths.root / "cells.txt").write_text("".join(f"{c.key}\n" for c in pending))
    (paths.root / "logs").mkdir(parents=True, exist_ok=True)
    line = " ".join(f'"{a}"' if a == "$KEY" else shlex.quote(a) for a in cmd)
    cells_file = shlex.quote(str((paths.root / "cells.txt").resolve()))
    script = f"""#!/bin/bash
#SBATCH --job-name=harness-sweep-{experiment.name}
#SBATCH --array=0-{len(pending) - 1}
#SBATCH --ntasks=1
{resources_line(1, device, per_node=False)}
#SBATCH --output={paths.root.resolve()}/logs/slurm-%A_%a.out
set -euo pipefail
KEY=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {cells_file})
{line}
"""
    path = paths.root / "sweep.sbatch"
    write_text_atomic(path, script)
    path.chmod(0o755)
    return path
