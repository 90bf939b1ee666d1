"""Write a `harness score`-shaped Parquet file whose score is the sandbox's hidden quality label (1 for clean
documents, 0 otherwise, plus a seeded jitter below 0.1 that orders documents within a class).

It is a check of the instrument, never a curation: it shows what a perfect quality filter does to the
quality/repetition trade-off, so the compute-aware experiments can be run before a real scorer (issue 11's
`harness score`) is available. Labels are read from the pool's hidden labels, which submissions never see.

    python experiments/oracle_scores.py --out scores/sandbox-oracle
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.pools import ensure_pool
from harness.pools.ids import u64_to_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write part-00000.parquet into")
    parser.add_argument("--pool", default="sandbox")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pool = ensure_pool(args.pool)
    index = pool.index
    clean = index.classes.index("clean")
    score = (np.asarray(index.labels) == clean) + np.random.default_rng(args.seed).random(len(pool)) * 0.1
    ids = [u64_to_id(h, lo) for h, lo in zip(index.hi, index.lo, strict=True)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids, "oracle": score}), out / "part-00000.parquet")
    print(f"wrote {len(ids):,} scores to {out / 'part-00000.parquet'}")


if __name__ == "__main__":
    main()
