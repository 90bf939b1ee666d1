"""Temporary names that say who wrote them, so a later run can clean what a killed writer left behind.

A writer that makes a file or folder under a temporary name and renames it into place leaves the temporary one
behind when it is killed (kill -9, power loss). Each such name carries `<host>~<pid>~<random>`: a later run on
the same host removes the leftovers whose process is gone, and never touches those of a writer still running
(on this host or another one sharing the folder).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"


def owner_tag() -> str:
    """`<host>~<pid>~<random>` for a temporary name of this process."""
    return f"{_HOST}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_orphan(name: str) -> bool:
    """Whether a temporary name was made by a process of this host that no longer runs."""
    match = re.search(r"(?:^|[.\-_])([A-Za-z0-9]+)~(\d+)~[0-9a-f]{8}", name)
    if not match or match[1] != _HOST:
        return False
    return int(match[2]) != os.getpid() and not _alive(int(match[2]))


def sweep(folder: Path, pattern: str) -> list[Path]:
    """Remove the entries of `folder` matching the glob `pattern` whose writer is gone; returns them."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(pattern):
        if is_orphan(path.name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sweep_tree(root: Path) -> list[Path]:
    """`sweep` every folder under `root` (hidden temporary names only)."""
    removed = []
    if root.is_dir():
        for path in sorted(root.rglob(".*~*~*"), reverse=True):  # deepest first
            if path.exists() and is_orphan(path.name):
                removed += sweep(path.parent, path.name)
    return removed
