"""Writing a valid subset resolved: `.jsonl.gz` files of `{"id", "text", "repeat"}` lines, the input of tokenization.

The subset is scanned again (harness.submit.validate): it must be valid, and unchanged when given with its report.
The texts come from the pool, or from the scan's spool for edited and outside documents; memory never holds them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import HarnessError
from harness.pools.ids import u64_to_id
from harness.submit.report import ValidationReport
from harness.submit.scan import EDITED, EXTERNAL, spooled
from harness.submit.validate import scanned

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.pools import Pool
    from harness.submit.scan import Scan
    from harness.tracks import Track


class _ShardWriter:
    """Rotating `.jsonl.gz` writer: each file appears under its final name only when complete."""

    def __init__(self, out_dir: Path, shard_docs: int) -> None:
        self.out_dir, self.shard_docs = out_dir, shard_docs
        self.paths: list[Path] = []
        self.fh: gzip.GzipFile | None = None
        self.count = 0

    def write(self, doc_id: str, text: str, repeat: int) -> None:
        if self.fh is None or self.count >= self.shard_docs:
            self.close()
            path = self.out_dir / f"subset-{len(self.paths):05d}.jsonl.gz"
            self.paths.append(path)
            self.fh = gzip.GzipFile(path.with_name(path.name + ".tmp"), "wb", compresslevel=3, mtime=0)
            self.count = 0
        line = json.dumps({"id": doc_id, "text": text, "repeat": repeat}, ensure_ascii=False)
        self.fh.write(line.encode("utf-8") + b"\n")
        self.count += 1

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            path = self.paths[-1]
            path.with_name(path.name + ".tmp").replace(path)
            self.fh = None


def materialize_subset(
    report_or_subset: ValidationReport | str | Path,
    track: Track | str,
    out_dir: str | Path,
    *,
    shard_docs: int = 50_000,
    pool: Pool | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the resolved subset as `.jsonl.gz` files of `{"id", "text", "repeat"}` lines; returns their paths.

    Each text is the pool's, or the given edited/mixing text. The order is canonical (pool documents by shard
    and offset, then outside documents by id), so the same subset in any line order gives the same files.
    Memory holds the per-entry arrays, never the texts. An invalid subset raises HarnessError.
    """
    subset = report_or_subset.subset if isinstance(report_or_subset, ValidationReport) else report_or_subset
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("subset-*.jsonl.gz*"):
        stale.unlink()
    with scanned(track, subset, pool=pool, tokenizer=None, count=False, progress=progress) as (report, scan, e):
        if not report.ok:
            raise HarnessError(
                f"{subset}: the subset is invalid ({report.n_problems} problems); see `harness validate`"
            )
        if isinstance(report_or_subset, ValidationReport) and report_or_subset.subset_hash != report.subset_hash:
            raise HarnessError(f"{subset}: the subset changed since it was validated; validate it again")
        writer = _ShardWriter(out, shard_docs)
        try:
            _write_pool_entries(scan, e, writer)
            _write_external_entries(scan, e, writer)
        finally:
            writer.close()
    return writer.paths


def _write_pool_entries(scan: Scan, e: dict[str, np.ndarray], writer: _ShardWriter) -> None:
    sel = np.flatnonzero(e["valid"].astype(bool) & (e["kind"] != EXTERNAL))
    sel = sel[np.lexsort((e["dlo"][sel], e["dhi"][sel], e["rep"][sel], e["row"][sel]))]
    rows, starts = np.unique(e["row"][sel], return_index=True)
    stops = [*starts[1:].tolist(), len(sel)]
    where = dict(zip(rows.tolist(), zip(starts.tolist(), stops, strict=True), strict=True))
    for row, doc in scan.pool.read_rows(rows):
        start, stop = where[row]
        for k in sel[start:stop]:
            edited = e["kind"][k] == EDITED
            text = spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k])) if edited else scan.pool.text_of(doc)
            writer.write(scan.pool.id_of_row(row), text, int(e["rep"][k]))


def _write_external_entries(scan: Scan, e: dict[str, np.ndarray], writer: _ShardWriter) -> None:
    sel = np.flatnonzero(e["valid"].astype(bool) & (e["kind"] == EXTERNAL))
    sel = sel[np.lexsort((e["rep"][sel], e["dlo"][sel], e["dhi"][sel], e["lo"][sel], e["hi"][sel]))]
    for k in sel:
        text = spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k]))
        writer.write(u64_to_id(e["hi"][k], e["lo"][k]), text, int(e["rep"][k]))
