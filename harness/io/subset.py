"""The one writer of subset files: `{"id"}` lines (with `"repeat": k` where a document is upweighted)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from harness.io.leftovers import owner_tag


def write_subset(out: str | Path, ids: Iterable[str], repeats: Iterable[int] | None = None) -> int:
    """Write the subset atomically (a reader never sees half a file); ids with repeat 0 are left out, repeat 1 is
    implied. Returns the number of lines written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{owner_tag()}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for doc_id, k in zip(ids, repeats, strict=True) if repeats is not None else ((i, 1) for i in ids):
            if k == 1:
                fh.write(json.dumps({"id": str(doc_id)}) + "\n")
            elif k > 1:
                fh.write(json.dumps({"id": str(doc_id), "repeat": int(k)}) + "\n")
            else:
                continue
            n += 1
    tmp.replace(out)
    return n
