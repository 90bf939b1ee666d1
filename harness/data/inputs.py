"""Reading the documents to tokenize: `.jsonl`, `.jsonl.gz` and `.jsonl.zst` files, local or fsspec URLs.

Files are read in blocks and split into lines here (not by a text reader) so that the reader can count lines
for error messages and for resuming, and report progress in bytes of the (compressed) file.
"""

from __future__ import annotations

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

    from harness.io.reader import describe_failure
    from harness.io.reader import expand_inputs as expand_one

    files: list[InputFile] = []
    for item in inputs:
        for url in expand_one(item):
            try:
                fs, path = fsspec.core.url_to_fs(url)
                files.append(InputFile(url, int(fs.size(path))))
            except Exception as exc:  # any failure here means the input cannot be read
                raise describe_failure(url, exc) from None
    return files


def iter_lines(file: InputFile, *, skip: int = 0) -> Iterator[tuple[int, bytes, int]]:
    """(line number from 1, line without its newline, compressed bytes read so far) for each line after `skip`.

    Blank lines are yielded too (callers skip them) so that line numbers match what an editor shows. Decoding
    and its failures belong to harness.io.reader: a damaged file is a HarnessError naming it and the line.
    """
    from harness.io.reader import InputError, open_stream

    number = 0
    try:
        with open_stream(file.url) as stream:
            decoded = stream.raw  # stored bytes read so far, for progress: `consumed` of a decoded stream
            stored = (lambda: decoded.consumed) if hasattr(decoded, "consumed") else stream.tell
            tail: list[bytes] = []  # pieces of a line longer than a block, joined once its end arrives
            while block := stream.read(_BLOCK):
                if b"\n" not in block:
                    tail.append(block)
                    continue
                lines = block.split(b"\n")
                if tail:
                    lines[0] = b"".join([*tail, lines[0]])
                tail = [lines.pop()]
                position = stored()
                for line in lines:
                    number += 1
                    if number > skip:
                        yield number, line, position
            last = b"".join(tail)
            if last:
                number += 1
                if number > skip:
                    yield number, last, stored()
    except InputError as exc:
        raise HarnessError(f"{exc.url}, after line {number}: {exc.message()}") from None
