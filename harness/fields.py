"""The one check of the text a submitter types (name, authors, description, link), before any work starts.

The same rules hold for `harness submit`'s options (checked when `SubmitOptions` is built, so a bad field is
refused before validation, not after training) and for a stored record's `submission` block. The text itself is
never interpreted: the terminal prints it with markup off (see `plain`), the site escapes it.

Refused: control characters (newlines and tabs are allowed in a description only), bidirectional overrides and
isolates (U+202A-U+202E, U+2066-U+2069, and the marks U+200E, U+200F, U+061C: they make text display in another
order than it is stored), lone surrogates, over-long fields, and links that are not http(s) URLs with a host.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

#: Longest accepted value of each field, in characters.
MAX_CHARS = {"name": 120, "author": 120, "description": 4000, "link": 2000}
MAX_AUTHORS = 50
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Every character the loop in `text_problem` rejects: controls (category Cc is exactly these two ranges), line
# and paragraph separators, bidirectional controls, lone surrogates. Tested against the loop, character by character.
_REFUSED = "\x7f-\x9f\u2028\u2029\ud800-\udfff" + "".join(sorted(_BIDI))
_SUSPECT = re.compile(f"[\x00-\x1f{_REFUSED}]")
_SUSPECT_MULTILINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_REFUSED}]")  # tab, newline, return allowed


def text_problem(field: str, value: object, *, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable as the submission field `field` (None when it is)."""
    if not isinstance(value, str):
        return f"{field} must be text, got {type(value).__name__}"
    limit = MAX_CHARS["author" if field.startswith("author") else field]
    if len(value) > limit:
        return f"{field} is {len(value):,} characters long; at most {limit:,} are allowed"
    if not (_SUSPECT_MULTILINE if multiline else _SUSPECT).search(value):
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
    *, name: object, authors: object, description: object, link: object, name_required: bool
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
    problems.append(text_problem("description", description, multiline=True))
    problems.append(link_problem(link))
    return [p for p in problems if p]


def plain(text: str) -> str:
    """User text for a rich console: markup escaped, so `[/]` or `[link=...]` print as typed."""
    from rich.markup import escape

    return escape(text)
