"""Decontamination: planted leaks (exact and lightly edited) are found exactly, clean text raises nothing, the
sandbox's labelled leaks are all found, and bad input (missing suite data, a rejecting track) is one message."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest

from harness.sandbox import generate_sandbox
from harness.submit.decontam import (
    Item,
    NgramIndex,
    SubsetContaminated,
    SuiteDataMissing,
    enforce,
    iter_jsonl_documents,
    scan_documents,
    track_index,
)
from harness.tracks import get_track

STORY = (
    "Long ago, a sailor named Vubrako lived in Rikra. Vubrako came from Rikra, a city famous for its bread. "
    "Vubrako always carried a Krenel made of copper. In the winter, Vubrako left home to visit Rapom. "
    "The road was long, and Vubrako walked for 7 days. Finally, Vubrako arrived in Rapom, on the river Dezounen."
)
FACT = "A reader asks about the Drir. A Drir is used for fishing"
FILLER = "Cookies help us deliver our services. Subscribe to our newsletter for weekly deals and more offers. "


def _index() -> NgramIndex:
    items = [Item("next_sentence", "story-1", STORY), Item("fact_cloze", "fact-1", FACT),
             Item("fact_cloze", "tiny", "Drir is fishing")]  # fmt: skip
    return NgramIndex.build(items)


def _light_edit(text: str) -> str:
    words = text.split(" ")
    del words[len(words) // 2]  # one word dropped in the middle
    return " ".join(words).lower().replace(", ", " - ").replace(". ", ";\n")


def test_exact_and_lightly_edited_copies_are_found_and_nothing_else() -> None:
    docs = [
        ("exact", FILLER + STORY + " " + FILLER),
        ("light", FILLER + _light_edit(STORY)),
        ("fact", "Quiz answers\n\n1. " + FACT.upper() + ".\n2. Something else entirely."),
        ("one-13-gram", FILLER + " ".join(STORY.split(" ")[:15]) + " and then a different story went on."),
        ("clean", FILLER * 3),
        ("split", STORY[: len(STORY) // 2] + "\n" + FILLER * 2),
    ]
    report = scan_documents(docs, "toy", _index())
    assert report.documents_scanned == len(docs) and report.contaminated
    assert sorted(report.contaminated_document_ids) == ["exact", "fact", "light"]
    assert report.tasks["next_sentence"]["documents"] == {"story-1": ["exact", "light"]}
    assert report.tasks["fact_cloze"]["documents"] == {"fact-1": ["fact"]}
    assert report.tasks["fact_cloze"]["too_short"] == 1  # "Drir is fishing": under 8 words, not checked
    # GPT-3's rule (any shared 13-gram) would also flag the documents that share one stretch of the story.
    loose = scan_documents(docs, "toy", _index(), min_coverage=1e-9)
    assert {"one-13-gram", "split"} <= set(loose.contaminated_document_ids)


def test_clean_text_is_clean_and_batches_do_not_leak_into_each_other() -> None:
    # The story's two halves in consecutive documents: no window may span the boundary between documents.
    half = len(STORY.split(" ")) // 2
    docs = [("a", " ".join(STORY.split(" ")[:half])), ("b", " ".join(STORY.split(" ")[half:]))]
    docs += [(f"filler-{i}", FILLER) for i in range(3000)]  # more than one lookup batch
    report = scan_documents(docs, "toy", _index())
    assert not report.contaminated and report.contaminated_items == 0 and "no contamination" in report.summary()


def _labels(pool_dir: Path) -> list[dict]:
    with gzip.open(pool_dir / "labels.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sandbox") / "pool"
    generate_sandbox(out, scale=0.01, workers=1)
    return out


def test_every_labelled_leak_of_the_sandbox_is_found_and_nothing_else(small_pool: Path) -> None:
    leaks = {lab["id"]: lab for lab in _labels(small_pool) if lab["class"] == "leaked"}
    docs = list(iter_jsonl_documents(sorted(str(p) for p in (small_pool / "shards").glob("*.jsonl.gz"))))
    suite, index = track_index(get_track("debug"), mirror=str(small_pool / "eval"))
    report = scan_documents(docs, suite, index)
    assert set(report.contaminated_document_ids) == set(leaks)  # every leak, and no clean document
    assert {lab["edit"] for lab in leaks.values()} == {"exact", "light"}
    for task, t in report.tasks.items():
        expected = {i for lab in leaks.values() if lab["task"] == task for i in lab["items"]}
        assert set(t["item_ids"]) == expected, task
        for item, quoting in t["documents"].items():
            assert all(item in leaks[d]["items"] for d in quoting)


def test_missing_suite_data_is_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(
        SuiteDataMissing, match=r"the contamination check needs every task of suite 'sandbox': .*fact_cloze"
    ):
        track_index(get_track("debug"), mirror=str(tmp_path))


def test_a_rejecting_track_names_the_quoted_items() -> None:
    report = scan_documents([("exact", STORY)], "toy", _index())
    track = get_track("debug")
    enforce(track, report)  # the shipped tracks report contamination; they do not reject it
    strict = dataclasses.replace(track, rules=dataclasses.replace(track.rules, contamination="reject"))
    with pytest.raises(
        SubsetContaminated, match=r"rejects subsets .* 1 documents quote 1 items \(next_sentence: story-1\)"
    ):
        enforce(strict, report)
    enforce(strict, scan_documents([("clean", FILLER)], "toy", _index()))


@pytest.mark.slow
def test_validate_reports_the_leaked_documents_of_a_subset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from harness.cli import main
    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    labels = _labels(pool.spec.home)
    leaked = [lab["id"] for lab in labels if lab["class"] == "leaked"][:3]
    clean = [lab["id"] for lab in labels if lab["class"] == "clean"][:200]
    subset = tmp_path / "s.jsonl"
    subset.write_text("".join(json.dumps({"id": i}) + "\n" for i in clean + leaked))
    assert main(["validate", "--track", "debug", str(subset), "--json"]) == 0  # the track reports, not rejects
    data = json.loads(capsys.readouterr().out)["contamination"]
    assert data["contaminated_documents"] == 3 and data["documents_scanned"] == 203
    found = {d for t in data["tasks"].values() for docs in t["documents"].values() for d in docs}
    assert found == set(leaked)
    assert main(["validate", "--track", "debug", str(subset)]) == 0
    assert "CONTAMINATED: 3 documents quote" in " ".join(capsys.readouterr().out.split())


def test_word_hashes_agree_with_the_words_of_the_pattern_for_any_text() -> None:
    import random

    import numpy as np

    from harness.submit.decontam_hash import grams, grams_of_lengths, word_hashes, words

    rng = random.Random(0)
    alphabet = "abcABC xyz,.!_-\u00df\u0130\u03a3\u03c3\u00e9e\u0301 12\u0663\u4e2d\n\t\U0001f600\u00bd\ufb01\x00"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(2000)] + ["", "_", "a"]
    hashes, counts = word_hashes(texts)
    assert counts.tolist() == [len(words(t)) for t in texts]
    seen: dict[str, int] = {}
    for word, h in zip((w for t in texts for w in words(t)), hashes.tolist(), strict=True):
        assert seen.setdefault(word, h) == h  # the same word, the same hash, wherever it occurs
    assert len(set(seen.values())) == len(seen) > 1000  # and distinct words, distinct hashes
    long_word = "x" * (3 << 20)  # longer than a numpy piece: cut only at non-word characters
    assert word_hashes([long_word + " b", long_word])[0].tolist()[::2] == word_hashes([long_word])[0].tolist() * 2
    h = hashes[:40]
    assert all(np.array_equal(g, grams(h, n)) for n, g in grams_of_lengths(h, {1, 8, 13, 41}).items())
