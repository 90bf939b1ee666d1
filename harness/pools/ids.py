"""Document ids: 128-bit values written as 32 hex characters.

A pool either supplies ids in a field of each JSON line (the sandbox does: `"id"`), or a document's id is the
first 16 bytes of sha256 of its raw JSON line as stored in the shard (utf-8, without the trailing newline),
written as 32 lowercase hex characters. `document_id` computes the latter; curation scripts that read DCLM
shards themselves call it to name the documents they keep.

Internally an id is two unsigned 64-bit integers (`hi`, `lo`: the first and last 8 bytes, big-endian), so a
sorted pair of numpy arrays is the membership index and a lookup is a binary search.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

#: Characters of an id written as hex.
ID_HEX_CHARS = 32
_HEX_ID = re.compile(r"[0-9a-f]{32}")


def document_id(raw_line: bytes | str) -> str:
    """The id of a pool document that has no id field: sha256 of the stored JSON line, first 16 bytes, hex.

    `raw_line` is the line exactly as stored (bytes, or str encoded as utf-8); a trailing newline is ignored.
    """
    data = raw_line.encode("utf-8") if isinstance(raw_line, str) else raw_line
    data = data.rstrip(b"\n").removesuffix(b"\r")
    return hashlib.sha256(data).hexdigest()[:ID_HEX_CHARS]


def is_id(value: object) -> bool:
    """Whether `value` is a well-formed id: a string of 32 lowercase hex digits.

    Ids are exact: `ABC...` is not another spelling of `abc...` (no normalisation anywhere: validate, tokenize
    and the record all see the id as written, so an upper-case spelling is refused rather than silently mapped).
    """
    return isinstance(value, str) and len(value) == ID_HEX_CHARS and _HEX_ID.fullmatch(value) is not None


def ids_to_u64(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Hex ids -> (hi, lo) uint64 arrays. Every id must be well-formed (`is_id`); ValueError otherwise."""
    if not ids:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    # One C-level conversion for the whole batch; whitespace that fromhex skips changes the length.
    joined = "".join(ids)
    raw = bytes.fromhex(joined)
    if len(raw) != 16 * len(ids) or any(c in joined for c in "ABCDEF"):
        raise ValueError("malformed id in batch")
    pairs = np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])


def digest_to_u64(digests: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """16-byte digests -> (hi, lo) uint64 arrays."""
    if not digests:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    pairs = np.frombuffer(b"".join(digests), dtype=">u8").reshape(-1, 2).astype(np.uint64)
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])


def u64_to_id(hi: int, lo: int) -> str:
    """One (hi, lo) pair back to its 32-hex-character id."""
    return f"{int(hi):016x}{int(lo):016x}"
