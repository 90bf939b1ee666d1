"""Helpers the baseline curation scripts share: read the pool, score it, select, write a subset.

A subset is a JSONL file of `{"id": ...}` lines (the pool's text is used); `harness validate` checks it and
`harness submit` trains on it. Copy these scripts to start your own curation. Scores (`harness score`, run on
datatrove) are kept in HARNESS_HOME/curation/<pool>-v<version>/ and reused by every script.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.pools import ensure_pool
from harness.resources import harness_home
from harness.tokenizer import load_tokenizer
from harness.tracks import get_track


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--track", default="nano", help="track whose pool and budget to use (default: nano)")
    parser.add_argument("--out", required=True, help="subset JSONL to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling (default: 0)")
    parser.add_argument("--workers", type=int, default=1, help="scoring processes (default: 1)")
    return parser.parse_args()


def work_dir(track: str) -> Path:
    """Where this pool's scores, classifiers and reference models are kept."""
    spec = ensure_pool(get_track(track).pool).spec
    return harness_home() / "curation" / f"{spec.id}-v{spec.version}"


def pool_scores(track: str, scorer: str, *, workers: int = 1, tag: str = "", **options: object) -> Path:
    """Score the track's pool with one scorer (resumes; reuses finished scores) and return the folder."""
    out = work_dir(track) / (f"scores-{scorer}" + (f"-{tag}" if tag else ""))
    _score(get_track(track).pool, out, scorer, workers, options)
    return out


def score_files(folder: Path, scorer: str, *, workers: int = 1, tag: str = "", **options: object) -> Path:
    """Score JSONL files of pool documents (`{"id", "text"}`) with one scorer; returns the scores folder."""
    out = folder.with_name(folder.name + f"-scores-{scorer}" + (f"-{tag}" if tag else ""))
    _score(str(folder), out, scorer, workers, options)
    return out


def _score(source: str, out: Path, scorer: str, workers: int, options: dict) -> None:
    from rich.console import Console

    from harness.display.progress import make_progress
    from harness.scores import make_scorer
    from harness.scores.run import ExecutorOptions, score

    if not (out / "manifest.json").is_file():
        with make_progress(Console(file=sys.stderr)) as progress:
            score(source, [make_scorer(scorer, **options)], out, executor=ExecutorOptions(workers=workers),
                  progress=progress)  # fmt: skip


def select_subset(track: str, scores: list[Path], out: str, **selection: object) -> None:
    """`harness select` over the score folders; prints what each step kept and the passes the budget implies."""
    from harness.scores.select import Selection, select

    report = select(scores, track, Selection(**selection), out)  # type: ignore[arg-type]
    for step, kept in report.steps:
        print(f"{step}: {kept:,} documents", file=sys.stderr)
    print(f"wrote {report.selected:,} documents ({report.tokens:,} tokens, {report.passes:.2f} passes) to {out}")


def pool_documents(track: str) -> Iterator[dict]:
    """Every document of the track's pool (`{"id", "text", "url"}` for the sandbox), in pool order."""
    yield from ensure_pool(get_track(track).pool).iter_documents()


def fill_budget(docs: Iterable[dict], track: str, seed: int, tokens: int | None = None) -> list[dict]:
    """A seeded random sample of `docs` holding the track's token budget (one pass over the subset in training),
    or `tokens` when given.

    When `docs` hold less than the budget, all of them are returned (training then repeats them).
    """
    spec = get_track(track)
    budget = tokens or spec.tokens
    tokenizer = load_tokenizer(spec.tokenizer)
    pool = list(docs)
    random.Random(seed).shuffle(pool)
    chosen, tokens = [], 0
    for start in range(0, len(pool), 1024):
        batch = pool[start : start + 1024]
        for doc, enc in zip(batch, tokenizer.encode_batch([d["text"] for d in batch]), strict=True):
            chosen.append(doc)
            tokens += len(enc.ids) + 1  # + the end-of-document token
            if tokens >= budget:
                return chosen
    return chosen


def write_subset(docs: Iterable[dict], out: str) -> int:
    """Write `{"id"}` lines (harness.io.subset); returns the number written."""
    from harness.io.subset import write_subset as write_ids

    return write_ids(out, (doc["id"] for doc in docs))
