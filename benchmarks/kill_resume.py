"""kill -9 at random instants of a debug submit, then re-run: is the record the uninterrupted one's?

One uninterrupted `harness submit --track debug` gives the reference record and the run's duration T. Each trial
starts the same submit in a fresh folder, kills it (SIGKILL, the whole process group) at an instant drawn
uniformly from [0, T), re-runs the same command to the end, and checks that
- the record equals the reference apart from timings (`created_at`, `training.wall_time_s`),
- the training log has each step once, in order,
- no temporary file is left anywhere under the trial's folder (`*.tmp*`, owner-tagged names, `.build-`, `_work`).

Usage: python benchmarks/kill_resume.py [--trials 10] [--seed 0] [--subset FILE] [--dir DIR]
Prints one line per trial and `N/N records equal`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _start(cwd: Path, subset: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "submit", "--track", "debug", str(subset), "--name", "kill test"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def _finish(cwd: Path, subset: Path) -> None:
    proc = _start(cwd, subset)
    out, _ = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"submit failed in {cwd}:\n{out[-3000:]}")


def record_of(cwd: Path) -> dict:
    (path,) = (cwd / "results" / "debug").glob("*.json")
    return json.loads(path.read_text())


def comparable(record: dict) -> dict:
    record = json.loads(json.dumps(record))
    record.pop("created_at")
    record["training"].pop("wall_time_s")
    return record


def leftovers(cwd: Path) -> list[str]:
    bad = []
    for path in cwd.rglob("*"):
        name = path.name
        if ".tmp" in name or "~" in name or ".build-" in name or ".old-" in name or name in ("_work", "buckets"):
            bad.append(str(path.relative_to(cwd)))
    return bad


def log_steps_ok(cwd: Path) -> bool:
    (log,) = cwd.glob("runs/debug/*/train/train_log.jsonl")
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    return steps == sorted(set(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=Path, default=None, help="default: examples/random_sample.py's output")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="kill-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    subset = args.subset or work / "random.jsonl"
    if not subset.exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / "random_sample.py"), "--track", "debug", "--out",
                        str(subset)], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    reference = work / "reference"
    reference.mkdir(exist_ok=True)
    started = time.monotonic()
    _finish(reference, subset)
    duration = time.monotonic() - started
    expected = comparable(record_of(reference))
    print(f"reference submit: {duration:.1f} s; killing at uniform instants in [0, {duration:.1f}) s, seed {args.seed}")
    rng = random.Random(args.seed)
    equal = 0
    for trial in range(args.trials):
        cwd = work / f"trial-{trial}"
        cwd.mkdir(exist_ok=True)
        instant = rng.uniform(0, duration)
        proc = _start(cwd, subset)
        try:
            proc.wait(timeout=instant)
            killed = "ended before the kill"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the submit and any worker it started
            proc.wait()
            stages = sorted(p.parent.name for p in cwd.glob("runs/debug/*/*/_COMPLETE.json"))
            killed = f"killed after stages {stages or 'none'}"
        _finish(cwd, subset)
        same = comparable(record_of(cwd)) == expected
        left = leftovers(cwd)
        steps = log_steps_ok(cwd)
        equal += same and not left and steps
        print(f"trial {trial}: kill at {instant:5.1f} s, {killed}: record {'equal' if same else 'DIFFERENT'}, "
              f"log steps {'ok' if steps else 'REPEATED'}, leftovers {left or 'none'}", flush=True)  # fmt: skip
    print(f"{equal}/{args.trials} records equal to the uninterrupted one, with no leftovers ({work})")


if __name__ == "__main__":
    main()
