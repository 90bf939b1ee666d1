"""Validation and pool-indexing throughput (prints figures; not a timed test).

    python benchmarks/validate_bench.py [--pool-docs 2000000] [--subset-lines 1000000] [--index-docs 200000]

Validation: an id-only subset against a synthesized index of a pool (the index arrays are written directly,
no shard data is needed for id-only lines), compared with merely reading and parsing the same file with the
json module, the ratio to beat being 2x. Indexing: synthesized gzip shards of DCLM-like lines (ids = sha256 of
the raw line), at two pool sizes, to show that peak memory follows the index arrays, not the data.
Each phase runs in a fresh process so that its peak RSS is its own. Single process = figures per core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_mib() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it is not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_index(directory: Path, n: int) -> None:
    """Index arrays of a pool of `n` documents with random ids (what `harness pool index` would write)."""
    from harness.pools.index import COLUMNS
    from harness.tracks import get_track

    rng = np.random.default_rng(0)
    hi = np.sort(rng.integers(0, 2**63, n, dtype=np.uint64) * 2)
    columns = {"hi": hi, "lo": rng.integers(0, 2**63, n, dtype=np.uint64), "shard": np.zeros(n),
               "offset": np.arange(n) * 600, "length": np.full(n, 599), "line": np.arange(n)}  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    for name, dtype in COLUMNS.items():
        np.save(directory / f"{name}.npy", columns[name].astype(dtype))
    np.save(directory / "tokens.npy", rng.integers(50, 2000, n).astype(np.uint32))
    tok = get_track("nano").tokenizer
    meta = {
        "documents": n,
        "shards": [{"url": "unused.jsonl.gz"}],
        "tokenizer": {"name": tok.name, "sha256": tok.sha256},
    }
    (directory / "meta.json").write_text(json.dumps(meta))


def make_subset(path: Path, index_dir: Path, lines: int) -> None:
    hi, lo = np.load(index_dir / "hi.npy"), np.load(index_dir / "lo.npy")
    rows = np.random.default_rng(1).choice(len(hi), lines, replace=False)
    with open(path, "w") as fh:
        for h, low in zip(hi[rows].tolist(), lo[rows].tolist(), strict=True):
            fh.write(f'{{"id": "{h:016x}{low:016x}"}}\n')


def phase_parse(subset: Path) -> dict:
    start = time.perf_counter()
    n = 0
    loads = json.loads
    with open(subset, "rb") as fh:
        for raw in fh:
            loads(raw.decode("utf-8"))
            n += 1
    return {"lines": n, "seconds": time.perf_counter() - start, "peak_mib": peak_mib()}


def phase_validate(subset: Path, index_dir: Path) -> dict:
    from harness.pools import MembershipIndex, Pool, PoolSpec, ShardSpec
    from harness.submit.validate import validate_subset
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    track = get_track("nano")
    spec = PoolSpec(id="bench", version=1, description="b", source="shards", id_scheme="field",
                    shards=(ShardSpec(path="unused.jsonl.gz"),))  # fmt: skip
    pool = Pool(spec, MembershipIndex(index_dir))
    tokenizer = load_tokenizer(track.tokenizer)
    start = time.perf_counter()
    report = validate_subset(track, subset, pool=pool, tokenizer=tokenizer)
    seconds = time.perf_counter() - start
    assert report.ok and report.stats.tokens, report.problems
    return {"lines": report.stats.lines, "seconds": seconds, "peak_mib": peak_mib()}


def make_shards(root: Path, docs: int, per_shard: int = 50_000) -> None:
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(5000)]
    root.mkdir(parents=True, exist_ok=True)
    for s in range(0, docs, per_shard):
        lines = []
        for i in range(s, min(docs, s + per_shard)):
            text = " ".join(words[j] for j in rng.integers(0, 5000, 80))
            lines.append(json.dumps({"text": text, "url": f"https://site/{i}", "date": "2024-01-01"}))
        (root / f"shard-{s // per_shard:05d}.jsonl.gz").write_bytes(
            gzip.compress(("\n".join(lines) + "\n").encode(), 1)
        )


def phase_index(root: Path, home: Path) -> dict:
    os.environ["HARNESS_HOME"] = str(home)
    from harness.pools import PoolSpec, ShardSpec, index_pool

    shards = tuple(ShardSpec(path=p.name) for p in sorted(root.glob("*.jsonl.gz")))
    spec = PoolSpec(id=f"bench-{root.name}", version=1, description="b", source="shards", id_scheme="sha256-line",
                    root=str(root), shards=shards)  # fmt: skip
    start = time.perf_counter()
    pool = index_pool(spec, workers=1, tokens=False)
    return {"documents": len(pool), "seconds": time.perf_counter() - start, "peak_mib": peak_mib()}


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-docs", type=int, default=2_000_000)
    parser.add_argument("--subset-lines", type=int, default=1_000_000)
    parser.add_argument("--index-docs", type=int, default=200_000)
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        fn = {"parse": phase_parse, "validate": phase_validate, "index": phase_index}[name]
        print(json.dumps(fn(*map(Path, rest))))
        return
    with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
        work = Path(tmp)
        make_index(work / "index", args.pool_docs)
        make_subset(work / "subset.jsonl", work / "index", args.subset_lines)
        parse = child("parse", str(work / "subset.jsonl"))
        valid = child("validate", str(work / "subset.jsonl"), str(work / "index"))
        print(f"validation of {valid['lines']:,} id-only lines against a {args.pool_docs:,}-document index:")
        print(
            f"  json parse only : {parse['lines'] / parse['seconds']:>10,.0f} lines/s  peak {parse['peak_mib']:.0f} MiB"
        )
        print(
            f"  validate        : {valid['lines'] / valid['seconds']:>10,.0f} lines/s  peak {valid['peak_mib']:.0f} MiB"
        )
        print(f"  ratio validate/parse time: {valid['seconds'] / parse['seconds']:.2f}x (target <= 2x)")
        for docs in (args.index_docs // 2, args.index_docs):
            make_shards(work / f"shards-{docs}", docs)
            res = child("index", str(work / f"shards-{docs}"), str(work / "home"))
            print(f"indexing {res['documents']:,} documents (1 worker): {res['documents'] / res['seconds']:,.0f} docs/s, "
                  f"peak {res['peak_mib']:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
