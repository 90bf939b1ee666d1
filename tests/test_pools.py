"""Pool definitions, the membership index (build, lookup, resume), the Pool API and the pool command."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import zstandard

from cli_helpers import command_options, subcommands
from harness.errors import HarnessError
from harness.pools import PoolSpec, ShardSpec, document_id, get_pool_spec, index_pool, is_id, open_pool, pool_names
from harness.pools.index import MembershipIndex
from harness.tracks import all_tracks


def make_pool(root: Path, *, shards: int = 3, docs: int = 40, scheme: str = "field", zstd_last: bool = False):
    """A small pool of `shards` files (gzip, the last one zstd when asked); returns (spec, documents)."""
    rng = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    specs, documents = [], []
    for s in range(shards):
        lines = []
        for i in range(docs):
            doc = {"id": f"{rng.getrandbits(128):032x}", "url": f"https://x/{s}/{i}",
                   "text": f"Title {s}-{i}\nfirst line of {i}\nsecond line mentions {rng.random():.6f}\n"}  # fmt: skip
            lines.append(json.dumps(doc))
            documents.append(doc)
        data = ("\n".join(lines) + "\n").encode()
        if zstd_last and s == shards - 1:
            path = root / f"shard-{s:05d}.jsonl.zst"
            path.write_bytes(zstandard.ZstdCompressor().compress(data))
        else:
            path = root / f"shard-{s:05d}.jsonl.gz"
            path.write_bytes(gzip.compress(data, mtime=0))
        specs.append(ShardSpec(path=path.name, documents=docs))
    spec = PoolSpec(
        id=f"test-{scheme}", version=1, description="test pool", source="shards", id_scheme=scheme,
        root=str(root), shards=tuple(specs),
    )  # fmt: skip
    return spec, documents


def use_small_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, shards: int = 2, docs: int = 30) -> list[dict]:
    """Index a small pool under `tmp_path` and make every command read it (with its own HARNESS_HOME there);
    returns its documents."""
    import harness.pools

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    spec, documents = make_pool(tmp_path / "pool", shards=shards, docs=docs)
    pool = index_pool(spec, workers=1, tokens=False)
    monkeypatch.setattr(harness.pools, "ensure_pool", lambda pool_id, progress=None: pool)
    return documents


def test_shipped_pools_load_and_every_track_pool_exists():
    names = set(pool_names())
    assert {t.pool for t in all_tracks()} <= names
    dclm = get_pool_spec("dclm-pool-400m-1x")
    assert dclm.id_scheme == "sha256-line" and dclm.list_files == 10306 and len(dclm.list_sha256) == 64
    assert dclm.storage_options == {"anon": True}
    assert get_pool_spec("sandbox").id_scheme == "field"


def test_unknown_pool_suggests_names():
    with pytest.raises(HarnessError, match="dclm-pool-400m-1x"):
        get_pool_spec("dclm-pool-400m")


def test_document_id_is_sha256_of_the_raw_line():
    line = b'{"text": "hello", "url": "u"}'
    import hashlib

    assert document_id(line + b"\n") == hashlib.sha256(line).hexdigest()[:32]
    assert document_id(line.decode()) == document_id(line)
    assert is_id(document_id(line)) and not is_id("xyz") and not is_id("g" * 32)


def test_index_build_lookup_and_get(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    spec, documents = make_pool(tmp_path / "data", zstd_last=True)
    pool = index_pool(spec, workers=2, tokens=False)
    assert len(pool) == len(documents) == 120
    hi = np.asarray(pool.index.hi)
    assert (np.diff(hi.astype(np.float64)) >= 0).all()  # sorted by id
    ids = [d["id"] for d in documents]
    assert pool.contains(ids).all()
    assert not pool.contains(["0" * 32, "not-an-id"]).any()
    for doc in (documents[0], documents[57], documents[-1]):  # gzip and zstd shards
        assert pool.get(doc["id"]) == doc
    with pytest.raises(KeyError):
        pool.get("f" * 32)
    assert sorted(d["id"] for d in pool.iter_documents()) == sorted(ids)
    assert len(pool.shards()) == 3 and pool.index.meta["shards"][0]["documents"] == 40
    reopened = open_pool(spec)
    assert reopened.contains(ids[:5]).all()


def test_sha256_line_pool_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    spec, _ = make_pool(tmp_path / "data", shards=1, scheme="sha256-line")
    pool = index_pool(spec, workers=1, tokens=False)
    raw = gzip.decompress((tmp_path / "data" / "shard-00000.jsonl.gz").read_bytes()).split(b"\n")[3]
    doc = pool.get(document_id(raw))
    assert doc["id"] == document_id(raw) and doc["text"] == json.loads(raw)["text"]


def test_lookup_handles_ids_sharing_their_first_half(tmp_path):
    from harness.pools.index import COLUMNS

    hi = np.array([1, 5, 5, 5, 9], np.uint64)
    lo = np.array([0, 2, 4, 8, 1], np.uint64)
    for name, dtype in COLUMNS.items():
        column = {"hi": hi, "lo": lo}.get(name, np.arange(5))
        np.save(tmp_path / f"{name}.npy", column.astype(dtype))
    (tmp_path / "meta.json").write_text("{}")
    index = MembershipIndex(tmp_path)
    rows = index.lookup(np.array([5, 5, 5, 5, 9, 10], np.uint64), np.array([2, 4, 8, 3, 1, 0], np.uint64))
    assert rows.tolist() == [1, 2, 3, -1, 4, -1]


def test_indexing_resumes_per_shard(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    spec, documents = make_pool(tmp_path / "data")
    index_pool(spec, workers=1, tokens=False)
    parts = spec.home / "index" / "parts"
    (parts / "00001.json").unlink()  # shard 1 "crashed"; shards 0 and 2 must not be read again
    for n in (0, 2):
        (tmp_path / "data" / f"shard-{n:05d}.jsonl.gz").rename(tmp_path / f"moved-{n}")
    pool = index_pool(spec, workers=1, tokens=False)
    assert len(pool) == 120 and pool.contains([d["id"] for d in documents]).all()


def test_pinned_hash_mismatch_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    spec, _ = make_pool(tmp_path / "data", shards=1)
    bad = ShardSpec(path=spec.shards[0].path, documents=40, content_sha256="0" * 64)
    spec = PoolSpec(**{**spec.__dict__, "shards": (bad,)})
    with pytest.raises(HarnessError, match="content_sha256"):
        index_pool(spec, workers=1, tokens=False)
    with pytest.raises(HarnessError, match="no index"):
        open_pool(spec)


def test_damaged_pool_line_names_shard_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    spec, _ = make_pool(tmp_path / "data", shards=1)
    path = tmp_path / "data" / "shard-00000.jsonl.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b'{"id": 3, "text": "x"}\n'))
    with pytest.raises(HarnessError, match="line 41"):
        index_pool(spec, workers=1, tokens=False)


def test_list_pool_downloads_and_checks_its_list(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    make_pool(tmp_path / "data", shards=2)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in sorted((tmp_path / "data").glob("*.gz"))))
    import hashlib

    sha = hashlib.sha256(listing.read_bytes()).hexdigest()
    spec = PoolSpec(id="lst", version=1, description="d", source="list", id_scheme="field",
                    list_url=str(listing), list_sha256=sha, list_files=2)  # fmt: skip
    assert len(index_pool(spec, workers=1, tokens=False)) == 80
    wrong = PoolSpec(**{**spec.__dict__, "version": 2, "list_sha256": "1" * 64})
    with pytest.raises(HarnessError, match=f"sha256 {sha}, pinned 1{{64}}"):
        index_pool(wrong, workers=1, tokens=False)


def test_pool_cli_options():
    assert subcommands("pool") == {"list", "create", "index"}
    assert command_options("pool", "index") == {"pool", "--workers", "--no-tokens", "--contamination"}
    assert command_options("pool", "create") == {"pool", "--workers"}
    assert command_options("pool", "list") == {"--json"}


def test_pool_list_command(capsys):
    from harness.cli import main

    assert main(["pool", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} >= {"sandbox", "dclm-pool-7b-2x"}
