"""The global shuffle and the shard writer: seeded sort keys, on-disk buckets, deterministic gzip and tar.

Every sequence gets a 64-bit sort key, a pure function of (seed, its index in the packed stream). The output
order is the sequences sorted by (key, index): a uniformly random permutation that depends on nothing else.
Buckets are contiguous key ranges, so sorting each bucket and concatenating the buckets in order gives that
global order whatever the number of buckets: bucket count, workers and batch sizes never change the bytes.

Bucket files hold raw native-endian rows (`<name>.tok`: uint32 x (context + 1) per sequence; `<name>.key`: the
uint64 keys); they live on local disk only and are deleted when the shards are written.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from harness.data import MEMBER_SUFFIX

#: zlib level of each member: 1 is ~2.5x faster than 6 on token lists for ~4% more bytes (part of the format).
GZIP_LEVEL = 1
TOKEN_DTYPE = np.uint32
KEY_DTYPE = np.uint64
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic): a bijection that scrambles bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def sort_keys(seed: int, indices: np.ndarray) -> np.ndarray:
    """The sort key of each sequence index under `seed`."""
    base = _mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    return _mix64(indices.astype(np.uint64) * _GOLDEN + base)


def bucket_of(keys: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each key: `n_buckets` equal, contiguous key ranges (monotonic in the key)."""
    return ((keys >> np.uint64(32)) * np.uint64(n_buckets)) >> np.uint64(32)


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip bytes with a fixed header (mtime 0, no name, OS 'unknown'), unlike zlib's, which names the build OS."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = comp.compress(data) + comp.flush()
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        + body
        + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    )


def encode_sequence(row: np.ndarray) -> bytes:
    """A sequence as open_lm stores it: the gzip of a compact JSON list of ids."""
    return gzip_member(json.dumps(row.tolist(), separators=(",", ":")).encode("ascii"))


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def member_name(position: int) -> str:
    """Member of the sequence at `position` in the shuffled order; unique over the dataset."""
    return f"{position:012d}.{MEMBER_SUFFIX}"


def write_tar(fh: io.RawIOBase | io.BufferedIOBase, blobs: Iterable[bytes], first_position: int) -> None:
    """Write encoded sequences as one shard: members in order, headers independent of time, user and machine
    (`blobs` may be a generator: a shard is streamed, never held whole)."""
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for offset, blob in enumerate(blobs):
            tar.addfile(_tarinfo(member_name(first_position + offset), len(blob)), io.BytesIO(blob))


def read_rows(pieces: Sequence[tuple[str, int, int]], seqlen: int) -> np.ndarray:
    """Rows [start, end) of each sorted bucket file, concatenated."""
    parts = []
    for path, start, end in pieces:
        with open(path, "rb") as fh:
            fh.seek(start * seqlen * TOKEN_DTYPE().itemsize)
            data = np.fromfile(fh, dtype=TOKEN_DTYPE, count=(end - start) * seqlen)
        parts.append(data.reshape(-1, seqlen))
    return np.concatenate(parts) if parts else np.empty((0, seqlen), dtype=TOKEN_DTYPE)


def sort_bucket(tok: Path, key: Path, out: Path, seqlen: int, max_rows: int) -> int:
    """Write bucket (tok, key) sorted by (key, index) to `out` atomically; returns its rows.

    A bucket larger than `max_rows` (a subset far larger than estimated, e.g. heavy repeats) is split into
    key sub-ranges on disk first, so memory stays bounded by `max_rows` rows whatever the input.
    """
    rows = os.path.getsize(key) // KEY_DTYPE().itemsize
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as dst:
        _sort_into(tok, key, dst, seqlen, max_rows, rows)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, out)
    return rows


def _sort_into(tok: Path, key: Path, dst: io.BufferedWriter, seqlen: int, max_rows: int, rows: int) -> None:
    keys = np.memmap(key, dtype=KEY_DTYPE, mode="r") if rows else np.empty(0, KEY_DTYPE)
    if rows <= max_rows:
        order = np.argsort(np.asarray(keys), kind="stable")  # keys are distinct (a bijection of the index)
        np.fromfile(tok, dtype=TOKEN_DTYPE).reshape(rows, seqlen)[order].tofile(dst)
        return
    lo, hi = int(keys.min()), int(keys.max())
    parts = -(-rows // max_rows) * 2
    width = np.uint64((hi - lo) // parts + 1)
    subs = [(tok.with_name(f"{tok.name}.{i}.tok"), tok.with_name(f"{tok.name}.{i}.key")) for i in range(parts)]
    for path in (p for pair in subs for p in pair):
        path.unlink(missing_ok=True)
    tokens = np.memmap(tok, dtype=TOKEN_DTYPE, mode="r").reshape(rows, seqlen)
    for start in range(0, rows, max_rows):  # stream in index order so each sub-bucket keeps index order
        k = np.asarray(keys[start : start + max_rows])
        t = np.asarray(tokens[start : start + max_rows])
        sub = ((k - np.uint64(lo)) // width).astype(np.int64)
        for i in np.unique(sub):
            mask = sub == i
            with open(subs[i][0], "ab") as ft, open(subs[i][1], "ab") as fk:
                t[mask].tofile(ft)
                k[mask].tofile(fk)
    del keys, tokens
    for sub_tok, sub_key in subs:
        if sub_key.exists():
            sub_rows = os.path.getsize(sub_key) // KEY_DTYPE().itemsize
            _sort_into(sub_tok, sub_key, dst, seqlen, max_rows, sub_rows)
            sub_tok.unlink()
            sub_key.unlink()
