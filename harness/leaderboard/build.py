"""`harness leaderboard build`: a static site generated from result records.

The site opens from the file system and from any static host: relative links only, no network, no build tool.
Layout of the output folder:

    index.html                          one table per track (first page rendered; the script pages the rest)
    entries/<entry_id>.html             harness.leaderboard.entry: one page per entry
    reliability/<track>.html            harness.leaderboard.reliability: reliability and transfer to the next rung
    records/<track>/<entry_id>.json     the records themselves
    downloads/<track>/leaderboard.{json,csv}
    charts/<track>-{size,passes,loss}.svg
    assets/{style.css,app.js,data.js}   data.js holds every row for sorting, filtering and paging

Every file of the store is untrusted input: it is read only if it is a regular file of bounded size (no links,
FIFOs or devices: harness.records.parse.read_regular), every string and number in it keeps one schema
(harness.fields), a name that becomes a path is one plain component and every path written is checked to stay in
the site (harness.leaderboard.paths); a bad file is skipped with one line naming it and the reason. The site's
copies of the records are copies: a write into a built site never reaches the store.

Every string from a record goes through `html.escape` here and through `textContent` in the script, so a name
like `<script>` renders as text. The site is built in a temporary folder and swapped into place at the end, so
a static host never serves half a site; an existing output folder is replaced only if an earlier build made it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import UsageError
from harness.leaderboard.bands import noise_floor
from harness.leaderboard.charts import track_charts
from harness.leaderboard.columns import Column, TrackTable, build_table, format_value, version_label
from harness.leaderboard.downloads import write_downloads
from harness.leaderboard.entry import write_entry
from harness.leaderboard.markup import e, template
from harness.leaderboard.paths import site_path
from harness.leaderboard.reliability import write_reliability_pages
from harness.records import Record, ResultsStore, Stored, StoreProblem, paused_gc
from harness.resources import resource_dir

#: Rows per page of a track's table (the index renders the first page; the script pages through the rest).
PAGE_SIZE = 100
#: Builds with at least this many entries write their pages in parallel processes (fork) ...
PARALLEL_ABOVE = 1000
#: ... using at most this many.
MAX_WORKERS = 8
#: Written into every site so a later build knows it may replace the folder.
MARKER = ".harness-site"


@dataclass(frozen=True)
class SiteSummary:
    """What a build produced."""

    out: Path
    entries: dict[str, int]  # track -> entries
    index_bytes: int
    problems: list[StoreProblem] = field(default_factory=list)


def build_from_store(url: str, out: Path, *, title: str = "harness leaderboard", progress: bool = False) -> SiteSummary:
    """Load every record of the store at `url` (skipping invalid files, reported) and build the site."""
    records, problems, sources = ResultsStore(url).load()
    if not records:
        detail = f" ({len(problems)} files skipped: {problems[0].message})" if problems else ""
        raise UsageError(f"no valid records in results store {url}{detail}; add records with `harness submit`.")
    from harness.leaderboard.experiments import read_summaries

    experiments, skipped = read_summaries(url)
    summary = build_site(records, out, title=title, progress=progress, experiments=experiments, sources=sources)
    return SiteSummary(summary.out, summary.entries, summary.index_bytes, problems + skipped + summary.problems)


def build_site(
    records: list[Record], out: Path, *, title: str = "harness leaderboard", progress: bool = False,
    experiments: list[dict[str, Any]] | None = None, sources: Mapping[str, Stored] | None = None,
) -> SiteSummary:  # fmt: skip
    """Write the static site for `records` into `out` (replacing an earlier build there).

    `sources`: each record as stored, by entry id (`ResultsStore.load`); the site's copy of a record is then the
    stored bytes (a new file, see `_copy_record`), else the record serialized again. An experiment summary that
    breaks its schema is skipped and named in the summary's `problems`.
    """
    with paused_gc():
        return _build_site(records, Path(out), title, progress, experiments or [], sources or {})


def _build_site(
    records: list[Record], out: Path, title: str, progress: bool, experiments: list[dict[str, Any]],
    sources: Mapping[str, Stored],
) -> SiteSummary:  # fmt: skip
    _check_out(out)
    by_track: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_track[record.track.name].append(record)
    # A track's compute multipliers sit together, smallest first (nano-0.5x, nano, nano-2x: base, then scale).
    order = sorted(by_track, key=lambda t: (by_track[t][0].track.base or t, by_track[t][0].track.scale, t))
    checked = {entry: stored.checked for entry, stored in sources.items()}
    tables = [build_table(track, by_track[track], checked) for track in order]
    from harness.io.leftovers import owner_tag, sweep

    for kind in ("build", "old"):  # half-built or half-removed folders of killed builds
        sweep(out.parent, f".{out.name}.{kind}-*")
    tmp = out.parent / f".{out.name}.build-{owner_tag()}"
    tmp.mkdir(parents=True)
    try:
        problems = _write_site(tables, tmp, title, progress, experiments, sources)
        index_bytes = (tmp / "index.html").stat().st_size
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SiteSummary(out, {t.track: len(t.rows) for t in tables}, index_bytes, problems)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise UsageError(f"--out {out} exists and is not a site built by harness; choose a new or empty folder.")


def _swap(tmp: Path, out: Path) -> None:
    from harness.io.leftovers import owner_tag

    old = out.parent / f".{out.name}.old-{owner_tag()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _write_site(
    tables: list[TrackTable], root: Path, title: str, progress: bool, experiments: list[dict[str, Any]],
    sources: Mapping[str, Stored],
) -> list[StoreProblem]:  # fmt: skip
    from rich.progress import Progress

    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    for sub in ("entries", "assets", "charts"):
        (root / sub).mkdir()
    shutil.copytree(resource_dir("leaderboard") / "static", root / "assets", dirs_exist_ok=True)
    (root / MARKER).write_text(f"built by harness {__version__} at {generated}\n")
    total = sum(len(t.rows) for t in tables)
    for table in tables:
        site_path(root, "records", table.track).mkdir(parents=True)
    records = [r for t in tables for r in t.records.values()]
    charts: dict[str, dict[str, str]] = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("entry pages", total=total)
        chart_task = bar.add_task("charts and downloads", total=len(tables))

        def charts_and_downloads() -> None:
            for table in tables:
                charts[table.track] = track_charts(table, root / "charts")
                write_downloads(table, site_path(root, "downloads", table.track), generated)
                bar.advance(chart_task)

        _write_entries(records, sources, root, title, lambda n: bar.advance(task, n), meanwhile=charts_and_downloads)
    _write_data_js(tables, root / "assets" / "data.js")
    notes = write_reliability_pages({t.track: list(t.records.values()) for t in tables}, root, title)
    sections = "\n".join(_track_section(t, charts[t.track], notes[t.track]) for t in tables)
    nav = " · ".join(f'<a href="#track-{e(t.track)}">{e(t.track)} ({len(t.rows)})</a>' for t in tables)
    from harness.leaderboard.experiments import write_pages

    exp_nav, problems = write_pages(experiments, root, title, {r.entry_id for r in records})
    if exp_nav:
        nav += " · " + exp_nav
    summary = f"{total} entries on {len(tables)} track{'s' if len(tables) != 1 else ''}."
    page = template("index.html").substitute(
        title=e(title), summary=e(summary), generated_at=e(generated), harness_version=e(__version__),
        nav=nav, sections=sections,
    )  # fmt: skip
    (root / "index.html").write_text(page, encoding="utf-8")
    return problems


def _write_data_js(tables: list[TrackTable], path: Path) -> None:
    data = {
        t.track: {
            "primary": t.primary,
            "pageSize": PAGE_SIZE,
            "columns": [{"key": c.key, "format": c.format, "direction": c.direction} for c in t.columns],
            "rows": t.rows,
        }
        for t in tables
    }
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Safe even if this is ever inlined into a page: no '</script>' and no JS line terminators in string literals.
    blob = blob.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    path.write_text(f"window.HARNESS_LEADERBOARD = {blob};\n", encoding="utf-8")


def _header_cell(col: Column, table: TrackTable) -> str:
    version = f' <span class="version">{e(version_label(col.version))}</span>' if col.version else ""
    primary = ' <span class="badge">primary</span>' if col.key == table.primary else ""
    arrow = "↓ best first" if col.direction == "desc" else "↑ best first"
    sort = ' aria-sort="ascending"' if col.key == "rank" else ""
    return (
        f'<th scope="col" data-key="{e(col.key)}" data-dir="{col.direction}" data-format="{col.format}"'
        f'{sort} title="{e(col.description)} First click: {arrow}."><button type="button">{e(col.label)}'
        f"{version}{primary}</button></th>"
    )


def _cell(col: Column, row: dict[str, Any]) -> str:
    value = row.get(col.key)
    if col.key == "name":
        authors = f'<div class="authors">{e(row["authors"])}</div>' if row["authors"] else ""
        return f'<td class="entry"><a href="entries/{e(row["id"])}.html">{e(value)}</a>{authors}</td>'
    title = f' title="{e(row["subset_documents"])} documents"' if col.key == "subset_tokens" else ""
    cls = "text" if col.format == "text" else "num"
    return f'<td class="{cls}"{title}>{e(format_value(value, col.format))}</td>'


def _track_section(table: TrackTable, charts: dict[str, str], reliability: str = "") -> str:
    t = e(table.track)
    head = "".join(_header_cell(c, table) for c in table.columns)
    body = "\n".join("<tr>" + "".join(_cell(c, row) for c in table.columns) + "</tr>" for row in table.rows[:PAGE_SIZE])
    aggs = ", ".join(f"{e(c.label)} ({e(version_label(c.version))})" for c in table.aggregate_columns)
    if table.hidden_aggregates:
        aggs += f" ({table.hidden_aggregates} rarer aggregates not shown here: see each entry's page)"
    figures = "".join(
        f'<img src="charts/{e(name)}" alt="{e(table.track)}: {e(kind)} chart" loading="lazy" width="520">'
        for kind, name in charts.items()
    )
    n = len(table.rows)
    pages = max(1, -(-n // PAGE_SIZE))
    ref = next(iter(table.records.values())).track
    scale = f" · {ref.scale:g}x the compute of {e(ref.base)}" if ref.base and ref.base != table.track else ""
    return f"""<section class="track" id="track-{t}" data-track="{t}">
<h2>Track {t}{scale}</h2>
<p class="meta">{n} entries ranked by <strong>{e(table.primary_name)}</strong> (the replicates' mean where an
entry has them). Aggregates: {aggs}.
Download every entry: <a href="downloads/{t}/leaderboard.csv" download>leaderboard.csv</a> ·
<a href="downloads/{t}/leaderboard.json" download>leaderboard.json</a></p>
<p class="noise-floor">{e(noise_floor(list(table.records.values()), table.primary_name).text(table.primary_name))}</p>
{reliability}
<div class="charts">{figures}</div>
<div class="controls"><label>Filter <input type="search" class="filter" placeholder="name, author, entry id, verified"
aria-label="filter track {t}"></label> <span class="status" aria-live="polite">Showing
{min(n, PAGE_SIZE)} of {n} entries</span></div>
<div class="scroll"><table class="board"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></div>
<div class="pager"><button type="button" class="prev" disabled>‹ Previous</button>
<span class="page">Page 1 of {pages}</span>
<button type="button" class="next"{" disabled" if pages == 1 else ""}>Next ›</button></div>
</section>"""


#: What forked workers read (inherited copy-on-write, so records are never pickled): records, sources, root, title.
_FORK_STATE: tuple[list[Record], Mapping[str, Stored], Path, str] | None = None


def _workers(n: int) -> int:
    """Processes for writing entry pages: one per CPU for large builds where fork is available, else one."""
    if n < PARALLEL_ABOVE or sys.platform != "linux":
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1, n // (PARALLEL_ABOVE // 2)))


def _write_chunk(span: tuple[int, int]) -> int:
    records, sources, root, title = _FORK_STATE  # type: ignore[misc]
    for record in records[span[0] : span[1]]:
        write_entry(record, sources.get(record.entry_id), root, title)
    return span[1] - span[0]


def _write_entries(
    records: list[Record], sources: Mapping[str, Stored], root: Path, title: str, advance: Callable[[int], None],
    meanwhile: Callable[[], None],
) -> None:  # fmt: skip
    """Every entry page and record copy; in forked worker processes for large builds (it is most of the work),
    while this process runs `meanwhile` (the charts and downloads) instead of waiting; else one after the other."""
    global _FORK_STATE
    workers = _workers(len(records))
    if workers == 1:
        for record in records:
            write_entry(record, sources.get(record.entry_id), root, title)
            advance(1)
        meanwhile()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(50, len(records) // (workers * 8))
    spans = [(i, min(i + chunk, len(records))) for i in range(0, len(records), chunk)]
    _FORK_STATE = (records, sources, root, title)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = pool.map(_write_chunk, spans)  # forks the workers now; this process draws meanwhile
            meanwhile()
            for count in done:
                advance(count)
    finally:
        _FORK_STATE = None
