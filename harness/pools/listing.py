"""A list pool's shard list: refused when the pool is unavailable, downloaded once into the pool's folder,
verified against every pin the definition has (git blob id at the named commit, sha256, number of shard URLs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import HarnessError
from harness.io.files import download, git_blob_id
from harness.pools.spec import PoolSpec

#: Where the downloaded list is kept, in the pool's folder.
LIST_NAME = "shard-list.txt"


def refuse_if_unavailable(spec: PoolSpec) -> None:
    """HarnessError with the definition's explanation when the pool cannot be used."""
    if spec.unavailable:
        raise HarnessError(f"pool {spec.id!r} cannot be used (pools/{spec.id}.toml): {spec.unavailable.strip()}")


def parse_list(data: bytes) -> list[str]:
    """The shard URLs of a list file: its non-empty lines, stripped (a last line without newline counts)."""
    return [u.strip() for u in data.decode("utf-8").splitlines() if u.strip()]


def list_problem(spec: PoolSpec, data: bytes) -> str | None:
    """None when `data` is the list the pool pins, else what differs (measured against pinned)."""
    if spec.list_blob:
        blob = git_blob_id(data)
        if blob != spec.list_blob:
            return f"git blob {blob}, pinned {spec.list_blob} at commit {spec.list_commit}"
    if spec.list_sha256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.list_sha256:
            return f"sha256 {digest}, pinned {spec.list_sha256}"
    if spec.list_files:
        try:
            count = len(parse_list(data))
        except UnicodeDecodeError:
            return "not utf-8 text"
        if count != spec.list_files:
            return f"{count} shard URLs, pinned {spec.list_files}"
    return None


def list_urls(spec: PoolSpec) -> list[str]:
    """The verified shard URLs of a list pool (downloaded on first use, re-verified on every use)."""
    refuse_if_unavailable(spec)
    local = spec.home / LIST_NAME
    if not local.is_file():
        _download(spec, local)
    data = local.read_bytes()
    problem = list_problem(spec, data)
    if problem:
        local.unlink()  # the next run downloads it afresh
        raise HarnessError(
            f"pool {spec.id!r}: the shard list from {spec.list_url} is not the one pools/{spec.id}.toml pins "
            f"({problem}). Run `harness pool index {spec.id}` again to download it afresh; if it still differs, "
            "the published list is not the pinned one and the pool definition must be pinned anew"
        )
    return parse_list(data)


def _download(spec: PoolSpec, local: Path) -> None:
    try:
        download(spec.list_url, local)
    except _download_errors() as exc:
        where = f" at commit {spec.list_commit}" if spec.list_commit else ""
        raise HarnessError(
            f"pool {spec.id!r}: its shard list {spec.list_url} could not be downloaded ({type(exc).__name__}: "
            f"{exc}). pools/{spec.id}.toml says the list is published there{where}; check the network, or the "
            "definition if the file is not there"
        ) from exc


def _download_errors() -> tuple[type[BaseException], ...]:
    """Network and missing-file errors of a download (fsspec's HTTP filesystem raises aiohttp's own)."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError)
    try:
        import aiohttp
    except ImportError:
        return errors
    return (*errors, aiohttp.ClientError)


__all__ = ["LIST_NAME", "list_problem", "list_urls", "parse_list", "refuse_if_unavailable"]
