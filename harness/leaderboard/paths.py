"""Paths of the site's files, each checked to stay inside the site: every name from a record or an experiment
summary is one path component (harness.fields.name_problem: no separators, no '.' or '..'), and the joined path
must still lie under the site's folder."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError
from harness.fields import name_problem


class UnsafePath(HarnessError):
    """A name from the store that would put a file outside the site (or is no plain name)."""


def site_path(root: Path, *parts: str, suffix: str = "") -> Path:
    """`root/part/.../part<suffix>`, every part a plain name; `UnsafePath` otherwise."""
    for part in parts:
        if problem := name_problem("name", part):
            raise UnsafePath(problem)
    path = os.path.join(root, *parts) + suffix
    if not os.path.normpath(path).startswith(os.path.join(os.path.normpath(root), "")):
        raise UnsafePath(f"{path} lies outside the site {root}")
    return Path(path)
