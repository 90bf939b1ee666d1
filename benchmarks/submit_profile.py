"""Where a submit's time goes: wall and CPU seconds of each stage (validate, tokenize, train, evaluate, record) of
one fresh `harness submit`, read from the stage markers it writes, with each stage's share of the whole.

    python benchmarks/submit_profile.py [--track nano] [--baseline random] [--dir DIR]

The subset is one of the demo's baselines (written by its example script, not timed). The submit runs in a fresh
run folder in a child process, as a user runs it; CPU seconds count the stage's process and its finished worker
processes. Training also prints its tokens per second, evaluation its suite's tasks. Run it on an idle machine:
the wall times are what the demo's and the README's timings add up from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("validate", "tokenize", "train", "evaluate", "record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--track", default="nano")
    parser.add_argument("--baseline", default="random", help="random, dedup or quality (the demo's baselines)")
    parser.add_argument("--dir", type=Path, default=None, help="where the run goes (default: a temporary folder)")
    args = parser.parse_args()

    from harness.baselines import BASELINES, write_subset

    baseline = next((b for b in BASELINES if b.key == args.baseline), None)
    if baseline is None:
        sys.exit(f"--baseline: one of {', '.join(b.key for b in BASELINES)}")
    root = Path(tempfile.mkdtemp(prefix="submit-profile-", dir=args.dir))
    subset = root / f"{baseline.key}.jsonl"
    write_subset(baseline, args.track, subset)
    command = [sys.executable, "-m", "harness", "submit", "--track", args.track, str(subset),
               "--run-dir", str(root / "runs"), "--results", str(root / "results")]  # fmt: skip
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    total = time.monotonic() - started
    markers = {m.parent.name: json.loads(m.read_text()) for m in (root / "runs").rglob("_COMPLETE.json")}
    print(f"harness submit --track {args.track} ({baseline.name}), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} before the run ended; {total:.1f} s wall in all")  # fmt: skip
    print(f"{'stage':<10} {'wall s':>8} {'share':>6} {'CPU s':>8}  detail")
    for stage in STAGES:
        m = markers.get(stage, {})
        wall, cpu = m.get("seconds", float("nan")), m.get("cpu_seconds", float("nan"))
        print(f"{stage:<10} {wall:8.1f} {wall / total:6.1%} {cpu:8.1f}  {_detail(stage, m.get('outputs', {}))}")
    print(f"{'(other)':<10} {total - sum(markers.get(s, {}).get('seconds', 0) for s in STAGES):8.1f}"
          "         start-up, imports, the pool's index and the summary")  # fmt: skip


def _detail(stage: str, outputs: dict) -> str:
    if stage == "train" and outputs.get("tokens_per_s"):
        return (
            f"{outputs['tokens_per_s']:,.0f} tokens/s over {outputs['tokens_seen']:,} tokens, {outputs['steps']} steps"
        )
    return ""


if __name__ == "__main__":
    main()
