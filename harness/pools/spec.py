"""Pool definitions: `pools/<id>.toml` loaded into the frozen `PoolSpec`.

A pool says where its document shards live (local paths or fsspec URLs), how to check them (sha256, counts),
how a document is identified (`id_scheme`) and which JSON field holds its text. Three ways to list shards:

- `source = "shards"`: the `[[shards]]` tables (paths relative to `root`, or absolute URLs);
- `source = "list"`: a text file of shard URLs, one per line (DCLM publishes its pools this way), downloaded
  from `list_url` into the pool's folder and checked against `list_sha256` when that is pinned;
- `source = "sandbox"`: generated locally by `harness pool create sandbox`; the pinned `[[shards]]` hold the
  sha256 of each shard's uncompressed content, which every machine must reproduce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from harness.config import check_named_after_file, doc, from_dict, read_toml, shipped_file, shipped_names
from harness.resources import harness_home

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class ShardSpec:
    """One pinned document shard."""

    path: str = doc("File path relative to the pool's root, or an absolute path / fsspec URL.")
    documents: int = doc("Number of documents (non-empty lines) in the shard.", default=0)
    sha256: str = doc("sha256 of the stored (compressed) file; '' = not pinned.", default="")
    content_sha256: str = doc("sha256 of the uncompressed bytes; '' = not pinned.", default="")

    def __post_init__(self) -> None:
        for key in ("sha256", "content_sha256"):
            value = getattr(self, key)
            if value and not _HEX64.fullmatch(value):
                raise ValueError(f"shard {self.path!r}: {key!r} must be 64 lowercase hex digits, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    """A standard pool of documents that submissions select from."""

    id: str = doc("Pool id, equal to the file name (pools/<id>.toml); tracks name it in `pool`.")
    version: int = doc("Bumped whenever the pool's content changes; its data folder is <id>-v<version>.")
    description: str = doc("One line for tables.")
    source: Literal["shards", "list", "sandbox"] = doc("How the shard list is obtained (see the module doc).")
    id_scheme: Literal["field", "sha256-line"] = doc(
        "'field': each JSON line carries its 32-hex id in `id_field`; 'sha256-line': the id is the first 16 "
        "bytes of sha256 of the raw JSON line as stored (utf-8, without the newline), hex "
        "(harness.pools.document_id)."
    )
    id_field: str = doc("JSON field holding the id when id_scheme = 'field'.", default="id")
    text_field: str = doc("JSON field holding the document's text.", default="text")
    root: str = doc("Base of relative shard paths; '' = the pool's data folder under HARNESS_HOME.", default="")
    list_url: str = doc("source = 'list': URL of the file listing one shard URL per line.", default="")
    list_sha256: str = doc("sha256 of that list file; '' = not pinned (its content is not known to us).", default="")
    list_files: int = doc("Number of shard URLs in the list file; 0 = not pinned.", default=0)
    documents: int = doc("Documents in the whole pool; 0 = not pinned (known once indexed).", default=0)
    storage_options: dict[str, Any] = doc(
        "fsspec options for reading the shards, e.g. {anon = true} for public S3.", default_factory=dict
    )
    sandbox_scale: float = doc("source = 'sandbox': the `scale` passed to the generator.", default=1.0)
    notes: str = doc("Where the numbers come from.", default="")
    shards: tuple[ShardSpec, ...] = doc("Pinned shards (source 'shards' and 'sandbox').", default=())
    reference: tuple[ShardSpec, ...] = doc(
        "source = 'sandbox': the pinned classifier reference set beside the pool (never part of it).", default=()
    )

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError(f"'version' must be >= 1, got {self.version}")
        if self.source == "list" and not self.list_url:
            raise ValueError("source = 'list' needs 'list_url'")
        if self.source == "shards" and not self.shards:
            raise ValueError("source = 'shards' needs at least one [[shards]] table")
        if self.list_sha256 and not _HEX64.fullmatch(self.list_sha256):
            raise ValueError(f"'list_sha256' must be 64 lowercase hex digits, got {self.list_sha256!r}")

    @property
    def home(self) -> Path:
        """Local data folder of this pool version: downloaded list, generated shards, the index."""
        return harness_home() / "pools" / f"{self.id}-v{self.version}"

    @property
    def base(self) -> str:
        """Where relative shard paths start."""
        return self.root or str(self.home)


def load_pool_file(path: Path) -> PoolSpec:
    """Load and validate one pool definition; its `id` must equal the file name."""
    spec = from_dict(PoolSpec, read_toml(path), str(path))
    check_named_after_file(path, "id", spec.id)
    return spec


def pool_names() -> list[str]:
    return shipped_names("pools")


@cache
def get_pool_spec(pool_id: str) -> PoolSpec:
    """The shipped pool definition `pool_id`; an unknown id answers with the closest known ids."""
    return load_pool_file(shipped_file("pools", "pool", pool_id))


def spec_to_toml_shards(shards: list[dict[str, Any]]) -> str:
    """`[[shards]]` tables for pinning generated shards in a pool file (used when the sandbox version changes)."""
    out = []
    for s in shards:
        out.append("[[shards]]")
        out.append(f'path = "{s["path"]}"')
        out.append(f"documents = {s['documents']}")
        out.append(f'content_sha256 = "{s["content_sha256"]}"')
        out.append("")
    return "\n".join(out)


__all__ = ["PoolSpec", "ShardSpec", "get_pool_spec", "load_pool_file", "pool_names", "spec_to_toml_shards"]
