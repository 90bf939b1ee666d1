"""`harness select`: compose thresholds, rankings and uniqueness over score columns, fill a track's budget.

The order of operations, each optional:
1. `--where EXPR` (repeatable, all must hold; see `harness.scores.expr`);
2. `--unique COLUMN` (repeatable): keep the first row, in pool order, of each value (nulls are all distinct),
   e.g. `--unique exact_cluster` for exact deduplication;
3. `--by COLUMN` ranks the survivors (highest first; `--ascending` for lowest first; ties in pool order) and
   `--top FRACTION` keeps the best fraction of them;
4. the budget is filled in rank order (`--fill rank`, the default with `--by` and no `--top`) or in a seeded random
   order of the survivors (`--fill random`, the default otherwise), adding documents while the running total
   (tokens + one end-of-document token each, as `harness validate` counts) stays within the track's budget.
   When the survivors hold less than the budget, all are taken and training repeats them: the report says
   how many passes that implies.
The result is a subset of `{"id"}` lines that `harness validate` accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.config import doc
from harness.errors import HarnessError, UsageError, unknown_name
from harness.io.subset import write_subset


@dataclass(frozen=True, kw_only=True)
class Selection:
    """How to turn score columns into a subset."""

    where: tuple[str, ...] = doc("Conditions that must all hold.", default=())
    unique: tuple[str, ...] = doc("Columns whose values may occur once (first row in pool order kept).", default=())
    by: str = doc("Column to rank by ('' = no ranking).", default="")
    ascending: bool = doc("Rank lowest first.", default=False)
    top: float = doc("Fraction of the ranked survivors kept (1.0 = all).", default=1.0)
    fill: Literal["auto", "rank", "random"] = doc("Order in which the budget is filled.", default="auto")
    seed: int = doc("Seed of the random fill order.", default=0)

    def __post_init__(self) -> None:
        if not 0 < self.top <= 1:
            raise UsageError(f"--top must be a fraction in (0, 1], got {self.top}")
        if self.top < 1 and not self.by:
            raise UsageError("--top needs --by COLUMN (the ranking it keeps the top of)")
        if self.fill == "rank" and not self.by:
            raise UsageError("--fill rank needs --by COLUMN")

    @property
    def fill_order(self) -> str:
        if self.fill != "auto":
            return self.fill
        return "rank" if self.by and self.top == 1.0 else "random"


@dataclass(frozen=True)
class SelectReport:
    """What a selection kept at each step and what the subset holds against the budget."""

    scored: int
    steps: list[tuple[str, int]] = field(default_factory=list)
    selected: int = 0
    tokens: int = 0
    budget: int = 0
    passes: float = 0.0
    out: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "steps": [{"step": s, "kept": k} for s, k in self.steps],
                "selected": self.selected, "tokens": self.tokens, "budget": self.budget,
                "passes": self.passes, "out": self.out}  # fmt: skip


def read_manifest(scores: str | Path) -> dict[str, Any]:
    path = Path(scores) / "manifest.json"
    if not path.is_file():
        raise UsageError(
            f"{scores} is not a finished score folder (no manifest.json): run `harness score ... --out {scores}` "
            "(re-running it resumes)"
        )
    return json.loads(path.read_text())


def load_columns(scores: str | Path | Sequence[str | Path], columns: list[str]) -> Any:
    """The `id` and the asked columns, in pool (part, row) order, as one pyarrow Table.

    Several score folders of the same source join side by side (their ids must agree row for row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folders = [scores] if isinstance(scores, str | Path) else list(scores)
    manifests = [read_manifest(f) for f in folders]
    owner: dict[str, int] = {}
    for i, m in enumerate(manifests):
        for name in m["columns"]:
            owner.setdefault(name, i)
    for name in columns:
        if name not in owner:
            raise unknown_name("score column", name, owner)
    table = None
    for i, (folder, m) in enumerate(zip(folders, manifests, strict=True)):
        wanted = ["id", *(c for c in dict.fromkeys(columns) if owner[c] == i and c != "id")]
        parts = [pq.read_table(Path(folder) / p["path"], columns=wanted) for p in m["parts"]]
        part = pa.concat_tables(parts) if parts else pa.table({c: [] for c in wanted})
        if table is None:
            table = part
            continue
        if part.num_rows != table.num_rows or not part.column("id").equals(table.column("id")):
            raise UsageError(f"{folder} and {folders[0]} score different documents; score the same source into both")
        for name in wanted[1:]:
            table = table.append_column(part.schema.field(name), part.column(name))
    return table


def select(
    scores: str | Path | Sequence[str | Path], track_name: str, selection: Selection, out: str | Path
) -> SelectReport:
    """Apply `selection` to the scores, fill `track_name`'s budget and write the subset to `out`."""
    from harness.scores import expr
    from harness.tracks import get_track

    track = get_track(track_name)
    needed = {n for w in selection.where for n in expr.names(w)} - {"True", "False", "None"}
    needed |= set(selection.unique) | ({selection.by} if selection.by else set())
    table = load_columns(scores, sorted(needed))
    n = table.num_rows
    steps: list[tuple[str, int]] = []
    keep = np.ones(n, bool)
    for w in selection.where:
        keep &= expr.evaluate(w, {c: table.column(c) for c in table.column_names}, n)
        steps.append((f"where {w}", int(keep.sum())))
    for col in selection.unique:
        keep &= _first_of_each(table.column(col), keep)
        steps.append((f"unique {col}", int(keep.sum())))
    rows = np.flatnonzero(keep)
    if selection.by:
        rows = _ranked(table.column(selection.by), rows, selection.ascending)
        if selection.top < 1:
            rows = rows[: math.ceil(selection.top * len(rows))]
            steps.append((f"top {selection.top:g} by {selection.by}", len(rows)))
    if len(rows) == 0:
        raise HarnessError(
            f"the selection is empty: {' -> '.join(f'{s}: {k}' for s, k in steps) or 'no rows'} "
            f"(of {n} scored documents); loosen a condition"
        )
    if selection.fill_order == "random":
        rows = rows[np.random.default_rng(selection.seed).permutation(len(rows))]
    ids = np.asarray(table.column("id").to_numpy(zero_copy_only=False))[rows]
    chosen, tokens = _fill(track, ids)
    write_subset(out, chosen)
    report = SelectReport(n, steps, len(chosen), tokens, track.tokens, track.tokens / tokens, str(out))
    return report


def _first_of_each(column: Any, keep: np.ndarray) -> np.ndarray:
    """True at the first kept row of each non-null value (and at every null row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    codes = np.asarray(pc.dictionary_encode(arr).indices.to_numpy(zero_copy_only=False))
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)
    out = np.zeros(len(keep), bool)
    rows = np.flatnonzero(keep & ~null)
    _, first = np.unique(codes[rows], return_index=True)
    out[rows[first]] = True
    out |= null
    return out


def _ranked(column: Any, rows: np.ndarray, ascending: bool) -> np.ndarray:
    """`rows` ordered by the column (nulls last), ties in pool order."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type)):
        raise UsageError(f"--by {column!r}: can only rank a numeric or boolean column")
    values = np.asarray(arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))[rows]
    key = values if ascending else -values
    key = np.where(np.isnan(key), np.inf, key)
    return rows[np.argsort(key, kind="stable")]


def _fill(track: Any, ids: np.ndarray) -> tuple[list[str], int]:
    """The longest prefix of `ids` whose tokens (+1 end-of-document token each) fit the budget."""
    from harness.pools import ensure_pool

    pool = ensure_pool(track.pool)
    rows = pool.rows(list(ids))
    if (rows < 0).any():
        bad = ids[rows < 0][0]
        raise HarnessError(
            f"{int((rows < 0).sum())} scored ids are not in pool {pool.id!r} (e.g. {bad}); score the track's pool"
        )
    counts = pool.token_counts(track.tokenizer)
    if counts is None:
        counts = _count_tokens(pool, track, rows)
        per_doc = np.array([counts[int(r)] for r in rows], np.int64) + 1
    else:
        per_doc = np.asarray(counts, np.int64)[rows] + 1
    cum = np.cumsum(per_doc)
    k = int(np.searchsorted(cum, track.tokens, side="right"))
    if k == 0:
        raise HarnessError(
            f"the first document alone ({int(per_doc[0])} tokens) exceeds the budget of {track.tokens:,}"
        )
    return [str(i) for i in ids[:k]], int(cum[k - 1])


def _count_tokens(pool: Any, track: Any, rows: np.ndarray) -> dict[int, int]:
    """Tokens per row when the pool index has no token counts for this tokenizer (reads the texts)."""
    from harness.tokenizer import load_tokenizer

    tok = load_tokenizer(track.tokenizer)
    out: dict[int, int] = {}
    batch: list[tuple[int, str]] = []
    for row, d in pool.read_rows(rows):
        batch.append((row, pool.text_of(d)))
        if len(batch) == 4096:
            out.update(
                (r, len(e.ids)) for (r, _), e in zip(batch, tok.encode_batch([t for _, t in batch]), strict=True)
            )
            batch = []
    out.update((r, len(e.ids)) for (r, _), e in zip(batch, tok.encode_batch([t for _, t in batch]), strict=True))
    return out
