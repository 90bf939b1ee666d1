"""Leaked documents: pool pages that quote evaluation items (prompt and gold answer), as the web quotes benchmarks.

A small class (`LEAKS_AT_SCALE_1` documents at scale 1.0, at least `MIN_LEAKS`), so that the decontamination check
has something real to find and a subset with the leaks added can show what contamination does to a score. Each
document quotes `ITEMS_PER_DOC[task]` items of one task of the sandbox suite, every item once across the pool
(while the pool has fewer leaked documents than items), either exactly (`edit = "exact"`: the prompt followed by
the gold answer as the evaluator scores it) or lightly edited (`"light"`: case, punctuation and line breaks
changed, and for long items one word dropped), in the frame of a quiz answer key or study notes.

Leaked documents replace non-source slots spread evenly over the pool (nothing copies them), and their label is
`{"class": "leaked", "task", "items": [item ids], "edit"}`.
"""

from __future__ import annotations

import random
import re
from functools import cache

from harness.sandbox.world import World

LEAKS_AT_SCALE_1 = 40
MIN_LEAKS = 4
#: The tasks quoted, in the order leaked slots cycle through them.
TASKS = ("fact_cloze", "next_sentence", "last_word", "heldout")
#: Items quoted per document: short fact items many to a page, whole stories a few.
ITEMS_PER_DOC = {"fact_cloze": 12, "next_sentence": 5, "last_word": 5, "heldout": 3}
#: Items at least this many words long also lose one word in a light edit (a 13-gram still survives).
_DROP_WORD_FROM = 40

_HEADERS = (
    "Answer key for the reading quiz (unofficial)",
    "Practice test with solutions",
    "My study notes for the test, answers included",
    "Quiz answers, posted by a student",
    "Homework help: questions and answers",
)
_FOOTERS = ("Good luck everyone!", "Share these notes with your class.", "More answers next week.", "")


def n_leaked(n_documents: int, n_sources: int, scale: float) -> int:
    return min(max(MIN_LEAKS, round(LEAKS_AT_SCALE_1 * scale)), max(0, n_documents - n_sources) // 4)


def leaked_slots(n_documents: int, n_sources: int, n: int) -> dict[int, int]:
    """Slot -> leak number k, spread evenly over the non-source slots (the `+ k` walks them through the shards)."""
    if n == 0:
        return {}
    step = (n_documents - n_sources) // n
    return {n_sources + k * step + (step // 2 + k) % step: k for k in range(n)}


@cache
def _items(world: World, seed: int, task: str) -> tuple[tuple[str, str], ...]:
    """(item id, quote) of every item of `task`: the prompt followed by its gold answer."""
    from harness.sandbox.evalsets import BUILDERS

    out = []
    for it in BUILDERS[task](world, seed):
        if task in ("fact_cloze", "next_sentence"):
            quote = it["context"] + it["choices"][it["gold"]]
        elif task == "last_word":
            quote = it["context"] + it["target"] + "."
        else:
            quote = it["text"]
        out.append((it["id"], quote if quote.endswith(".") else quote + "."))
    return tuple(out)


def _light_edit(quote: str, rng: random.Random) -> str:
    """Case, punctuation and spacing changes (gone after normalisation), and for long quotes one dropped word."""
    words = quote.split(" ")
    if len(words) >= _DROP_WORD_FROM:
        del words[rng.randrange(len(words) // 3, 2 * len(words) // 3)]
    text = " ".join(words)
    op = rng.randrange(3)
    if op == 0:
        text = text.lower()
    elif op == 1:
        text = re.sub(r"[.,] ", lambda m: " - " if m.group(0) == ", " else ";\n", text)
    else:
        text = text.upper()[:1] + text[1:].replace(". ", ".\n\n")
    return text


def leaked_document(world: World, seed: int, k: int) -> tuple[str, str, dict]:
    """(domain, text, label fields) of leak number `k`."""
    rng = random.Random(f"{seed}/leak/{k}")
    task = TASKS[k % len(TASKS)]
    per_doc, items = ITEMS_PER_DOC[task], _items(world, seed, task)
    order = list(range(len(items)))
    random.Random(f"{seed}/leak/order/{task}").shuffle(order)
    start = (k // len(TASKS)) * per_doc
    chosen = [items[order[(start + j) % len(items)]] for j in range(per_doc)]
    edit = "exact" if (k + k // len(TASKS)) % 2 == 0 else "light"
    quotes = [q if edit == "exact" else _light_edit(q, rng) for _, q in chosen]
    numbered = rng.random() < 0.5
    body = "\n\n".join(f"{i}. {q}" if numbered else q for i, q in enumerate(quotes, start=1))
    text = f"{rng.choice(_HEADERS)}\n\n{body}\n\n{rng.choice(_FOOTERS)}".rstrip()
    domain = f"{rng.choice(('homework', 'studynotes', 'quizhelp'))}-{rng.randrange(20)}"
    return domain, text, {"task": task, "items": [item_id for item_id, _ in chosen], "edit": edit}
