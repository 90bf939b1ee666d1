"""The sandbox pool generator: determinism, layout, labels, classes, and held-out evaluation material, for every
generator version it reproduces (the graded quality of version 5: tests/test_sandbox_graded.py)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from harness.sandbox import CLASSES, GENERATOR_VERSION, VERSIONS, generate_sandbox, iter_clean_text
from harness.sandbox.templates import stem
from harness.sandbox.world import build_world

SCALE = 0.01
#: content_sha256 of the scale-0.01 pool of each generator version: a version's output never changes.
PINNED = {
    4: "e31516d9e71dc0d827d0493f64c4c1f40a20d841e790925d3d2d8a721b0b43de",
    5: "6df4cf98951b5150b26a0b5b722b60b462afa43d90fea48ffe86f6ae9f82a543",
}


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def pool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"sandbox-v{request.param}") / "pool"
    generate_sandbox(out, scale=SCALE, version=request.param, workers=1)
    return out


def _version(pool: Path) -> int:
    return json.loads((pool / "manifest.json").read_text())["generator_version"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _docs(pool: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((pool / "shards").glob("*.jsonl.gz")) for line in gzip.open(p, "rt")]


def _labels(pool: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.open(pool / "labels.jsonl.gz", "rt")]


def _eval(pool: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (pool / "eval" / f"{name}.jsonl").read_text().splitlines()]


def test_same_bytes_for_any_run_and_worker_count(pool: Path, tmp_path: Path) -> None:
    # The folder first holds a larger pool (three shards): a rerun leaves nothing of it behind.
    version = _version(pool)
    assert len(generate_sandbox(tmp_path / "again", scale=0.13, version=version, workers=2)["shards"]) == 3
    again = generate_sandbox(tmp_path / "again", scale=SCALE, version=version, workers=2)
    assert _files(tmp_path / "again") == _files(pool)
    assert again == json.loads((pool / "manifest.json").read_text())


def test_layout_and_manifest(pool: Path) -> None:
    manifest = json.loads((pool / "manifest.json").read_text())
    assert manifest["generator_version"] in VERSIONS and manifest["scale"] == SCALE
    shards = sorted(p.name for p in (pool / "shards").iterdir())
    assert shards == [f"shard-{i:05d}.jsonl.gz" for i in range(len(manifest["shards"]))]
    for entry in manifest["shards"]:
        data = (pool / entry["path"]).read_bytes()
        content = gzip.decompress(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert hashlib.sha256(content).hexdigest() == entry["content_sha256"]
        assert content.count(b"\n") == entry["documents"]
        assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # mtime 0, no file name in the gzip header
    total = hashlib.sha256("".join(s["content_sha256"] for s in manifest["shards"]).encode()).hexdigest()
    assert manifest["content_sha256"] == total
    docs = _docs(pool)
    assert manifest["documents"] == len(docs) == sum(manifest["classes"].values())
    assert manifest["characters"] == sum(len(d["text"]) for d in docs)


def test_documents_ids_and_labels(pool: Path) -> None:
    docs, labels = _docs(pool), _labels(pool)
    for d in docs:
        assert set(d) == {"id", "url", "text"}  # the class never travels with the document
        assert re.fullmatch(r"[0-9a-f]{32}", d["id"]) and d["url"].startswith("sandbox://")
        assert d["id"] == hashlib.sha256((d["url"] + "\n" + d["text"]).encode()).hexdigest()[:32]
    ids = [d["id"] for d in docs]
    assert len(set(ids)) == len(ids)
    assert [lab["id"] for lab in labels] == ids
    counts = Counter(lab["class"] for lab in labels)
    assert set(counts) == set(CLASSES)
    assert counts == json.loads((pool / "manifest.json").read_text())["classes"]
    # A class name never leaks into the text as a marker a curator could grep for.
    assert not any('"class"' in d["text"] for d in docs)


def test_duplicates_point_at_their_originals(pool: Path) -> None:
    docs = {d["id"]: d for d in _docs(pool)}
    labels = {lab["id"]: lab for lab in _labels(pool)}
    texts = Counter(d["text"] for d in docs.values())
    for lab in labels.values():
        if lab["class"] in ("exact_dup", "near_dup"):
            source = labels[lab["source"]]
            assert source["class"] == lab["source_class"] not in ("exact_dup", "near_dup")
            same = docs[lab["id"]]["text"] == docs[lab["source"]]["text"]
            assert same == (lab["class"] == "exact_dup")
    # Heavy tail: the most copied text appears many times more often than a typical document.
    assert texts.most_common(1)[0][1] >= 20


def test_eval_files_schema_and_manifest(pool: Path) -> None:
    manifest = json.loads((pool / "eval" / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (pool / "eval" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and data.count(b"\n") == entry["items"]
    for name in ("fact_cloze", "next_sentence"):
        items = _eval(pool, name)
        assert 200 <= len(items) <= 300 and len({it["id"] for it in items}) == len(items)
        for it in items:
            assert len(set(it["choices"])) == len(it["choices"]) == 4 and 0 <= it["gold"] < 4
            assert all(c.startswith(" ") and c.strip() for c in it["choices"])
    golds = Counter(it["gold"] for it in _eval(pool, "fact_cloze"))
    assert min(golds.values()) > 30  # the right answer is not always in the same place
    for it in _eval(pool, "last_word"):
        assert re.fullmatch(r" \w+", it["target"]) and it["target"] in " " + it["context"]
    assert 80 <= len(_eval(pool, "heldout")) <= 150


def test_eval_material_is_not_in_the_pool_outside_leaked_documents(pool: Path) -> None:
    leaked_ids = {lab["id"] for lab in _labels(pool) if lab["class"] == "leaked"}
    haystack = "\0".join(d["text"] for d in _docs(pool) if d["id"] not in leaked_ids)
    passages = [it["text"] for it in _eval(pool, "heldout")]
    passages += [it["context"] for name in ("fact_cloze", "next_sentence", "last_word") for it in _eval(pool, name)]
    leaked = [p for p in passages if p in haystack]
    assert not leaked, leaked[:3]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def test_leaked_documents_quote_the_items_they_name(pool: Path) -> None:
    docs = {d["id"]: d["text"] for d in _docs(pool)}
    leaks = [lab for lab in _labels(pool) if lab["class"] == "leaked"]
    assert len(leaks) == 4 and {lab["task"] for lab in leaks} == {"fact_cloze", "next_sentence", "last_word", "heldout"}
    assert {lab["edit"] for lab in leaks} == {"exact", "light"}
    items = {
        it["id"]: it for name in ("fact_cloze", "next_sentence", "last_word", "heldout") for it in _eval(pool, name)
    }
    for lab in leaks:
        text = docs[lab["id"]]
        assert len(lab["items"]) == len(set(lab["items"])) >= 3
        for item_id in lab["items"]:
            it = items[item_id]
            gold = it["choices"][it["gold"]] if "choices" in it else it.get("target", "")
            quote = it.get("context", it.get("text", "")) + gold
            if lab["edit"] == "exact":
                assert quote in text
            else:  # light edits: case, punctuation, line breaks, at most one word dropped from a long quote
                assert quote not in text
                words, found = _words(quote), _words(text)
                i = next(i for i in range(len(found)) if found[i : i + 10] == words[:10])
                kept = found[i : i + len(words)]
                assert kept == words or kept[:-1] in (
                    [w for j, w in enumerate(words) if j != k] for k in range(len(words))
                )


def test_facts_are_stated_by_clean_and_contradicted_by_wrong_fact(pool: Path) -> None:
    # Version 4's clean documents state true facts only; since version 5 a share that falls with q is myths.
    world = build_world()
    classes = {lab["id"]: lab["class"] for lab in _labels(pool)}
    by_class: dict[str, str] = {}
    for d in _docs(pool):
        by_class[classes[d["id"]]] = by_class.get(classes[d["id"]], "") + "\0" + d["text"]
    true_hits = myth_in_clean = myth_hits = truth_in_wrong = 0
    for ent, attr, value in world.facts():
        stated = stem(ent.kind, attr).format(e=ent.name)
        myth = world.myths[(ent.name, attr)]
        true_hits += f"{stated} {value}." in by_class["clean"]
        myth_in_clean += f"{stated} {myth}." in by_class["clean"]
        myth_hits += f"{stated} {myth}." in by_class["wrong_fact"]
        truth_in_wrong += f"{stated} {value}." in by_class["wrong_fact"]
    assert truth_in_wrong == 0 and true_hits > 3 * myth_hits > 0
    assert myth_in_clean == 0 if _version(pool) == 4 else true_hits > 2 * myth_in_clean > 0
    # Every cloze item asks a true fact in its pool stem; the myth is among the distractors.
    for it in _eval(pool, "fact_cloze"):
        ent = world.by_name(it["entity"])
        kind, attr = it["attribute"].split(".")
        assert kind == ent.kind and it["context"].endswith(" " + stem(kind, attr).format(e=ent.name))
        assert it["choices"][it["gold"]] == " " + ent.attrs[attr]
        assert " " + world.myths[(ent.name, attr)] in it["choices"]


def test_iter_clean_text_is_deterministic() -> None:
    first = list(iter_clean_text(20, seed=7))
    assert first == list(iter_clean_text(20, seed=7)) and len(first) == 20
    assert first != list(iter_clean_text(20, seed=8))
    assert all(len(t) > 40 for t in first)


def test_content_is_pinned_for_every_generator_version(pool: Path) -> None:
    # Pools pin content hashes per generator version: a change to the generated text is a new version beside the
    # old ones (with its own hash here and its own pool file), never an edit of an old version's output.
    manifest = json.loads((pool / "manifest.json").read_text())
    assert manifest["content_sha256"] == PINNED[manifest["generator_version"]]
    assert set(PINNED) == set(VERSIONS) and max(VERSIONS) == GENERATOR_VERSION


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="version 3 is not one of 4, 5"):
        generate_sandbox(tmp_path / "p", scale=SCALE, version=3, workers=1)


def test_progress_is_reported_per_shard(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    manifest = generate_sandbox(
        tmp_path / "p", scale=SCALE, workers=1, progress=lambda done, total: calls.append((done, total))
    )
    n = len(manifest["shards"])
    assert calls == [(i, n) for i in range(1, n + 1)]
