"""Words and their hashes for the contamination check: normalised words (case-folded runs of letters and digits),
64-bit word hashes computed in numpy passes over a batch's code points, and hashed word n-grams.

The hashes do not depend on the process (Python's `hash` of a str does), so an index and a scan agree across
processes; the per-word Python loop they replace was most of the check's time (benchmarks/decontam_bench.py).
"""

from __future__ import annotations

import functools
import re

import numpy as np

_WORD = re.compile(r"[^\W_]+")
_MULT = np.uint64(0x9E3779B97F4A7C15)


def words(text: str) -> list[str]:
    """The normalised words of a text: case-folded runs of letters and digits."""
    return _WORD.findall(text.casefold())


@functools.cache
def _word_values() -> np.ndarray:
    """Per code point: c + 1 when `_WORD` counts it as part of a word, else 0 (measured over every code point by
    the pattern itself, so the two can never disagree; one gather then classifies and weights a text)."""
    every = "".join(" " if 0xD800 <= c < 0xE000 else chr(c) for c in range(0x110000))
    values = np.zeros(0x110000, dtype=np.uint64)
    for m in _WORD.finditer(every):
        values[m.start() : m.end()] = np.arange(m.start() + 1, m.end() + 1, dtype=np.uint64)
    return values


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of `words(text)` of every text, concatenated, and each text's word count, in a few numpy passes
    over the texts' code points (no Python object per word: the per-word loop was most of the check's time).

    A word's hash is a polynomial in its code points, wrapping at 2**64, through splitmix64's finaliser; it does
    not depend on the process (Python's `hash` of a str does), so an index and a scan agree across processes."""
    folded = [t.casefold() for t in texts]
    joined = "\0".join(folded)  # NUL is no word character: words never run across texts
    parts, at = [], 0
    while at < len(joined):  # pieces of about _PIECE code points, cut at a non-word character
        cut = _NON_WORD.search(joined, min(at + _PIECE, len(joined)))
        stop = cut.start() + 1 if cut else len(joined)
        parts.append(_piece_hashes(joined[at:stop], at))
        at = stop
    hashes = np.concatenate([h for h, _ in parts]) if parts else np.empty(0, dtype=np.uint64)
    starts = np.concatenate([w for _, w in parts]) if parts else np.empty(0, dtype=np.int64)
    text_start = np.cumsum([0] + [len(f) + 1 for f in folded])[:-1]
    counts = np.bincount(np.searchsorted(text_start, starts, side="right") - 1, minlength=len(texts))
    return hashes, counts.astype(np.int64)


def _piece_hashes(text: str, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of the words of `text` (cut at non-word characters) and their start positions plus `offset`.

    Each code point c at position i adds (c + 1) * M**i; a word's sum is then brought to its own origin by
    M**-start (M is odd, so it has an inverse modulo 2**64): one pass over the code points, no per-word loop."""
    ascii_ = text.isascii()
    cp = np.frombuffer(text.encode("ascii") if ascii_ else text.encode("utf-32-le", "surrogatepass"),
                       dtype=np.uint8 if ascii_ else np.uint32)  # fmt: skip
    values = _word_values()[cp]
    is_word = values != 0
    starts = np.flatnonzero(np.diff(is_word.view(np.int8), prepend=np.int8(0)) == 1)
    if not len(starts):
        return np.empty(0, dtype=np.uint64), starts.astype(np.int64)
    up, down = _powers(len(cp))
    with np.errstate(over="ignore"):
        values *= up[: len(cp)]  # the gather made a new array: weighted in place
        h = _mix(np.add.reduceat(values, starts, dtype=np.uint64) * down[starts])
    return h, starts.astype(np.int64) + offset


_PIECE = 1 << 20
_NON_WORD = re.compile(r"[\W_]")


@functools.cache
def _inverse(m: int) -> int:
    x = m
    for _ in range(7):  # Newton's iteration doubles the correct low bits: 3 -> 6 -> ... -> 192 >= 64
        x = (x * (2 - m * x)) % (1 << 64)
    return x


_POWERS: list[np.ndarray] = []


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """M**i and M**-i modulo 2**64 for i < n (grown as needed, kept for the next batch)."""
    if not _POWERS or len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]) if _POWERS else _PIECE + 1)
        up = np.cumprod(np.full(size, int(_MULT), dtype=np.uint64), dtype=np.uint64)
        down = np.cumprod(np.full(size, _inverse(int(_MULT)), dtype=np.uint64), dtype=np.uint64)
        up[1:], up[0] = up[:-1].copy(), 1
        down[1:], down[0] = down[:-1].copy(), 1
        _POWERS[:] = [up, down]
    return _POWERS[0], _POWERS[1]


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def grams(h: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hashes of every n-gram of the word hashes `h` (wrapping uint64 arithmetic)."""
    if len(h) < n:
        return np.empty(0, dtype=np.uint64)
    g = h[: len(h) - n + 1].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            g = g * _MULT + h[j : len(h) - n + 1 + j]
    return g


def grams_of_lengths(h: np.ndarray, lengths: set[int]) -> dict[int, np.ndarray]:
    """`grams(h, n)` for every n in `lengths`, in max(lengths) passes: an (n+1)-gram is an n-gram times the
    multiplier plus the next word."""
    out: dict[int, np.ndarray] = {}
    g = h.copy()
    with np.errstate(over="ignore"):
        for n in range(1, max(lengths, default=0) + 1):
            if n > 1:
                g = g[: len(h) - n + 1] * _MULT + h[n - 1 :] if len(h) >= n else np.empty(0, dtype=np.uint64)
            if n in lengths:
                out[n] = g
    return out
