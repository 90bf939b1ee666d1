"""Document generators, one per kind of text, each a pure function of (world, random.Random).

Clean kinds: encyclopedic pages, stories with a recurring structure, fact lists, Q&A pages. wrong_fact
documents are the same generators reading the world's myths instead of its facts. noisy documents are clean
ones run through `corrupt`. spam, boilerplate and gibberish have their own generators, and `near_copy`
makes a near-duplicate by small edits.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import string
from dataclasses import dataclass
from functools import cache

from harness.sandbox.templates import INTROS, LABELS, QUESTIONS, STATEMENTS
from harness.sandbox.world import ATTRIBUTES, KINDS, Entity, World


@dataclass(frozen=True)
class Facts:
    """A view of the world's facts: the true ones, or (wrong=True) the myth of every fact."""

    world: World
    wrong: bool = False

    def value(self, ent: Entity, attr: str) -> str:
        return self.world.myths[(ent.name, attr)] if self.wrong else ent.attrs[attr]

    def statement(self, rng: random.Random, ent: Entity, attr: str) -> str:
        template = rng.choice(STATEMENTS[(ent.kind, attr)])
        # "orange" is the only vowel-initial value that follows an article in the templates.
        return template.format(e=ent.name, v=self.value(ent, attr)).replace(" a orange", " an orange")

    def mentions(self, name: str) -> list[tuple[Entity, str]]:
        """Facts of other entities whose value (in this view) is `name`: 'X was born in <name>'."""
        return _reverse(self.world, self.wrong).get(name, [])


@cache
def _reverse(world: World, wrong: bool) -> dict[str, list[tuple[Entity, str]]]:
    facts = Facts(world, wrong)
    out: dict[str, list[tuple[Entity, str]]] = {}
    for kind in KINDS:
        for ent in world.entities[kind]:
            for attr, dom in ATTRIBUTES[kind].items():
                if isinstance(dom, str) and dom != "river":
                    out.setdefault(facts.value(ent, attr), []).append((ent, attr))
    return out


def _kind(rng: random.Random) -> str:
    # Countries and people carry the most facts, so pages about them are the most common.
    return rng.choices(KINDS, weights=(3, 3, 4, 2, 1, 2))[0]


# ---------------------------------------------------------------------------------------------- clean kinds


def page(facts: Facts, rng: random.Random) -> str:
    """An encyclopedic page: title, intro, the entity's facts in shuffled templates, facts that mention it."""
    ent = facts.world.pick(rng, _kind(rng))
    attrs = list(ent.attrs)
    rng.shuffle(attrs)
    body = [rng.choice(INTROS[ent.kind]).format(e=ent.name)]
    body += [facts.statement(rng, ent, a) for a in attrs]
    related = facts.mentions(ent.name)
    for other, attr in rng.sample(related, min(len(related), rng.randint(1, 4))):
        body.append(facts.statement(rng, other, attr))
    if rng.random() < 0.5:
        # A second paragraph restating one fact: real pages repeat their key facts.
        body.append("\n\n" + facts.statement(rng, ent, rng.choice(attrs)))
    title = ent.name if ent.kind not in ("creature", "tool") else f"The {ent.name}"
    return title + "\n\n" + " ".join(body).replace(" \n\n", "\n\n")


HEADS = ("Facts about {e}", "{e} at a glance", "Quick facts: {e}", "{e}", "About {e}", "Key facts on {e}")


def fact_list(facts: Facts, rng: random.Random) -> str:
    """A key-value list about one entity, or a table of one attribute over several entities."""
    world = facts.world
    kind = _kind(rng)
    if rng.random() < 0.5:
        ent = world.pick(rng, kind)
        head = rng.choice(HEADS).format(e=ent.name)
        attrs = rng.sample(list(ent.attrs), rng.randint(2, len(ent.attrs)))
        lines = [f"{LABELS[(kind, a)]}: {facts.value(ent, a)}" for a in attrs]
        return head + "\n" + "\n".join(rng.choice(("- ", "* ", "")) + line for line in lines)
    attr = rng.choice(list(ATTRIBUTES[kind]))
    ents = rng.sample(world.entities[kind], rng.randint(4, 10))
    head = f"{kind.capitalize()} and {LABELS[(kind, attr)].lower()}"
    sep = rng.choice((": ", " - ", " | "))
    return head + "\n" + "\n".join(f"{e.name}{sep}{facts.value(e, attr)}" for e in ents)


def qa(facts: Facts, rng: random.Random) -> str:
    """A question-and-answer page about one entity (or a mixed quiz)."""
    world = facts.world
    kind = _kind(rng)
    ent = world.pick(rng, kind)
    single = rng.random() < 0.6
    head = f"Questions and answers about {ent.name}" if single else "Questions and answers"
    pairs = []
    attrs = rng.sample(list(ent.attrs), len(ent.attrs))
    for i in range(rng.randint(3, 6) if not single else rng.randint(2, len(attrs))):
        e = ent if single else world.pick(rng, _kind(rng))
        attr = attrs[i] if single else rng.choice(list(e.attrs))
        pairs.append(f"Q: {QUESTIONS[(e.kind, attr)].format(e=e.name)}\nA: {facts.statement(rng, e, attr)}")
    return head + "\n\n" + "\n\n".join(pairs)


def held_out_pair(person: Entity, city: Entity) -> bool:
    """Story journeys (person -> destination) reserved for the evaluation; the pool never tells them."""
    return hashlib.sha256(f"{person.name}->{city.name}".encode()).digest()[0] % 8 == 0


@cache
def _destinations(world: World, person: str, home: str, held_out: bool) -> tuple[list[Entity], list[float]]:
    """Cities a story may send `person` to (not home; held-out pairs only or never), with cumulative weights."""
    p = world.by_name(person)
    dests = [c for c in world.entities["city"] if c.name != home and held_out_pair(p, c) == held_out]
    return dests, list(itertools.accumulate(c.weight for c in dests))


def story_sentences(facts: Facts, rng: random.Random, held_out: bool = False) -> tuple[str, list[str]]:
    """(protagonist, sentences) of a short story with a fixed skeleton (who, where from, tool, journey, creature, arrival, return home).

    The journey (protagonist -> destination) is a held-out pair when `held_out`, and never one in the pool,
    so any story prefix that reaches the journey sentence is unique to its side.
    """
    world = facts.world
    while True:
        p = world.pick(rng, "person")
        home = world.by_name(facts.value(p, "birthplace"))
        dests, cum = _destinations(world, p.name, home.name, held_out)
        if dests:
            break
    dest = rng.choices(dests, cum_weights=cum)[0]
    prof, tool = facts.value(p, "profession"), world.by_name(facts.value(p, "tool"))
    s = [
        rng.choice(
            (
                "Once upon a time, there was a {prof} named {p}.",
                "There once lived a {prof} called {p}.",
                "Long ago, a {prof} named {p} lived in {home}.",
            )
        ).format(prof=prof, p=p.name, home=home.name),
        rng.choice(
            (
                "{p} was born in {home}, a city in {c}.",
                "{p} grew up in {home}, which lies on the river {r}.",
                "{p} came from {home}, a city famous for its {g}.",
            )
        ).format(
            p=p.name,
            home=home.name,
            c=facts.value(home, "country"),
            r=facts.value(home, "river"),
            g=facts.value(home, "known_for"),
        ),
        rng.choice(
            (
                "Every day, {p} used a {t} for {u}.",
                "{p} always carried a {t} made of {m}.",
                "{p} had an old {t}, a tool for {u}.",
            )
        ).format(p=p.name, t=tool.name, u=facts.value(tool, "purpose"), m=facts.value(tool, "material")),
        rng.choice(
            (
                "One {season} morning, {p} set out for {d}.",
                "One day, {p} decided to travel to {d} in {c}.",
                "In the {season}, {p} left home to visit {d}.",
            )
        ).format(
            season=rng.choice(("spring", "summer", "autumn", "winter")),
            p=p.name,
            d=dest.name,
            c=facts.value(dest, "country"),
        ),
    ]
    if rng.random() < 0.6:
        s.append(f"The road was long, and {p.name} walked for {rng.randint(2, 9)} days.")
    if rng.random() < 0.8:
        s += _creature_episode(facts, rng, p.name)
    s.append(
        rng.choice(
            (
                "At last, {p} reached {d}, a city famous for its {g}.",
                "Finally, {p} arrived in {d}, on the river {r}.",
            )
        ).format(p=p.name, d=dest.name, g=facts.value(dest, "known_for"), r=facts.value(dest, "river"))
    )
    if rng.random() < 0.6:
        friend = world.pick(rng, "person")
        if friend.name != p.name:
            s.append(
                f"In {dest.name}, {p.name} met {friend.name}, a {facts.value(friend, 'profession')} "
                f"from {facts.value(friend, 'birthplace')}."
            )
    s.append(
        rng.choice(
            (
                "When {p} came back, everyone in {home} was happy to see {p}.",
                "After a long journey, {p} went home to {home}.",
                "Then {p} returned to {home}, and the people of {home} welcomed {p}.",
            )
        ).format(p=p.name, home=home.name)
    )
    return p.name, s


def _creature_episode(facts: Facts, rng: random.Random, who: str) -> list[str]:
    c = facts.world.pick(rng, "creature")
    diet = facts.value(c, "diet")
    return [
        f"On the way, {who} met a {c.name} near the {facts.value(c, 'habitat')}.",
        rng.choice(("The {c} was {col} and looked hungry.", "It was {a} {col} {c}, and it was hungry.")).format(
            c=c.name, col=facts.value(c, "colour"), a=_article(facts.value(c, "colour"))
        ),
        rng.choice(
            (
                "{w} gave the {c} some {d}, because the {c} eats {d}.",
                "{w} knew that the {c} eats {d}, so {w} shared some {d}.",
            )
        ).format(w=who, c=c.name, d=diet),
    ]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def story(facts: Facts, rng: random.Random) -> str:
    return " ".join(story_sentences(facts, rng)[1])


CLEAN_KINDS = {"page": page, "story": story, "list": fact_list, "qa": qa}
CLEAN_WEIGHTS = {"page": 0.35, "story": 0.30, "list": 0.15, "qa": 0.20}


def clean(facts: Facts, rng: random.Random) -> tuple[str, str]:
    """(kind, text) of a clean (or, with a myth view, wrong_fact) document."""
    kind = rng.choices(list(CLEAN_WEIGHTS), weights=list(CLEAN_WEIGHTS.values()))[0]
    return kind, CLEAN_KINDS[kind](facts, rng)


# ------------------------------------------------------------------------------------------------ junk kinds

_STRAY = ("#", "@@", "~", "|", "^", "**", "&amp;", "&nbsp;", "\\", "Ã©", "â€™", "{}", "<br>", "%%")


def corrupt(text: str, rng: random.Random) -> str:
    """True content with typos, broken casing and stray characters, at a rate drawn per document."""
    rate = rng.uniform(0.03, 0.3)  # light noise is hard to tell from clean text: the filter cannot be perfect
    out = []
    for word in text.split(" "):
        if len(word) > 1 and rng.random() < rate:
            op = rng.randrange(6)
            i = rng.randrange(len(word) - 1)
            if op == 0:
                word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
            elif op == 1:
                word = word[:i] + word[i + 1 :]
            elif op == 2:
                word = word.upper() if rng.random() < 0.5 else word.lower()
            elif op == 3:
                word = "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in word)
            elif op == 4:
                word = word + rng.choice(_STRAY)
            else:
                word = word[:i] + word[i] * 2 + word[i + 1 :]
        out.append(word)
    return " ".join(out)


def spam(world: World, rng: random.Random) -> str:
    """Ads and SEO text: shouting, keyword stuffing, repeated lines; a minority is mild and reads normally."""
    tool, city = world.pick(rng, "tool").name, world.pick(rng, "city").name
    goods, company = rng.choice(ATTRIBUTES["city"]["known_for"]), world.pick(rng, "company").name
    brand = rng.choice(("bestdeals", "cheapshop", "megasale", "topprice", "superstore")) + str(rng.randint(1, 99))
    if rng.random() < 0.25:
        return (
            f"Looking for the best {tool} in {city}? Our {tool} shop has the best {tool} prices in {city}. "
            f"Buy a {tool} today and save on every {tool}. We also sell {goods} and more {goods}. "
            f"Visit {brand} for the best {tool} and the best {goods} in {city}."
        )
    lines = [
        f"!!! BEST {tool.upper()} DEALS IN {city.upper()} !!!",
        f"Buy {tool} now - cheap {tool} - discount {tool} - {tool} sale - free shipping!!!",
        f"CLICK HERE >>> www.{brand}.example <<< LIMITED OFFER, ONLY TODAY!!!",
        f"best price {goods} {city} cheap {goods} online buy {goods} {city} {goods} shop {goods}",
        f"Call now: +{rng.randint(10**9, 10**10 - 1)} !!! 100% SATISFACTION GUARANTEED",
        f"You won't believe these {rng.randint(3, 15)} tricks to get cheap {goods} in {city}!",
        f"Make $$$ from home with {company}!!! Sign up FREE >>> {brand}.example",
        f"{tool} {tool} {tool} cheap {tool} best {tool} buy {tool} {city} {tool}",
    ]
    picked = [rng.choice(lines) for _ in range(rng.randint(4, 12))]
    return "\n".join(picked)


_NAV = ("Home", "News", "Sport", "Travel", "Weather", "Contact", "About us", "Shop", "Blog", "Help")
_BLOCKS = (
    "We use cookies to give you the best experience on our website. By continuing to browse, you agree to our use of cookies.",
    "Accept all | Reject all | Manage preferences",
    "Sign in | Register | Forgot your password?",
    "Privacy Policy | Terms of Use | Cookie Policy | Sitemap",
    "Subscribe to our newsletter and never miss an update!\nEnter your email address\nSubscribe",
    "Share this: Facebook Twitter Email Print",
    "Related articles\nRead more\nRead more\nRead more",
    "JavaScript is disabled in your browser. Please enable JavaScript to view this page.",
    "404 Not Found. The page you are looking for does not exist.",
    "Loading...\nPlease wait",
    "Skip to main content",
    "Back to top",
)


def boilerplate(world: World, rng: random.Random) -> str:
    """Navigation, cookie banners, footers and widgets, at times around a one-line headline."""
    site = (
        rng.choice(("Sandbox", "Daily", "Metro", "Global", "Valley", "Coast"))
        + " "
        + rng.choice(("Media", "News", "Times", "Post"))
    )
    parts = [" | ".join(rng.sample(_NAV, rng.randint(4, 8)))]
    parts += rng.sample(_BLOCKS, rng.randint(2, 6))
    if rng.random() < 0.4:
        parts.insert(1, f"Latest news from {world.pick(rng, 'city').name}")
    if rng.random() < 0.4:
        parts.append(f"Page 1 of {rng.randint(2, 40)} Next »")
    parts.append(f"© {rng.randint(2005, 2024)} {site}. All rights reserved.")
    return "\n".join(parts)


_SALAD = ("the", "of", "and", "a", "to", "in", "is", "was", "for", "on", "with", "it", "by", "at", "from", "as")


def gibberish(world: World, rng: random.Random) -> str:
    """Random characters, pseudo-words, encoded blobs or word salad (the salad passes stop-word filters)."""
    mode = rng.randrange(4)
    # Random characters cost about one token each: keep these documents short, or they dominate the tokens.
    n = rng.randint(8, 30) if mode in (0, 2) else rng.randint(20, 80)
    if mode == 0:
        chars = rng.choices(string.ascii_letters + string.digits + string.punctuation, k=7 * n)
        cuts = sorted(rng.sample(range(1, len(chars)), n - 1))
        return " ".join("".join(chars[a:b]) for a, b in itertools.pairwise([0, *cuts, len(chars)]))
    if mode == 1:
        sylls = [rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiouy") for _ in range(40)]
        return " ".join("".join(rng.choices(sylls, k=k)) for k in rng.choices((1, 2, 3, 4), k=n))
    if mode == 2:
        chars = "".join(rng.choices(string.ascii_letters + string.digits + "+/", k=76 * (n // 12 + 1)))
        return "\n".join(chars[i : i + 76] for i in range(0, len(chars), 76))
    words = list(_SALAD) + [e.name for k in ("country", "city", "person") for e in world.entities[k]]
    words += list(ATTRIBUTES["city"]["known_for"]) + list(ATTRIBUTES["creature"]["diet"])
    return " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."


def near_copy(text: str, rng: random.Random) -> str:
    """A near-duplicate: one to three small edits (word swap or deletion, a changed line, an added banner)."""
    original = text
    for _ in range(rng.randint(1, 3)):
        words = text.split(" ")
        op = rng.randrange(5)
        if op == 0 and len(words) > 3:
            i, j = rng.randrange(len(words)), rng.randrange(len(words))
            words[i] = words[j]
            text = " ".join(words)
        elif op == 1 and len(words) > 3:
            del words[rng.randrange(len(words))]
            text = " ".join(words)
        elif op == 2:
            text = f"Updated {rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(2010, 2024)}\n" + text
        elif op == 3:
            text = text + "\n" + rng.choice(_BLOCKS)
        else:
            text = text.replace(".", "!", 1) if rng.random() < 0.5 else text.rstrip(".!") + "..."
    # A word swapped with an equal word changes nothing; a near-duplicate must differ from its source.
    return text if text != original else "Updated\n" + text
