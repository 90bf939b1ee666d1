"""Pool definitions: `pools/<id>.toml` loaded into the frozen `PoolSpec`.

A pool says where its document shards live (local paths or fsspec URLs), how to check them (sha256, counts),
how a document is identified (`id_scheme`) and which JSON field holds its text. Three ways to list shards:

- `source = "shards"`: the `[[shards]]` tables (paths relative to `root`, or absolute URLs);
- `source = "list"`: a text file of shard URLs, one per line (DCLM publishes its pools this way), downloaded
  from `list_url` into the pool's folder and checked against its pins: the file's git blob id at a named commit
  of the repository that publishes it (`list_commit`, `list_blob`, as the evaluation files are pinned), its
  sha256 where known, and its number of shard URLs where known (harness.pools.listing);
- `source = "sandbox"`: generated locally by `harness pool create sandbox`; the pinned `[[shards]]` hold the
  sha256 of each shard's uncompressed content, which every machine must reproduce.

A pool whose documents are not published in a form the harness reads says why in `unavailable`; every command
that would index or open it refuses with that explanation.
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
_HEX40 = re.compile(r"[0-9a-f]{40}")


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
    version: int = doc(
        "Bumped whenever the pool's content changes; its data folder is <id>-v<version>. For source = 'sandbox' it "
        "is also the generator version that writes the pool (harness.sandbox.VERSIONS)."
    )
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
    list_url: str = doc(
        "source = 'list': URL of the file listing one shard URL per line; with `list_commit`, a URL at that "
        "commit (never a branch, whose file can change).",
        default="",
    )
    list_commit: str = doc(
        "The commit (40 hex digits) of the git repository that publishes the list, at which `list_blob` was read.",
        default="",
    )
    list_blob: str = doc(
        "The list file's git blob id at `list_commit` (sha1 of 'blob <size>\\0' + bytes, as `git ls-tree` shows "
        "it); '' = not pinned this way.",
        default="",
    )
    list_sha256: str = doc("sha256 of the list file; '' = not pinned this way.", default="")
    list_files: int = doc(
        "Number of shard URLs (non-empty lines) in the list file; 0 = not known (the list's hash still pins it, and "
        "`harness pool index` reports the count).",
        default=0,
    )
    unavailable: str = doc(
        "Why the pool cannot be used: its documents are not published in a form the harness reads (what is "
        "published instead, and where); '' = available. Indexing or opening the pool refuses with this text.",
        default="",
    )
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
        if self.source == "shards" and not self.shards:
            raise ValueError("source = 'shards' needs at least one [[shards]] table")
        if self.list_sha256 and not _HEX64.fullmatch(self.list_sha256):
            raise ValueError(f"'list_sha256' must be 64 lowercase hex digits, got {self.list_sha256!r}")
        for key in ("list_commit", "list_blob"):
            if getattr(self, key) and not _HEX40.fullmatch(getattr(self, key)):
                raise ValueError(f"{key!r} must be 40 lowercase hex digits, got {getattr(self, key)!r}")
        if bool(self.list_commit) != bool(self.list_blob):
            raise ValueError("'list_blob' and 'list_commit' go together: the blob id is read at that commit")
        if self.source == "list" and not self.unavailable:
            if not self.list_url:
                raise ValueError("source = 'list' needs 'list_url' (or 'unavailable' saying why there is none)")
            if not (self.list_blob or self.list_sha256):
                raise ValueError(
                    "source = 'list' needs the list pinned: 'list_commit' and 'list_blob' (its git blob id), or "
                    "'list_sha256'"
                )
        if self.list_files < 0:
            raise ValueError(f"'list_files' must be >= 0, got {self.list_files}")
        if self.list_commit and self.list_commit not in self.list_url:
            raise ValueError(
                f"'list_url' must name the commit {self.list_commit} (a URL at that commit, not at a branch), "
                f"got {self.list_url!r}"
            )

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
