"""The baseline curations of the sandbox pool (the scripts in examples/) that the demo submits and sweeps start from."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
