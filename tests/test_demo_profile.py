"""benchmarks/demo_profile.py: the demo's time per kind of work, from timings.json and the stage markers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "demo_profile.py"


def _load():
    spec = importlib.util.spec_from_file_location("demo_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_demo(root: Path, train_s: float) -> Path:
    demo = root / "demo"
    baselines = {}
    for key in ("random", "dedup"):
        run = demo / "runs" / "nano" / f"nano-{key}"
        for stage, seconds in (("validate", 2.0), ("tokenize", 1.5), ("train", train_s), ("evaluate", 5.0),
                               ("record", 0.5), ("replicate-125/train", 1000.0)):  # fmt: skip
            (run / stage).mkdir(parents=True, exist_ok=True)
            (run / stage / "_COMPLETE.json").write_text(json.dumps({"stage": stage, "seconds": seconds}))
        baselines[key] = {"subset_s": 0.0 if key == "random" else 100.0, "subset_reused": False,
                          "submit_s": train_s + 1009.0 + 3.0, "run_dir": str(run)}  # fmt: skip
    total = 30.0 + 2 * (train_s + 1012.0) + 100.0 + 4.0
    timings = {"track": "nano", "pool_s": 30.0, "baselines": baselines, "total_s": total}
    (demo / "timings.json").write_text(json.dumps(timings))
    return demo


def test_rows_add_up_and_replicates_count_in_their_stage(tmp_path: Path) -> None:
    dp = _load()
    rows, total = dp.profile(_fake_demo(tmp_path, train_s=100.0))
    seconds = dict(rows)
    assert seconds["random: train"] == 1100.0  # the final run's and the replicate's training
    assert seconds["dedup: curation (scores, select)"] == 100.0
    assert seconds["random: submit, other"] == 3.0
    assert abs(sum(seconds.values()) - total) < 1e-6 and seconds["leaderboard and the rest"] == 4.0
    assert next(iter(dp.kinds(rows))) == "train"  # the largest kind first


def test_target_line_and_breakdown_when_missed(tmp_path: Path) -> None:
    demo = _fake_demo(tmp_path, train_s=100.0)
    done = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(demo)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "target: the demo under 8 minutes: missed (" in done.stdout
    assert "where the time goes" in done.stdout


def test_missing_timings_is_one_message(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "run `harness demo" in done.stderr and "Traceback" not in done.stderr
