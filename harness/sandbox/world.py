"""The sandbox world: invented entities, their attributes (the true facts) and one "myth" value per fact.

Everything is derived from a fixed seed with `random.Random`, so the world is the same on every machine.
Entity popularity is heavy-tailed (some countries and people are written about far more often than others),
which spreads the evaluation's facts over a range of difficulty: popular facts are learned from any sample,
rare ones only from a sample that spends its tokens on clean text.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache

#: Seed of the world itself (entities and facts); the pool's documents use the generator seed.
WORLD_SEED = 20240611

KINDS = ("country", "city", "person", "creature", "tool", "company")
#: How many entities of each kind the world holds. Small on purpose: ~720 facts, so that a nano-sized budget
#: of clean text states a typical fact dozens of times while a random sample states it a few times.
COUNTS = {"country": 20, "city": 60, "person": 64, "creature": 32, "tool": 24, "company": 24}

LANGUAGES = ("Ostic", "Velan", "Moru", "Tarnic", "Elish", "Quendar", "Sorbic", "Idran", "Pallic", "Zenti")
CURRENCIES = ("dorn", "pell", "karat", "misk", "velo", "tolk", "brenn", "sura")
CLIMATES = ("cold", "warm", "rainy", "dry", "windy", "mild", "foggy", "snowy")
COLOURS = ("red", "blue", "green", "yellow", "white", "black", "grey", "orange", "purple", "brown", "silver")
GOODS = ("cheese", "glass", "silk", "pottery", "ships", "bread", "wine", "paper", "rope", "salt", "honey", "wool")
PROFESSIONS = ("baker", "sailor", "farmer", "teacher", "painter", "doctor", "miner", "weaver", "poet", "builder")
PROFESSIONS += ("potter", "fisher", "singer", "merchant", "carpenter", "gardener", "tailor", "scholar")
DIETS = ("berries", "fish", "seeds", "insects", "leaves", "roots", "grass", "mushrooms", "nuts", "worms")
HABITATS = ("forest", "desert", "mountains", "marsh", "river", "meadow", "caves", "hills", "jungle", "tundra")
PURPOSES = ("weaving", "fishing", "digging", "carving", "sewing", "measuring", "cooking", "writing", "painting")
PURPOSES += ("planting", "sawing", "grinding", "brewing", "climbing", "counting", "sweeping")
MATERIALS = ("bronze", "iron", "oak", "bone", "stone", "copper", "glass", "clay", "willow", "steel")

#: Attribute -> (value domain, where the value is an entity kind or a tuple of literal words).
ATTRIBUTES: dict[str, dict[str, str | tuple[str, ...]]] = {
    "country": {
        "capital": "city",
        "language": LANGUAGES,
        "currency": CURRENCIES,
        "climate": CLIMATES,
        "colour": COLOURS,
    },
    "city": {"country": "country", "river": "river", "known_for": GOODS},
    "person": {"profession": PROFESSIONS, "birthplace": "city", "tool": "tool"},
    "creature": {"colour": COLOURS, "diet": DIETS, "habitat": HABITATS, "homeland": "country"},
    "tool": {"purpose": PURPOSES, "material": MATERIALS},
    "company": {"founder": "person", "headquarters": "city", "product": "tool"},
}

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "th")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "k", "nd", "sk", "th")
#: Name endings per kind make names pronounceable and hint at the kind, as real names often do.
_SUFFIXES = {
    "country": ("ia", "ora", "and", "esh", "ovia", "ar", "istan", "ene"),
    "city": ("", "", "ford", "holm", "ek", "ara", "um"),
    "person": ("", "", "o", "a", "in", "el", "us"),
    "creature": ("", "ling", "ok", "ish", "ar"),
    "tool": ("", "", "el", "et"),
    "company": ("co", "ex", "tron", "works", "corp"),
    "river": ("", "a", "en"),
}


@dataclass(frozen=True)
class Entity:
    """One thing in the world: its kind, name, popularity weight and true attribute values."""

    kind: str
    name: str
    weight: float
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)  # identity equality and hashing: the caches below key on the world
class World:
    """All entities, lookups by kind and name, and each fact's myth (the value wrong_fact documents state)."""

    entities: dict[str, tuple[Entity, ...]]
    rivers: tuple[str, ...]
    myths: dict[tuple[str, str], str]

    def by_name(self, name: str) -> Entity:
        return _index(self)[name]

    def domain(self, kind: str, attr: str) -> tuple[str, ...]:
        """Every value an attribute can take (entity names of the value's kind, or the literal words)."""
        dom = ATTRIBUTES[kind][attr]
        if isinstance(dom, tuple):
            return dom
        if dom == "river":
            return self.rivers
        return tuple(e.name for e in self.entities[dom])

    def pick(self, rng: random.Random, kind: str) -> Entity:
        """An entity of `kind`, drawn by popularity."""
        ents = self.entities[kind]
        return rng.choices(ents, cum_weights=_cum_weights(self, kind))[0]

    def facts(self) -> list[tuple[Entity, str, str]]:
        """Every (entity, attribute, true value), in a fixed order."""
        return [(e, a, v) for k in KINDS for e in self.entities[k] for a, v in e.attrs.items()]


@cache
def _index(world: World) -> dict[str, Entity]:
    return {e.name: e for ents in world.entities.values() for e in ents}


@cache
def _cum_weights(world: World, kind: str) -> list[float]:
    total, out = 0.0, []
    for e in world.entities[kind]:
        total += e.weight
        out.append(total)
    return out


def _name(rng: random.Random, kind: str, taken: set[str]) -> str:
    while True:
        n_syll = rng.choice((1, 2, 2))
        stem = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n_syll)) + rng.choice(_CODAS)
        name = (stem + rng.choice(_SUFFIXES[kind])).capitalize()
        # Short names keep a fact to a few tokens of a 2048-token BPE, so a tiny model can learn it.
        if 3 <= len(name) <= 8 and name not in taken:
            taken.add(name)
            return name


@cache
def build_world(seed: int = WORLD_SEED) -> World:
    """The world for `seed`: names first (all distinct across kinds), then attributes, then myths."""
    rng = random.Random(f"world:{seed}")
    taken: set[str] = set()
    names = {k: [_name(rng, k, taken) for _ in range(COUNTS[k])] for k in KINDS}
    rivers = tuple(_name(rng, "river", taken) for _ in range(30))
    # Popularity ~ 1 / (rank + 3): a heavy tail without a single entity dominating its kind.
    weights = {k: [1.0 / (i + 3) for i in range(COUNTS[k])] for k in KINDS}
    countries = names["country"]
    assert COUNTS["city"] == 3 * COUNTS["country"], "every country has three cities, the first its capital"
    cities_of = {c: names["city"][3 * i : 3 * i + 3] for i, c in enumerate(countries)}
    attrs: dict[str, list[dict[str, str]]] = {k: [] for k in KINDS}
    for c in countries:
        attrs["country"].append(
            {
                "capital": cities_of[c][0],
                "language": rng.choice(LANGUAGES),
                "currency": rng.choice(CURRENCIES),
                "climate": rng.choice(CLIMATES),
                "colour": rng.choice(COLOURS),
            }
        )
    for c in countries:
        for _city in cities_of[c]:
            attrs["city"].append({"country": c, "river": rng.choice(rivers), "known_for": rng.choice(GOODS)})
    for _ in names["person"]:
        attrs["person"].append(
            {
                "profession": rng.choice(PROFESSIONS),
                "birthplace": rng.choice(names["city"]),
                "tool": rng.choice(names["tool"]),
            }
        )
    for _ in names["creature"]:
        attrs["creature"].append(
            {
                "colour": rng.choice(COLOURS),
                "diet": rng.choice(DIETS),
                "habitat": rng.choice(HABITATS),
                "homeland": rng.choice(countries),
            }
        )
    for _ in names["tool"]:
        attrs["tool"].append({"purpose": rng.choice(PURPOSES), "material": rng.choice(MATERIALS)})
    for _ in names["company"]:
        attrs["company"].append(
            {
                "founder": rng.choice(names["person"]),
                "headquarters": rng.choice(names["city"]),
                "product": rng.choice(names["tool"]),
            }
        )
    entities = {
        k: tuple(Entity(k, n, w, a) for n, w, a in zip(names[k], weights[k], attrs[k], strict=True)) for k in KINDS
    }
    world = World(entities=entities, rivers=rivers, myths={})
    for ent, attr, value in world.facts():
        # A capital's myth is another city of the same country: the plausible kind of misinformation.
        pool = cities_of[ent.name][1:] if attr == "capital" else [v for v in world.domain(ent.kind, attr) if v != value]
        world.myths[(ent.name, attr)] = rng.choice(pool)
    return world
