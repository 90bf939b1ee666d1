"""Baseline 3: deduplication followed by heuristic quality rules of the kind Gopher and C4 use, then a random
sample sized to the track's token budget.

Rules (a document must pass all of them):
- language-like: at least 2 distinct English stop words per 100 words, mean word length 3-8 characters,
  at least 85% of words purely alphabetic;
- not spam: the most frequent word 3-gram covers at most 15% of the words (Gopher's repetition rule), few
  exclamation marks and all-caps words;
- not boilerplate: at least half of the lines with three or more words end in sentence punctuation, and
  few lines repeat inside the document;
- not noisy: at most 4% of words are rare in the pool (seen in fewer than 3 documents: typos, pseudo-words) and
  few words have broken casing ("bETHOK").
Each threshold is a participant's choice; print the rejection counts with --verbose to tune them.

    python examples/quality_filter.py --track nano --out subsets/quality.jsonl
"""

from __future__ import annotations

import re
import sys
from collections import Counter

from common import fill_budget, parse_args, pool_documents, write_subset
from dedup import deduplicate

STOP_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "that",
        "with",
        "as",
        "by",
        "at",
        "from",
        "it",
        "its",
        "be",
        "are",
    ]
)
_BROKEN_CASE = re.compile(r"^[a-z]+[A-Z]|^[A-Z]{2,}[a-z]")


def words_of(text: str) -> list[str]:
    return text.split()


def top_ngram_share(words: list[str], n: int) -> float:
    """Share of the words covered by the most frequent word n-gram (Gopher's repetition rule)."""
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    count = grams.most_common(1)[0][1]
    return count * n / len(words) if count > 1 else 0.0


def reasons(text: str, rare: set[str]) -> list[str]:
    """The rules a document breaks (empty when it passes)."""
    words = words_of(text)
    if len(words) < 10:
        return ["too short"]
    out = []
    lower = [w.strip(".,;:!?\"'()").lower() for w in words]
    if len({w for w in lower if w in STOP_WORDS}) < 2 or sum(w in STOP_WORDS for w in lower) / len(words) < 0.08:
        out.append("few stop words")
    mean = sum(map(len, words)) / len(words)
    if not 3 <= mean <= 8:
        out.append("mean word length")
    if sum(w.isalpha() for w in lower) / len(words) < 0.85:
        out.append("non-alphabetic words")
    if top_ngram_share(lower, 3) > 0.15:
        out.append("repeated phrases")
    stripped = [w.strip(".,;:!?\"'()") for w in words]
    if text.count("!") > 3 or sum(w.isupper() and len(w) > 1 for w in stripped) / len(words) > 0.05:
        out.append("shouting")
    lines = [line for line in text.splitlines() if len(line.split()) >= 3]
    if lines and sum(line.rstrip()[-1:] in ".?!:" for line in lines) / len(lines) < 0.5:
        out.append("lines without punctuation")
    all_lines = [line.strip() for line in text.splitlines() if line.strip()]
    if all_lines and 1 - len(set(all_lines)) / len(all_lines) > 0.2:
        out.append("repeated lines")
    if sum(w in rare for w in lower) / len(words) > 0.04:
        out.append("rare words")
    if sum(bool(_BROKEN_CASE.match(w)) for w in words) / len(words) > 0.01:
        out.append("broken casing")
    return out


def rare_words(docs: list[dict], min_docs: int = 3) -> set[str]:
    """Words that occur in fewer than `min_docs` documents of the collection."""
    df: Counter[str] = Counter()
    for doc in docs:
        df.update({w.strip(".,;:!?\"'()").lower() for w in words_of(doc["text"])})
    return {w for w, n in df.items() if n < min_docs}


def quality_filter(docs: list[dict], verbose: bool = False) -> list[dict]:
    rare = rare_words(docs)
    kept, rejected = [], Counter()
    for doc in docs:
        broken = reasons(doc["text"], rare)
        rejected.update(broken[:1])
        if not broken:
            kept.append(doc)
    if verbose:
        print(f"kept {len(kept)} of {len(docs)}; first rule broken: {dict(rejected.most_common())}", file=sys.stderr)
    return kept


if __name__ == "__main__":
    args = parse_args(__doc__)
    docs = quality_filter(list(deduplicate(pool_documents(args.track))), verbose=True)
    n = write_subset(fill_budget(docs, args.track, args.seed), args.out)
    print(f"wrote {n} documents to {args.out}")
