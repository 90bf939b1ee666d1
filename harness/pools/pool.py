"""The `Pool` API: a pool definition plus its membership index, and how pools come to exist.

`ensure_pool(pool_id)` is what the rest of the harness calls: the sandbox pool is generated and indexed on
first use (and its content checked against the hashes pinned in pools/sandbox.toml); a DCLM pool must have
been indexed with `harness pool index POOL`, and the error says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.display.progress import progress_bar
from harness.errors import HarnessError
from harness.io.files import open_binary, skip_forward
from harness.pools.ids import digest_to_u64, ids_to_u64, is_id, u64_to_id
from harness.pools.index import NO_LABEL, MembershipIndex, ShardTask, build_index
from harness.pools.listing import list_urls, refuse_if_unavailable
from harness.pools.spec import PoolSpec, get_pool_spec

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.tracks import TokenizerSpec


class Pool:
    """An indexed pool: membership, documents by id, streaming, and (sandbox) labels and eval material."""

    def __init__(self, spec: PoolSpec, index: MembershipIndex) -> None:
        self.spec, self.index = spec, index

    @property
    def id(self) -> str:
        return self.spec.id

    def __len__(self) -> int:
        return len(self.index)

    def shards(self) -> list[str]:
        """URLs (or local paths) of the document shards, in index order."""
        return self.index.shard_urls

    def contains(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """Vectorised membership: a bool per id (hex strings, or an (n, 2) uint64 array of hi/lo)."""
        return self.rows(ids) >= 0

    def rows(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """Index row of each id, -1 for ids outside the pool; malformed hex ids count as absent."""
        if isinstance(ids, np.ndarray):
            return self.index.lookup(ids[:, 0].astype(np.uint64), ids[:, 1].astype(np.uint64))
        ids = list(ids)
        good = np.array([is_id(i) for i in ids], dtype=bool)
        rows = np.full(len(ids), -1, np.int64)
        rows[good] = self.index.lookup(*ids_to_u64([i for i, g in zip(ids, good, strict=True) if g]))
        return rows

    def id_of_row(self, row: int) -> str:
        return u64_to_id(self.index.hi[row], self.index.lo[row])

    def get(self, doc_id: str) -> dict[str, Any]:
        """The pool document with this id (KeyError when absent); the dict always carries "id"."""
        row = int(self.rows([doc_id])[0])
        if row < 0:
            raise KeyError(f"{doc_id!r} is not in pool {self.id!r}")
        return next(self.read_rows(np.array([row])))[1]

    def read_rows(self, rows: np.ndarray) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row, document) for each distinct row, in shard-and-offset order: one forward pass per shard touched."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        order = np.lexsort((np.asarray(self.index.offset[rows]), np.asarray(self.index.shard[rows])))
        rows = rows[order]
        shards = np.asarray(self.index.shard[rows])
        bounds = np.flatnonzero(np.diff(shards)) + 1
        for group in np.split(rows, bounds) if len(rows) else []:
            url = self.shards()[int(self.index.shard[group[0]])]
            with open_binary(url, self.spec.storage_options) as fh:
                at = 0  # forward-only reads: compressed streams cannot seek cheaply, and rows come sorted
                for row in group:
                    offset, length = int(self.index.offset[row]), int(self.index.length[row])
                    skip_forward(fh, offset - at)
                    raw = fh.read(length)
                    at = offset + length
                    yield int(row), self._document(raw, int(row))

    def _document(self, raw: bytes, row: int) -> dict[str, Any]:
        doc = json.loads(raw)
        if self.spec.id_scheme == "sha256-line":
            doc["id"] = self.id_of_row(row)  # the harness id, whatever the line carries
        return doc

    def text_of(self, doc: dict[str, Any]) -> str:
        return doc[self.spec.text_field]

    def iter_documents(self) -> Iterator[dict[str, Any]]:
        """Every document, shard by shard in file order, each with its "id" (computed for 'sha256-line' pools)."""
        for url in self.shards():
            with open_binary(url, self.spec.storage_options) as fh:
                for line in fh:
                    body = line.rstrip(b"\r\n")
                    if not body.strip():
                        continue
                    doc = json.loads(body)
                    if self.spec.id_scheme == "sha256-line":
                        doc["id"] = hashlib.sha256(body).hexdigest()[:32]
                    yield doc

    def token_counts(self, spec: TokenizerSpec) -> np.ndarray | None:
        """Tokens per index row under `spec` when the index counted them with that tokenizer, else None."""
        recorded = self.index.meta.get("tokenizer")
        if self.index.tokens is None or not recorded or recorded.get("name") != spec.name:
            return None
        if spec.sha256 and recorded.get("sha256") != spec.sha256:
            return None
        return self.index.tokens

    @property
    def labels_path(self) -> Path:
        """Sandbox only: the hidden quality labels (`{"id", "class"}` lines); never read by submissions."""
        return self._sandbox_file("labels.jsonl.gz")

    @property
    def reference_files(self) -> list[Path]:
        """Sandbox only: the classifier reference set (`{"id", "text"}` lines, clean text disjoint from the pool)."""
        return [self._sandbox_file(pin.path) for pin in self.spec.reference]

    @property
    def eval_dir(self) -> Path:
        """Sandbox only: the held-out material of the sandbox evaluation suite."""
        return self._sandbox_file("eval")

    def _sandbox_file(self, name: str) -> Path:
        if self.spec.source != "sandbox":
            raise HarnessError(f"pool {self.id!r} is not the sandbox: it has no {name}")
        return self.spec.home / name


def index_dir(spec: PoolSpec) -> Path:
    return spec.home / "index"


def open_pool(spec: PoolSpec | str) -> Pool:
    """An already indexed pool; HarnessError with the command that builds the index otherwise."""
    spec = get_pool_spec(spec) if isinstance(spec, str) else spec
    refuse_if_unavailable(spec)
    directory = index_dir(spec)
    if not (directory / "meta.json").is_file():
        how = "harness pool create sandbox" if spec.source == "sandbox" else f"harness pool index {spec.id}"
        raise HarnessError(f"pool {spec.id!r} has no index at {directory}; build it with `{how}`")
    return Pool(spec, MembershipIndex(directory))


def shard_urls(spec: PoolSpec) -> list[str]:
    """The pool's shard URLs: pinned shards, the downloaded list file, or the generated sandbox manifest."""
    refuse_if_unavailable(spec)
    if spec.source == "list":
        return list_urls(spec)
    if spec.source == "sandbox":
        manifest = spec.home / "manifest.json"
        if not manifest.is_file():
            raise HarnessError(f"the sandbox pool is not generated yet; run `harness pool create {spec.id}`")
        return [str(spec.home / s["path"]) for s in json.loads(manifest.read_text())["shards"]]
    return [s.path if ("://" in s.path or os.path.isabs(s.path)) else f"{spec.base}/{s.path}" for s in spec.shards]


def _pool_tokenizer(spec: PoolSpec) -> tuple[str | None, dict[str, str] | None]:
    """The tokenizer file of the tracks that use this pool (for the index's token column), when available."""
    from harness.tracks import tracks_on_pool

    specs = {t.tokenizer for t in tracks_on_pool(spec.id)}
    if len(specs) != 1:
        return None, None
    tok = next(iter(specs))
    try:
        from harness.tokenizer import resolve_tokenizer_file, tokenizer_sha256

        path = resolve_tokenizer_file(tok)
        return str(path), {"name": tok.name, "sha256": tokenizer_sha256(tok)}
    except (HarnessError, OSError, ImportError):
        return None, None  # tokens are then counted when a subset is validated


def index_pool(
    spec: PoolSpec | str,
    *,
    workers: int | None = None,
    tokens: bool = True,
    progress: Progress | None = None,
) -> Pool:
    """Build (or finish building) the membership index of a pool; resumable per shard."""
    spec = get_pool_spec(spec) if isinstance(spec, str) else spec
    urls = shard_urls(spec)
    tok_file, tok_meta = _pool_tokenizer(spec) if tokens else (None, None)
    part_dir = str(index_dir(spec) / "parts")
    tasks = [
        ShardTask(
            number=i, url=url, part_dir=part_dir, id_scheme=spec.id_scheme, id_field=spec.id_field,
            text_field=spec.text_field, storage_options=spec.storage_options, tokenizer_file=tok_file,
        )
        for i, url in enumerate(urls)
    ]  # fmt: skip
    has_labels = spec.source == "sandbox" and (spec.home / "labels.jsonl.gz").is_file()
    labels = (lambda idx: _sandbox_labels(spec, idx)) if has_labels else None
    extra = {"pool": spec.id, "version": spec.version}
    index = build_index(
        index_dir(spec), tasks, tokenizer=tok_meta, labels=labels, extra_meta=extra, workers=workers, progress=progress
    )
    try:
        _check_pins(spec, index)
    except HarnessError:
        (index.directory / "meta.json").unlink(missing_ok=True)  # a pool that fails its pins is not usable
        raise
    return Pool(spec, index)


def _sandbox_labels(spec: PoolSpec, index: MembershipIndex) -> tuple[np.ndarray, list[str]]:
    """The hidden class of every indexed document, from labels.jsonl.gz."""
    keys: list[bytes] = []
    names: list[str] = []
    with open_binary(str(spec.home / "labels.jsonl.gz")) as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                keys.append(bytes.fromhex(item["id"]))
                names.append(item["class"])
    classes = sorted(set(names))
    code = {c: i for i, c in enumerate(classes)}
    column = np.full(len(index), NO_LABEL, np.uint8)
    rows = index.lookup(*digest_to_u64(keys))
    found = rows >= 0
    column[rows[found]] = np.array([code[n] for n in names], np.uint8)[found]
    return column, classes


def _check_pins(spec: PoolSpec, index: MembershipIndex) -> None:
    """Compare what indexing measured with what the pool file pins (content hashes, counts)."""
    if spec.documents and len(index) != spec.documents:
        raise HarnessError(
            f"pool {spec.id!r}: indexed {len(index)} documents, pools/{spec.id}.toml pins {spec.documents}"
        )
    if not spec.shards:
        return
    measured = {Path(s["url"]).name: s for s in index.meta["shards"]}
    for pin in spec.shards:
        got = measured.get(Path(pin.path).name)
        problems = [
            key for key in ("sha256", "content_sha256", "documents")
            if got is None or (getattr(pin, key) and got[key] != getattr(pin, key))
        ]  # fmt: skip
        if problems:
            raise HarnessError(
                f"pool {spec.id!r}: shard {pin.path} does not match pools/{spec.id}.toml ({', '.join(problems)}); "
                f"the data under {spec.home} differs from the pinned version: delete it and recreate the pool"
            )


def create_sandbox(
    spec: PoolSpec | str = "sandbox", *, workers: int | None = None, progress: Progress | None = None
) -> Pool:
    """Generate the sandbox pool into HARNESS_HOME/pools/sandbox-v<N>/ (if not there yet) and index it."""
    spec = get_pool_spec(spec) if isinstance(spec, str) else spec
    if spec.source != "sandbox":
        raise HarnessError(f"pool {spec.id!r} is not generated locally; index it with `harness pool index {spec.id}`")
    home = spec.home
    if not (home / "manifest.json").is_file() or not _matches_pins(spec, home / "manifest.json"):
        from harness.sandbox import VERSIONS, generate_sandbox

        if spec.version not in VERSIONS:
            raise HarnessError(
                f"pools/{spec.id}.toml: version {spec.version} is not a sandbox generator version this harness "
                f"reproduces ({', '.join(map(str, VERSIONS))}); set `version` to one of them"
            )
        tmp = home.with_name(home.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        with progress_bar(progress) as bar:
            generate_sandbox(tmp, scale=spec.sandbox_scale, version=spec.version, workers=workers, progress=bar)
        shutil.rmtree(home, ignore_errors=True)
        tmp.rename(home)  # the pool appears whole or not at all
        if not _matches_pins(spec, home / "manifest.json"):
            raise HarnessError(
                f"the generated sandbox in {home} differs from the hashes pinned in pools/{spec.id}.toml "
                "(shards or reference set); the generator changed without a new pin"
            )
    return index_pool(spec, workers=workers, progress=progress)


def _matches_pins(spec: PoolSpec, manifest: Path) -> bool:
    """Whether a generated pool is the pinned one (an older generator's output is regenerated, not reused)."""
    data = json.loads(manifest.read_text())
    for pins, key in ((spec.shards, "shards"), (spec.reference, "reference")):
        got = {Path(s["path"]).name: s.get("content_sha256") for s in data.get(key, [])}
        if not all(got.get(Path(pin.path).name) == pin.content_sha256 for pin in pins if pin.content_sha256):
            return False
    return True


def ensure_pool(pool_id: str, progress: Progress | None = None) -> Pool:
    """The indexed pool `pool_id`: the sandbox is generated and indexed when missing; DCLM pools must be indexed."""
    spec = get_pool_spec(pool_id)
    if spec.source == "sandbox":
        directory = index_dir(spec)
        if (
            not (directory / "meta.json").is_file()
            or _tokens_stale(spec, directory)
            or not _matches_pins(spec, spec.home / "manifest.json")
        ):
            return create_sandbox(spec, progress=progress)
    return open_pool(spec)


def _tokens_stale(spec: PoolSpec, directory: Path) -> bool:
    """Whether the sandbox index lacks token counts that the (now available) tokenizer could give."""
    recorded = json.loads((directory / "meta.json").read_text()).get("tokenizer")
    _, current = _pool_tokenizer(spec)
    return current is not None and recorded != current
