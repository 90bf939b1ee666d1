"""What the contamination check adds to `harness validate`: CPU seconds of validate with the check over validate
without it (`--no-contamination`), on one id-only subset of the sandbox pool, measured in one run.

The reference is validate without the check; the target is a ratio of at most about 3 (the check costing at
most about 2x the rest). Three fresh processes, each timing only the call (`time.process_time`, so a busy second
core does not count): without the check; with it on a cold cache (the pool's contamination cache removed
first: each pool document of the subset is read and checked once); with it again (warm: the pool documents are
looked up). The subset is `--lines` distinct pool documents in random order (the sandbox pool has 280,000).

Usage: python benchmarks/decontam_validate_bench.py [--lines 200000] [--track debug]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def phase(track: str, subset: str, check: bool) -> dict:
    import time

    from harness.pools import ensure_pool
    from harness.submit.decontam_subset import validate_and_check
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    t = get_track(track)
    pool, tokenizer = ensure_pool(t.pool), load_tokenizer(t.tokenizer)
    if check:
        from harness.submit.decontam import track_index

        track_index(t)  # warm lm-eval's imports and the suite's files; the index is built again inside the call
    started = time.process_time()
    report, contamination = validate_and_check(t, subset, check=check, pool=pool, tokenizer=tokenizer)
    seconds = time.process_time() - started
    assert report.ok, report.problems
    found = contamination.contaminated_documents if contamination else None
    return {"seconds": seconds, "lines": report.stats.lines, "contaminated": found}


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--track", default="debug")
    parser.add_argument("--phase", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        track, subset, check = args.phase
        print(json.dumps(phase(track, subset, check == "check")))
        return
    import numpy as np

    from harness.pools import ensure_pool
    from harness.tracks import get_track

    pool = ensure_pool(get_track(args.track).pool)
    rows = np.random.default_rng(0).permutation(len(pool))[: args.lines]
    with tempfile.TemporaryDirectory(prefix="decontam-validate-bench-") as tmp:
        subset = Path(tmp) / "subset.jsonl"
        subset.write_text("".join(json.dumps({"id": pool.id_of_row(int(r))}) + "\n" for r in rows))
        plain = child(args.track, str(subset), "plain")
        shutil.rmtree(pool.index.directory / "contamination", ignore_errors=True)
        cold = child(args.track, str(subset), "check")
        warm = child(args.track, str(subset), "check")
    print(f"validate of {plain['lines']:,} id-only lines of pool {pool.id} (CPU seconds of one process):")
    print(f"  without the check      : {plain['seconds']:6.2f} s")
    print(f"  with it, cold cache    : {cold['seconds']:6.2f} s = {cold['seconds'] / plain['seconds']:.2f}x "
          f"({cold['contaminated']} contaminated documents; each pool document read and checked once)")  # fmt: skip
    print(f"  with it, warm cache    : {warm['seconds']:6.2f} s = {warm['seconds'] / plain['seconds']:.2f}x "
          f"({warm['contaminated']} contaminated documents) (target <= ~3x: the check <= 2x the rest)")  # fmt: skip


if __name__ == "__main__":
    main()
