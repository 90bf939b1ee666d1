"""Experiment pages of the leaderboard: one page per sweep reported into the results store.

`harness sweep report` writes `<results>/_experiments/<name>/experiment.json` (the report's summary table and its
cells with their entry ids) into the same store as the cells' records; the site builder turns each into
`experiments/<name>.html`: the factors, the table with its noise bands, and a link to every cell's entry page.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

#: Folder of the results store that holds experiment summaries (never a track name: tracks have no '_').
FOLDER = "_experiments"


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def publish_summary(results_url: str, summary: dict[str, Any]) -> str:
    """Write an experiment's summary into the results store (one PUT / atomic rename); returns its path."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(results_url.rstrip("/"))
    path = f"{root.rstrip('/')}/{FOLDER}/{summary['experiment']}/experiment.json"
    blob = json.dumps(summary, indent=1, allow_nan=False).encode()
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        from harness.io.files import write_bytes_atomic

        write_bytes_atomic(Path(path), blob)
    else:
        fs.pipe_file(path, blob)
    return path


def read_summaries(results_url: str) -> list[dict[str, Any]]:
    """Every experiment summary in the store (unreadable ones are skipped)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(results_url.rstrip("/"))
    out = []
    for path in sorted(fs.glob(f"{root.rstrip('/')}/{FOLDER}/*/experiment.json")):
        try:
            out.append(json.loads(fs.cat_file(path)))
        except (OSError, json.JSONDecodeError):
            continue
    return out


def fmt_value(v: Any) -> str:
    """A summary cell: '–' for none, 4 decimals below 1000, thousands separators above (the text report's too)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def write_pages(summaries: list[dict[str, Any]], root: Path, title: str, entry_ids: set[str]) -> str:
    """Write experiments/<name>.html for each summary; returns the index's navigation links ('' for none)."""
    if not summaries:
        return ""
    (root / "experiments").mkdir(exist_ok=True)
    links = []
    for s in summaries:
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
        (root / "experiments" / f"{name}.html").write_text(page, encoding="utf-8")
        links.append(f'<a href="experiments/{e(name)}.html">experiment {e(name)}</a>')
    return " · ".join(links)
