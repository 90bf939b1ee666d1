"""Held-out evaluation material for the sandbox suite (never part of the pool).

Four files under `eval/`, one JSON object per line, in a fixed order:

- `fact_cloze.jsonl`: `{"id", "context", "choices", "gold", "entity", "attribute"}`: an evaluation-only lead-in
  plus the fact's cloze stem; choices are the true value, the fact's myth (what wrong_fact documents say) and
  two other values of the same type, each with a leading space.
- `next_sentence.jsonl`: `{"id", "context", "choices", "gold"}`: the first sentences of a held-out story; the
  distractors are sentences from other held-out stories at the same position (about other people).
- `last_word.jsonl`: `{"id", "context", "target"}`: a held-out story up to its last word, which names the
  protagonist or their home town, both stated earlier in the story.
- `heldout.jsonl`: `{"id", "text"}`: whole held-out stories, for bits per byte.

Held-out stories tell journeys (person -> city) that the pool never tells (`documents.held_out_pair`), so no
story context here is a pool passage; fact contexts begin with lead-ins the pool never uses.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from harness.sandbox.documents import Facts, story_sentences
from harness.sandbox.templates import EVAL_LEADINS, stem
from harness.sandbox.world import World

COUNTS = {"fact_cloze": 250, "next_sentence": 250, "last_word": 250, "heldout": 100}


def _display(kind: str, name: str) -> str:
    return f"the {name}" if kind in ("creature", "tool") else name


def fact_cloze(world: World, seed: int) -> list[dict]:
    rng = random.Random(f"{seed}/eval/fact_cloze")
    facts = rng.sample(world.facts(), COUNTS["fact_cloze"])
    items = []
    for i, (ent, attr, value) in enumerate(facts):
        myth = world.myths[(ent.name, attr)]
        others = [v for v in world.domain(ent.kind, attr) if v not in (value, myth)]
        choices = [value, myth, *rng.sample(others, 2)]
        rng.shuffle(choices)
        lead = rng.choice(EVAL_LEADINS).format(e=_display(ent.kind, ent.name))
        context = f"{lead} {stem(ent.kind, attr).format(e=ent.name)}"
        items.append(
            {
                "id": f"fact-{i:04d}",
                "context": context,
                "choices": [" " + c for c in choices],
                "gold": choices.index(value),
                "entity": ent.name,
                "attribute": f"{ent.kind}.{attr}",
            }
        )
    return items


def next_sentence(world: World, seed: int) -> list[dict]:
    rng = random.Random(f"{seed}/eval/next_sentence")
    facts = Facts(world)
    items = []
    while len(items) < COUNTS["next_sentence"]:
        name, sents = story_sentences(facts, rng, held_out=True)
        # The context reaches the journey sentence (index 3), which makes it a held-out passage.
        k = rng.randint(4, len(sents) - 1)
        distractors: list[str] = []
        while len(distractors) < 3:
            other = story_sentences(facts, rng, held_out=True)[1]
            cand = other[min(k, len(other) - 1)]
            if name not in cand and cand != sents[k] and cand not in distractors:
                distractors.append(cand)
        choices = [sents[k], *distractors]
        rng.shuffle(choices)
        items.append(
            {
                "id": f"next-{len(items):04d}",
                "context": " ".join(sents[:k]),
                "choices": [" " + c for c in choices],
                "gold": choices.index(sents[k]),
            }
        )
    return items


def last_word(world: World, seed: int) -> list[dict]:
    rng = random.Random(f"{seed}/eval/last_word")
    facts = Facts(world)
    items = []
    for i in range(COUNTS["last_word"]):
        text = " ".join(story_sentences(facts, rng, held_out=True)[1])
        assert text.endswith("."), text
        context, word = text[:-1].rsplit(" ", 1)
        items.append({"id": f"last-{i:04d}", "context": context, "target": " " + word})
    return items


def heldout(world: World, seed: int) -> list[dict]:
    rng = random.Random(f"{seed}/eval/heldout")
    facts = Facts(world)
    return [
        {"id": f"heldout-{i:04d}", "text": " ".join(story_sentences(facts, rng, held_out=True)[1])}
        for i in range(COUNTS["heldout"])
    ]


BUILDERS = {"fact_cloze": fact_cloze, "next_sentence": next_sentence, "last_word": last_word, "heldout": heldout}


def write_evalsets(out_dir: Path, world: World, seed: int, generator_version: int) -> dict:
    """Write the four files and `manifest.json` (per-file item count and sha256) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, build in BUILDERS.items():
        data = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in build(world, seed)).encode()
        (out_dir / f"{name}.jsonl").write_bytes(data)
        files[f"{name}.jsonl"] = {"items": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {"generator_version": generator_version, "seed": seed, "files": files}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
