"""Where the demo's time goes, against issue 27's target (under 8 minutes on 2 idle cores from a fresh clone).

    .venv/bin/harness demo && python benchmarks/demo_profile.py [--dir demo]

Reads `demo/timings.json` (written by `harness demo`: the pool's generation and contamination index, then per
baseline the curation script and the submit) and each submit's stage markers (wall and CPU seconds of validate,
tokenize, train, evaluate, record), and prints one table, the target line and, when it is missed, the shares of
the total that each kind of work takes. A resumed demo's reused work counts zero: time it from a fresh clone
with `HARNESS_HOME` and inductor's cache empty, on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

TARGET_S = 8 * 60
STAGES = ("validate", "tokenize", "train", "evaluate", "record")


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Wall seconds per stage of one entry's run folder (replicate runs added to their stage)."""
    out = dict.fromkeys(STAGES, 0.0)
    for marker in run_dir.rglob("_COMPLETE.json"):
        stage = marker.parent.name
        if stage in out:
            out[stage] += float(json.loads(marker.read_text()).get("seconds", 0.0))
    return out


def profile(demo: Path) -> tuple[list[tuple[str, float]], float]:
    """(rows of (what, wall seconds), total seconds) from a finished demo folder."""
    timings = json.loads((demo / "timings.json").read_text())
    rows = [("the pool (generation, index, contamination index)", timings["pool_s"])]
    for key, b in timings["baselines"].items():
        stages = stage_seconds(Path(b["run_dir"]))
        rows.append((f"{key}: curation (scores, select)" + (" [reused]" if b["subset_reused"] else ""), b["subset_s"]))
        rows += [(f"{key}: {stage}", stages[stage]) for stage in STAGES]
        rows.append((f"{key}: submit, other", max(0.0, b["submit_s"] - sum(stages.values()))))
    total = float(timings["total_s"])
    rows.append(("leaderboard and the rest", max(0.0, total - sum(s for _, s in rows))))
    return rows, total


def kinds(rows: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds per kind of work, summed over the baselines."""
    out: dict[str, float] = {}
    for what, seconds in rows:
        kind = what.split(": ", 1)[-1].replace(" [reused]", "") if ": " in what else what
        out[kind] = out.get(kind, 0.0) + seconds
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="the demo's folder (default ./demo)")
    args = parser.parse_args()
    if not (args.dir / "timings.json").is_file():
        print(f"{args.dir / 'timings.json'} not found: run `harness demo --dir {args.dir}` first", file=sys.stderr)
        return 2
    rows, total = profile(args.dir)
    print(f"harness demo in {args.dir}: {total:.0f} s ({total / 60:.1f} min); {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} now")  # fmt: skip
    for what, seconds in rows:
        print(f"  {what:<48} {seconds:7.1f} s {seconds / total:6.1%}")
    verdict = "met" if total < TARGET_S else "missed"
    print(f"target: the demo under {TARGET_S / 60:.0f} minutes: {verdict} ({total / 60:.1f} min)")
    if verdict == "missed":
        print(f"where the time goes ({total - TARGET_S:.0f} s over the target):")
        for kind, seconds in kinds(rows).items():
            if seconds >= 1:
                print(f"  {kind:<48} {seconds:7.1f} s {seconds / total:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
