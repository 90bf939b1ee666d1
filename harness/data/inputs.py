"""Reading the documents to tokenize: `.jsonl`, `.jsonl.gz` and `.jsonl.zst` files, local or fsspec URLs.

Files are read in blocks and split into lines here (not by a text reader) so that the reader can count lines
for error messages and for resuming, and report progress in bytes of the (compressed) file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harness.errors import HarnessError

_BLOCK = 4 << 20


@dataclass(frozen=True)
class InputFile:
    """One input file: its URL (or local path) and its size in bytes as stored."""

    url: str
    size: int


def expand_inputs(inputs: Sequence[str]) -> list[InputFile]:
    """The input files in the given order; a folder or glob contributes its JSONL files in name order."""
    import fsspec

    from harness.pools.io import expand_inputs as expand_one

    files: list[InputFile] = []
    for item in inputs:
        for url in expand_one(item):
            fs, path = fsspec.core.url_to_fs(url)
            files.append(InputFile(url, int(fs.size(path))))
    return files


def _decompressed(raw: io.BufferedIOBase, url: str) -> io.BufferedIOBase:
    if url.endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if url.endswith((".zst", ".zstd")):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_size=_BLOCK)  # type: ignore[return-value]
    return raw


def iter_lines(file: InputFile, *, skip: int = 0) -> Iterator[tuple[int, bytes, int]]:
    """(line number from 1, line without its newline, compressed bytes read so far) for each line after `skip`.

    Blank lines are yielded too (callers skip them) so that line numbers match what an editor shows.
    """
    import fsspec

    try:
        raw = fsspec.open(file.url, "rb").open()
    except OSError as exc:
        raise HarnessError(f"cannot read input {file.url}: {exc}") from exc
    with raw, _decompressed(raw, file.url) as stream:
        number, tail = 0, []  # tail: pieces of a line longer than a block, joined once its end arrives
        while True:
            try:
                block = stream.read(_BLOCK)
            except (OSError, EOFError, ValueError) as exc:  # corrupt gzip/zstd data
                raise HarnessError(f"{file.url}: cannot decompress after line {number}: {exc}") from exc
            if not block:
                break
            if b"\n" not in block:
                tail.append(block)
                continue
            lines = block.split(b"\n")
            if tail:
                lines[0] = b"".join([*tail, lines[0]])
            tail = [lines.pop()]
            position = raw.tell()
            for line in lines:
                number += 1
                if number > skip:
                    yield number, line, position
        last = b"".join(tail)
        if last:
            number += 1
            if number > skip:
                yield number, last, raw.tell()
