"""Experiment pages of the leaderboard: one page per sweep reported into the results store.

`harness sweep report` writes `<results>/_experiments/<name>/experiment.json` (the report's summary table and its
cells with their entry ids) into the same store as the cells' records; the site builder turns each into
`experiments/<name>.html`: the factors, the table with its noise bands, and a link to every cell's entry page.

A summary in the store is untrusted input like a record: it is read only if it is a regular file of at most
MAX_FILE_BYTES in a real folder (no links), and used only if it keeps its schema (`summary_problem`: the fields
the page reads, with their types; every string and number by harness.fields.data_problem; its name a plain file
name equal to its folder's). Anything else is skipped and named with the reason.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness.fields import data_problem, name_problem
from harness.leaderboard.paths import site_path
from harness.records import StoreProblem
from harness.records.sidecars import read_sidecars, write_sidecar

#: Folder of the results store that holds experiment summaries (never a track name: tracks have no '_').
FOLDER = "_experiments"
#: Most rows, cells and factors of one summary (a sweep of 10,000 cells is far beyond any the harness runs).
MAX_ROWS = 10_000
MAX_FACTORS = 16


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def publish_summary(results_url: str, summary: dict[str, Any]) -> str:
    """Write an experiment's summary into the results store (one PUT / atomic rename); returns its path."""
    blob = json.dumps(summary, indent=1, allow_nan=False).encode()
    return write_sidecar(results_url, FOLDER, summary["experiment"], "experiment.json", blob)


def read_summaries(results_url: str) -> tuple[list[dict[str, Any]], list[StoreProblem]]:
    """Every valid experiment summary in the store, and each skipped file with the reason."""
    found, problems = read_sidecars(results_url, FOLDER, "experiment.json", "experiment summary")
    out = []
    for folder, shown, data in found:
        if problem := summary_problem(data, folder):
            problems.append(StoreProblem(shown, f"not a valid experiment summary: {problem}"))
        else:
            out.append(data)
    return out, problems


def summary_problem(data: Any, folder: str | None = None) -> str | None:
    """Why `data` is not an experiment summary the site can show (None when it is); `folder`: the store folder it
    was read from, whose name its `experiment` must equal."""
    if not isinstance(data, dict):
        return f"must be a JSON object, got {type(data).__name__}"
    kinds = {"experiment": str, "description": str, "track": str, "factors": list, "summary": list, "cells": list}
    for key, kind in kinds.items():
        if not isinstance(data.get(key), kind):
            return f"'{key}' must be {'text' if kind is str else 'a list'}, got {type(data.get(key)).__name__}"
    if problem := name_problem("'experiment'", data["experiment"]):
        return problem
    if folder is not None and data["experiment"] != folder:
        return f"'experiment' is {data['experiment']!r} but the summary lies in folder {folder!r}"
    factors, rows, cells = data["factors"], data["summary"], data["cells"]
    for key, items, limit in (
        ("factors", factors, MAX_FACTORS),
        ("summary", rows, MAX_ROWS),
        ("cells", cells, MAX_ROWS),
    ):
        if len(items) > limit:
            return f"'{key}' holds {len(items):,} items; at most {limit:,} are allowed"
    if not all(isinstance(f, str) for f in factors):
        return "'factors' must be a list of names"
    needed = [f for f in factors if f != "seed"] + ["seeds", "tokens_seen", "unique_passes"]
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"'summary[{i}]' must be an object, got {type(row).__name__}"
        if missing := [k for k in needed if k not in row]:
            return f"'summary[{i}]' lacks {', '.join(missing)}"
        for k in ("loss", "accuracy", "perplexity", "primary"):
            band = row.get(f"{k}_band")
            if band is not None and (isinstance(band, bool) or not isinstance(band, int | float)):
                return f"'summary[{i}].{k}_band' must be a number, got {band!r}"
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not all(isinstance(cell.get(k), str) for k in ("entry_id", "cell", "track")):
            return f"'cells[{i}]' must be an object with text 'entry_id', 'cell' and 'track'"
    return data_problem(data)


def fmt_value(v: Any) -> str:
    """A summary cell: '–' for none, 4 decimals below 1000, thousands separators above (the text report's too)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def write_pages(
    summaries: list[dict[str, Any]], root: Path, title: str, entry_ids: set[str]
) -> tuple[str, list[StoreProblem]]:
    """Write experiments/<name>.html for each valid summary; returns the index's navigation links ('' for none)
    and each summary skipped (by position and name) with the reason."""
    links: list[str] = []
    problems = []
    for i, s in enumerate(summaries):
        if problem := summary_problem(s):
            name = s.get("experiment") if isinstance(s, dict) else None
            shown = f"<experiment summary {i + 1}{f' {name!r}' if isinstance(name, str) else ''}>"
            problems.append(StoreProblem(shown, f"not a valid experiment summary: {problem}"))
            continue
        name = s["experiment"]
        factors = [f for f in s["factors"] if f != "seed"]
        metrics = [
            k for k in ("loss", "accuracy", "perplexity", "primary") if any(r.get(k) is not None for r in s["summary"])
        ]
        head = "".join(f"<th>{e(h)}</th>" for h in [*factors, "seeds", "tokens seen", "unique passes", *metrics])
        rows = []
        for r in s["summary"]:
            cells = [fmt_value(r[f]) for f in factors] + [
                fmt_value(r["seeds"]),
                fmt_value(r["tokens_seen"]),
                fmt_value(r["unique_passes"]),
            ]
            for k in metrics:
                band = r.get(f"{k}_band")
                cells.append(fmt_value(r[k]) + ("" if band is None else f" ± {band:.4f}"))
            rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        entries = "".join(
            f'<li><a href="../entries/{e(c["entry_id"])}.html">{e(c["cell"])}</a> ({e(c["track"])})</li>'
            if c["entry_id"] in entry_ids else f"<li>{e(c['cell'])} ({e(c['track'])}, not in this site)</li>"
            for c in s["cells"]
        )  # fmt: skip
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(name)} · {e(title)}</title><link rel="stylesheet" href="../assets/style.css"></head>
<body><header class="site"><p><a href="../index.html">← {e(title)}</a></p><h1>Experiment {e(name)}</h1>
<p>{e(s["description"])}</p><p class="muted">Track {e(s["track"])}; factors: {e(", ".join(s["factors"]))}.</p>
</header><main><section><h2>Results</h2>
<div class="scroll"><table class="board"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>
<p class="muted">Means over replicate seeds; ± is 1 s.d. over seeds (2 or more), else 1 s.e. over the held-out
evaluation windows. Loss, accuracy and perplexity are on the suite's clean held-out text.</p></section>
<section><h2>Cells</h2><ul>{entries}</ul></section></main></body></html>
"""
        (root / "experiments").mkdir(exist_ok=True)
        site_path(root, "experiments", name, suffix=".html").write_text(page, encoding="utf-8")
        links.append(f'<a href="experiments/{e(name)}.html">experiment {e(name)}</a>')
    return " · ".join(links), problems
