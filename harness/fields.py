"""The one check of every value that comes from outside: the text a submitter types (name, authors, contact,
description, link) before any work starts, and every string and number of a record or an experiment summary read
from a results store (`data_problem`), on `leaderboard add`, on load and on build alike.

The same rules hold for `harness submit`'s options (checked when `SubmitOptions` is built, so a bad field is
refused before validation, not after training), for a stored record's `submission` block and for every other
string of a record (pool, hardware, versions, task and aggregate names, ...). The text itself is never
interpreted: the terminal prints it with markup off (see `plain`), the site escapes it.

Refused in text: control characters (newlines and tabs are allowed in a description or a note only),
bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069, and the marks U+200E, U+200F, U+061C: they
make text display in another order than it is stored), lone surrogates (not Unicode scalar values: they cannot be
written as UTF-8), the 66 noncharacters (U+FDD0-U+FDEF and U+nFFFE, U+nFFFF of every plane: not allowed in XML,
so one would make the SVG charts invalid), over-long fields, and links that are not http(s) URLs with a host.

Refused in numbers (`data_problem`): NaN and the infinities, floats beyond +-MAX_FLOAT and integers beyond
+-MAX_INT (see there for why), and data nested deeper than MAX_DEPTH.
"""

from __future__ import annotations

import math
import re
import unicodedata
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

#: Longest accepted value of each field, in characters; any other text field holds at most MAX_TEXT.
MAX_CHARS = {"name": 120, "author": 120, "contact": 200, "description": 4000, "link": 2000}
MAX_TEXT = 4000
MAX_AUTHORS = 50
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
#: The noncharacters: U+FDD0-U+FDEF and the last two code points of each of the 17 planes.
NONCHARACTERS = frozenset(
    [chr(c) for c in range(0xFDD0, 0xFDF0)] + [chr(p << 16 | low) for p in range(17) for low in (0xFFFE, 0xFFFF)]
)
# Every character the loop in `text_problem` rejects: controls (category Cc is exactly these two ranges), line
# and paragraph separators, bidirectional controls, lone surrogates, noncharacters (`suspect` says whether a text
# holds one). Tested against the loop, character by character. The noncharacters beyond the first plane have a
# pattern of their own, searched only in text that is not ASCII: in one class they made every search 10x slower.
_REFUSED = "\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff" + "".join(sorted(_BIDI))
_SUSPECT = re.compile(f"[\x00-\x1f{_REFUSED}]")
_SUSPECT_MULTILINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_REFUSED}]")  # tab, newline, return allowed
_ASTRAL_NONCHARACTER = re.compile("[" + "".join(sorted(c for c in NONCHARACTERS if ord(c) > 0xFFFF)) + "]")


def suspect(text: str, *, multiline: bool = False) -> bool:
    """Whether `text` holds a character `text_problem` refuses (one regex pass; C speed)."""
    if (_SUSPECT_MULTILINE if multiline else _SUSPECT).search(text):
        return True
    return not text.isascii() and _ASTRAL_NONCHARACTER.search(text) is not None


def text_problem(field: str, value: object, *, multiline: bool = False, limit: int | None = None) -> str | None:
    """Why `value` is not acceptable as the field `field` (None when it is); `limit` defaults to the field's."""
    if not isinstance(value, str):
        return f"{field} must be text, got {type(value).__name__}"
    if limit is None:
        limit = MAX_CHARS.get("author" if field.startswith("author") else field, MAX_TEXT)
    if len(value) > limit:
        return f"{field} is {len(value):,} characters long; at most {limit:,} are allowed"
    if not suspect(value, multiline=multiline):
        return None  # one regex pass; the loop below only runs to name the culprit
    for i, ch in enumerate(value):
        if ch in _BIDI:
            return f"{field} holds the bidirectional control U+{ord(ch):04X} at character {i}; remove it"
        if multiline and ch in "\n\r\t":
            continue
        category = unicodedata.category(ch)
        if category == "Cc" or ch in "\u2028\u2029":
            return f"{field} holds the control character U+{ord(ch):04X} at character {i}; remove it"
        if category == "Cs":
            return f"{field} holds an invalid character (lone surrogate U+{ord(ch):04X}) at character {i}"
        if ch in NONCHARACTERS:
            return f"{field} holds the noncharacter U+{ord(ch):04X} at character {i}; remove it"
    return None


#: A name that becomes one component of a file path (an experiment, a track, an entry id): letters, digits, '.',
#: '_' and '-', starting with a letter or a digit. So never a separator, never '.' or '..', never hidden.
_PATH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 120


def name_problem(field: str, value: object) -> str | None:
    """Why `value` cannot name a file or folder (None when it can)."""
    if not isinstance(value, str):
        return f"{field} must be text, got {type(value).__name__}"
    if len(value) > MAX_NAME or not _PATH_NAME.fullmatch(value):
        return (
            f"{field} {value[:80]!r} is not a name: at most {MAX_NAME} letters, digits, '.', '_' or '-', "
            "starting with a letter or a digit (it names a file)"
        )
    return None


def link_problem(link: object) -> str | None:
    """Why `link` is not an acceptable http(s) URL ('' = no link is fine)."""
    if link == "":
        return None
    problem = text_problem("link", link)
    if problem:
        return problem
    assert isinstance(link, str)
    if any(ch.isspace() for ch in link):
        return f"link must not contain spaces, got {link[:80]!r}"
    try:
        parts = urlsplit(link)
    except ValueError as exc:
        return f"link is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not link.startswith(("http://", "https://")):
        return f"link must be an http:// or https:// URL, got {link[:80]!r}"
    if not parts.hostname:
        return f"link has no host name: {link[:80]!r}"
    return None


def submission_problems(
    *, name: object, authors: object, description: object, link: object, name_required: bool, contact: object = ""
) -> list[str]:
    """Every problem of a submission's text fields, in field order."""
    problems = []
    if name_required and isinstance(name, str) and not name.strip():
        problems.append("name must not be empty")
    problems.append(text_problem("name", name))
    if not isinstance(authors, list | tuple):
        problems.append(f"authors must be a list of names, got {type(authors).__name__}")
    else:
        if len(authors) > MAX_AUTHORS:
            problems.append(f"{len(authors)} authors; at most {MAX_AUTHORS} are allowed")
        for i, author in enumerate(authors[:MAX_AUTHORS]):
            if isinstance(author, str) and not author.strip():
                problems.append(f"author {i + 1} is empty")
            problems.append(text_problem(f"author {i + 1}", author))
    problems.append(text_problem("contact", contact))
    problems.append(text_problem("description", description, multiline=True))
    problems.append(link_problem(link))
    return [p for p in problems if p]


# ------------------------------------------------------------------------------------------ data from a store

#: Largest integer magnitude in a record or summary: 2**53 - 1, JavaScript's Number.MAX_SAFE_INTEGER. The site's
#: script, its JSON download and spreadsheets read numbers as doubles, which hold every integer up to this exactly;
#: the largest count a record holds (tokens seen, about 3e11 on DCLM's biggest track) is 30,000 times smaller.
MAX_INT = 2**53 - 1
#: Largest float magnitude: far from the double range's edge (1.8e308), so that sums, differences, squares and
#: means of 10,000 such values (ranking, charts, intervals) stay finite. Perplexities of diverged runs stay below.
MAX_FLOAT = 1e100
#: Deepest nesting of objects and lists (a record nests 6 deep: replicates.runs[i].examples.<task>.<sub>.values).
MAX_DEPTH = 16
#: Longest key of an object (task, aggregate, metric names: they are table cells and column headers).
MAX_KEY = 200
#: Keys whose text may hold newlines and tabs.
MULTILINE_KEYS = frozenset({"description", "note"})
#: Keys whose text is machine data never shown as text, with their own bound: 0/1 outcomes packed as hex
#: (harness.analysis.stats.pack_examples), 4 per character: a million examples.
LONG_KEYS = {"bits": 250_000}
_NUMBER = frozenset({int, float})


def data_problem(data: Any) -> str | None:
    """Why JSON `data` (a record or an experiment summary, parsed) breaks the rules of text and numbers above,
    naming the first offending key (None when it keeps them).

    A fast pass gathers every key, string and number in C-level steps and checks them at once; only data that
    fails it takes the slow walk that names the culprit (10,000 records are loaded at once)."""
    found: tuple[list[Any], list[Any], list[Any], list[Any]] = ([], [], [], [])  # keys, texts, multiline, numbers
    if _gather(data, 0, found) and _all_fine(*found):
        return None
    return _find(data, "", 0, "")


def _gather(value: Any, depth: int, found: tuple[list[Any], list[Any], list[Any], list[Any]]) -> bool:
    """Collect the keys, strings and numbers of `value` into `found`; False when it holds something the fast
    pass cannot judge (nesting too deep, an unexpected type, a long key's text out of bounds)."""
    keys, texts, multiline, numbers = found
    if depth > MAX_DEPTH:
        return False
    if type(value) is dict:
        keys.extend(value)
        items: Any = value.values()
        if "description" in value or "note" in value or "bits" in value:  # MULTILINE_KEYS, LONG_KEYS
            items = [v for k, v in value.items() if k not in MULTILINE_KEYS and k not in LONG_KEYS]
            for key in MULTILINE_KEYS.intersection(value):
                if type(value[key]) is not str:
                    return False
                multiline.append(value[key])
            for key in LONG_KEYS.keys() & value.keys():
                text = value[key]
                if type(text) is not str or len(text) > LONG_KEYS[key] or suspect(text):
                    return False
    elif type(value) is list or type(value) is tuple:
        kinds = set(map(type, value))
        if kinds <= _NUMBER:
            numbers.extend(value)
            return True
        if kinds == {str}:
            texts.extend(value)
            return True
        if kinds == {list} and set(map(type, chain.from_iterable(value))) <= _NUMBER:  # a curve
            numbers.extend(chain.from_iterable(value))
            return True
        items = value
    else:
        return False
    for item in items:
        kind = type(item)
        if kind is str:
            texts.append(item)
        elif kind is float or kind is int:
            numbers.append(item)
        elif kind is bool or item is None:
            continue
        elif not _gather(item, depth + 1, found):
            return False
    return True


def _all_fine(keys: list[Any], texts: list[Any], multiline: list[Any], numbers: list[Any]) -> bool:
    # Each check is one C-level pass over all the strings at once: the refused characters are single code
    # points, so the concatenation holds one exactly when a string does.
    if keys and (not set(map(type, keys)) <= {str} or max(map(len, keys)) > MAX_KEY or suspect("".join(keys))):
        return False
    if texts and (max(map(len, texts)) > MAX_TEXT or suspect("".join(texts))):
        return False
    if multiline and (max(map(len, multiline)) > MAX_TEXT or suspect("".join(multiline), multiline=True)):
        return False
    if not numbers:
        return True
    # The sum is NaN or infinite when a value is (no finite values within the bounds add up to an overflow), and
    # a huge integer cannot join a float sum (OverflowError). A float beyond MAX_INT is legal but rare: the exact
    # check in the slow walk judges it.
    try:
        return math.isfinite(sum(numbers)) and min(numbers) >= -MAX_INT and max(numbers) <= MAX_INT
    except OverflowError:
        return False


def number_problem(where: str, value: object) -> str | None:
    """Why `value` is not an acceptable number (None when it is, or is no number)."""
    if type(value) is int:
        if -MAX_INT <= value <= MAX_INT:
            return None
        size = f"{len(str(value)):,} digits" if value.bit_length() < 10_000 else f"{value.bit_length():,} bits"
        return f"'{where}' is an integer of {size}; integers must lie within +-{MAX_INT:,} (2**53 - 1)"
    if type(value) is float:
        if not math.isfinite(value):
            return f"'{where}' is {value!r}; numbers must be finite (no NaN or Infinity)"
        if abs(value) > MAX_FLOAT:
            return f"'{where}' is {value:.4g}; floats must lie within +-{MAX_FLOAT:g}"
    return None


def _find(value: Any, where: str, depth: int, key: str) -> str | None:
    """The first problem in `value` at the dotted key `where` (slow: one Python step per value)."""
    if depth > MAX_DEPTH:
        return f"'{where}' is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return text_problem(f"'{where}'", value, multiline=key in MULTILINE_KEYS, limit=LONG_KEYS.get(key, MAX_TEXT))
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"'{where}' has a key that is not text: {k!r}"
            if problem := text_problem("it", k, limit=MAX_KEY):  # the key is not quoted as it is: it may not print
                return f"the key {k[:80]!a} of '{where or 'the top level'}' is refused: {problem}"
            if problem := _find(v, f"{where}.{k}" if where else k, depth + 1, k):
                return problem
        return None
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if problem := _find(v, f"{where}[{i}]", depth + 1, key):
                return problem
        return None
    return number_problem(where, value)


def printable(text: str) -> str:
    """Text from outside (a file name, a message quoting one) safe for a terminal: each character `text_problem`
    refuses (controls, lone surrogates of undecodable file names, ...) written as its escape."""
    if not suspect(text):
        return text
    return "".join(ascii(ch)[1:-1] if suspect(ch) else ch for ch in text)


def plain(text: str) -> str:
    """User text for a rich console: markup escaped, so `[/]` or `[link=...]` print as typed."""
    from rich.markup import escape

    return escape(text)
