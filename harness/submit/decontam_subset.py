"""The contamination check of a scanned subset, streamed: no copy of the subset is written, and a pool document is
checked once per pool and suite.

The report is the one `harness.submit.decontam.check_files` gives on the subset's resolved files (what
`materialize_subset` writes), to the byte: documents in the same order (pool documents by shard and offset, then
outside documents by id), counted in the same lookup batches, so the lists that keep only their first entries
keep the same ones. What differs is where the texts come from:

- A pool document used as is: its result is a function of its text alone, so it is looked up in a per-pool cache
  (`<pool index>/contamination/<key>.npz`: the rows checked, their text bytes, and for the contaminated ones the
  items they quote). Rows not in it yet are read from the pool once, checked and added. The key hashes the suite's
  items, the n-gram length, the coverage threshold and the pool index, so any change of these starts a new cache.
- An edited or outside document: its text comes from the validation scan's spool and is checked as it streams.

So validating again, or another subset of the same pool, costs lookups, not a pass over the subset's text. The
cache is filled for the whole pool when the pool is built (`harness pool create`, `harness demo`, the first check
on a sandbox pool; `harness pool index POOL --contamination` for a DCLM pool): one pass shard by shard, saved after
each shard so that an interrupted pass resumes. Then the check of any subset costs lookups only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.pools.ids import u64_to_id
from harness.submit import decontam
from harness.submit.decontam import MIN_COVERAGE, ContaminationReport, NgramIndex, Scanner
from harness.submit.scan import EXTERNAL, POOL, spooled

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.pools import Pool
    from harness.submit.report import ValidationReport
    from harness.submit.scan import Scan
    from harness.tracks import Track

_FORMAT = b"harness-contamination-cache-v2\n"  # v2: word hashes independent of the process
_FILL_BATCH = 2048  # pool documents checked at once when filling the cache (a result depends on its text alone)


def validate_and_check(
    track: Track | str,
    subset: str,
    *,
    check: bool = True,
    pool: Pool | None = None,
    tokenizer: Any = None,
    mirror: str | None = None,
    progress: Progress | None = None,
) -> tuple[ValidationReport, ContaminationReport | None]:
    """`validate_subset` and, for a valid subset when `check`, its contamination report, from one scan."""
    from harness.submit.decontam import track_index
    from harness.submit.validate import scanned
    from harness.tracks import get_track

    track = get_track(track) if isinstance(track, str) else track
    with scanned(track, subset, pool=pool, tokenizer=tokenizer, count=True, progress=progress) as (report, scan, e):
        if not check or not report.ok:
            return report, None
        suite, index = track_index(track, mirror=mirror)
        return report, check_scanned(scan, e, suite, index, progress=progress)


def check_subset(track: Track, subset: str, *, mirror: str | None = None) -> ContaminationReport:
    """The contamination report of a (valid) subset as submitted: its texts resolved against the pool, streamed."""
    from harness.errors import HarnessError
    from harness.submit.decontam import track_index
    from harness.submit.validate import scanned

    suite, index = track_index(track, mirror=mirror)  # missing suite data fails before the subset is read
    with scanned(track, subset, pool=None, tokenizer=None, count=False, progress=None) as (report, scan, e):
        if not report.ok:
            raise HarnessError(
                f"{subset}: the subset is invalid ({report.n_problems} problems); see `harness validate`"
            )
        return check_scanned(scan, e, suite, index)


def prefill_pool(pool: Pool, track: Track, *, mirror: str | None = None, progress: Progress | None = None) -> int:
    """Check every document of `pool` once against `track`'s suite, into the pool's contamination cache, so that
    the check of any subset of it costs lookups. Resumable (saved after each shard); returns the documents checked
    now (0 when the cache was complete)."""
    from harness.submit.decontam import track_index

    suite, index = track_index(track, mirror=mirror)
    cache = _Cache.load(pool, index, MIN_COVERAGE)
    return cache.fill_pool(pool, Scanner(index, MIN_COVERAGE), progress, label=f"{pool.id} against suite {suite}")


def prefill_pool_suites(pool: Pool, *, progress: Progress | None = None) -> list[str]:
    """`prefill_pool` for every suite a track on this pool evaluates (`tracks_on_pool`); one line per suite said (checked, or
    why not: a suite whose data is not here is checked per subset when validated)."""
    from harness.submit.decontam import SuiteDataMissing
    from harness.tracks import tracks_on_pool

    said, seen = [], set()
    for track in tracks_on_pool(pool.id):
        if track.suite in seen:
            continue
        seen.add(track.suite)
        try:
            n = prefill_pool(pool, track, progress=progress)
        except SuiteDataMissing as exc:
            said.append(f"contamination index of suite {track.suite!r} not built: {exc}")
            continue
        said.append(f"contamination index of suite {track.suite!r}: {n:,} documents checked now, {len(pool):,} in all")
    return said


def check_scanned(
    scan: Scan,
    e: dict[str, np.ndarray],
    suite: str,
    index: NgramIndex,
    *,
    min_coverage: float = MIN_COVERAGE,
    progress: Progress | None = None,
) -> ContaminationReport:
    """The report of the valid entries of a scan (harness.submit.validate.scanned), in materialisation order."""
    pool = scan.pool
    order = _materialized_order(pool, e)
    kind, rows = e["kind"][order], e["row"][order]
    scanner = Scanner(index, min_coverage)
    is_pool = kind == POOL
    cache = _Cache.load(pool, index, min_coverage)
    if pool.spec.source == "sandbox" and not cache.complete(pool):  # a local pool: checked whole, once
        cache.fill_pool(pool, scanner, progress)
    cache.fill(pool, np.unique(rows[is_pool]), scanner)
    parts = [cache.hits_of(rows, np.flatnonzero(is_pool))]  # (position, rank, item) of pool documents
    texts = np.flatnonzero(~is_pool)
    for start in range(0, len(texts), decontam.BATCH_DOCUMENTS):
        at = texts[start : start + decontam.BATCH_DOCUMENTS]
        batch = [spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k])) for k in order[at]]
        parts += [_triples(at, pairs, rank) for rank, pairs in enumerate(scanner.match(batch))]
    hits = np.concatenate(parts)
    hits = hits[np.lexsort((hits[:, 2], hits[:, 0], hits[:, 1], hits[:, 0] // decontam.BATCH_DOCUMENTS))]

    def doc_id(position: int) -> str:
        k = order[position]
        return pool.id_of_row(int(e["row"][k])) if e["kind"][k] != EXTERNAL else u64_to_id(e["hi"][k], e["lo"][k])

    scanner._record(hits[:, [0, 2]], doc_id)
    scanner.documents = len(order)
    scanner.bytes = cache.text_bytes(rows[is_pool]) + int(e["slen"][order[texts]].sum())
    return scanner.result(suite)


def _materialized_order(pool: Pool, e: dict[str, np.ndarray]) -> np.ndarray:
    """The valid entries in the order `materialize_subset` writes them: pool rows by shard and offset (each row's
    entries by repeat and text digest), then outside documents by (id, text digest, repeat)."""
    ok = e["valid"].astype(bool)
    sel = np.flatnonzero(ok & (e["kind"] != EXTERNAL))
    row = e["row"][sel]
    shard, offset = np.asarray(pool.index.shard)[row], np.asarray(pool.index.offset)[row]
    sel = sel[np.lexsort((e["dlo"][sel], e["dhi"][sel], e["rep"][sel], row, offset, shard))]
    ext = np.flatnonzero(ok & (e["kind"] == EXTERNAL))
    ext = ext[np.lexsort((e["rep"][ext], e["dlo"][ext], e["dhi"][ext], e["lo"][ext], e["hi"][ext]))]
    return np.concatenate([sel, ext]).astype(np.int64)


def _triples(positions: np.ndarray, pairs: np.ndarray, rank: int) -> np.ndarray:
    """(position, table rank, item) rows for (text in batch, item) pairs of one table."""
    out = np.empty((len(pairs), 3), np.int64)
    out[:, 0], out[:, 1], out[:, 2] = positions[pairs[:, 0]], rank, pairs[:, 1]
    return out


class _Cache:
    """Per pool row: checked or not, its text's UTF-8 bytes, and (when contaminated) its (table rank, item) pairs."""

    def __init__(self, path: Path | None, data: dict[str, np.ndarray] | None = None) -> None:
        self.path = path
        d = data or {}
        empty = np.zeros(0, np.int64)
        self.rows, self.nbytes = d.get("rows", empty), d.get("nbytes", empty)  # sorted checked rows
        self.hit_rows, self.hit_rank, self.hit_item = d.get("hit_rows", empty), d.get("hit_rank", empty), d.get(
            "hit_item", empty
        )  # one row per (contaminated pool row, table rank, item), sorted by row  # fmt: skip

    @classmethod
    def load(cls, pool: Pool, index: NgramIndex, min_coverage: float) -> _Cache:
        key = hashlib.sha256(_FORMAT)
        key.update(f"{index.n} {min_coverage!r} {list(index.tables)}\n".encode())
        key.update(index.words_per_item.tobytes())
        for item in index.items:
            key.update(f"{item.task}\0{item.item_id}\0{item.text}\0".encode("utf-8", "surrogatepass"))
        meta = pool.index.directory / "meta.json"
        key.update(meta.read_bytes() if meta.is_file() else b"")
        path = pool.index.directory / "contamination" / f"{key.hexdigest()[:24]}.npz"
        with contextlib.suppress(OSError, ValueError, KeyError), np.load(path) as z:
            return cls(path, {k: z[k] for k in z.files})
        return cls(path)

    def complete(self, pool: Pool) -> bool:
        return len(self.rows) == len(pool)  # rows are distinct pool rows

    def fill_pool(self, pool: Pool, scanner: Scanner, progress: Progress | None, *, label: str = "") -> int:
        """Check every pool row not checked yet, shard by shard (one forward pass each), saving after each."""
        from harness.display.progress import progress_bar

        missing = np.flatnonzero(~np.isin(np.arange(len(pool), dtype=np.int64), self.rows))
        shard = np.asarray(pool.index.shard)[missing]
        with progress_bar(progress) as bar:
            task = bar.add_task(f"contamination index of {label or pool.id}", total=len(missing))
            for number in np.unique(shard):
                rows = missing[shard == number]
                self.fill(pool, rows, scanner)
                bar.advance(task, len(rows))
            bar.remove_task(task)
        return len(missing)

    def fill(self, pool: Pool, rows: np.ndarray, scanner: Scanner) -> None:
        """Check the rows not checked yet, reading their texts from the pool (one pass per shard touched)."""
        missing = rows[~np.isin(rows, self.rows)]
        if not len(missing):
            return
        new_rows, new_bytes, hits = [], [], []
        for batch in _batches(pool.read_rows(missing), _FILL_BATCH):
            texts = [pool.text_of(doc) for _, doc in batch]
            at = np.array([row for row, _ in batch], np.int64)
            new_rows.append(at)
            new_bytes.append(np.array([len(t.encode("utf-8")) for t in texts], np.int64))
            hits += [_triples(at, pairs, rank) for rank, pairs in enumerate(scanner.match(texts))]
        rows_all = np.concatenate([self.rows, *new_rows])
        order = np.argsort(rows_all, kind="stable")
        self.rows, self.nbytes = rows_all[order], np.concatenate([self.nbytes, *new_bytes])[order]
        new = np.concatenate(hits) if hits else np.zeros((0, 3), np.int64)
        all_hits = np.concatenate([np.stack([self.hit_rows, self.hit_rank, self.hit_item], 1), new])
        all_hits = all_hits[np.lexsort((all_hits[:, 2], all_hits[:, 1], all_hits[:, 0]))]
        self.hit_rows, self.hit_rank, self.hit_item = all_hits[:, 0], all_hits[:, 1], all_hits[:, 2]
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        from harness.io.files import write_bytes_atomic

        buffer = io.BytesIO()
        np.savez(buffer, rows=self.rows, nbytes=self.nbytes, hit_rows=self.hit_rows, hit_rank=self.hit_rank,
                 hit_item=self.hit_item)  # fmt: skip
        with contextlib.suppress(OSError):  # a pool folder we cannot write: the check still answers, uncached
            write_bytes_atomic(self.path, buffer.getvalue())

    def hits_of(self, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """(position, rank, item) for each pool entry at `positions` (its row `rows[position]`) that is a hit."""
        if not len(self.hit_rows) or not len(positions):
            return np.zeros((0, 3), np.int64)
        r = rows[positions]
        start = np.searchsorted(self.hit_rows, r, "left")
        stop = np.searchsorted(self.hit_rows, r, "right")
        sizes = stop - start
        entry = np.repeat(start, sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        out = np.empty((len(entry), 3), np.int64)
        out[:, 0], out[:, 1], out[:, 2] = np.repeat(positions, sizes), self.hit_rank[entry], self.hit_item[entry]
        return out

    def text_bytes(self, rows: np.ndarray) -> int:
        return int(self.nbytes[np.searchsorted(self.rows, rows)].sum()) if len(rows) else 0


def _batches(pairs: Iterable[tuple[int, dict]], size: int) -> Iterator[list[tuple[int, dict]]]:
    batch: list[tuple[int, dict]] = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
