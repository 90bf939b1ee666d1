"""Where the harness finds its shipped data (tracks, pools, suites, site assets) and its working folders."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """A top-level data folder (`tracks`, `pools`, `evaluation`, `leaderboard`, `examples`).

    An installed wheel carries them as `harness/_data/<name>`; a source checkout has them beside the package.
    """
    installed = _PACKAGE / "_data" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def asset_path(name: str) -> Path:
    """A file shipped inside the package (e.g. the sandbox tokenizer)."""
    return _PACKAGE / "assets" / name


def harness_home() -> Path:
    """Cache of generated and downloaded data (pools, indexes, tokenizers): `$HARNESS_HOME` or ~/.cache/harness."""
    return Path(os.environ.get("HARNESS_HOME") or Path.home() / ".cache" / "harness").expanduser()
