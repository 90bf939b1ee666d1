"""The leaderboard's columns and rows: one registry says each column's label, data key, best-first direction
and format, so the static HTML, the JavaScript sorter and the CSV/JSON downloads agree.

Direction is the order of the first click on a header: "desc" puts high values first (accuracies, sizes,
newest dates), "asc" low values first (rank, losses, bits per byte, names). Aggregate columns take their
direction from the record (`Aggregate.higher_is_better`), so a lower-is-better aggregate sorts correctly without
a code change. Aggregates are keyed by name *and* version: values of different versions never share a column.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.leaderboard.bands import mark_rows, value_of
from harness.records import Record

Direction = Literal["asc", "desc"]
Format = Literal["rank", "text", "score", "tokens", "passes", "date"]


@dataclass(frozen=True)
class Column:
    """One sortable column of a track's table."""

    key: str
    label: str
    direction: Direction
    format: Format
    description: str
    version: str = ""


#: Columns every track has, before and after its aggregate columns.
LEADING = (
    Column("rank", "Rank", "asc", "rank", "Rank by the primary aggregate (entries without it are unranked)."),
    Column("name", "Entry", "asc", "text", "Entry name and authors; follow it for the full record."),
)
TRAILING = (
    Column("band", "± 95%", "asc", "text", "Half-width of the 95% interval of the primary score (seeds + examples)."),
    Column("flags", "Flags", "desc", "text", "≈: not distinguishable from the next rank at 95%; contamination found."),
    Column(
        "checked",
        "Checked",
        "asc",
        "text",
        "verified: train, eval or data (its bundle re-derived by harness verify at that level), or self-reported.",
    ),
    Column("tokens_seen", "Tokens", "desc", "tokens", "Tokens the model was trained on."),
    Column("passes", "Passes", "desc", "passes", "Passes over the subset (tokens seen / subset tokens)."),
    Column("subset_tokens", "Subset size", "desc", "tokens", "Tokens in the subset (one pass)."),
    Column("created_at", "Date", "desc", "date", "When the result was recorded (UTC)."),
)


def aggregate_key(name: str, version: object) -> str:
    return f"agg:{name}@{version}"


@dataclass(frozen=True)
class TrackTable:
    """Everything the site shows for one track, rows sorted by rank."""

    track: str
    primary: str  # key of the primary aggregate column
    primary_name: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...]
    records: dict[str, Record]  # entry id -> record
    hidden_aggregates: int = 0  # aggregate columns left out by MAX_AGGREGATE_COLUMNS

    @property
    def aggregate_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.key.startswith("agg:"))


#: Aggregate columns a track's table shows at most: the most common ones (a record holds at most 16 aggregates, so
#: honest records of one suite never reach it; records each naming other aggregates would otherwise grow every row
#: of the table by each of them). Every entry's page still lists all of its own.
MAX_AGGREGATE_COLUMNS = 24


def _aggregate_columns(records: list[Record], primary_key: str) -> tuple[list[Column], int]:
    """The track's aggregate columns (the primary first, then by name) and how many were left out by the cap."""
    seen: dict[str, Column] = {}
    count: Counter[str] = Counter()
    for record in records:
        for name, agg in record.evaluation.aggregates.items():
            key = aggregate_key(name, agg.version)
            count[key] += 1
            if key not in seen:
                direction: Direction = "desc" if agg.higher_is_better else "asc"
                better = "higher" if agg.higher_is_better else "lower"
                text = f"{agg.description} " if agg.description else ""
                desc = f"{text}Version {agg.version}, over {agg.n_tasks} task(s); {better} is better."
                seen[key] = Column(key, name, direction, "score", desc, str(agg.version))
    kept = sorted(seen, key=lambda k: (k != primary_key, -count[k], k))[:MAX_AGGREGATE_COLUMNS]
    # The primary aggregate first, then by name, so the ranking column sits next to the rank.
    columns = sorted((seen[k] for k in kept), key=lambda c: (c.key != primary_key, c.label, c.version))
    return columns, len(seen) - len(kept)


def _primary(records: list[Record]) -> tuple[str, object]:
    """The (name, version) most records of the track name as primary; newest records break ties."""
    votes = Counter((r.evaluation.primary_aggregate, r.primary.version) for r in records)
    newest = {}
    for r in records:
        key = (r.evaluation.primary_aggregate, r.primary.version)
        newest[key] = max(newest.get(key, ""), r.created_at)
    return max(votes, key=lambda k: (votes[k], newest[k]))


def _row(record: Record, agg_columns: list[Column], checked: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": record.entry_id,
        "name": record.submission.name,
        "authors": ", ".join(record.submission.authors),
        "tokens_seen": record.training.tokens_seen,
        "passes": record.training.passes,
        "subset_tokens": record.subset.tokens,
        "subset_documents": record.subset.documents,
        "created_at": record.created_at,
        "checked": checked,
    }
    by_key = {aggregate_key(n, a.version): a for n, a in record.evaluation.aggregates.items()}
    for col in agg_columns:
        agg = by_key.get(col.key)
        value = None if agg is None else value_of(record, col.label, agg.value)  # replicates' mean if any
        row[col.key] = value if value is None or math.isfinite(value) else None
    return row


def build_table(track: str, records: list[Record], checked: Mapping[str, str] | None = None) -> TrackTable:
    """Rows of one track ranked by its primary aggregate (ties share a rank; entries without it come last);
    `checked`: how each entry was checked, by entry id (absent: self-reported)."""
    primary_name, primary_version = _primary(records)
    agg_columns, hidden = _aggregate_columns(records, aggregate_key(primary_name, primary_version))
    primary_col = agg_columns[0]
    rows = [_row(r, agg_columns, (checked or {}).get(r.entry_id, "self-reported")) for r in records]
    sign = -1.0 if primary_col.direction == "desc" else 1.0
    rows.sort(key=lambda r: (r[primary_col.key] is None, sign * (r[primary_col.key] or 0.0), r["name"], r["id"]))
    previous, rank = None, 0
    for i, row in enumerate(rows, start=1):
        value = row[primary_col.key]
        if value is None:
            row["rank"] = None
            continue
        if value != previous:
            rank, previous = i, value
        row["rank"] = rank
    mark_rows(rows, {r.entry_id: r for r in records}, primary_name)
    return TrackTable(
        track=track,
        primary=primary_col.key,
        primary_name=primary_name,
        columns=(*LEADING, *agg_columns, *TRAILING),
        rows=tuple(rows),
        records={r.entry_id: r for r in records},
        hidden_aggregates=hidden,
    )


def format_value(value: Any, fmt: Format) -> str:
    """How a cell reads on the page (the JavaScript formatter mirrors this)."""
    if value is None:
        return "–"
    if fmt == "score":
        return f"{value:.3f}"
    if fmt == "tokens":
        return human(value)
    if fmt == "passes":
        return f"{value:.2f}"
    if fmt == "date":
        return str(value)[:10]
    return str(value)


def version_label(version: str) -> str:
    """'v2' for a bare number, the stamp itself otherwise (e.g. 'core@1/v2')."""
    return f"v{version}" if version.isdigit() else version


def human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"
