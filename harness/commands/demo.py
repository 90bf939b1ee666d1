"""`harness demo`: the whole benchmark on the embedded sandbox, on a CPU, with no network."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="curate three baseline subsets of the sandbox pool, submit each, build the leaderboard"
    )
    p.add_argument("--track", default="nano", help="track to run the baselines on (default: nano)")
    p.add_argument("--dir", default="demo", help="folder for subsets, runs, results and the site (default: ./demo)")
    p.add_argument("--workers", type=int, default=2, help="processes for pool creation and tokenization")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    return run_demo(args.track, args.dir, workers=args.workers, console=Console())


def run_demo(track: str, folder: str, *, workers: int, console: Any) -> int:
    from harness.baselines import BASELINES, write_subset
    from harness.display.progress import make_progress
    from harness.display.submit import render_summary, submit_with_display
    from harness.leaderboard.build import build_from_store
    from harness.pools import ensure_pool
    from harness.submit.decontam_subset import prefill_pool
    from harness.submit.options import SubmitOptions
    from harness.tracks import get_track

    started = time.monotonic()
    root = Path(folder)
    (root / "subsets").mkdir(parents=True, exist_ok=True)
    spec = get_track(track)
    console.rule(f"[bold]harness demo[/]: {len(BASELINES)} baselines on track {track}")
    with make_progress(console) as progress:
        pool = ensure_pool(spec.pool, progress=progress)
        prefill_pool(pool, spec, progress=progress)  # once per pool: each validation then only looks up
    timings: dict[str, Any] = {"track": track, "pool_s": round(time.monotonic() - started, 1), "baselines": {}}
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
        submit_started = time.monotonic()
        result = submit_with_display(opts, console)
        if result is None:
            raise HarnessError(f"the {baseline.key} baseline wrote an invalid subset ({subset}); this is a bug")
        render_summary(result, console)
        results[baseline] = result.record
        timings["baselines"][baseline.key] = {
            "subset_s": round(seconds or 0.0, 1), "subset_reused": not seconds,
            "submit_s": round(time.monotonic() - submit_started, 1), "run_dir": str(result.run_dir),
        }  # fmt: skip
    site = root / "site"
    build_from_store(str(root / "results"), site)
    timings["total_s"] = round(time.monotonic() - started, 1)
    # Where the demo's time went, for benchmarks/demo_profile.py (each stage's own seconds are in its run folder).
    (root / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return _verdict(results, site, time.monotonic() - started, console)


def _verdict(results: dict[Any, Any], site: Path, seconds: float, console: Any) -> int:
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
