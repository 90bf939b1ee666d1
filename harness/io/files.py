"""Reading JSONL shards through fsspec, so local paths and `s3://` URLs share one code path.

Compression follows the file name (`.gz`, `.zst`/`.zstd`, otherwise none). S3 endpoints and credentials come
from fsspec's usual places: per-call `storage_options`, or environment variables such as
`FSSPEC_S3_ENDPOINT_URL` / `AWS_ACCESS_KEY_ID` (a local S3-compatible server in tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

#: File name endings read as JSONL, with the compression fsspec applies.
JSONL_SUFFIXES: dict[str, str | None] = {
    ".jsonl": None,
    ".jsonl.gz": "gzip",
    ".jsonl.zst": "zstd",
    ".jsonl.zstd": "zstd",
}


def compression_of(url: str) -> str | None:
    """fsspec compression name for a file, from its name."""
    name = url.lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith((".zst", ".zstd")):
        return "zstd"
    return None


def is_jsonl(url: str) -> bool:
    return url.lower().endswith(tuple(JSONL_SUFFIXES))


@contextlib.contextmanager
def open_binary(url: str, storage_options: dict[str, Any] | None = None) -> Iterator[IO[bytes]]:
    """Open a (possibly compressed, possibly remote) file for binary reading of its uncompressed bytes."""
    import fsspec

    with fsspec.open(url, "rb", compression=compression_of(url), **(storage_options or {})) as fh:
        # zstandard's stream reader has no readline: buffer it so line iteration works for every format
        yield io.BufferedReader(fh, 1 << 20) if compression_of(url) == "zstd" else fh  # type: ignore[arg-type]


def skip_forward(fh: IO[bytes], count: int) -> None:
    """Advance a (possibly compressed, unseekable) stream by `count` bytes by reading them."""
    while count > 0:
        block = fh.read(min(count, 1 << 20))
        if not block:
            raise EOFError("shard ended before the indexed offset; the pool changed since it was indexed")
        count -= len(block)


@contextlib.contextmanager
def open_raw(url: str, storage_options: dict[str, Any] | None = None) -> Iterator[IO[bytes]]:
    """Open a file's stored (compressed) bytes, e.g. to hash them."""
    import fsspec

    with fsspec.open(url, "rb", **(storage_options or {})) as fh:
        yield fh


def download(url: str, dest: Path, storage_options: dict[str, Any] | None = None) -> Path:
    """Copy `url` to `dest` atomically (a partial download never looks complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with open_raw(url, storage_options) as src, open(tmp, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            out.write(block)
    tmp.replace(dest)
    return dest


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a local file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_id(data: bytes) -> str:
    """A file's git object id: sha1 of "blob <size>\\0" + its bytes (what `git hash-object` and `git ls-tree`
    print), so a file published in a git repository is pinned by the id its tree shows."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write a file so that readers see the old one or the whole new one; `durable` also fsyncs it before the
    rename (checkpoints and training markers, which must survive a power loss)."""
    from harness.io.leftovers import owner_tag

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{owner_tag()}.tmp")  # per process; a killed writer's is swept on resume
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """`write_bytes_atomic` of UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: Path, data: Any, *, indent: int = 1, durable: bool = False) -> None:
    """Sorted-key JSON, atomically (completion markers, manifests; the training folder uses indent 2)."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=True) + "\n", durable=durable)


def unwritable_reason(target: str | os.PathLike[str]) -> str | None:
    """Why a local output folder cannot be written (created, or written into), or None when it can be; remote
    URLs are not checked here (their store answers when written). Checked when a command starts, so an output
    that cannot be written fails before any work, not after hours of it."""
    text = os.fspath(target)
    if "://" in text and not text.startswith("file://"):
        return None
    path = Path(text.removeprefix("file://")).absolute()
    probe = path
    while not probe.exists():  # the nearest existing ancestor decides whether the folder can be made
        if probe.parent == probe:
            return f"{probe} does not exist"
        if probe.is_symlink():
            return f"{probe} is a symlink to nothing"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder" if probe != path else f"{path} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):  # also false on a read-only file system, even for root
        return f"{probe} is not writable by this user"
    return None


def require_writable(target: str | os.PathLike[str], option: str) -> None:
    """UsageError (exit 2) naming the folder and the fix when `unwritable_reason` finds one."""
    from harness.errors import UsageError

    reason = unwritable_reason(target)
    if reason is not None:
        raise UsageError(f"{option} {os.fspath(target)}: cannot write there ({reason}); choose a folder you can "
                         f"write with {option}, or fix its permissions")  # fmt: skip
