"""Words and their hashes for the contamination check: normalised words (case-folded runs of letters and digits),
64-bit word hashes computed in numpy passes over a batch's code points, and hashed word n-grams.

The hashes do not depend on the process (Python's `hash` of a str does), so an index and a scan agree across
processes. Nothing here loops in Python per word or per n-gram: a word's hash is a difference of prefix sums over
its code points, an n-gram's a difference of prefix sums over its words (benchmarks/decontam_bench.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import numpy as np

_WORD = re.compile(r"[^\W_]+")
_MULT = np.uint64(0x9E3779B97F4A7C15)
_PIECE = 1 << 20  # code points (or words) per numpy pass: bounds the arrays and the table of powers


def words(text: str) -> list[str]:
    """The normalised words of a text: case-folded runs of letters and digits."""
    return _WORD.findall(text.casefold())


#: `_word_values` of a character whose case folding is longer than itself (such as ß -> ss): its text is folded
#: by `str.casefold` first (a folded text has none: folding is idempotent).
_LONGER = np.uint32(0xFFFFFFFF)


@functools.cache
def _word_values() -> np.ndarray:
    """Per code point c: f + 1 where f is c case-folded, when `_WORD` counts f as part of a word, else 0 (and
    `_LONGER` where c folds to several characters). Measured over every code point by the pattern and
    `str.casefold` themselves, so the two can never disagree; one gather then folds, classifies and weights a text
    (casefolding a str is per character and costs as much as the whole numpy pass)."""
    codes = np.arange(0x110000, dtype=np.uint32)
    codes[0xD800:0xE000] = ord(" ")  # lone surrogates are no word characters
    every = codes.tobytes().decode("utf-32-le")
    parts, longer = [], []
    for at in range(0, len(every), 256):  # blocks: str.casefold is fast, the few longer foldings found per block
        block = every[at : at + 256]
        folded = block.casefold()
        if len(folded) != len(block):
            longer += [at + k for k, c in enumerate(block) if len(c.casefold()) > 1]
            folded = "".join(" " if len(c.casefold()) > 1 else c.casefold() for c in block)
        parts.append(folded)
    word = np.zeros(0x110000, dtype=np.uint32)  # c + 1 for a word character, else 0
    for m in _WORD.finditer(every):
        word[m.start() : m.end()] = np.arange(m.start() + 1, m.end() + 1, dtype=np.uint32)
    values = word[np.frombuffer("".join(parts).encode("utf-32-le"), dtype=np.uint32)]
    values[longer] = _LONGER
    return values


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of `words(text)` of every text, concatenated, and each text's word count, in a few numpy passes
    over the texts' code points (no Python object per word).

    A word's hash is a polynomial in its code points, sum of (c + 1) * M**(i - start), wrapping at 2**64, through
    splitmix64's finaliser; it does not depend on the process, so an index and a scan agree across processes."""
    joined = "\0".join(texts)  # NUL is no word character: words never run across texts
    bounds = np.cumsum([0] + [len(t) + 1 for t in texts])  # text k starts at bounds[k]
    ascii_ = joined.isascii()
    cp = np.frombuffer(joined.encode("ascii") if ascii_ else joined.encode("utf-32-le", "surrogatepass"),
                       dtype=np.uint8 if ascii_ else np.uint32)  # fmt: skip
    values = np.take(_word_values(), cp, mode="clip", out=_scratch("values", len(cp), np.uint32))  # "clip": in range
    if not ascii_ and values.max(initial=0) == _LONGER:  # fold the texts that need it with str.casefold, again
        refold = set((np.searchsorted(bounds, np.flatnonzero(values == _LONGER), side="right") - 1).tolist())
        return word_hashes([t.casefold() if k in refold else t for k, t in enumerate(texts)])
    parts, at = [], 0
    while at < len(values):  # pieces of about _PIECE code points, each ending at a non-word character
        stop = min(at + _PIECE, len(values))
        while stop < len(values) and values[stop - 1]:
            ahead = np.flatnonzero(values[stop : stop + _PIECE] == 0)
            stop = stop + int(ahead[0]) + 1 if len(ahead) else min(stop + _PIECE, len(values))
        parts.append(_piece_hashes(values[at:stop], at))
        at = stop
    hashes = np.concatenate([h for h, _ in parts]) if parts else np.empty(0, dtype=np.uint64)
    starts = np.concatenate([w for _, w in parts]) if parts else np.empty(0, dtype=np.int64)
    counts = np.diff(np.searchsorted(starts, bounds))  # words starting inside each text
    return hashes, counts.astype(np.int64)


def _piece_hashes(values: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of the words in a piece of `_word_values` (cut at non-word characters) and their start positions
    plus `offset`.

    With P the prefix sums of (c + 1) * M**i over the code points, the word [s, e) sums to (P[e] - P[s]), brought
    to its own origin by M**-s (M is odd, so it has an inverse modulo 2**64): a few passes, no per-word loop."""
    n = len(values)
    is_word = _scratch("is_word", n + 2, np.bool_)  # padded with a non-word character at either end
    is_word[0] = is_word[n + 1] = False
    np.not_equal(values, 0, out=is_word[1 : n + 1])
    edges = np.flatnonzero(is_word[1:] != is_word[:-1])  # alternately a word's first and one past its last
    starts = edges[0::2]
    if not len(starts):
        return np.empty(0, dtype=np.uint64), starts.astype(np.int64)
    up, down = _powers(n + 1)
    sums = _scratch("sums", n + 1, np.uint64)
    sums[0] = 0
    with np.errstate(over="ignore"):
        np.multiply(values, up[:n], out=sums[1:])
        np.add.accumulate(sums, out=sums)  # np.cumsum is twice as slow here
        at = np.take(sums, edges, mode="clip")  # one gather for both ends of every word
        h = at[1::2] - at[0::2]
        h *= np.take(down, starts, mode="clip")
        _mix(h)
    return h, starts + offset


@functools.cache
def _inverse(m: int) -> int:
    x = m
    for _ in range(7):  # Newton's iteration doubles the correct low bits: 3 -> 6 -> ... -> 192 >= 64
        x = (x * (2 - m * x)) % (1 << 64)
    return x


_POWERS: list[np.ndarray] = []
_SCRATCH: dict[str, np.ndarray] = {}
_SCRATCH_MAX = 4 * _PIECE  # elements kept from batch to batch, per work array (larger ones are not kept)


def _scratch(name: str, n: int, dtype: type) -> np.ndarray:
    """A work array of n elements, the same memory from batch to batch (grown as needed, up to _SCRATCH_MAX): a
    fresh array of a few MiB comes from the system each time, and touching it page by page cost a tenth of the
    check (benchmarks/decontam_bench.py)."""
    have = _SCRATCH.get(name)
    if have is None or len(have) < n:
        have = np.empty(min(n + n // 4, max(n, _SCRATCH_MAX)), dtype=dtype)  # room for the next, larger batches
        if len(have) <= _SCRATCH_MAX:
            _SCRATCH[name] = have
    return have[:n]


def release_scratch() -> None:
    """Give the work arrays kept between batches back (the next batch allocates them again)."""
    _SCRATCH.clear()


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """M**i and M**-i modulo 2**64 for i < n (grown as needed, kept for the next batch)."""
    if not _POWERS or len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]) if _POWERS else _PIECE + 64)
        up = np.cumprod(np.full(size, int(_MULT), dtype=np.uint64), dtype=np.uint64)
        down = np.cumprod(np.full(size, _inverse(int(_MULT)), dtype=np.uint64), dtype=np.uint64)
        up[1:], up[0] = up[:-1].copy(), 1
        down[1:], down[0] = down[:-1].copy(), 1
        _POWERS[:] = [up, down]
    return _POWERS[0], _POWERS[1]


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: every input bit reaches every output bit."""
    shifted = np.empty_like(h)
    with np.errstate(over="ignore"):
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            h ^= np.right_shift(h, np.uint64(shift), out=shifted)
            h *= np.uint64(mult)
        h ^= np.right_shift(h, np.uint64(31), out=shifted)
    return h


def grams(h: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hashes of every n-gram of the word hashes `h`: sum of h[i + j] * M**(n - 1 - j), wrapping."""
    if len(h) < n:
        return np.empty(0, dtype=np.uint64)
    g = h[: len(h) - n + 1].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            g = g * _MULT + h[j : len(h) - n + 1 + j]
    return g


def gram_sums(h: np.ndarray, longest: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """For successive spans of the word hashes `h`: (offset, words in the span, S), S the prefix sums of
    h[offset + k] * M**-k over the span and `longest - 1` words beyond it, so that `window(S, at, n)` hashes any
    n-gram (n <= longest) that starts in the span and ends in `h`. Spans of at most _PIECE words keep the arrays
    and the table of powers bounded."""
    for offset in range(0, len(h), _PIECE):
        span = h[offset : offset + _PIECE + longest - 1]
        _, down = _powers(len(span) + 1)
        sums = _scratch("gram sums", len(span) + 1, np.uint64)
        sums[0] = 0
        with np.errstate(over="ignore"):
            np.multiply(span, down[: len(span)], out=sums[1:])
            np.add.accumulate(sums, out=sums)
        yield offset, min(_PIECE, len(h) - offset), sums


def window(sums: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """`grams(h, n)[at]` from the prefix sums of one span (`gram_sums`): (S[a + n] - S[a]) * M**(a + n - 1)."""
    up, _ = _powers(len(sums))
    with np.errstate(over="ignore"):
        return (sums[at + n] - sums[at]) * up[at + n - 1]


def window_slots(sums: np.ndarray, count: int, n: int, bits: int) -> np.ndarray:
    """The top `bits` bits of `window(sums, np.arange(count), n)`, as indices: the n-grams starting at the first
    `count` words of a span, hashed in place from slices (no gathers)."""
    up, _ = _powers(len(sums))
    g = np.subtract(sums[n : n + count], sums[:count], out=_scratch("slots", count, np.uint64))
    with np.errstate(over="ignore"):
        g *= up[n - 1 : n - 1 + count]
    g >>= np.uint64(64 - bits)
    return g.view(np.int64)


def slot_table(keys: np.ndarray) -> np.ndarray:
    """An open-addressing table of the sorted distinct uint64 `keys`, at most half full: per slot, 1 + the index of
    the key in it (0: empty). A key's first slot is its top bits, then the next ones (linear probing)."""
    bits = max(4, (2 * len(keys)).bit_length())
    slots = np.zeros(1 << bits, dtype=np.int32 if len(keys) < 2**31 - 1 else np.int64)
    pending = np.arange(len(keys))
    at = (keys >> np.uint64(64 - bits)).astype(np.int64)
    while len(pending):  # each round, the first key wanting an empty slot takes it; the others try the next
        free = pending[slots[at[pending]] == 0]
        _, first = np.unique(at[free], return_index=True)
        slots[at[free[first]]] = free[first] + 1
        pending = np.setdiff1d(pending, free[first], assume_unique=True)
        at[pending] = (at[pending] + 1) & (len(slots) - 1)
    return slots


def slot_find(slots: np.ndarray, keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The index in `keys` of each query (-1: absent), through `slot_table(keys)`: a gather or two per query where
    a binary search takes a dozen dependent ones."""
    mask = len(slots) - 1
    out = np.full(len(queries), -1, dtype=np.int64)
    if not len(keys):
        return out
    todo, at = np.arange(len(queries)), (queries >> np.uint64(65 - len(slots).bit_length())).astype(np.int64)
    while len(todo):
        index = np.take(slots, at, mode="clip").astype(np.int64) - 1
        taken = index >= 0
        hit = taken & (keys[index] == queries)
        out[todo[hit]] = index[hit]
        more = taken & ~hit
        todo, at, queries = todo[more], (at[more] + 1) & mask, queries[more]
    return out


def flag_type(bits: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned type with `bits` bits (beyond 64, bits are shared: a filter may pass more)."""
    return next((t for t in (np.uint8, np.uint16, np.uint32) if bits <= np.iinfo(t).bits), np.uint64)


def flag(a: np.ndarray, j: int) -> np.unsignedinteger:
    """Bit j (modulo the type's width) in the type of `a`."""
    return a.dtype.type(1 << (j % (8 * a.dtype.itemsize)))


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique(a) by a sort: the same array, without numpy 2's hashing path (several times slower here)."""
    a = np.sort(a)
    return a[np.append(True, a[1:] != a[:-1])] if len(a) else a
