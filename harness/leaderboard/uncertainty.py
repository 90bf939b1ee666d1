"""An entry page's replicate table (per-seed values, mean ± std, 95% interval) and contamination report."""

from __future__ import annotations

import html

from harness.records import Record


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[object]], cls: str) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def replicates_html(record: Record) -> str:
    """Per aggregate: every seed's value, the mean ± std and the 95% interval; a note for a single replicate."""
    reps = record.replicates
    if reps is None:
        return '<p class="muted replicates">No replicate data (a record written before replicates were kept).</p>'
    headers = ["aggregate", *(f"seed {s}" for s in reps.seeds), "mean", "std", "95% interval"]
    rows = [
        [name, *(_num(r.aggregates.get(name)) for r in reps.runs), _num(stat["mean"]), _num(stat["std"]),
         f"[{stat['low']:.4f}, {stat['high']:.4f}]"]
        for name, stat in sorted(reps.aggregates.items())
    ]  # fmt: skip
    return f'<h3>Replicates</h3>{_table(headers, rows, "replicates")}<p class="muted">{_e(reps.note)}</p>'


def contamination_html(record: Record) -> str:
    """Per task: items checked, contaminated, and the documents quoting each contaminated item."""
    c = record.contamination
    if c is None:
        return '<p class="muted contamination">Contamination was not checked (a record from before the check).</p>'
    verdict = (
        f"{c.contaminated_documents} of {c.documents_scanned:,} documents quote {c.contaminated_items} of "
        f"{c.items} evaluation items"
        if c.contaminated_items
        else f"none of {c.documents_scanned:,} documents quotes any of the {c.items} evaluation items"
    )
    rows = [
        [task, t["items"], t["contaminated"], "; ".join(f"{i}: {', '.join(d)}" for i, d in t["documents"].items())]
        for task, t in sorted(c.tasks.items())
    ]
    cls = "warn" if c.contaminated_items else "muted"
    return (
        f'<h3>Contamination</h3><p class="{cls} contamination">{_e(verdict)} ({c.ngram}-grams of normalised words, '
        f"coverage ≥ {c.min_coverage:g}; track rule: {_e(c.rule)}).</p>"
        + _table(["task", "items", "contaminated", "quoted by (item: documents)"], rows, "contamination")
    )
