"""Sandbox version 5: the graded quality q of clean documents, what it does to their text, and the v5 pool/tracks.

The suite must reward q: the facts it asks are stated truly by high-q documents and contradicted by low-q ones,
low-q documents spend their words on filler, and low-q stories break the structure next_sentence and last_word
ask about. Every check below measures the generated text against its label."""

from __future__ import annotations

import gzip
import json
import random
import statistics
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.pools import get_pool_spec
from harness.sandbox import generate_sandbox
from harness.sandbox.documents import Facts, clean
from harness.sandbox.graded import FILLER, GradedFacts, graded_clean
from harness.sandbox.reference import PATH
from harness.sandbox.templates import STATEMENTS
from harness.sandbox.world import build_world
from harness.tracks import get_track, track_names, tracks_on_pool

SCALE = 0.01


def _jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict, dict]]:
    """(document, label) of every document of a small version-5 pool, and the pool folder as an attribute."""
    out = tmp_path_factory.mktemp("sandbox-v5") / "pool"
    generate_sandbox(out, scale=SCALE, version=5, workers=1)
    texts = [d for p in sorted((out / "shards").glob("*.jsonl.gz")) for d in _jsonl_gz(p)]
    labels = _jsonl_gz(out / "labels.jsonl.gz")
    reference = [d["text"] for d in _jsonl_gz(out / PATH)]
    pairs = list(zip(texts, labels, strict=True))
    pairs.append(({"text": "\0".join(reference)}, {"class": "reference"}))
    return pairs


def _clean(docs: list[tuple[dict, dict]], lo: float = 0.0, hi: float = 1.01) -> list[str]:
    return [d["text"] for d, lab in docs if lab["class"] == "clean" and lo <= lab["q"] < hi]


def test_q_labels_have_the_intended_distribution(docs: list[tuple[dict, dict]]) -> None:
    labels = [lab for _, lab in docs]
    by_id = {lab["id"]: lab for lab in labels if "id" in lab}
    for lab in labels:
        graded = lab["class"] in ("clean", "noisy") or lab.get("source_class") in ("clean", "noisy")
        assert ("q" in lab) == graded, lab
        if lab["class"] in ("exact_dup", "near_dup") and graded:
            assert lab["q"] == by_id[lab["source"]]["q"]  # a copy carries its source's quality
    q = [lab["q"] for lab in labels if lab["class"] == "clean"]
    assert len(q) > 900 and all(0.0 <= x <= 1.0 for x in q)
    # Beta(2, 2): mean 0.5, sd 0.224, 10.4% below 0.2 and as many above 0.8.
    assert abs(statistics.fmean(q) - 0.5) < 0.03 and abs(statistics.pstdev(q) - 0.2236) < 0.02
    for share in (sum(x < 0.2 for x in q) / len(q), sum(x > 0.8 for x in q) / len(q)):
        assert 0.07 < share < 0.14


def _agreement(texts: list[str], world_facts: list[tuple[str, str, str, str]]) -> tuple[int, int]:
    """(statements of a true value, statements of its myth) over every template of every fact."""
    text = "\0".join(texts)
    true = sum(text.count(template.format(e=e, v=value)) for e, value, _, template in world_facts)
    myth = sum(text.count(template.format(e=e, v=wrong)) for e, _, wrong, template in world_facts)
    return true, myth


def test_the_suites_facts_are_stated_by_high_q_and_contradicted_by_low_q(docs: list[tuple[dict, dict]]) -> None:
    world = build_world()
    facts = [
        (ent.name, value, world.myths[(ent.name, attr)], template)
        for ent, attr, value in world.facts()
        for template in STATEMENTS[(ent.kind, attr)]
    ]
    share = {}
    for band, (lo, hi) in {"low": (0.0, 0.3), "middle": (0.4, 0.6), "high": (0.8, 1.01)}.items():
        true, myth = _agreement(_clean(docs, lo, hi), facts)
        assert true + myth > 150, band
        share[band] = true / (true + myth)
    # wrong_share(q) = 0.5 (1 - q): about 0.93, 0.75 and 0.60 of the statements are true.
    assert share["high"] > 0.88 and 0.65 < share["middle"] < 0.85 and share["low"] < 0.7
    assert share["high"] > share["middle"] + 0.08 > share["low"] + 0.16
    true, myth = _agreement([docs[-1][0]["text"]], facts)  # the reference set: the q = 1 end
    assert true > 150 and myth == 0


def _filler_share(text: str) -> float:
    sentences = text.count(".")
    return sum(text.count(f) for f in FILLER) / sentences if sentences else 0.0


def test_low_q_documents_spend_their_words_on_filler(docs: list[tuple[dict, dict]]) -> None:
    mean = {band: statistics.fmean(_filler_share(t) for t in _clean(docs, lo, hi))
            for band, (lo, hi) in {"low": (0.0, 0.3), "middle": (0.4, 0.6), "high": (0.8, 1.01)}.items()}  # fmt: skip
    assert mean["high"] < 0.12 < mean["middle"] < 0.45 < mean["low"]
    assert _filler_share(docs[-1][0]["text"]) == 0  # no filler in the reference set


def _story_ok(text: str) -> bool:
    """Whether a story's last word (protagonist or home town), filler aside, was told earlier in it."""
    for sentence in FILLER:
        text = text.replace(" " + sentence, "")
    body, last = text[:-1].rsplit(" ", 1)
    return last in body


def test_low_q_stories_break_their_endings(docs: list[tuple[dict, dict]]) -> None:
    def ok(lo: float, hi: float) -> float:
        stories = [t for t in _clean(docs, lo, hi) if t.startswith(("Once upon", "There once", "Long ago"))]
        assert len(stories) > 25
        return sum(_story_ok(t) for t in stories) / len(stories)

    assert ok(0.8, 1.01) > 0.85 and ok(0.0, 0.3) < 0.55


def test_quality_one_is_the_version_4_clean_document() -> None:
    world = build_world()
    for i in range(300):
        expected = clean(Facts(world), random.Random(f"q1/{i}"))
        assert graded_clean(world, random.Random(f"q1/{i}"), 1.0, random.Random(i)) == expected


def test_a_document_never_contradicts_itself() -> None:
    world = build_world()
    facts = GradedFacts(world, q=0.0, rng=random.Random(7))
    ent = world.entities["country"][0]
    assert len({facts.value(ent, "capital") for _ in range(50)}) == 1


def test_the_v5_pool_and_tracks_differ_from_v4_in_the_pool_only() -> None:
    v4, v5 = get_pool_spec("sandbox"), get_pool_spec("sandbox-v5")
    assert (v4.version, v5.version, v5.source, v5.sandbox_scale) == (4, 5, "sandbox", 1.0)
    assert len(v5.shards) == len(v4.shards) and all(s.content_sha256 for s in (*v5.shards, *v5.reference))
    assert {s.content_sha256 for s in v5.shards}.isdisjoint(s.content_sha256 for s in v4.shards)
    for name in ("debug", "nano"):
        old, new = get_track(name), get_track(f"{name}-v5")  # derived: `<track>-v<N>` runs on `<pool>-v<N>`
        assert (old.pool, new.pool, new.name in track_names()) == ("sandbox", "sandbox-v5", False)
        assert (new.model, new.recipe, new.budget, new.suite, new.rules, new.tokenizer) == (
            old.model, old.recipe, old.budget, old.suite, old.rules, old.tokenizer
        )  # fmt: skip
        assert new.sha256 != old.sha256
    assert (get_track("nano-v5-4x").pool, get_track("nano-v5-4x").tokens) == (
        "sandbox-v5",
        4 * get_track("nano").tokens,
    )
    assert [t.name for t in tracks_on_pool("sandbox-v5")] == ["debug-v5", "micro-v5", "nano-v5"]
    assert [t.name for t in tracks_on_pool("sandbox")] == ["debug", "micro", "nano"]
    with pytest.raises(UsageError, match="no pool 'sandbox-v7'.*other versions: sandbox-v5"):
        get_track("nano-v7")
