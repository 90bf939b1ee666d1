"""The one reader of user inputs: finding the files of a subset and decoding them, with every failure named.

Every command that reads a subset (validate, submit, tokenize) goes through here, so each kind of input fails
the same way: as an `InputError` naming the file and the fix, never as a traceback.

- Expansion (`expand`): a file, a folder (its JSONL files, recursively, following symlinked folders once) or a
  glob, local or any fsspec URL. Files of other extensions in a folder are listed as skipped (the caller says
  so); dangling or looping symlinks and unreachable stores are unreadable inputs, not crashes.
- Decoding (`open_stream`): `.gz` and `.zst` are decoded strictly: a stream must end where its format says it
  ends (a `.zst` cut at a block boundary decodes without error in most readers; here it is refused), and
  anything that is not the named format is refused. Output is produced in bounded pieces and two bounds hold for
  every file, compressed or not: a line is at most `MAX_LINE_BYTES` (64 MiB; a line longer is refused naming it,
  before more of it is held), and a file decodes to at most `MAX_RATIO` (100) times its stored size or
  `FILE_FLOOR` (64 MiB), whichever is larger. So a compression bomb costs bounded memory (one line) and time
  (what a plain file a hundred times its size would cost), and ends as a problem of its file, never a MemoryError.
- Parsing (`loads`): JSON nested too deeply for the parser is a malformed line like any other.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from harness.errors import HarnessError
from harness.io.files import compression_of, is_jsonl

#: Compressed bytes fed to the zstd decoder per call: bounds the output of one call (at most ~32768x) to 32 MB.
_ZSTD_FEED = 1 << 10
_RAW_BLOCK = 1 << 20
#: The longest line read, in decoded bytes. A DCLM document is a Common Crawl page cut at 1 MiB of HTML, so its
#: text is under 1 MiB; JSON escapes at most sextuple it (`\u00e9` for 2 bytes) and whole books (the longest
#: Project Gutenberg texts are 5-15 MB) fit too. Reading such a line costs about 5x its size in memory (the
#: line, its decoded str, the spool), so 64 MiB keeps one line's cost near 330 MB.
MAX_LINE_BYTES = 64 << 20
#: Decoded bytes per stored byte beyond which a file is a compression bomb, not data: web text compresses 3-5x
#: (gzip or zstd), an id-only subset 2.5x, heavily boilerplated text under 20x; a file of one repeated byte
#: reaches 1,000x (gzip) to millions (zstd).
MAX_RATIO = 100
#: Decoded bytes any file may reach whatever its ratio (a small file of repeated text stays readable): one line
#: at its bound. Past it, a bomb costs what a plain file of 100x its size would (the scan's time is per line).
FILE_FLOOR = MAX_LINE_BYTES


class InputError(HarnessError):
    """An input that cannot be read (missing, unreachable, corrupt, truncated, over a bound): names the file and
    the fix; `code` is the validation problem it becomes, `line` the line it is at when known (else 0)."""

    def __init__(self, url: str, reason: str, fix: str = "", *, code: str = "unreadable-input", line: int = 0) -> None:
        self.url, self.reason, self.fix, self.code, self.line = url, reason, fix, code, line
        super().__init__(f"{url}: {reason}" + (f"; {fix}" if fix else ""))

    def message(self) -> str:
        """The reason and the fix without the file name (for reports that name the file in their own column)."""
        return self.reason + (f"; {self.fix}" if self.fix else "")


def describe_failure(url: str, exc: BaseException) -> InputError:
    """An InputError for an exception raised while listing, opening or reading `url`, with the likely fix."""
    if isinstance(exc, InputError):
        return exc
    name = type(exc).__name__
    text = str(exc) or name
    if "Credentials" in name or "credentials" in text.lower():
        return InputError(url, f"no credentials for this store ({text})", "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                          "(or the store's own variables), or copy the file to a local path")  # fmt: skip
    if isinstance(exc, FileNotFoundError):
        return InputError(url, "no such file (or a symlink to nothing)", "check the path")
    if isinstance(exc, PermissionError):
        return InputError(url, f"permission denied ({text})", "make the file readable")
    if isinstance(exc, OSError) and exc.errno == 40:  # ELOOP
        return InputError(url, "a symlink loop", "point the symlink at a real file")
    if "Connect" in name or "Endpoint" in name or "Timeout" in name or isinstance(exc, ConnectionError | TimeoutError):
        return InputError(url, f"cannot reach the store ({name}: {text})", "check the URL and the network")
    return InputError(url, f"cannot read ({name}: {text})", "check the file and the URL")


#: botocore's defaults retry a refused or silent endpoint for a minute or more; an input that cannot be reached
#: is reported within seconds instead (2 attempts, 3 s to connect). fsspec's own S3 settings still win.
S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 3, "retries": {"max_attempts": 2, "mode": "standard"}}
}


def store_options(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """The fsspec options to read `url` with: the caller's, else bounded retries for S3."""
    if storage_options:
        return storage_options
    if url.startswith(("s3://", "s3a://")):
        import fsspec.config

        return {} if "config_kwargs" in fsspec.config.conf.get("s3", {}) else S3_DEFAULTS
    return {}


# --------------------------------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class Expansion:
    """The files of an input spec: those read, those skipped for their extension, those that cannot be read."""

    files: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    unreadable: tuple[InputError, ...] = ()


def expand(spec: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> Expansion:
    """A file, a folder or a glob, local or fsspec URL -> its files in name order.

    A missing local path is a usage error (exit 2); an unreachable remote store is an `InputError`.
    """
    from harness.errors import UsageError

    text = os.fspath(spec)
    if "://" not in text or text.startswith("file://"):
        local = text.removeprefix("file://")
        if any(c in local for c in "*?[") and not os.path.lexists(local):
            return _expand_glob(text, storage_options)
        if not os.path.lexists(local):
            raise UsageError(f"{text}: no such file or folder")
        if os.path.isdir(local):
            return _expand_local_dir(local)
        if not is_jsonl(local):
            raise UsageError(f"{text}: not a .jsonl, .jsonl.gz or .jsonl.zst file")
        if not os.path.exists(local):  # a dangling or looping symlink
            return Expansion((), (), (_stat_failure(local),))
        if not os.path.isfile(local):
            return Expansion((), (), (InputError(local, "not a regular file", "point the input at a file"),))
        return Expansion((local,))
    return _expand_glob(text, storage_options)


def _stat_failure(path: str) -> InputError:
    try:
        os.stat(path)
    except OSError as exc:
        return describe_failure(path, exc)
    return InputError(path, "cannot be read")


def _expand_local_dir(root: str) -> Expansion:
    """Walk a local folder following symlinked folders, each real folder once (so a loop ends)."""
    files, skipped, unreadable = [], [], []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True, onerror=lambda e: unreadable.append(
            describe_failure(e.filename or root, e))):  # fmt: skip
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in names:
            path = os.path.join(folder, name)
            if not is_jsonl(name):
                skipped.append(path)
            elif not os.path.exists(path):
                unreadable.append(_stat_failure(path))
            elif not os.path.isfile(path):
                unreadable.append(InputError(path, "not a regular file", "point the input at a file"))
            else:
                files.append(path)
        # os.walk lists a looping or dangling symlink among the names when it cannot stat it; a symlink to a
        # folder seen before is dropped above.
    if not files and not unreadable:
        from harness.errors import UsageError

        extra = f" (skipped {len(skipped)} files of other types, e.g. {skipped[0]})" if skipped else ""
        raise UsageError(f"{root}: no .jsonl/.jsonl.gz/.jsonl.zst files in it{extra}")
    return Expansion(tuple(sorted(files)), tuple(sorted(skipped)), tuple(unreadable))


def _expand_glob(text: str, storage_options: dict[str, Any] | None) -> Expansion:
    import fsspec

    from harness.errors import UsageError

    try:
        fs, _, paths = fsspec.get_fs_token_paths(text, storage_options=store_options(text, storage_options))
        protocol = fs.protocol[0] if isinstance(fs.protocol, tuple | list) else fs.protocol
        found: list[str] = []
        for path in paths:
            if fs.isdir(path):
                found += fs.find(path)
            elif fs.exists(path):
                found.append(path)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{text}: cannot open this URL ({exc})") from None
    except Exception as exc:  # any failure here means the input cannot be read
        raise describe_failure(text, exc) from None
    if protocol not in ("file", "local"):
        found = [p if "://" in p else f"{protocol}://{p}" for p in found]
    files = sorted(p for p in found if is_jsonl(p))
    skipped = sorted(p for p in found if not is_jsonl(p))
    if not files:
        extra = f" (found only files of other types, e.g. {skipped[0]})" if skipped else ""
        raise UsageError(f"{text}: no such file, or no .jsonl/.jsonl.gz/.jsonl.zst files in it{extra}")
    return Expansion(tuple(files), tuple(skipped))


# ---------------------------------------------------------------------------------------------------- decoding


class _Decoded(io.RawIOBase):
    """The uncompressed bytes of one stored file; every failure below becomes an InputError naming the file."""

    def __init__(self, url: str, raw: IO[bytes], size: int | None = None) -> None:
        self.url, self.raw, self.kind = url, raw, compression_of(url)
        self.consumed = 0  # stored bytes read so far (progress in compressed bytes)
        self.size = size  # stored bytes in all, when known (else the ratio bound follows `consumed`)
        self.produced, self.newlines, self.open_line = 0, 0, 0  # decoded bytes, newlines, bytes since the last
        self._pending, self._offset = b"", 0  # decoded bytes not yet returned
        self._zstd: Any = None
        self._gzip: Any = None
        self._frame_open = False
        if self.kind == "gzip":
            import gzip

            self._gzip = gzip.GzipFile(fileobj=_Counted(self), mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._read(len(buffer))
        except InputError:
            raise
        except Exception as exc:  # any failure here means the input cannot be read
            raise self._decode_error(exc) from None
        self._bound(data)
        buffer[: len(data)] = data
        return len(data)

    def _bound(self, data: bytes) -> None:
        """Count lines and bytes of decoded output; refuse a line or a file past its bound (see the module)."""
        last = data.rfind(b"\n")
        if last < 0:
            self.open_line += len(data)
        else:
            self.newlines += data.count(b"\n")
            self.open_line = len(data) - last - 1
        if self.open_line > MAX_LINE_BYTES:
            line = self.newlines + 1
            raise InputError(self.url, f"line {line} is longer than {MAX_LINE_BYTES >> 20} MiB without a newline "
                             "(the rest of the file is not read)", "a document is one line of at most "
                             f"{MAX_LINE_BYTES >> 20} MiB: split or leave out this one", code="line-too-long",
                             line=line)  # fmt: skip
        self.produced += len(data)
        stored = max(self.size or 0, self.consumed)
        if self.produced > FILE_FLOOR and self.produced > MAX_RATIO * stored:
            raise InputError(self.url, f"decodes to more than {MAX_RATIO} times its stored size ({self.produced >> 20}"
                             f" MiB from {stored / 2**20:.1f} MiB, after line {self.newlines}): a compression bomb, "
                             "not text (the rest of the file is not read)", "compress the subset's real lines "
                             "instead", code="compression-bomb", line=self.newlines)  # fmt: skip

    def _decode_error(self, exc: BaseException) -> InputError:
        if self.kind is None or (isinstance(exc, OSError) and not type(exc).__name__.startswith("BadGzip")):
            return describe_failure(self.url, exc)
        what = {"gzip": "gzip", "zstd": "zstd"}[self.kind]
        if isinstance(exc, EOFError):
            return InputError(self.url, f"the {what} stream is truncated (it ends before its end marker)",
                              "the file was cut short: copy or compress it again")  # fmt: skip
        return InputError(self.url, f"not valid {what} data ({type(exc).__name__}: {exc})",
                          f"check that the file really is {what}-compressed, or rename it")  # fmt: skip

    def _read_raw(self, size: int) -> bytes:
        try:
            block = self.raw.read(size)
        except Exception as exc:  # any failure here means the input cannot be read
            raise describe_failure(self.url, exc) from None
        self.consumed += len(block)
        return block

    def _read(self, size: int) -> bytes:
        if self.kind == "gzip":
            return self._gzip.read(size)
        if self.kind == "zstd":
            return self._read_zstd(size)
        return self._read_raw(size)

    def _read_zstd(self, size: int) -> bytes:
        import zstandard

        while True:
            if self._offset < len(self._pending):
                out = self._pending[self._offset : self._offset + size]  # copies `size` bytes, not the rest
                self._offset += len(out)
                return out
            if self._zstd is not None and self._zstd.eof:
                rest = self._zstd.unused_data
                self._zstd, self._frame_open = None, False
                if rest:
                    self._feed(rest)
                    continue
            block = self._read_raw(_ZSTD_FEED)
            if not block:
                if self._frame_open:
                    raise EOFError("zstd frame not finished")
                return b""
            self._feed(block, zstandard)

    def _feed(self, block: bytes, zstandard: Any = None) -> None:
        if self._zstd is None:
            if zstandard is None:
                import zstandard
            self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self._frame_open = True
        self._pending, self._offset = self._zstd.decompress(block), 0


class _Counted(io.RawIOBase):
    """The stored bytes of a _Decoded, for the gzip decoder (which counts what it reads)."""

    def __init__(self, owner: _Decoded) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.owner._read_raw(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_stream(url: str, storage_options: dict[str, Any] | None = None) -> Iterator[io.BufferedReader]:
    """The uncompressed bytes of an input file as a buffered binary stream (lines iterate as usual).

    `stream.raw.consumed` counts the stored bytes read so far. Every failure, at open or while reading, is an
    `InputError` naming `url`.
    """
    import fsspec

    local = "://" not in url or url.startswith("file://")
    try:
        if local:
            path = url.removeprefix("file://")
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never end
                raise InputError(url, "not a regular file", "point the input at a file")
            raw, size = open(path, "rb", buffering=_RAW_BLOCK), info.st_size  # noqa: SIM115 - closed below
        else:
            raw = fsspec.open(url, "rb", **store_options(url, storage_options)).open()
            size = getattr(raw, "size", None)
    except Exception as exc:  # any failure here means the input cannot be read
        raise describe_failure(url, exc) from None
    with raw:
        # Plain files too: the line bound holds for every input (the layer costs one call per MiB read).
        yield io.BufferedReader(_Decoded(url, raw, size if isinstance(size, int) else None), _RAW_BLOCK)


def loads(line: bytes | str) -> Any:
    """json.loads, with nesting too deep for the parser reported as a ValueError like any malformed line."""
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError("JSON nested too deeply to parse") from None


def expand_inputs(spec: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> list[str]:
    """A file, a directory (its JSONL files, recursively) or a glob, local or fsspec URL -> sorted file URLs.

    See `expand`; an input that cannot be read raises its InputError (files of other extensions
    are left out: `harness validate` reports them).
    """
    found = expand(spec, storage_options)
    if found.unreadable:
        raise found.unreadable[0]
    return list(found.files)
