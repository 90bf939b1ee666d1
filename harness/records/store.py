"""The results store: one record file per entry at `<url>/<track>/<entry_id>.json` on any fsspec URL.

The URL is a local folder or e.g. `s3://bucket/prefix`. Writes are atomic: locally a temporary file renamed into
place, on object stores a single PUT (which readers see whole or not at all). Entries never share a file, so
concurrent writers cannot lose each other's records; re-adding an entry id replaces that entry (a re-run of the
same subset on the same track). Reading parses the files in harness.records.parse.
"""

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UsageError
from harness.records.parse import _UNREAD, MAX_FILE_BYTES, StoreProblem, _parse_items, _path_in, read_regular
from harness.records.schema import Record, RecordError
from harness.records.verified import read_verifications, status_of

#: Where records go when no --results URL is given: $HARNESS_RESULTS, else ./results.
RESULTS_ENV = "HARNESS_RESULTS"


def default_results_url() -> str:
    return os.environ.get(RESULTS_ENV) or "results"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work on records. Loading 10,000 records allocates millions
    of objects that all stay alive, and each collection walks them again: 28% of a serial load and 3/4 of
    unpickling, measured. Records hold no reference cycles; anything cyclic made meanwhile is collected once the
    pause ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class Stored:
    """A record's bytes as they were read from a store, and the local file they were read from (None for object
    stores). The file may have been replaced since; compare before trusting it to hold `data`."""

    data: bytes
    path: str | None
    #: 'verified: <level>' when the store holds a verification of exactly these bytes (harness.records.verified),
    #: else 'self-reported'.
    checked: str = "self-reported"


@dataclass
class ResultsStore:
    """Records on any fsspec URL: `<url>/<track>/<entry_id>.json`."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import fsspec

        self.url = self.url.rstrip("/") or "/"
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = self.root.rstrip("/")
        self._local = "file" in _protocols(self.fs)

    def path_of(self, entry: str) -> str:
        return _path_in(self.root, entry)

    def add(self, record: Record) -> str:
        """Write `record` atomically (replacing an earlier record of the same entry); returns its path."""
        final = self.path_of(record.entry_id)
        blob = record.to_json().encode("utf-8")
        if self._local:
            # A unique temporary name in the same folder, then a rename: readers never see a partial file and
            # concurrent writers of different entries never touch the same name.
            from pathlib import Path

            from harness.io.leftovers import owner_tag, sweep

            os.makedirs(os.path.dirname(final), exist_ok=True)
            sweep(Path(os.path.dirname(final)), ".*.tmp")  # what killed writers left; live writers' files stay
            tmp = f"{os.path.dirname(final)}/.{record.entry_id}.{owner_tag()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        else:
            # Object stores have no rename; a single PUT is atomic (old or new object, never a partial one).
            self.fs.pipe_file(final, blob)
        return final

    def _files(self, track: str | None) -> tuple[list[str], list[StoreProblem]]:
        """The record files of `track` (or all), and the entries skipped at once (links, files too large)."""
        if self._local:
            return _local_files(self.root, track)
        try:
            found = self.fs.glob(f"{self.root}/{track or '*'}/*.json", detail=True)
        except FileNotFoundError:
            return [], []
        paths, problems = [], []
        for path, info in sorted(found.items()):
            if path.rsplit("/", 1)[-1].startswith("."):  # temporary files; glob's '*' may match a leading dot
                continue
            size = info.get("size") or 0
            if size > MAX_FILE_BYTES:
                message = f"cannot read: {size:,} bytes; a store file holds at most {MAX_FILE_BYTES:,}"
                problems.append(StoreProblem(self.fs.unstrip_protocol(path), message))
            else:
                paths.append(path)
        return paths, problems

    def load(self, track: str | None = None) -> tuple[list[Record], list[StoreProblem], dict[str, Stored]]:
        """As `list`, plus each valid record's stored bytes (and local file) by entry id: the leaderboard's copies
        of the records are these bytes, not the records serialized again."""
        paths, skipped = self._files(track)
        with paused_gc():
            if self._local:  # each file read by `read_regular` (no links, FIFOs or devices), in the workers if many
                items = [(path, path, _UNREAD) for path in paths]
            else:  # one concurrent fetch (object stores)
                blobs = self.fs.cat(paths, on_error="return") if paths else {}
                items = [(p, self.fs.unstrip_protocol(p), blobs.get(p)) for p in paths]
            results = _parse_items(items, self.root)
            records = [r for r, _ in results if isinstance(r, Record)]
            verified, skipped_too = read_verifications(self.url, self.storage_options)
            sources = {
                r.entry_id: Stored(blob, path if self._local else None, status_of(verified, r.entry_id, blob))
                for (path, _, _), (r, blob) in zip(items, results, strict=True)
                if isinstance(r, Record) and blob is not None
            }
        problems = skipped + skipped_too + [r for r, _ in results if isinstance(r, StoreProblem)]
        return records, sorted(problems, key=lambda p: p.path), sources

    def list(self, track: str | None = None) -> tuple[list[Record], list[StoreProblem]]:
        """Every valid record (of `track`, or all), and the files skipped with the reason."""
        records, problems, _ = self.load(track)
        return records, problems

    def get(self, entry: str) -> Record:
        """The record of entry id `entry`; a clear error when absent or invalid."""
        path = self.path_of(entry)
        try:
            blob = read_regular(path) if self._local else self.fs.cat_file(path)
        except FileNotFoundError:
            raise UsageError(f"no record {entry!r} in results store {self.url} (looked for {path})") from None
        except OSError as exc:
            raise RecordError(f"{path}: cannot read: {exc}") from None
        return Record.from_json(blob, path)


def _local_files(root: str, track: str | None) -> tuple[list[str], list[StoreProblem]]:
    """`<root>/<track>/*.json` of a local store, without following links: a track folder that is a symbolic link
    (it may lead out of the store) is skipped and named; each file is judged when read (`read_regular`)."""
    paths: list[str] = []
    problems: list[StoreProblem] = []
    try:
        with os.scandir(root) as top:
            folders = sorted((d for d in top if track is None or d.name == track), key=lambda d: d.name)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    for folder in folders:
        if folder.name.startswith("."):
            continue
        if folder.is_symlink():
            if folder.is_dir():  # follows the link only to say what it is
                message = "a symbolic link to a folder; a results store's track folders must be real folders"
                problems.append(StoreProblem(folder.path, message))
            continue
        if not folder.is_dir(follow_symlinks=False):
            continue
        try:
            with os.scandir(folder.path) as files:
                names = sorted(f.name for f in files if f.name.endswith(".json") and not f.name.startswith("."))
        except OSError as exc:
            problems.append(StoreProblem(folder.path, f"cannot list: {exc}"))
            continue
        paths += [f"{folder.path}/{name}" for name in names]
    return paths, problems


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
