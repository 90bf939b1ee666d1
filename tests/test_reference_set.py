"""The sandbox's classifier reference set: written beside the pool, pinned, clean, disjoint from pool and eval."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from harness.pools import get_pool_spec
from harness.sandbox import generate_sandbox
from harness.sandbox.documents import held_out_pair
from harness.sandbox.reference import PATH
from harness.sandbox.templates import EVAL_LEADINS
from harness.sandbox.world import build_world

SCALE = 0.01


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sandbox-ref") / "pool"
    generate_sandbox(out, scale=SCALE, workers=1)
    return out


def _jsonl_gz(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.open(path, "rt")]


def test_reference_set_is_listed_with_its_hashes(pool: Path) -> None:
    manifest = json.loads((pool / "manifest.json").read_text())
    (entry,) = manifest["reference"]
    data = (pool / PATH).read_bytes()
    assert entry["path"] == PATH and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["content_sha256"] == hashlib.sha256(gzip.decompress(data)).hexdigest()
    docs = _jsonl_gz(pool / PATH)
    assert len(docs) == entry["documents"] >= 100 and all(set(d) == {"id", "text"} for d in docs)
    assert len({d["id"] for d in docs}) == len(docs)


def test_reference_set_is_disjoint_from_the_pool_and_the_evaluation(pool: Path) -> None:
    docs = _jsonl_gz(pool / PATH)
    pool_docs = [d for p in sorted((pool / "shards").glob("*.jsonl.gz")) for d in _jsonl_gz(p)]
    assert not {d["text"] for d in docs} & {d["text"] for d in pool_docs}
    assert not {d["id"] for d in docs} & {d["id"] for d in pool_docs}
    world = build_world()
    names = [e.name for ents in world.entities.values() for e in ents]
    contexts = [json.loads(line)["context"] for f in ("fact_cloze", "next_sentence", "last_word")
                for line in (pool / "eval" / f"{f}.jsonl").read_text().splitlines()]  # fmt: skip
    stories = [json.loads(line)["text"] for line in (pool / "eval" / "heldout.jsonl").read_text().splitlines()]
    leadins = [lead.format(e=n) for lead in EVAL_LEADINS for n in names[:5]]
    for d in docs:
        assert not any(c in d["text"] for c in contexts + stories + leadins)


STORY = re.compile(
    r"(?:named|called) (?P<p>[^.,]+?)[ .,].*?(?:set out for|travel to|left home to visit) (?P<d>[A-Z][a-z]+)"
)


def test_reference_set_has_the_pools_clean_mix_and_no_held_out_journey(pool: Path) -> None:
    """Pages, Q&A, fact lists and stories (Sandbox_v1 asks about stories); no story tells an evaluation journey."""
    world = build_world()
    docs = [d["text"] for d in _jsonl_gz(pool / PATH)]
    journeys = [m for t in docs if (m := STORY.search(t))]
    qa = sum(t.startswith("Questions and answers") for t in docs)
    assert len(journeys) > 0.15 * len(docs) and qa > 0.1 * len(docs)
    persons = {e.name: e for e in world.entities["person"]}
    cities = {e.name: e for e in world.entities["city"]}
    told = [(persons[m["p"]], cities[m["d"]]) for m in journeys if m["p"] in persons and m["d"] in cities]
    assert len(told) > 0.9 * len(journeys) and not any(held_out_pair(p, c) for p, c in told)


def test_reference_set_states_true_facts_only(pool: Path) -> None:
    world = build_world()
    myths = {f"The capital of {e.name} is {world.myths[(e.name, 'capital')]}." for e in world.entities["country"]}
    truths = {f"The capital of {e.name} is {e.attrs['capital']}." for e in world.entities["country"]}
    text = " ".join(d["text"] for d in _jsonl_gz(pool / PATH))
    assert not any(m in text for m in myths) and any(t in text for t in truths)


def test_the_shipped_pool_pins_its_reference_set() -> None:
    spec = get_pool_spec("sandbox")
    assert [r.path for r in spec.reference] == [PATH] and spec.reference[0].content_sha256
