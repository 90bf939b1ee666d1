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
from harness.records.parse import _UNREAD, StoreProblem, _parse_items, _parse_workers, _path_in
from harness.records.schema import Record

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

    def _files(self, track: str | None) -> list[str]:
        pattern = f"{self.root}/{track or '*'}/*.json"
        try:
            paths = self.fs.glob(pattern)
        except FileNotFoundError:
            return []
        # Temporary files start with a dot; glob's '*' does not match them on every filesystem, so be explicit.
        return sorted(p for p in paths if not p.rsplit("/", 1)[-1].startswith("."))

    def load(self, track: str | None = None) -> tuple[list[Record], list[StoreProblem], dict[str, Stored]]:
        """As `list`, plus each valid record's stored bytes (and local file) by entry id: the leaderboard's copies
        of the records are these bytes, not the records serialized again."""
        paths = self._files(track)
        with paused_gc():
            if self._local and _parse_workers(len(paths)) > 1:  # each worker reads its own files
                items = [(path, path, _UNREAD) for path in paths]
            else:  # one concurrent fetch (object stores), or small stores
                blobs = self.fs.cat(paths, on_error="return") if paths else {}
                items = [(p, p if self._local else self.fs.unstrip_protocol(p), blobs.get(p)) for p in paths]
            results = _parse_items(items, self.root)
            records = [r for r, _ in results if isinstance(r, Record)]
            sources = {
                r.entry_id: Stored(blob, path if self._local else None)
                for (path, _, _), (r, blob) in zip(items, results, strict=True)
                if isinstance(r, Record) and blob is not None
            }
        return records, [r for r, _ in results if isinstance(r, StoreProblem)], sources

    def list(self, track: str | None = None) -> tuple[list[Record], list[StoreProblem]]:
        """Every valid record (of `track`, or all), and the files skipped with the reason."""
        records, problems, _ = self.load(track)
        return records, problems

    def get(self, entry: str) -> Record:
        """The record of entry id `entry`; a clear error when absent or invalid."""
        path = self.path_of(entry)
        try:
            blob = self.fs.cat_file(path)
        except FileNotFoundError:
            raise UsageError(f"no record {entry!r} in results store {self.url} (looked for {path})") from None
        return Record.from_json(blob, path)


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
