"""The demo: three baseline curations of the sandbox pool (examples/), each submitted to the `nano` track, and
the leaderboard built from their records. Everything lands under one folder and a re-run resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.resources import resource_dir


@dataclass(frozen=True)
class Baseline:
    """One baseline curation: the example script that writes its subset and how the entry is described."""

    key: str
    script: str
    name: str
    description: str
    filtered: bool


BASELINES = (
    Baseline("random", "random_sample.py", "Random sample",
             "Documents drawn uniformly at random from the pool until the token budget is filled.", False),
    Baseline("dedup", "dedup.py", "Exact + near-duplicate removal",
             "Exact duplicates (normalised text hash) and near duplicates (datatrove MinHash LSH) removed, then "
             "sampled.", True),
    Baseline("quality", "quality_filter.py", "Heuristic quality filter + dedup",
             "Deduplicated, then datatrove's Gopher quality and repetition, C4 and FineWeb filters.", True),
)  # fmt: skip


def write_subset(baseline: Baseline, track: str, out: Path) -> float:
    """Run the example script (as a participant would) unless its subset already exists; returns seconds."""
    if out.is_file():
        return 0.0
    script = resource_dir("examples") / baseline.script
    started = time.monotonic()
    tmp = out.with_name(f".{out.name}.tmp")
    # the scoring examples run datatrove's local executor on every core
    workers = [] if baseline.script == "random_sample.py" else ["--workers", str(os.cpu_count() or 1)]
    proc = subprocess.run(
        [sys.executable, str(script), "--track", track, "--out", str(tmp), *workers], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise HarnessError(f"example {script} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    tmp.replace(out)
    return time.monotonic() - started


def run_demo(track: str, folder: str, *, workers: int, console: Any) -> int:
    from harness.leaderboard.build import build_from_store
    from harness.pipeline import SubmitOptions, make_progress, render_summary, submit_with_display
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    started = time.monotonic()
    root = Path(folder)
    (root / "subsets").mkdir(parents=True, exist_ok=True)
    spec = get_track(track)
    console.rule(f"[bold]harness demo[/]: {len(BASELINES)} baselines on track {track}")
    with make_progress(console) as progress:
        ensure_pool(spec.pool, progress=progress)
    results = {}
    for baseline in BASELINES:
        subset = root / "subsets" / f"{baseline.key}.jsonl"
        console.rule(f"{baseline.name}")
        with console.status(f"writing the subset with examples/{baseline.script}"):
            seconds = write_subset(baseline, track, subset)
        console.print(f"subset {subset}" + (f" written in {seconds:.0f} s" if seconds else " (reused)"))
        opts = SubmitOptions(
            track=track, subset=str(subset), name=baseline.name, description=baseline.description,
            run_dir=str(root / "runs"), results=str(root / "results"), workers=workers,
        )  # fmt: skip
        result = submit_with_display(opts, console)
        if result is None:
            raise HarnessError(f"the {baseline.key} baseline wrote an invalid subset ({subset}); this is a bug")
        render_summary(result, console)
        results[baseline] = result.record
    site = root / "site"
    build_from_store(str(root / "results"), site)
    return _verdict(results, site, time.monotonic() - started, console)


def _verdict(results: dict[Baseline, Any], site: Path, seconds: float, console: Any) -> int:
    from rich.table import Table

    table = Table(title="demo leaderboard")
    for col in ("rank", "entry", "score", "aggregate"):
        table.add_column(col)
    score = {b: r.primary.value for b, r in results.items()}
    ranked = sorted(results, key=lambda b: -(score[b] if score[b] is not None else float("-inf")))
    for rank, b in enumerate(ranked, 1):
        value = "absent" if score[b] is None else f"{score[b]:.4f}"
        table.add_row(str(rank), b.name, value, results[b].evaluation.primary_aggregate)
    console.print(table)
    console.print(f"leaderboard: [link=file://{site.resolve()}/index.html]{site.resolve()}/index.html[/] "
                  f"(open it in a browser; it needs no server)")  # fmt: skip
    console.print(f"demo finished in {seconds / 60:.1f} minutes")
    random = next(b for b in results if not b.filtered)

    def beats(a: float | None, b: float | None) -> bool:
        return a is not None and (b is None or a > b)

    losers = [b.name for b in results if b.filtered and not beats(score[b], score[random])]
    if losers:
        console.print(f"[bold red]{', '.join(losers)} did not beat the random sample[/]: the sandbox pool or the "
                      "track is mis-sized; please report this.")  # fmt: skip
        return 1
    console.print("[bold green]Both filtered subsets beat the random sample[/], as they should.")
    return 0
