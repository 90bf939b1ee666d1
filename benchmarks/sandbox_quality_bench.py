"""Does the sandbox's graded quality (version 5) pay on the suite? Cheap measurements on a generated v5 pool.

No model is trained here (the nano ladder on sandbox-v5 is the lead's measurement). Instead, for clean documents
in bands of q (the top 10%, the middle 10% around the median, the bottom 10%, and a random sample of the clean
class), each cut to the same number of characters, it measures what a learner could take from the text:

- `cloze_acc`: accuracy on the suite's fact_cloze items of a count-based model that picks the choice most often
  written after the item's stem in the band's text (`<stem> <choice>.`); ties, unseen items included, score
  1 / (number tied) when the gold is among them, so an item no document states scores chance (0.25);
- `true_share`: of the band's statements of an evaluated fact in its stem, the share that state the true value;
- `stated`: the share of fact_cloze items whose stem the band states at all (the coverage of the count model);
- `filler`: filler sentences per sentence (`harness.sandbox.graded.FILLER`);
- `story_ok`: the share of stories whose ending names someone or somewhere told earlier (what last_word asks).

Then it ranks the clean class by two scorers a participant has, trained or computed without labels: DCLM's
fastText recipe (positives: the pool's reference set; negatives: a random sample of the pool, as DCLM's) and
the zstd compression ratio, and prints Spearman's rho between each score and q, and the mean q of each score's
top 10% of clean documents.

Usage: python benchmarks/sandbox_quality_bench.py --pool $HARNESS_HOME/pools/sandbox-v5-v5 [--negatives 20000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import tempfile
from pathlib import Path

import numpy as np

from harness.sandbox.graded import FILLER


def _read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _cut(texts: list[str], chars: int, seed: int) -> list[str]:
    """A random sample of `texts` (seeded) holding `chars` characters, the last one trimmed to fit."""
    order = list(texts)
    random.Random(seed).shuffle(order)
    out, total = [], 0
    for t in order:
        if total >= chars:
            break
        out.append(t[: chars - total])
        total += len(out[-1])
    return out


def _cloze(text: str, items: list[dict]) -> tuple[float, float, float]:
    """(count-model accuracy, share of stem statements that are true, share of items stated at all)."""
    acc, true, stated_total, stated = 0.0, 0, 0, 0
    for it in items:
        stem = it["context"].split(". ", 1)[1]  # the lead-in is one sentence, then the pool's stem
        counts = [text.count(stem + c + ".") for c in it["choices"]]
        best = max(counts)
        tied = [i for i, n in enumerate(counts) if n == best]
        acc += (it["gold"] in tied) / len(tied)
        true += counts[it["gold"]]
        stated_total += sum(counts)
        stated += best > 0
    return acc / len(items), true / max(1, stated_total), stated / len(items)


def _filler(texts: list[str]) -> float:
    sentences = sum(t.count(".") for t in texts)
    return sum(t.count(f) for t in texts for f in FILLER) / max(1, sentences)


def _story_ok(texts: list[str]) -> float:
    stories = [t for t in texts if t.startswith(("Once upon", "There once", "Long ago"))]
    ok = 0
    for t in stories:
        for f in FILLER:
            t = t.replace(" " + f, "")
        body, last = t.rstrip(".").rsplit(" ", 1)
        ok += last in body
    return ok / max(1, len(stories))


def _spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=Path, required=True, help="a generated version-5 sandbox pool folder")
    ap.add_argument("--negatives", type=int, default=20000, help="pool documents drawn as the classifier's negatives")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    docs = [d for p in sorted((args.pool / "shards").glob("shard-*.jsonl.gz")) for d in _read_jsonl_gz(p)]
    labels = _read_jsonl_gz(args.pool / "labels.jsonl.gz")
    clean = [(d["text"], lab["q"]) for d, lab in zip(docs, labels, strict=True) if lab["class"] == "clean"]
    items = [json.loads(line) for line in (args.pool / "eval" / "fact_cloze.jsonl").read_text().splitlines()]
    clean.sort(key=lambda tq: tq[1])
    n = len(clean)
    bands = {
        "top 10%": clean[int(0.9 * n) :],
        "middle 10%": clean[int(0.45 * n) : int(0.55 * n)],
        "bottom 10%": clean[: int(0.1 * n)],
        "random 10%": random.Random(args.seed).sample(clean, n // 10),
    }
    chars = min(sum(len(t) for t, _ in band) for band in bands.values())
    print(f"{n} clean documents; each band cut to {chars:,} characters")
    print(f"{'band':<12} {'mean q':>7} {'cloze_acc':>9} {'true_share':>10} {'stated':>7} {'filler':>7} {'story_ok':>8}")
    for name, band in bands.items():
        texts = _cut([t for t, _ in band], chars, args.seed)
        acc, true, stated = _cloze("\0".join(texts), items)
        mean_q = statistics.fmean(q for _, q in band)
        print(
            f"{name:<12} {mean_q:7.3f} {acc:9.3f} {true:10.3f} {stated:7.3f} {_filler(texts):7.3f} "
            f"{_story_ok(texts):8.3f}"
        )

    from harness.scores.classifier import hq_probability, load_fasttext, train_classifier
    from harness.scores.compression import compress

    reference = [d["text"] for d in _read_jsonl_gz(args.pool / "reference" / "reference.jsonl.gz")]
    negatives = [d["text"] for d in random.Random(args.seed).sample(docs, args.negatives)]
    with tempfile.TemporaryDirectory() as tmp:
        card = train_classifier(reference, negatives, Path(tmp) / "clf.bin")
        scores = hq_probability(load_fasttext(Path(tmp) / "clf.bin"), [t for t, _ in clean])
    ratio = [len(compress(t.encode(), 3)) / len(t.encode()) for t, _ in clean]
    q = [qq for _, qq in clean]
    print(f"fastText ({card['positives']} reference positives, {card['negatives']} pool negatives):")
    for name, score in (("fastText P(hq)", scores), ("compression ratio", ratio)):
        top = np.argsort(score)[::-1][: n // 10]
        print(
            f"  {name:<18} Spearman rho with q over clean = {_spearman(score, q):+.3f}; "
            f"mean q of its top 10% = {statistics.fmean(q[i] for i in top):.3f} (all clean: {statistics.fmean(q):.3f})"
        )


if __name__ == "__main__":
    main()
