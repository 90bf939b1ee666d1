"""Per-track downloads: `leaderboard.json` (nested, every aggregate with version and direction) and
`leaderboard.csv` (flat, one column per aggregate named `<name> (v<version>)`), both holding every entry."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from harness.leaderboard.columns import TrackTable, version_label

#: Spreadsheets run a cell starting with one of these as a formula; such text cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _entry(table: TrackTable, row: dict[str, Any]) -> dict[str, Any]:
    r = table.records[row["id"]]
    return {
        "rank": row["rank"],
        "entry_id": r.entry_id,
        "name": r.submission.name,
        "authors": list(r.submission.authors),
        "contact": r.submission.contact,
        "description": r.submission.description,
        "link": r.submission.link,
        "created_at": r.created_at,
        "track": {"name": r.track.name, "version": r.track.version, "sha256": r.track.sha256},
        "pool": r.pool,
        "subset": {"sha256": r.subset.sha256, "documents": r.subset.documents, "tokens": r.subset.tokens},
        "tokenizer_sha256": r.tokenizer_sha256,
        "trainer": r.training.trainer,
        "tokens_seen": r.training.tokens_seen,
        "passes": r.training.passes,
        "final_loss": r.training.final_loss,
        "harness_version": r.versions.harness,
        "git_commit": r.versions.git_commit,
        "suite": r.evaluation.suite,
        "suite_version": r.evaluation.suite_version,
        "primary_aggregate": r.evaluation.primary_aggregate,
        "aggregates": {
            name: {
                "value": a.value,
                "version": a.version,
                "n_tasks": a.n_tasks,
                "missing": list(a.missing),
                "higher_is_better": a.higher_is_better,
            }
            for name, a in r.evaluation.aggregates.items()
        },
        "record": f"../../records/{r.track.name}/{r.entry_id}.json",
    }


def _safe_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_downloads(table: TrackTable, out_dir: Path, generated_at: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [_entry(table, row) for row in table.rows]
    columns = [
        {"key": c.key, "label": c.label, "version": c.version, "direction": c.direction, "description": c.description}
        for c in table.columns
    ]
    doc = {"track": table.track, "generated_at": generated_at, "ranked_by": table.primary_name,
           "columns": columns, "entries": entries}  # fmt: skip
    # Compact: the C encoder writes 10,000 entries several times faster than an indented dump.
    (out_dir / "leaderboard.json").write_text(
        json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    aggs = table.aggregate_columns
    header = ["rank", "entry_id", "name", "authors"]
    header += [f"{c.label} ({version_label(c.version)})" for c in aggs]
    header += ["tokens_seen", "passes", "subset_tokens", "subset_documents", "created_at", "track_version",
               "subset_sha256", "trainer", "harness_version", "git_commit"]  # fmt: skip
    with open(out_dir / "leaderboard.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row, entry in zip(table.rows, entries, strict=True):
            writer.writerow(
                [row["rank"], entry["entry_id"], _safe_text(entry["name"]), _safe_text("; ".join(entry["authors"]))]
                + [row[c.key] for c in aggs]
                + [entry["tokens_seen"], entry["passes"], entry["subset"]["tokens"], entry["subset"]["documents"],
                   entry["created_at"], entry["track"]["version"], entry["subset"]["sha256"], entry["trainer"],
                   entry["harness_version"], entry["git_commit"]]
            )  # fmt: skip
