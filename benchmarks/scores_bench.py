"""Scoring throughput against the reference each figure names, measured in one run (prints; not a timed test).

    python benchmarks/scores_bench.py [--docs 4000]

- loglik: tokens/s of the `loglik` scorer against the bare forward pass of the same model on the same windows
  and batches (the limit: the scorer adds tokenization, windowing and the loss);
- compression: MB/s of the `compression` scorer against zstd alone on the same bytes;
- heuristics: documents/s of the `heuristics` scorer against datatrove's four filters called directly;
- memory: peak RSS of a whole `score` run (compression + heuristics) over 1x and 4x the documents, each in a
  fresh process: scores stream to Parquet, so the ratio should stay near 1.
Documents are sandbox pool documents (all classes). CPU seconds (process_time), one thread: figures per core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def docs_from_pool(n: int) -> list[dict]:
    import numpy as np

    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    rows = np.random.default_rng(0).choice(len(pool), n, replace=False)
    return [{"id": d["id"], "text": d["text"]} for _, d in pool.read_rows(rows)]


def cpu(fn, *args) -> float:
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def bench_loglik(docs: list) -> None:
    import torch

    from harness.model import build_model
    from harness.scores.loglik import LoglikScorer, _batches
    from harness.tracks import get_track

    torch.set_num_threads(1)
    track = get_track("nano")
    torch.manual_seed(0)
    model = build_model(track).eval()
    with tempfile.TemporaryDirectory() as tmp:
        from safetensors.torch import save_file

        path = Path(tmp) / "m.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if "inv_freq" not in k}, str(path))
        scorer = LoglikScorer(checkpoint=str(path), track="nano", device="cpu")
        scorer.setup(Path(tmp))
        out: dict = {}
        t_score = cpu(lambda: out.update(scorer.score(docs, 0)))
        model, tokenizer, info, _ = scorer._loaded  # type: ignore[attr-defined]
        ctx = info.shape.context
        windows = []
        for i, enc in enumerate(tokenizer.encode_batch([d.text for d in docs])):
            seq = [0, *enc.ids]
            windows += [(i, seq[s : s + ctx + 1]) for s in range(0, len(seq) - 1, ctx)]
        batches = _batches(windows, scorer.batch_tokens)

        def forward() -> None:
            with torch.inference_mode():
                for batch in batches:
                    width = max(len(w) for _, w in batch)
                    ids = torch.zeros((len(batch), width - 1), dtype=torch.long)
                    model(ids)

        t_fwd = cpu(forward)
    tokens = sum(out["loglik_tokens"])
    print(f"loglik: {tokens / t_score:,.0f} tokens/s scored vs {tokens / t_fwd:,.0f} tokens/s bare forward "
          f"(nano model, batch {scorer.batch_tokens} tokens): ratio {t_fwd / t_score:.2f} of the limit")  # fmt: skip


def bench_compression(docs: list) -> None:
    import zstandard

    from harness.scores.compression import CompressionScorer

    data = [d.text.encode() for d in docs]
    mb = sum(map(len, data)) / 1e6
    scorer = CompressionScorer()
    t_score = min(cpu(scorer.score, docs, 0) for _ in range(3))
    z = zstandard.ZstdCompressor(level=3, write_content_size=False, write_checksum=False)
    t_zstd = min(cpu(lambda: [z.compress(b) for b in data]) for _ in range(3))
    print(f"compression: {mb / t_score:,.1f} MB/s scored vs {mb / t_zstd:,.1f} MB/s zstd alone: "
          f"ratio {t_zstd / t_score:.2f}")  # fmt: skip


def bench_heuristics(docs: list) -> None:
    from datatrove.data import Document

    from harness.scores.heuristics import HeuristicsScorer, _build

    scorer = HeuristicsScorer()
    scorer.setup(Path("."))
    scorer.score(docs[:10], 0)  # load spaCy's tokenizer outside the timing
    t_score = cpu(scorer.score, docs, 0)
    blocks = _build(scorer.filters, scorer.language)

    def direct() -> None:
        for d in docs:
            for b in blocks.values():
                b.filter(Document(text=d.text, id=d.id, metadata={}))

    t_direct = cpu(direct)
    print(f"heuristics: {len(docs) / t_score:,.0f} documents/s scored vs {len(docs) / t_direct:,.0f} documents/s "
          f"through datatrove's filters directly: ratio {t_direct / t_score:.2f}")  # fmt: skip


def peak_of_run(n: int, docs: list, folder: Path) -> float:
    src = folder / f"in-{n}"
    src.mkdir()
    for s in range(2):
        with gzip.open(src / f"p{s}.jsonl.gz", "wt") as fh:
            for i in range(n // 2):
                d = docs[(s * n // 2 + i) % len(docs)]
                fh.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
    code = (
        "import sys; from pathlib import Path; from harness.scores import make_scorer; "
        "from harness.scores.run import score; "
        f"score({str(src)!r}, [make_scorer('compression'), make_scorer('heuristics')], {str(folder / f'out-{n}')!r}); "
        "print([l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def bench_memory(docs: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        n = len(docs)
        small, large = peak_of_run(n, docs, Path(tmp)), peak_of_run(4 * n, docs, Path(tmp))
    print(f"memory: peak RSS {small:,.0f} MiB for {n:,} documents, {large:,.0f} MiB for {4 * n:,}: "
          f"ratio {large / small:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    args = parser.parse_args()
    from datatrove.data import Document

    docs = [
        Document(text=d["text"], id=d["id"], metadata={"index": i}) for i, d in enumerate(docs_from_pool(args.docs))
    ]
    bench_compression(docs)
    bench_heuristics(docs)
    bench_loglik(docs[: max(1, math.ceil(args.docs / 4))])
    bench_memory(docs)


if __name__ == "__main__":
    main()
