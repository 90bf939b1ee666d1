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

    from harness.submit.decontam_hash import grams, word_hashes, words

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
    assert np.array_equal(grams(hashes[:3], 2), hashes[:2] * np.uint64(0x9E3779B97F4A7C15) + hashes[1:3])


def test_window_hashes_from_prefix_sums_are_the_n_gram_hashes_across_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from harness.submit import decontam_hash
    from harness.submit.decontam_hash import gram_sums, grams, window, word_hashes

    h = word_hashes([" ".join(f"w{i % 37}" for i in range(300))])[0]
    for piece in (1 << 20, 16):  # one span, then many overlapping ones
        monkeypatch.setattr(decontam_hash, "_PIECE", piece)
        for n in (1, 8, 13):
            got = [window(s, np.arange(span)[offset + np.arange(span) + n <= len(h)], n)
                   for offset, span, s in gram_sums(h, 13)]  # fmt: skip
            assert np.array_equal(np.concatenate(got), grams(h, n)), (piece, n)


VOCAB = ["sailor", "Rikra", "bread", "copper", "STRASSE", "straße", "İstanbul", "ΣΑΣ", "ﬁne", "e\u0301t\u00e9",
         "\u0663\u0664", "中文", "x_y", "½", "Ǆemal", "ὒ", "7", "walked", "days", "river"]  # fmt: skip
SEPARATORS = [" ", "  ", ", ", ".\n", " - ", "\t", "\U0001f600", "\x00", "\ud800", "_", "…"]


def _reference_pairs(items: list[Item], texts: list[str], n: int = 13, coverage: float = 0.95) -> set:
    """(text, item) pairs by the definition, on word tuples: the item's n-grams that occur in the text, each at
    its first position in the item, cover at least `coverage` of the item's words."""
    from harness.submit.decontam_hash import words

    out = set()
    for d, text in enumerate(texts):
        w = words(text)
        for k, item in enumerate(items):
            iw = words(item.text)
            if len(iw) < 8:
                continue
            size = min(n, len(iw))
            present = {tuple(w[i : i + size]) for i in range(len(w) - size + 1)}
            first: dict[tuple, int] = {}
            for p in range(len(iw) - size + 1):
                first.setdefault(tuple(iw[p : p + size]), p)
            covered = {q for g, p in first.items() if g in present for q in range(p, p + size)}
            if len(covered) >= coverage * len(iw) - 1e-9:
                out.add((d, k))
    return out


def test_the_check_agrees_with_a_plain_reference_on_random_and_adversarial_texts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random

    from harness.submit import decontam_hash
    from harness.submit.decontam import Scanner

    rng = random.Random(7)

    def text(ws: list[str]) -> str:
        return "".join(w + rng.choice(SEPARATORS) for w in ws)

    phrases = [[rng.choice(VOCAB) for _ in range(rng.choice([3, 7, 8, 9, 10, 12, 13, 14, 20, 40]))] for _ in range(40)]
    phrases += [phrases[-1][:13] * 2 + ["bread"], ["sailor"] * 30]  # repeated n-grams inside one item
    items = [
        Item("t", str(k), text([w.upper() if rng.random() < 0.2 else w for w in p])) for k, p in enumerate(phrases)
    ]
    texts = ["", "\x00\x00", "…\U0001f600 _", text(rng.choices(VOCAB, k=5000)) * 3]  # empty, no words, long
    for _ in range(150):
        parts = rng.choices(phrases, k=rng.randint(0, 3))
        ws = [w for p in parts for w in p]
        for _ in range(rng.choice([0, 0, 1, 2, 5])):  # edits: drop, change or insert a word
            at = rng.randrange(len(ws) + 1)
            op = rng.randrange(3)
            if op == 0 and at < len(ws):
                del ws[at]
            elif op == 1 and at < len(ws):
                ws[at] = rng.choice(VOCAB)
            else:
                ws.insert(at, rng.choice(VOCAB))
        texts.append(text(rng.choices(VOCAB, k=rng.randint(0, 30)) + ws + rng.choices(VOCAB, k=rng.randint(0, 30))))
    for p in phrases:  # an item split across consecutive texts (all but its last word): no window spans the two
        texts += [text(p[:-1]), text(p[-1:])]
    expected = _reference_pairs(items, texts)
    assert 20 < len(expected) < len(texts) * len(items) / 10  # both outcomes occur
    loose = _reference_pairs(items, texts, coverage=1e-9)  # any shared n-gram (GPT-3's rule)
    assert len(loose) > len(expected)
    for piece in (1 << 20, 16):  # one numpy piece per batch, then many (cut at non-word characters)
        monkeypatch.setattr(decontam_hash, "_PIECE", piece)
        scanner = Scanner(NgramIndex.build(items))
        pairs = {(int(d), int(k)) for p in scanner.match(texts) for d, k in p}
        assert pairs == expected, (piece, sorted(pairs ^ expected)[:5])
        pairs = {(int(d), int(k)) for p in Scanner(scanner.index, 1e-9).match(texts) for d, k in p}
        assert pairs == loose, (piece, sorted(pairs ^ loose)[:5])
        alone = {(d, int(k)) for d, t in enumerate(texts[:40]) for p in scanner.match([t]) for _, k in p}
        assert alone == {(d, k) for d, k in expected if d < 40}  # a text's result does not depend on its batch


def test_the_hash_table_of_n_grams_finds_what_a_binary_search_finds() -> None:
    import numpy as np

    from harness.submit.decontam_hash import slot_find, slot_table

    rng = np.random.default_rng(3)
    for size in (0, 1, 5, 3000):
        keys = np.unique(rng.integers(0, 2**64, size, dtype=np.uint64))
        if size == 3000:  # a run of keys with the same top bits (and the last slots): probes run long and wrap
            keys = np.unique(np.concatenate([keys, np.uint64(2**64 - 1) - np.arange(200, dtype=np.uint64)]))
        queries = np.concatenate([keys, rng.integers(0, 2**64, 500, dtype=np.uint64), keys[::7] + np.uint64(1)])
        expected = np.searchsorted(keys, queries)
        present = expected < len(keys)
        present[present] = keys[expected[present]] == queries[present]
        assert np.array_equal(slot_find(slot_table(keys), keys, queries), np.where(present, expected, -1)), size


def test_every_code_point_is_folded_and_classified_as_casefold_and_the_pattern_do() -> None:
    import numpy as np

    from harness.submit.decontam_hash import word_hashes, words

    texts = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]  # ß -> ss, İ -> i̇, ﬁ -> fi, ...
    hashes, counts = word_hashes(texts)
    expected = [words(t) for t in texts]
    assert counts.tolist() == [len(w) for w in expected]
    folded = [w for ws in expected for w in ws]  # already folded: their own hashes need no folding
    assert np.array_equal(hashes, word_hashes(folded)[0]) and len(folded) > 100_000
