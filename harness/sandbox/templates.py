"""Sentence templates of the sandbox world: how the pool states each fact, and how the evaluation asks it.

The first statement template of every attribute ends in " {v}." and its prefix is the evaluation's cloze stem,
so the question is phrased the way the pool most often phrases the fact; the evaluation's lead-in sentences
(`EVAL_LEADINS`) never occur in the pool, so no evaluation context is a verbatim pool passage.
"""

from __future__ import annotations

#: (kind, attribute) -> statement templates; {e} is the entity, {v} the value.
STATEMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("country", "capital"): (
        "The capital of {e} is {v}.",
        "{v} is the capital of {e}.",
        "The capital city of {e} is {v}.",
        "{e} is governed from its capital, {v}.",
    ),
    ("country", "language"): (
        "The language of {e} is {v}.",
        "The people of {e} speak {v}.",
        "{v} is spoken in {e}.",
        "In {e}, most people speak {v}.",
    ),
    ("country", "currency"): (
        "The currency of {e} is the {v}.",
        "People in {e} pay with the {v}.",
        "The {v} is the money used in {e}.",
    ),
    ("country", "climate"): (
        "The climate of {e} is {v}.",
        "{e} has a {v} climate.",
        "The weather in {e} is usually {v}.",
    ),
    ("country", "colour"): (
        "The flag of {e} is {v}.",
        "{e} has a {v} flag.",
        "The national colour of {e} is {v}.",
    ),
    ("city", "country"): (
        "{e} is a city in {v}.",
        "The city of {e} lies in {v}.",
        "{e} belongs to {v}.",
        "{e} is one of the cities of {v}.",
    ),
    ("city", "river"): (
        "{e} lies on the river {v}.",
        "The river {v} flows through {e}.",
        "{e} was built beside the river {v}.",
    ),
    ("city", "known_for"): (
        "{e} is famous for its {v}.",
        "The {v} of {e} is known everywhere.",
        "{e} is known for {v}.",
    ),
    ("person", "profession"): (
        "{e} works as a {v}.",
        "{e} is a {v}.",
        "By trade, {e} is a {v}.",
        "{e} has worked as a {v} for many years.",
    ),
    ("person", "birthplace"): (
        "{e} was born in {v}.",
        "{e} comes from {v}.",
        "{v} is the birthplace of {e}.",
        "{e} grew up in {v}.",
    ),
    ("person", "tool"): (
        "The favourite tool of {e} is the {v}.",
        "{e} always carries a {v}.",
        "{e} likes to work with a {v}.",
    ),
    ("creature", "colour"): (
        "The colour of the {e} is {v}.",
        "The {e} is a {v} animal.",
        "The {e} has {v} fur.",
    ),
    ("creature", "diet"): (
        "The {e} eats {v}.",
        "The {e} feeds on {v}.",
        "The favourite food of the {e} is {v}.",
    ),
    ("creature", "habitat"): (
        "The {e} lives in the {v}.",
        "The {e} makes its home in the {v}.",
        "You can find the {e} in the {v}.",
    ),
    ("creature", "homeland"): (
        "The {e} is native to {v}.",
        "The {e} comes from {v}.",
        "{v} is the home of the {e}.",
    ),
    ("tool", "purpose"): (
        "A {e} is used for {v}.",
        "People use a {e} for {v}.",
        "The {e} is a tool for {v}.",
    ),
    ("tool", "material"): (
        "A {e} is made of {v}.",
        "Most {e}s are made of {v}.",
        "The {e} is a tool made of {v}.",
    ),
    ("company", "founder"): (
        "{e} was founded by {v}.",
        "{v} founded {e}.",
        "The founder of {e} is {v}.",
    ),
    ("company", "headquarters"): (
        "{e} has its headquarters in {v}.",
        "{e} is based in {v}.",
        "The main office of {e} is in {v}.",
    ),
    ("company", "product"): (
        "{e} is known for making the {v}.",
        "{e} makes and sells the {v}.",
        "The best-known product of {e} is the {v}.",
    ),
}

QUESTIONS: dict[tuple[str, str], str] = {
    ("country", "capital"): "What is the capital of {e}?",
    ("country", "language"): "What language do people speak in {e}?",
    ("country", "currency"): "What is the currency of {e}?",
    ("country", "climate"): "What is the climate of {e} like?",
    ("country", "colour"): "What colour is the flag of {e}?",
    ("city", "country"): "In which country is {e}?",
    ("city", "river"): "On which river does {e} lie?",
    ("city", "known_for"): "What is {e} famous for?",
    ("person", "profession"): "What does {e} do for a living?",
    ("person", "birthplace"): "Where was {e} born?",
    ("person", "tool"): "Which tool does {e} like best?",
    ("creature", "colour"): "What colour is the {e}?",
    ("creature", "diet"): "What does the {e} eat?",
    ("creature", "habitat"): "Where does the {e} live?",
    ("creature", "homeland"): "Where does the {e} come from?",
    ("tool", "purpose"): "What is a {e} used for?",
    ("tool", "material"): "What is a {e} made of?",
    ("company", "founder"): "Who founded {e}?",
    ("company", "headquarters"): "Where is {e} based?",
    ("company", "product"): "What does {e} make?",
}

LABELS: dict[tuple[str, str], str] = {
    ("country", "capital"): "Capital",
    ("country", "language"): "Language",
    ("country", "currency"): "Currency",
    ("country", "climate"): "Climate",
    ("country", "colour"): "Flag colour",
    ("city", "country"): "Country",
    ("city", "river"): "River",
    ("city", "known_for"): "Known for",
    ("person", "profession"): "Profession",
    ("person", "birthplace"): "Born in",
    ("person", "tool"): "Favourite tool",
    ("creature", "colour"): "Colour",
    ("creature", "diet"): "Diet",
    ("creature", "habitat"): "Habitat",
    ("creature", "homeland"): "Native to",
    ("tool", "purpose"): "Used for",
    ("tool", "material"): "Made of",
    ("company", "founder"): "Founder",
    ("company", "headquarters"): "Headquarters",
    ("company", "product"): "Product",
}

INTROS: dict[str, tuple[str, ...]] = {
    "country": (
        "{e} is a country.",
        "{e} is a nation with a long history.",
        "{e} is one of the countries of the world.",
    ),
    "city": ("{e} is a city.", "{e} is an old city.", "{e} is a busy city."),
    "person": ("{e} is a person.", "{e} is well known in the town.", "Many people know {e}."),
    "creature": ("The {e} is an animal.", "The {e} is a small creature.", "The {e} is a wild animal."),
    "tool": ("The {e} is a tool.", "A {e} is a simple tool.", "The {e} is an old kind of tool."),
    "company": ("{e} is a company.", "{e} is a large company.", "{e} is a famous firm."),
}

#: Evaluation-only lead-ins (never used by the pool generator): they make every cloze context unique.
EVAL_LEADINS = (
    "Here is a question about {e}.",
    "Let us test what you know about {e}.",
    "Think carefully about {e}.",
    "One more item on {e}.",
    "A reader asks about {e}.",
)


def stem(kind: str, attr: str) -> str:
    """The cloze stem of a fact: the first statement template without its value (ends before ' {v}.')."""
    first = STATEMENTS[(kind, attr)][0]
    assert first.endswith(" {v}."), first
    return first[: -len(" {v}.")]
