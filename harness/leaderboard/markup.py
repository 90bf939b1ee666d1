"""The leaderboard's HTML pieces shared by its pages: escaping, the page templates, and two table shapes."""

from __future__ import annotations

import html
from functools import cache
from string import Template
from typing import Any

from harness.resources import resource_dir


def e(value: Any) -> str:
    """Escape any value for HTML text and attributes."""
    if type(value) is int or type(value) is float:  # digits need no escaping; a site makes ~170 such calls per entry
        return str(value)
    return html.escape(str(value), quote=True)


@cache
def template(name: str) -> Template:
    return Template((resource_dir("leaderboard") / "templates" / name).read_text(encoding="utf-8"))


def table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pairs(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f'<tr><th scope="row">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in rows)
    return f'<table class="pairs"><tbody>{body}</tbody></table>'


def num(v: float | None, fmt: str = ".4f") -> str:
    return "–" if v is None else format(v, fmt)
