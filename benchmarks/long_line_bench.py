"""Peak memory and CPU time of `harness validate` on a subset holding one very long line (default 50 MB).

Two subsets of two lines each: a pool id, then the next pool id with a `text` of N MB (words with spaces, and
one run of a single character with a 1 MB unknown field). Each is validated in a fresh process; the figures are
that process's peak resident memory and CPU seconds (user + system), so other jobs on the machine do not count.
The reference is the line itself: memory should stay a small multiple of it (the acceptance: under 500 MB).

Usage: python benchmarks/long_line_bench.py [--mb 50] [--track debug]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--track", default="debug")
    args = parser.parse_args()
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    pool = ensure_pool(get_track(args.track).pool)
    ids = [pool.id_of_row(row) for row in range(2)]
    size = args.mb << 20
    texts = {
        "words": ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size],
        "one run + 1 MB unknown field": "x" * size,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in texts.items():
            path = Path(tmp) / "long.jsonl"
            extra = {"zzz": "y" * (1 << 20)} if "unknown" in name else {}
            path.write_text(
                json.dumps({"id": ids[0]}) + "\n" + json.dumps({"id": ids[1], "text": text, **extra}) + "\n"
            )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "harness", "validate", "--track", args.track, str(path)],
                env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            verdict = "not-a-deletion" in proc.stdout and proc.returncode == 1
            print(f"{args.mb} MB line ({name}): exit {proc.returncode} ({'refused as expected' if verdict else 'UNEXPECTED'}), "
                  f"peak memory {after.ru_maxrss / 1024:.0f} MB ({after.ru_maxrss / 1024 / args.mb:.1f}x the line), "
                  f"{cpu:.1f} s CPU, {wall:.1f} s wall")  # fmt: skip


if __name__ == "__main__":
    main()
