"""What the contamination check adds to `harness validate`: CPU seconds of validate with the check over validate
without it (`--no-contamination`), on one id-only subset of the sandbox pool, measured in one run.

The reference is validate without the check; the target is a ratio of at most about 3 (the check costing at
most about 2x the rest). Fresh processes, each timing only the call (`time.process_time`, so a busy second core
does not count): validate without the check; the pool's contamination index built as the pool's build does it
(its cache removed first: every pool document read and checked once, a one-time cost of the pool, printed with
its rate); validate with the check (the pool documents looked up); and, for a pool whose index was not built (a
DCLM pool indexed without `--contamination`), validate with the check filling the cache for the subset's
documents only. The subset is `--lines` distinct pool documents in random order (the sandbox pool has 280,000).

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


def phase(track: str, subset: str, mode: str) -> dict:
    import time

    from harness.pools import ensure_pool
    from harness.submit import decontam_subset
    from harness.submit.decontam_subset import prefill_pool, validate_and_check
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    t = get_track(track)
    pool, tokenizer = ensure_pool(t.pool), load_tokenizer(t.tokenizer)
    if mode != "plain":
        from harness.submit.decontam import track_index

        track_index(t)  # warm lm-eval's imports and the suite's files; the index is built again inside the call
    if mode == "build":
        started = time.process_time()
        checked = prefill_pool(pool, t)
        return {"seconds": time.process_time() - started, "documents": checked}
    if mode == "unbuilt":  # a pool whose contamination index was not built: fill for the subset's rows only
        decontam_subset._Cache.fill_pool = lambda self, *a, **k: 0  # type: ignore[method-assign]
    started = time.process_time()
    report, contamination = validate_and_check(t, subset, check=mode != "plain", pool=pool, tokenizer=tokenizer)
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
        track, subset, mode = args.phase
        print(json.dumps(phase(track, subset, mode)))
        return
    import numpy as np

    from harness.pools import ensure_pool
    from harness.tracks import get_track

    pool = ensure_pool(get_track(args.track).pool)
    rows = np.random.default_rng(0).permutation(len(pool))[: args.lines]
    with tempfile.TemporaryDirectory(prefix="decontam-validate-bench-") as tmp:
        subset = Path(tmp) / "subset.jsonl"
        subset.write_text("".join(json.dumps({"id": pool.id_of_row(int(r))}) + "\n" for r in rows))
        cache = pool.index.directory / "contamination"
        plain = child(args.track, str(subset), "plain")
        shutil.rmtree(cache, ignore_errors=True)
        unbuilt = child(args.track, str(subset), "unbuilt")
        shutil.rmtree(cache, ignore_errors=True)
        build = child(args.track, str(subset), "build")
        built = child(args.track, str(subset), "check")
    base = plain["seconds"]
    print(f"validate of {plain['lines']:,} id-only lines of pool {pool.id} (CPU seconds of one process):")
    print(f"  without the check               : {base:6.2f} s")
    print(f"  with it, pool's index built      : {built['seconds']:6.2f} s = {built['seconds'] / base:.2f}x "
          f"({built['contaminated']} contaminated documents) (target <= ~3x: the check <= 2x the rest)")  # fmt: skip
    print(f"  with it, pool's index not built  : {unbuilt['seconds']:6.2f} s = {unbuilt['seconds'] / base:.2f}x "
          f"({unbuilt['contaminated']} contaminated documents; the subset's pool documents read and checked)")  # fmt: skip
    print(f"  building the pool's index (once) : {build['seconds']:6.2f} s for {build['documents']:,} documents "
          f"({build['documents'] / max(build['seconds'], 1e-9):,.0f} documents/s)")  # fmt: skip


if __name__ == "__main__":
    main()
