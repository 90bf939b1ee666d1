"""The static leaderboard site: built from fixture records of two tracks, escaping, ranking, downloads, publish."""

from __future__ import annotations

import csv
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from test_records import FIXTURES, s3_endpoint  # noqa: F401  (s3_endpoint is a fixture)

from cli_helpers import command_options, subcommands
from harness.cli import main
from harness.leaderboard.build import MARKER, build_site
from harness.leaderboard.columns import build_table
from harness.leaderboard.sample import synthetic_record
from harness.records import Record, ResultsStore

MALICIOUS = "<script>alert(1)</script>"


def fixture_records() -> list[Record]:
    return [Record.from_json(p.read_bytes(), str(p)) for p in sorted(FIXTURES.glob("*/*.json"))]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lb") / "site"
    assert main(["leaderboard", "build", "--results", str(FIXTURES), "--out", str(out)]) == 0
    return out


def test_command_line_is_pinned() -> None:
    assert subcommands("leaderboard") == {"build", "publish", "add"}
    assert command_options("leaderboard", "build") == {"--results", "--out", "--title"}
    assert command_options("leaderboard", "publish") == {"--site", "--out", "--endpoint-url"}
    assert command_options("leaderboard", "add") == {"records", "--results", "--verify"}


def test_site_has_every_page_chart_and_download(site: Path) -> None:
    records = fixture_records()
    assert {r.track.name for r in records} == {"debug", "nano"}
    for r in records:
        assert (site / "entries" / f"{r.entry_id}.html").is_file()
        copy = site / "records" / r.track.name / f"{r.entry_id}.json"
        assert copy.read_bytes() == (FIXTURES / r.track.name / f"{r.entry_id}.json").read_bytes()  # as stored
        assert Record.from_json(copy.read_text()) == r
    for track in ("debug", "nano"):
        for kind in ("size", "passes", "loss"):
            assert (site / "charts" / f"{track}-{kind}.svg").read_text().lstrip().startswith("<?xml")
        assert (site / "downloads" / track / "leaderboard.csv").is_file()
    index = (site / "index.html").read_text()
    assert 'id="track-debug"' in index and 'id="track-nano"' in index
    assert "http://" not in index.replace("http://www.w3.org", "") and "https://" not in index  # nothing remote


def test_strings_from_records_are_escaped(site: Path) -> None:
    bad = next(r for r in fixture_records() if r.submission.name == MALICIOUS)
    index = (site / "index.html").read_text()
    entry = (site / "entries" / f"{bad.entry_id}.html").read_text()
    for page in (index, entry):
        assert MALICIOUS not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    data_js = (site / "assets" / "data.js").read_text()
    assert "<" not in data_js and "\\u003cscript>alert(1)\\u003c/script>" in data_js


def test_ranking_direction_and_unranked_entries(site: Path) -> None:
    doc = json.loads((site / "downloads" / "debug" / "leaderboard.json").read_text())
    assert doc["ranked_by"] == "Sandbox_v1"
    directions = {c["label"]: c["direction"] for c in doc["columns"]}
    assert directions["Sandbox_v1"] == "desc" and directions["heldout_bpb"] == "asc" and directions["Rank"] == "asc"
    scores = [e["aggregates"]["Sandbox_v1"]["value"] for e in doc["entries"]]
    ranked = [s for s in scores if s is not None]
    assert ranked == sorted(ranked, reverse=True) and len(ranked) == 4
    assert scores[-1] is None and doc["entries"][-1]["rank"] is None  # missing task: unranked, listed last
    assert [e["rank"] for e in doc["entries"][:4]] == [1, 2, 3, 4]


def test_lower_is_better_primary_ranks_ascending() -> None:
    records = []
    for seed in range(4):
        data = synthetic_record("debug", seed).to_data()
        data["evaluation"]["primary_aggregate"] = "heldout_bpb"
        records.append(Record.from_data(data, "test"))
    table = build_table("debug", records)
    values = [row[table.primary] for row in table.rows]
    assert values == sorted(values) and table.rows[0]["rank"] == 1


def test_csv_download_is_complete_and_formula_safe(tmp_path: Path) -> None:
    records = [synthetic_record("debug", i, name=name) for i, name in enumerate(["=HYPERLINK(1)", "plain", "@x"])]
    build_site(records, tmp_path / "site")
    with open(tmp_path / "site" / "downloads" / "debug" / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    assert {r["name"] for r in rows} == {"'=HYPERLINK(1)", "plain", "'@x"}
    assert {"Sandbox_v1 (sandbox@1/v1)", "heldout_bpb (sandbox@1)", "subset_sha256"} <= set(rows[0])
    best = max(records, key=lambda r: r.primary.value)
    assert rows[0]["entry_id"] == best.entry_id and float(rows[0]["Sandbox_v1 (sandbox@1/v1)"]) == best.primary.value


def test_entry_page_shows_tasks_recipe_provenance_and_curve(site: Path) -> None:
    r = next(r for r in fixture_records() if r.track.name == "nano")
    page = (site / "entries" / f"{r.entry_id}.html").read_text()
    for text in ("fact_cloze", "centered", "recipe.lr", r.subset.sha256, r.tokenizer_sha256, r.track.sha256,
                 f"../records/nano/{r.entry_id}.json", "<svg", "<polyline", "sandbox@1/v1"):  # fmt: skip
        assert text in page, text
    assert page.count("<tr>") >= 4 + len(r.evaluation.tasks)


def test_rebuild_replaces_a_site_but_never_a_foreign_folder(tmp_path: Path) -> None:
    records = fixture_records()
    out = tmp_path / "site"
    build_site(records[:2], out)
    build_site(records, out)
    assert (out / MARKER).is_file() and len(list((out / "entries").iterdir())) == len(records)
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no temporary folders left behind
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    assert main(["leaderboard", "build", "--results", str(FIXTURES), "--out", str(foreign)]) == 2
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_parallel_build_writes_the_same_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.leaderboard.build as build

    records, problems, sources = ResultsStore(str(FIXTURES)).load()
    assert not problems and set(sources) == {r.entry_id for r in records}
    assert all(s.data == Path(s.path).read_bytes() for s in sources.values() if s.path)
    build_site(records, tmp_path / "serial", sources=sources)
    monkeypatch.setattr(build, "PARALLEL_ABOVE", 2)
    assert build._workers(len(records)) > 1 or (os.cpu_count() or 1) == 1
    build_site(records, tmp_path / "parallel", sources=sources)
    for sub in ("entries", "records"):
        serial = sorted((tmp_path / "serial" / sub).rglob("*.*"))
        assert len(serial) == len(records)
        for path in serial:
            twin = tmp_path / "parallel" / path.relative_to(tmp_path / "serial")
            assert twin.read_bytes() == path.read_bytes()
    build_site(records, tmp_path / "plain")  # no stored bytes at hand: each copy is the record serialized again
    for r in records:
        assert Record.from_json((tmp_path / "plain" / "records" / r.track.name / f"{r.entry_id}.json").read_text()) == r


def test_build_skips_corrupt_records_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results, ignore=shutil.ignore_patterns("*.py"))
    (results / "nano" / "nano-ffffffffffff.json").write_text("{oops")
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert "nano-ffffffffffff.json" in err and "not valid JSON" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["leaderboard", "build", "--results", str(empty), "--out", str(tmp_path / "s2")]) == 2


def test_add_command_validates_then_stores(tmp_path: Path) -> None:
    paths = sorted(FIXTURES.glob("nano/*.json"))
    assert main(["leaderboard", "add", *map(str, paths), "--results", str(tmp_path)]) == 0
    assert len(ResultsStore(str(tmp_path)).list()[0]) == len(paths)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 7}))
    assert main(["leaderboard", "add", str(bad), "--results", str(tmp_path)]) == 2  # refused: a usage error


@pytest.mark.s3
def test_publish_to_s3_serves_pages_with_content_types(site: Path, s3_endpoint: str) -> None:  # noqa: F811
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="board")
    argv = ["leaderboard", "publish", "--site", str(site), "--out", "s3://board/v1/", "--endpoint-url", s3_endpoint]
    assert main(argv) == 0
    expected = {
        "index.html": "text/html",
        "assets/style.css": "text/css",
        "assets/app.js": "text/javascript",
        "charts/debug-size.svg": "image/svg+xml",
        "downloads/nano/leaderboard.csv": "text/csv",
        "downloads/nano/leaderboard.json": "application/json",
    }
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for rel, content_type in expected.items():
        # Objects are private unless the bucket's policy says otherwise: fetch over plain HTTP with a signed URL.
        url = client.generate_presigned_url("get_object", Params={"Bucket": "board", "Key": f"v1/{rel}"})
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].split(";")[0] == content_type, rel
            assert resp.read() == (site / rel).read_bytes()
    assert main(["leaderboard", "publish", "--site", str(site), "--out", "board/v1"]) == 2


def test_track_charts_are_valid_svg_with_round_ticks(site: Path) -> None:
    import xml.etree.ElementTree as ET

    from harness.leaderboard.charts import nice_ticks

    for chart in (site / "charts").glob("*.svg"):
        root = ET.fromstring(chart.read_bytes())
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width") and root.get("height")
    assert nice_ticks(0.08, 0.72) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert nice_ticks(4e5, 3e7, log=True) == [5e5, 1e6, 2e6, 5e6, 1e7, 2e7]
    assert nice_ticks(1.0, 1.0) == [1.0]


def test_entry_page_warns_when_the_shipped_track_differs(tmp_path: Path) -> None:
    import dataclasses

    from harness.tracks import get_track

    same = synthetic_record("debug", 1)
    same = dataclasses.replace(same, track=dataclasses.replace(same.track, sha256=get_track("debug").sha256))
    other = synthetic_record("debug", 2)
    other = dataclasses.replace(other, track=dataclasses.replace(other.track, sha256="0" * 64))
    build_site([same, other], tmp_path / "site")
    warning = "differs from the one this entry ran on"
    assert warning not in (tmp_path / "site" / "entries" / f"{same.entry_id}.html").read_text()
    assert warning in (tmp_path / "site" / "entries" / f"{other.entry_id}.html").read_text()


def test_a_record_made_when_seeds_were_tracks_still_displays_its_track(tmp_path: Path) -> None:
    import dataclasses

    from harness.tracks import legacy_seeded

    old = synthetic_record("debug-seed125", 1)  # such records name their track <track>-seed<S>
    old = dataclasses.replace(old, track=dataclasses.replace(old.track, sha256=legacy_seeded("debug-seed125").sha256))
    build_site([old], tmp_path / "site")
    page = (tmp_path / "site" / "entries" / f"{old.entry_id}.html").read_text()
    assert "recipe.seed" in page and ">125<" in page
    assert "differs from the one this entry ran on" not in page and "not shipped" not in page


def test_record_copies_are_copies_and_never_reach_back_into_the_store(tmp_path: Path) -> None:
    import dataclasses

    store = ResultsStore(str(tmp_path / "results"))
    kept, replaced = synthetic_record("debug", 1), synthetic_record("debug", 2)
    for record in (kept, replaced):
        store.add(record)
    records, _, sources = store.load()
    store.add(dataclasses.replace(replaced, submission=dataclasses.replace(replaced.submission, name="re-run")))
    build_site(records, tmp_path / "site", sources=sources)

    def copy(r: Record) -> Path:
        return tmp_path / "site" / "records" / "debug" / f"{r.entry_id}.json"

    assert copy(kept).read_bytes() == Path(store.path_of(kept.entry_id)).read_bytes()
    assert copy(kept).stat().st_ino != Path(store.path_of(kept.entry_id)).stat().st_ino  # copied, never linked
    assert copy(replaced).read_bytes() == sources[replaced.entry_id].data  # what the page shows, not the re-run
    assert copy(replaced).stat().st_ino != Path(store.path_of(replaced.entry_id)).stat().st_ino
    build_site(records, tmp_path / "site", sources=sources)  # a rebuild removes the old site, links and all
    assert store.get(kept.entry_id) == kept and store.get(replaced.entry_id).submission.name == "re-run"
