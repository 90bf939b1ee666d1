"""The curation baseline ladder: run the seven example curations on a track, submit each, print the table.

    python examples/ladder.py --track nano --out ladder/ [--workers 2] [--seed 0] [--replicates 3]

Each row is an example script of this folder, run as a participant would (its subset in <out>/subsets/), then
`harness submit` (runs and records in <out>/runs, <out>/results; re-running resumes and reuses finished work).
The table gives the score and, per hidden quality class of the sandbox, the share of the pool's documents of
that class that the subset kept, and on a pool whose labels grade the clean class (sandbox v5, `--track nano-v5`)
the mean quality q of the clean documents it kept (the pool's clean class averages 0.5). Only this report reads the
labels file; no curation script does.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

LADDER = (
    ("random", "random_sample.py", "Random sample"),
    ("dedup", "dedup.py", "Exact + MinHash dedup (datatrove)"),
    ("heuristics", "quality_filter.py", "Dedup + heuristics (datatrove Gopher, C4, FineWeb)"),
    ("classifier", "classifier.py", "fastText classifier top 10% (DCLM recipe)"),
    ("information", "information_pruning.py", "Information pruning (reference-model bits/byte, drop lowest 50%)"),
    ("compression", "compression_pruning.py", "Compression pruning (zstd ratio, drop lowest 50%)"),
    ("dedup_classifier", "dedup_classifier.py", "Dedup + fastText classifier top 10%"),
)


def class_shares(labels: Path, subset: Path) -> dict[str, float]:
    """Per class: documents of that class in the subset / documents of that class in the pool."""
    pool_class: dict[str, str] = {}
    with gzip.open(labels, "rt") as fh:
        for line in fh:
            item = json.loads(line)
            pool_class[item["id"]] = item["class"]
    totals = Counter(pool_class.values())
    kept = Counter(pool_class[json.loads(line)["id"]] for line in subset.read_text().splitlines() if line.strip())
    return {c: kept[c] / n for c, n in sorted(totals.items())}


def clean_quality(labels: Path, subset: Path) -> float | None:
    """Mean graded quality q of the clean documents the subset kept; None when the labels carry no q."""
    quality: dict[str, float] = {}
    with gzip.open(labels, "rt") as fh:
        for line in fh:
            item = json.loads(line)
            if item["class"] == "clean" and "q" in item:
                quality[item["id"]] = item["q"]
    kept = [
        quality[i]
        for line in subset.read_text().splitlines()
        if line.strip() and (i := json.loads(line)["id"]) in quality
    ]
    return sum(kept) / len(kept) if kept else None


def markdown(table: list[dict]) -> str:
    classes = sorted({c for r in table for c in r["class_shares"]})
    graded = any(r.get("clean_q") is not None for r in table)
    head = "| baseline | score | " + " | ".join(classes) + (" | clean q |" if graded else " |")
    lines = [head, "|---|---:|" + "---:|" * (len(classes) + graded)]
    for r in table:
        value = r["primary"].get("value")
        score = "absent" if value is None else f"{value:.4f}"
        spread = ((r.get("replicates") or {}).get("aggregates") or {}).get(r["primary"]["name"])
        if spread and spread.get("std") is not None:  # the replicates' mean +- s.d. (n seeds)
            score = f"{spread['mean']:.4f} ± {spread['std']:.4f} ({spread['n']} seeds)"
        cells = " | ".join(f"{r['class_shares'].get(c, 0):.1%}" for c in classes)
        if graded:
            cells += " | " + ("-" if r.get("clean_q") is None else f"{r['clean_q']:.3f}")
        lines.append(f"| {r['name']} (`{r['key']}`) | {score} | {cells} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="nano")
    parser.add_argument("--out", default="ladder")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replicates", type=int, default=1, help="train each row with the track's first K seeds")
    parser.add_argument("--only", action="append", default=[], help="run only these rows (keys), repeatable")
    parser.add_argument("--table", action="store_true", help="only print the table of the rows run so far")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads((Path(args.out) / "ladder.json").read_text())))
        return 0
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    pool = ensure_pool(get_track(args.track).pool)
    root, here = Path(args.out), Path(__file__).parent
    rows = []
    for key, script, name in LADDER:
        if args.only and key not in args.only:
            continue
        subset = root / "subsets" / f"{key}.jsonl"
        started = time.monotonic()
        if not subset.is_file():
            subset.parent.mkdir(parents=True, exist_ok=True)
            tmp = subset.with_name(f".{subset.name}.tmp")
            cmd = [
                sys.executable,
                str(here / script),
                "--track",
                args.track,
                "--out",
                str(tmp),
                "--seed",
                str(args.seed),
            ]
            if script != "random_sample.py":
                cmd += ["--workers", str(args.workers)]
            subprocess.run(cmd, check=True)
            tmp.replace(subset)
        curate = time.monotonic() - started
        submit = [sys.executable, "-m", "harness", "submit", "--track", args.track, str(subset), "--name", name,
                  "--run-dir", str(root / "runs"), "--results", str(root / "results"), "--json",
                  "--replicates", str(args.replicates)]  # fmt: skip
        record = json.loads(subprocess.run(submit, check=True, capture_output=True, text=True).stdout)
        evaluation = record["evaluation"]
        primary = {"name": evaluation["primary_aggregate"], **evaluation["aggregates"][evaluation["primary_aggregate"]]}
        shares, quality = class_shares(pool.labels_path, subset), clean_quality(pool.labels_path, subset)
        rows.append((key, name, primary, shares, quality, curate, record))
        print(f"{key}: {primary['name']} {primary['value']} (curation {curate:.0f} s)", file=sys.stderr, flush=True)
    out = root / "ladder.json"
    done = {r["key"]: r for r in json.loads(out.read_text())} if out.is_file() else {}
    for key, name, primary, shares, quality, seconds, record in rows:
        done[key] = {"key": key, "name": name, "primary": primary, "class_shares": shares, "clean_q": quality,
                     "curation_seconds": seconds, "tasks": record["evaluation"]["tasks"],
                     "replicates": record.get("replicates")}  # fmt: skip
    order = [key for key, _, _ in LADDER]
    table = sorted(done.values(), key=lambda r: order.index(r["key"]))
    out.write_text(json.dumps(table, indent=2) + "\n")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
