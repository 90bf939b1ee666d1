"""Decontamination throughput (MB/s of subset text) against reading the same files (the limit), and peak memory of
the scan at two subset sizes (it must not grow with the subset).

The subset is the sandbox pool's own shards (its leaked documents included), checked against the sandbox suite's
items: `--small` shards, then `--large` shards. Reading = gzip + JSON parse of every line (what the check must do
anyway); the check = reading + normalising + hashing + looking up n-grams. Times are CPU seconds of this process
(`time.process_time`), so a busy second core does not skew them much, the fastest of `--repeat` alternated runs
of each; run it under the shared CPU lock. Peak memory is tracemalloc's peak of Python and numpy allocations
during another scan (the suite's index is built before; tracemalloc slows allocation, so the timed scans run
without it).

It also prints where the check's CPU time goes, measured inside the timed check (`Scanner.timings`): reading
(gzip + JSON parse), the word pass (normalising and hashing words), the n-gram windows (their hashes and the
prefix-bit table), the lookups and the coverage test, and the rest (batching, byte counts, the report); then the
target of issue 27, the check at >= 0.5x the read rate, as met or missed on the large subset. And, from the pool's
hidden labels, how many of the flagged documents are the sandbox's leaked ones.
Usage: python benchmarks/decontam_bench.py [--small 2] [--large 24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import time
import tracemalloc


def _read(paths: list[str]) -> tuple[int, int]:
    """Documents and UTF-8 bytes of text, read in the check's batches and its byte count (no Python step per
    document that the check does not take, so the limit is not slowed down)."""
    from harness.submit.decontam import BATCH_DOCUMENTS, iter_jsonl_documents

    docs = nbytes = 0
    stream = iter_jsonl_documents(paths)
    while batch := list(itertools.islice(stream, BATCH_DOCUMENTS)):
        docs += len(batch)
        nbytes += sum(len(text) if text.isascii() else len(text.encode("utf-8")) for _, text in batch)
    return docs, nbytes


TARGET = 0.5  # issue 27: the check at >= 0.5x the rate of reading the same files
PHASES = {"read": "read/parse", "words": "word pass", "windows": "n-gram windows", "lookups": "lookups/coverage"}


def _check(paths: list[str], suite: str, index) -> tuple[object, float, dict[str, float]]:
    """The check timed on its own, with its phases."""
    from harness.submit.decontam import iter_jsonl_documents, scan_documents

    timings: dict[str, float] = {}
    started = time.process_time()
    report = scan_documents(iter_jsonl_documents(paths), suite, index, timings=timings)
    return report, time.process_time() - started, timings


def _peak(paths: list[str], suite: str, index) -> int:
    """The check's peak of traced memory (tracemalloc slows it down, so it is not the timed run), its work arrays
    kept between batches included (given back first, so that the scan allocates them under the trace)."""
    from harness.submit.decontam import iter_jsonl_documents, scan_documents
    from harness.submit.decontam_hash import release_scratch

    release_scratch()
    tracemalloc.start()
    scan_documents(iter_jsonl_documents(paths), suite, index)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _shares(seconds: float, timings: dict[str, float]) -> str:
    shares = {label: timings.get(key, 0.0) / seconds for key, label in PHASES.items()}
    shares["other"] = 1 - sum(shares.values())
    return ", ".join(f"{k} {v:.0%}" for k, v in shares.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2, help="shards in the small subset (default 2)")
    parser.add_argument("--large", type=int, default=8, help="shards in the large subset (default 8)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each, the fastest kept (default 5)")
    args = parser.parse_args()

    from harness.pools import ensure_pool
    from harness.submit.decontam import iter_jsonl_documents, track_index
    from harness.tracks import get_track

    pool = ensure_pool("sandbox")
    with gzip.open(pool.spec.home / "labels.jsonl.gz", "rt") as fh:
        leaked = {lab["id"] for lab in map(json.loads, fh) if lab["class"] == "leaked"}
    shards = sorted(str(p) for p in (pool.spec.home / "shards").glob("*.jsonl.gz"))
    started = time.process_time()
    suite, index = track_index(get_track("nano"))
    print(f"suite index: {len(index.items)} items, {sum(len(t.grams) for t in index.tables.values()):,} distinct "
          f"n-grams, built in {time.process_time() - started:.1f} CPU s")  # fmt: skip
    for n in (args.small, args.large):
        paths = shards[:n]
        read_s = check_s = float("inf")
        for _ in range(args.repeat):  # alternated, so that a change of the machine's load hits both
            started = time.process_time()
            docs, nbytes = _read(paths)
            read_s = min(read_s, time.process_time() - started)
            report, seconds, run_timings = _check(paths, suite, index)
            if seconds < check_s:
                check_s, timings = seconds, run_timings
        peak = _peak(paths, suite, index)
        mb = nbytes / 1e6
        flagged = set(report.contaminated_document_ids)  # type: ignore[attr-defined]
        ids = {doc_id for doc_id, _ in iter_jsonl_documents(paths)}
        leaked_here = leaked & ids
        print(f"  labels: {len(leaked_here)} leaked documents in these shards; flagged {len(flagged)}, of which "
              f"{len(flagged & leaked_here)} leaked and {len(flagged - leaked_here)} not")  # fmt: skip
        print(
            f"{n} shards: {docs:,} documents, {mb:.1f} MB of text | read {mb / read_s:.1f} MB/s | check "
            f"{mb / check_s:.1f} MB/s = {read_s / check_s:.2f}x the reading limit | peak memory of the scan "
            f"{peak / 2**20:.1f} MiB | {report.contaminated_documents} contaminated documents, "  # type: ignore[attr-defined]
            f"{report.contaminated_items} items"  # type: ignore[attr-defined]
        )
        print(f"  where the check's CPU time goes: {_shares(check_s, timings)}")
        ratio = read_s / check_s
    if ratio >= TARGET:
        print(f"target >= {TARGET}x the read rate: met ({ratio:.2f}x, {args.large} shards)")
    else:  # the figure to 3 places (0.50x can be a miss), and where the time beyond reading goes
        print(f"target >= {TARGET}x the read rate: missed ({ratio:.2f}x = {ratio:.3f}, {args.large} shards; the "
              f"check's CPU time: {_shares(check_s, timings)})")  # fmt: skip


if __name__ == "__main__":
    main()
