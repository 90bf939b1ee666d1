"""The leaderboard's reliability pages (harness.leaderboard.reliability): the ladder, how well a track predicted the
next rung, the adjacent pairs whose order is not expected to transfer, hostile strings escaped, and no page where
there is nothing to show."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
from reliability_fixtures import record, store

from harness.analysis.reliability import Z_80, Z_95
from harness.analysis.scoretable import AGGREGATE, EntryScores, TrackScores, UnitInfo
from harness.leaderboard.build import build_site
from harness.leaderboard.reliability import next_rung, pair_marks
from harness.records import Record, ResultsStore


def _records(results: Path) -> list[Record]:
    records, problems = ResultsStore(str(results)).list()
    assert not problems
    return list(records)


def _text(path: Path) -> str:
    """A page's text without tags, entities undone, spaces collapsed."""
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", path.read_text())).split())


def test_the_ladder_goes_from_a_rung_and_its_multipliers_to_the_next_rung() -> None:
    present = ["nano", "nano-0.25x", "nano-2x", "micro", "debug", "412m", "7b"]
    assert next_rung("nano", "nano", present) == "micro"
    assert next_rung("nano-0.25x", "nano", present) == "micro"  # a multiplier predicts its rung's next rung
    assert next_rung("nano-2x", "nano", present) == "micro"
    assert next_rung("micro", "micro", present) is None  # the top of the CPU ladder
    assert next_rung("debug", "debug", present) is None  # on no ladder
    assert next_rung("412m", "412m", present) == "7b"  # 1b has no entries: the next rung that has
    assert next_rung("nano", "nano", ["nano", "nano-4x"]) is None  # a multiplier is never a rung
    pooled = ["nano", "micro", "nano-v5", "nano-v5-0.25x", "micro-v5", "nano-v6"]
    assert next_rung("nano-v5", "nano-v5", pooled) == "micro-v5"  # a pool version climbs its own ladder
    assert next_rung("nano-v5-0.25x", "nano-v5", pooled) == "micro-v5"
    assert next_rung("nano-v6", "nano-v6", pooled) is None  # never onto another pool version's rung
    assert next_rung("nano", "nano", pooled) == "micro"


def test_pairs_are_marked_below_the_detectable_difference_or_when_seeds_flip_them() -> None:
    unit = ("Sandbox_v1", AGGREGATE)

    def entry(i: int, values: tuple[float, ...]) -> EntryScores:
        return EntryScores(entry_id=f"e{i}", name=f"n{i}", subset=f"s{i}", track="nano", suite=("sandbox", "1"),
                           seeds=tuple(124 + n for n in range(len(values))), values={unit: values})  # fmt: skip

    # means 0.50, 0.40, 0.39, 0.30; sigma 0.01 with 3 and 2 seeds: MDE (z + z) x 0.01 x sqrt(1/3 + 1/2)
    entries = (entry(0, (0.5, 0.5, 0.5)), entry(1, (0.39, 0.41, 0.40)), entry(2, (0.385, 0.395)),
               entry(3, (0.3, 0.3, 0.3)))  # fmt: skip
    scores = TrackScores("nano", entries, {unit: UnitInfo(True, 0.0, True)}, primary="Sandbox_v1")
    marks = pair_marks(scores, 0.01)
    assert [(m.upper.entry_id, m.lower.entry_id) for m in marks] == [("e0", "e1"), ("e1", "e2"), ("e2", "e3")]
    assert marks[1].mde == pytest.approx((Z_95 + Z_80) * 0.01 * math.sqrt(1 / 3 + 1 / 2))
    assert marks[1].difference == pytest.approx(0.01) and marks[1].marked  # 0.01 < MDE 0.0256
    assert marks[1].flips == 0 and marks[1].shared_seeds == 2  # seed 124: 0.39 > 0.385, seed 125: 0.41 > 0.395
    assert [m.marked for m in marks] == [False, True, False]
    # far apart, but the lower entry wins on one seed: marked for the flip
    flipped = (entry(0, (0.5, 0.5, 0.2)), entry(1, (0.3, 0.3, 0.3)))
    (m,) = pair_marks(TrackScores("nano", flipped, {unit: UnitInfo(True, 0.0, True)}, primary="Sandbox_v1"), 0.001)
    assert m.difference > m.mde and (m.flips, m.marked) == (1, True)
    # lower is better: the ranking and the differences turn with it
    low = TrackScores("nano", entries, {unit: UnitInfo(False, None, True)}, primary="Sandbox_v1")
    assert [m.upper.entry_id for m in pair_marks(low, 0.01)] == ["e3", "e2", "e1"]


def test_site_shows_transfer_to_the_next_rung_and_marked_pairs(tmp_path: Path) -> None:
    # subsets 2 and 3 are 0.001 apart in quality: one adjacent pair not expected to transfer on every track
    results = store(tmp_path / "results", {"nano": 3, "nano-0.5x": 2, "micro": 2, "debug": 1},
                    qualities=(0.3, 0.4, 0.5, 0.501, 0.6))  # fmt: skip
    summary = build_site(_records(results), tmp_path / "site")
    assert summary.entries == {"debug": 5, "micro": 5, "nano": 5, "nano-0.5x": 5}
    pages = tmp_path / "site" / "reliability"
    assert sorted(p.name for p in pages.iterdir()) == ["micro.html", "nano-0.5x.html", "nano.html"]
    nano = _text(pages / "nano.html")
    line = re.search(
        r"ranking on nano predicted micro's in (\d+)% of pairs \[(\d+)%, (\d+)%\] \(5 shared subsets\)", nano
    )
    assert line and int(line[1]) >= 90 and int(line[2]) <= int(line[1]) <= int(line[3])
    assert "order not expected to transfer when their lead is smaller than the minimum detectable difference" in nano
    assert "1 of 3 order not expected to transfer" in nano  # the close pair: seeds flip it once
    assert "predicted micro's in" in _text(pages / "nano-0.5x.html")  # a multiplier predicts the same rung
    assert "No higher rung of this track in the store" in _text(pages / "micro.html")
    index = _text(tmp_path / "site" / "index.html")
    assert "Reliability of nano ; ranking on nano predicted micro's in" in index
    assert "1 of 4 adjacent pairs: order not expected to transfer" in index
    # debug: one seed per entry, so no page and no number, and the reason instead
    assert (
        "Reliability: not measured (each of the 5 entries of track debug has one seed; submit with --replicates 3"
        in index
    )
    html = (tmp_path / "site" / "index.html").read_text()
    assert 'href="reliability/nano.html"' in html and 'href="reliability/debug.html"' not in html


def test_single_seeds_give_a_sentence_not_a_number(tmp_path: Path) -> None:
    results = store(tmp_path / "results", {"nano": 1, "micro": 1})
    build_site(_records(results), tmp_path / "site")
    index = _text(tmp_path / "site" / "index.html")
    assert not (tmp_path / "site" / "reliability").exists()
    assert "ranking on nano predicted micro's in 100% of pairs (no seed interval) (4 shared subsets)" in index
    assert "each of the 4 entries has one seed" in index


def test_hostile_strings_on_the_reliability_page_are_text(tmp_path: Path) -> None:
    bad, tag = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
    results = store(tmp_path / "results", {"nano": 3, "micro": 2}, names={0: bad, 1: f'"{tag}'})
    for path in (results / "nano").glob("*.json"):  # a task named like markup, on every run
        data = json.loads(path.read_text())
        data["evaluation"]["tasks"][tag] = data["evaluation"]["tasks"].pop("last_word")
        for run in data["replicates"]["runs"]:
            run["tasks"][tag] = run["tasks"].pop("last_word")
        path.write_text(json.dumps(data))
    build_site(_records(results), tmp_path / "site")
    page = (tmp_path / "site" / "reliability" / "nano.html").read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&quot;&lt;img" in page  # the name with a quote, inside a link's text


def test_records_carrying_a_signal_aggregate_keep_the_primary_ranking(tmp_path: Path) -> None:
    rng = random.Random(3)
    records = []
    for s, q in enumerate((0.3, 0.5, 0.4)):
        data = record("nano", s, q, 2, rng)
        data["evaluation"]["aggregates"]["Signal_nano_v1"] = {
            "value": -q, "version": "signal:nano@1/sandbox@1", "n_tasks": 2, "higher_is_better": False,
            "description": "derived",
        }  # fmt: skip
        records.append(Record.from_data(data, "<test>"))
    build_site(records, tmp_path / "site")
    rows = json.loads((tmp_path / "site" / "downloads" / "nano" / "leaderboard.json").read_text())
    rows = rows["entries"] if isinstance(rows, dict) else rows
    assert [r["name"] for r in sorted(rows, key=lambda r: r["rank"])] == [
        "nano subset 1",
        "nano subset 2",
        "nano subset 0",
    ]
    assert "Signal_nano_v1" in (tmp_path / "site" / "index.html").read_text()  # a column beside the primary


def test_the_page_shows_the_tracks_signal_aggregate_and_how_it_transferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.evaluate.signal as signal_mod
    from harness.cli import main

    monkeypatch.setattr(signal_mod, "signal_dir", lambda: tmp_path / "signal")
    (tmp_path / "signal").mkdir()
    results = store(tmp_path / "results", {"nano": 3, "micro": 2})
    assert main(["reliability", "--track", "nano", "--results", str(results),
                 "--derive-signal", str(tmp_path / "signal" / "nano.toml")]) == 0  # fmt: skip
    capsys.readouterr()
    build_site(_records(results), tmp_path / "site")
    page = _text(tmp_path / "site" / "reliability" / "nano.html")
    assert "Signal_nano_v1 (version 1, derived" in page and "the mean bits_per_byte of fact_cloze, heldout" in page
    assert re.search(r"signal aggregate Signal_nano_v1 on nano predicted micro's in 100% of pairs \[\d+%, 100%\]", page)
    (tmp_path / "signal" / "nano.toml").write_text("track = 3\n")  # a broken definition: said, the site still builds
    build_site(_records(results), tmp_path / "site")
    assert "Reliability: not measured" in _text(tmp_path / "site" / "index.html")
