"""Graded quality inside the clean class (generator version 5): one number q in [0, 1] per document.

Up to version 4 a clean document was simply clean: every fact true, every sentence informative, every story
coherent, so ranking inside the clean class could buy nothing. Since version 5 each clean (and noisy) document
draws a quality q ~ Beta(`Q_BETA`) from its own stream (`{seed}/slot/{g}/quality`) and q sets three properties
of its text, each of which the sandbox suite rewards:

- **correctness**: each fact the document states is, with probability `wrong_share(q)` = 0.5 (1 - q), the fact's
  myth (the value wrong_fact documents state and a distractor of every fact_cloze item), decided once per fact
  and document so that a document never contradicts itself;
- **informativeness**: after every sentence, `filler_rate(q)` = 0.7 (1 - q) is the chance of one more sentence
  of filler (`FILLER`: fluent, fact-free; a geometric number per sentence, about 2.3 at q = 0 and none at q = 1),
  so a low-q document spends its tokens on nothing the suite asks;
- **coherence** (stories): with probability `incoherence(q)` = 0.8 (1 - q) each, the ending names someone or
  somewhere the story never mentioned (last_word asks for that word) and two neighbouring sentences of the
  story's skeleton trade places (next_sentence asks for the next one).

At q = 1 a document is the version-4 clean document of its slot, byte for byte: the quality stream is separate
from the slot's stream, and nothing is drawn from the slot's stream that version 4 did not draw (a wrong
birthplace does change which home the story goes on to describe). Fact lists have no sentences: they carry
only wrong facts. The reference set beside the pool is the q = 1 end (`harness.sandbox.reference`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from harness.sandbox import documents as D
from harness.sandbox.world import Entity, World

#: Beta(a, b) of q: most documents middling, a few excellent and a few very poor (mean 0.5, sd 0.22).
Q_BETA = (2.0, 2.0)
WRONG_AT_Q0 = 0.5
FILLER_AT_Q0 = 0.7
INCOHERENT_AT_Q0 = 0.8

#: Fluent sentences that state nothing about the world (no entity, no value, no evaluation lead-in).
FILLER = (
    "There is a lot that could be said about this.",
    "Many people have talked about it over the years.",
    "Some find this interesting, and others do not.",
    "It is hard to say much more than that.",
    "As everyone knows, things are the way they are.",
    "In any case, that is how it is.",
    "Of course, this is only one part of the picture.",
    "People often wonder about such things.",
    "This is something worth thinking about.",
    "Not everyone agrees on what it all means.",
    "It is a topic that comes up again and again.",
    "More could be written here, but not today.",
    "Some of this may be well known already.",
    "There are many ways to look at it.",
    "That is one way to put it, at least.",
    "It goes without saying that times change.",
    "Much has been said, and much remains unsaid.",
    "For some, this matters a great deal.",
    "It is the kind of thing people remember.",
    "All of this is part of a longer story.",
)

_SENTENCE_END = re.compile(r"\.(?= |\n|$)")


def draw_quality(seed: int, g: int) -> tuple[float, random.Random]:
    """(q, the stream of the document's quality decisions) of slot g."""
    rng = random.Random(f"{seed}/slot/{g}/quality")
    return rng.betavariate(*Q_BETA), rng


def wrong_share(q: float) -> float:
    return WRONG_AT_Q0 * (1.0 - q)


def filler_rate(q: float) -> float:
    return FILLER_AT_Q0 * (1.0 - q)


def incoherence(q: float) -> float:
    return INCOHERENT_AT_Q0 * (1.0 - q)


@dataclass(frozen=True, eq=False)
class GradedFacts(D.Facts):
    """The world's facts as one document of quality q states them: each fact true, or its myth, decided once."""

    q: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    decided: dict[tuple[str, str], bool] = field(default_factory=dict)

    def value(self, ent: Entity, attr: str) -> str:
        key = (ent.name, attr)
        if key not in self.decided:
            self.decided[key] = self.rng.random() < wrong_share(self.q)
        return self.world.myths[key] if self.decided[key] else ent.attrs[attr]


def graded_clean(world: World, rng: random.Random, q: float, qrng: random.Random) -> tuple[str, str]:
    """(kind, text) of a clean document of quality q: `rng` is the slot's stream, `qrng` the quality stream."""
    facts = GradedFacts(world, q=q, rng=qrng)
    kind = rng.choices(list(D.CLEAN_WEIGHTS), weights=list(D.CLEAN_WEIGHTS.values()))[0]
    if kind == "story":
        name, sents = D.story_sentences(facts, rng)
        text = " ".join(_incoherent(world, name, sents, q, qrng))
    else:
        text = D.CLEAN_KINDS[kind](facts, rng)
    return kind, add_filler(text, q, qrng)


def _incoherent(world: World, name: str, sents: list[str], q: float, qrng: random.Random) -> list[str]:
    """The story's sentences, its ending and order broken with probability `incoherence(q)` each."""
    sents = list(sents)
    if qrng.random() < incoherence(q):
        # The ending's last word is the protagonist or their home town; name someone or somewhere else.
        head, last = sents[-1][:-1].rsplit(" ", 1)
        kind = "person" if last == name else "city"
        told = " ".join(sents)
        others = [e.name for e in world.entities[kind] if e.name not in told]
        sents[-1] = f"{head} {qrng.choice(others)}."
    if qrng.random() < incoherence(q) and len(sents) > 3:
        i = qrng.randrange(1, len(sents) - 2)  # never the opening or the ending
        sents[i], sents[i + 1] = sents[i + 1], sents[i]
    return sents


def add_filler(text: str, q: float, qrng: random.Random) -> str:
    """`text` with a geometric number of filler sentences (rate `filler_rate(q)`) after each of its sentences."""
    rate = filler_rate(q)
    if rate <= 0:
        return text

    def after(match: re.Match[str]) -> str:
        extra = []
        while qrng.random() < rate:
            extra.append(qrng.choice(FILLER))
        return "." + "".join(" " + s for s in extra)

    return _SENTENCE_END.sub(after, text)
