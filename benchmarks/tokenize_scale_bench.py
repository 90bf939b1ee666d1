"""Tokenize + shuffle on datatrove's executors: throughput against workers, peak memory per worker against data
size, and the projected wall time of the DCLM tracks on N nodes.

    python benchmarks/tokenize_scale_bench.py --sizes 64 256 --workers 1 2 [--executor ray --ray-address H:P]

For each size (MB of UTF-8 text; keep them at least 4x apart) it writes synthetic English-like documents
(benchmarks/tokenize_bench.py's corpus) into `--files` JSONL files, then runs harness.data.staged_run's
`tokenize_staged` (GPT-NeoX-20B, context 2048, 8192 sequences per shard, as DCLM) in a child process for each
worker count, and reports:

- throughput: MB of text and tokens per second, per worker (wall), and tokens per CPU-second of the whole process
  tree (robust to a busy machine);
- memory: the peak RSS of the largest single process of the tree (a worker; with one local worker the tasks run
  in the child itself) and of the whole tree, sampled from /proc every 0.1 s;
- projection: tokens / (tokens per CPU-second x cores) for 412m and 7b-2x on 1, 8 and 64 nodes of
  `--cores-per-node` cores, assuming one task per core, linear scaling (compare the 1- and 2-worker rates) and
  storage that keeps up (the work folder on a shared file system or object store).

The machine's load average is printed with each row: on a shared machine the wall figures are noisy; time it on an
idle machine for the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tokenize_bench import neox_path, tree_rss, write_corpus

NODES = (1, 8, 64)


def largest_process_rss(pid: int) -> int:
    """Resident bytes of the largest single process among `pid` and its descendants."""
    page = os.sysconf("SC_PAGE_SIZE")
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * page
        except (OSError, IndexError, ValueError):
            continue
    best, stack = 0, [pid]
    while stack:
        p = stack.pop()
        best = max(best, rss.get(p, 0))
        stack.extend(children.get(p, []))
    return best


def split_corpus(corpus: Path, folder: Path, files: int) -> list[str]:
    """The corpus' lines dealt into `files` files of consecutive lines (about equal sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    total = corpus.stat().st_size
    paths, written, index = [], 0, 0
    out = None
    with open(corpus, "rb") as src:
        for line in src:
            if out is None or (written >= total * (index / files) and index < files):
                if out is not None:
                    out.close()
                paths.append(str(folder / f"part-{index:04d}.jsonl"))
                out = open(paths[-1], "wb")  # noqa: SIM115 - closed on the next file or below
                index += 1
            out.write(line)
            written += len(line)
    if out is not None:
        out.close()
    return paths


def run_staged(inputs: list[str], out: Path, workers: int, executor: str, ray_address: str) -> dict[str, float]:
    """tokenize_staged in a child process; wall time, CPU time of the tree, peak RSS (largest process, tree)."""
    code = (
        "import sys, json; from harness.data.staged_run import tokenize_staged; from harness.tracks import TokenizerSpec;"
        "from harness.scores.run import ExecutorOptions, connect_ray;"
        "spec = TokenizerSpec(name='EleutherAI/gpt-neox-20b', source='hub', eot_id=0, pad_id=50256);"
        f"ex = ExecutorOptions({executor!r}, {workers});"
        f"connect_ray({ray_address!r}) if ex.kind == 'ray' else None;"
        f"s = tokenize_staged(json.loads(sys.argv[1]), {str(out)!r}, tokenizer_spec=spec, context=2048, seed=124,"
        f" executor=ex, tokenizer_path={neox_path()!r}); print(s.tokens, s.text_tokens, s.sequences, s.shards)"
    )
    start, peak_one, peak_tree = time.perf_counter(), 0, 0
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(inputs)], stdout=subprocess.PIPE, text=True)
    while True:  # wait4 reports the CPU time of the child and of every descendant it waited for (its workers)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak_one = max(peak_one, largest_process_rss(proc.pid))
        peak_tree = max(peak_tree, tree_rss(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"tokenize_staged failed with status {status}")
    tokens, text_tokens, sequences, shards = map(int, proc.stdout.read().split())  # type: ignore[union-attr]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_worker_rss_mb": peak_one / 1e6,
            "peak_tree_rss_mb": peak_tree / 1e6, "tokens": tokens, "text_tokens": text_tokens,
            "sequences": sequences, "shards": shards}  # fmt: skip


def projection(tokens_per_cpu_s: float, cores_per_node: int) -> list[dict[str, float]]:
    """Wall hours of tokenizing each DCLM track's token budget on 1, 8 and 64 nodes at the measured per-core rate."""
    from harness.tracks import get_track

    rows = []
    for name in ("412m", "7b-2x"):
        tokens = get_track(name).tokens
        for nodes in NODES:
            hours = tokens / (tokens_per_cpu_s * nodes * cores_per_node) / 3600
            rows.append({"track": name, "tokens": tokens, "nodes": nodes, "cores": nodes * cores_per_node,
                         "wall_hours": hours})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[64, 256], help="MB of text per run (>= 4x apart)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--files", type=int, default=8, help="input files per size (tasks of the first stages)")
    parser.add_argument("--executor", default="local", help="local (datatrove's, default) or ray")
    parser.add_argument("--ray-address", default="", help="ray: the cluster to join")
    parser.add_argument("--cores-per-node", type=int, default=64, help="cores per node of the projection")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="tokenize-scale-"))
    results: list[dict[str, object]] = []
    try:
        for size in args.sizes:
            corpus = scratch / f"corpus-{size:g}MB.jsonl"
            text_mb = write_corpus(corpus, size) / 1e6
            inputs = split_corpus(corpus, scratch / f"in-{size:g}", args.files)
            corpus.unlink()
            for workers in args.workers:
                load_before = os.getloadavg()[0]
                run = run_staged(inputs, scratch / f"out-{size:g}-{workers}", workers, args.executor, args.ray_address)
                row = {"text_mb": text_mb, "workers": workers, "executor": args.executor, **run,
                       "mb_s_per_worker": text_mb / run["wall_s"] / workers,
                       "tokens_s_per_worker": run["text_tokens"] / run["wall_s"] / workers,
                       "tokens_per_cpu_s": run["text_tokens"] / run["cpu_s"],
                       "load_before": load_before, "load_after": os.getloadavg()[0], "cpus": os.cpu_count()}  # fmt: skip
                results.append(row)
                print(json.dumps(row), flush=True)
                shutil.rmtree(scratch / f"out-{size:g}-{workers}")
            shutil.rmtree(scratch / f"in-{size:g}")
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    rate = max(float(r["tokens_per_cpu_s"]) for r in results)  # type: ignore[arg-type]
    print(f"\nper-core rate: {rate:,.0f} tokens per CPU-second (the best row; text tokens)")
    by_size = {}
    for r in results:
        by_size.setdefault(r["text_mb"], []).append(r["peak_worker_rss_mb"])
    print("peak RSS of the largest process against data size:",
          ", ".join(f"{mb:.0f} MB text -> {max(v):.0f} MB" for mb, v in by_size.items()))  # fmt: skip
    for row in projection(rate, args.cores_per_node):
        print(f"{row['track']:>6}: {row['tokens'] / 1e9:6.1f}B tokens on {row['nodes']:>2} nodes x "
              f"{args.cores_per_node} cores: {row['wall_hours']:8.2f} h ({row['wall_hours'] * 60:,.0f} min)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "projection": projection(rate, args.cores_per_node)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
