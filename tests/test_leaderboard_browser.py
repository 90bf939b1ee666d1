"""The built site in a real browser: headless Chromium opens index.html from disk (file://), sorts, filters,
pages, follows an entry link and shows the malicious entry name as text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_records import FIXTURES

from harness.cli import main
from harness.leaderboard.build import PAGE_SIZE, build_site
from harness.leaderboard.sample import synthetic_record

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
MALICIOUS = "<script>alert(1)</script>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"headless Chromium not installed at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors, pg.dialogs = [], []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("console", lambda msg: pg.errors.append(msg.text) if msg.type == "error" else None)
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    # Nothing may leave the machine: fail any request that is not a local file.
    pg.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    yield pg
    context.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "site"
    assert main(["leaderboard", "build", "--results", str(FIXTURES), "--out", str(out)]) == 0
    return out


def _column(page, track: str, header: str) -> list[str]:
    section = page.locator(f"#track-{track}")
    labels = [t.strip() for t in section.locator("thead th button").all_inner_texts()]
    index = next(i for i, label in enumerate(labels) if label.startswith(header))
    return [t.strip() for t in section.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()]


def _floats(cells: list[str]) -> list[float]:
    return [float(c) for c in cells if c != "–"]


def test_sort_filter_follow_and_escape(page, site: Path) -> None:
    page.goto((site / "index.html").as_uri())
    debug = page.locator("#track-debug")
    assert debug.locator("tbody tr").count() == 5
    assert _column(page, "debug", "Rank") == ["1", "2", "3", "4", "–"]

    # Sandbox_v1 is an accuracy: the first click puts the highest first; a second click reverses.
    header = debug.locator('th[data-key^="agg:Sandbox_v1"]')
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    scores = _column(page, "debug", "Sandbox_v1")
    assert _floats(scores) == sorted(_floats(scores), reverse=True) and scores[-1] == "–"
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    scores = _column(page, "debug", "Sandbox_v1")
    assert _floats(scores) == sorted(_floats(scores)) and scores[-1] == "–"  # missing values stay last

    # Bits per byte: lower is better, so the first click sorts ascending.
    bpb = debug.locator('th[data-key^="agg:heldout_bpb"]')
    bpb.locator("button").click()
    assert bpb.get_attribute("aria-sort") == "ascending"
    values = _floats(_column(page, "debug", "heldout_bpb"))
    assert values == sorted(values)
    bpb.locator("button").click()
    assert _floats(_column(page, "debug", "heldout_bpb")) == sorted(values, reverse=True)

    # Filter by text; the other track's table is untouched.
    debug.locator("input.filter").fill("RANDOM 10%")
    assert debug.locator("tbody tr").count() == 1
    assert debug.locator(".status").inner_text() == "Showing 1–1 of 1 entries (filtered from 5)"
    assert page.locator("#track-nano tbody tr").count() == 3
    debug.locator("input.filter").fill("script")
    link = debug.locator("tbody td.entry a")
    assert link.count() == 1 and link.inner_text() == MALICIOUS  # rendered as text, not markup
    assert debug.locator("tbody script").count() == 0

    link.click()
    page.wait_for_url("**/entries/debug-*.html")
    assert page.locator("h1").inner_text() == MALICIOUS
    assert page.locator("table.tasks tbody tr").count() == 4
    assert page.locator("svg.chart polyline").count() == 1
    record_href = page.locator("a.record-link").get_attribute("href")
    assert (site / "entries" / record_href).resolve().is_file()
    assert page.errors == [] and page.dialogs == []


def test_charts_and_downloads_load(page, site: Path) -> None:
    page.goto((site / "index.html").as_uri())
    images = page.locator("#track-nano .charts img")
    assert images.count() == 3
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    csv = page.locator('#track-nano a[href$="leaderboard.csv"]').get_attribute("href")
    assert (site / csv).read_text().count("\n") == 4  # header + 3 entries
    assert page.errors == []


def test_pages_through_many_entries(page, tmp_path: Path) -> None:
    n = PAGE_SIZE * 2 + 17
    records = [synthetic_record("nano", i, name=f"entry {i:04d}", curve_points=20) for i in range(n)]
    build_site(records, tmp_path / "site")
    page.goto((tmp_path / "site" / "index.html").as_uri())
    section = page.locator("#track-nano")
    assert section.locator("tbody tr").count() == PAGE_SIZE
    assert section.locator(".status").inner_text() == f"Showing 1–{PAGE_SIZE} of {n} entries"
    section.locator("button.next").click()
    section.locator("button.next").click()
    assert section.locator("tbody tr").count() == 17 and section.locator("button.next").is_disabled()
    assert section.locator(".page").inner_text() == "Page 3 of 3"
    section.locator("input.filter").fill("entry 000")
    assert section.locator("tbody tr").count() == 10 and section.locator(".page").inner_text() == "Page 1 of 1"
    assert page.errors == []


def _contaminated(record, items: dict[str, list[str]]):
    from harness.records import Record

    data = record.to_data()
    tasks = {t: {"items": 250, "too_short": 0, "contaminated": len(ids), "item_ids": ids,
                 "documents": {i: ["d" * 32] for i in ids}} for t, ids in items.items()}  # fmt: skip
    data["contamination"] = {
        "suite": "sandbox", "ngram": 13, "min_coverage": 0.95, "documents_scanned": 1000, "contaminated_documents": 1,
        "contaminated_items": sum(len(i) for i in items.values()), "items": 850, "tasks": tasks, "rule": "report",
    }  # fmt: skip
    return Record.from_data(data, "<contaminated>")


def test_bands_noise_floor_and_contamination_flags(page, tmp_path: Path) -> None:
    from test_stats import replicated

    records = [
        replicated(11, "Random sample", [0.30, 0.33, 0.31], bpb=2.2),
        replicated(12, "good", [0.62, 0.61, 0.63], bpb=1.8),
        replicated(13, "as good", [0.61, 0.63, 0.62], bpb=1.8),
        _contaminated(replicated(14, "leaky", [0.45, 0.46, 0.44], bpb=2.0), {"fact_cloze": ["fact-0001", "fact-0002"]}),
    ]
    build_site(records, tmp_path / "site")
    page.goto((tmp_path / "site" / "index.html").as_uri())
    section = page.locator("#track-debug")
    names = [cell.split("\n")[0] for cell in _column(page, "debug", "Entry")]
    assert sorted(names[:2]) == ["as good", "good"] and names[2:] == ["leaky", "Random sample"]
    bands = _column(page, "debug", "± 95%")
    assert all(b.startswith("± 0.") and b.endswith("(3 seeds)") for b in bands)
    flags = _column(page, "debug", "Flags")
    assert flags[0].startswith("≈ rank 2 (not distinguishable at 95%)")  # good and as good: within noise
    assert flags[1] == "" and flags[3] == ""  # the others are told apart
    assert flags[2] == "contaminated: 2 items in 1 documents"
    floor = section.locator("p.noise-floor").inner_text()
    std = records[0].replicates.aggregates["Sandbox_v1"]["std"]
    assert f"seed standard deviation {std:.4f} of Sandbox_v1 for Random sample (3 seeds)" in floor
    section.locator("tbody td.entry a", has_text="leaky").click()
    page.wait_for_url("**/entries/debug-*.html")
    assert page.locator("table.replicates tbody tr").count() == 2  # Sandbox_v1 and heldout_bpb
    assert "seed 124" in page.locator("table.replicates thead").inner_text()
    assert "fact-0001: " + "d" * 32 in page.locator("table.contamination").inner_text()
    assert "1 of 1,000 documents quote 2 of 850 evaluation items" in page.locator("p.contamination").inner_text()
    assert page.errors == []
