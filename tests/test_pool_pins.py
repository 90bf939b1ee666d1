"""Every DCLM pool definition pins its file list (git blob id at a named DCLM commit, file count where known) or
is refused with its reason; `harness pool index` verifies a downloaded list against the pins, through a local
HTTP server serving lists in DCLM's format."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from test_pools import make_pool

from harness.cli import main
from harness.config import ConfigError, from_dict
from harness.errors import HarnessError
from harness.io.files import git_blob_id
from harness.pools import PoolSpec, get_pool_spec, index_pool, open_pool, pool_names, shard_urls
from harness.pools.listing import list_problem
from harness.tracks import all_tracks

DCLM_COMMIT = "361714bdd60bb9b7f4b2d8354cebbf0dec0c329e"
RAW = f"https://raw.githubusercontent.com/mlfoundations/dclm/{DCLM_COMMIT}/data/competition_pools/preextracted/"
#: A copy of DCLM's 400m-1x list beside the checkout (the lead's shared folder), when there is one.
REFERENCE_400M = Path(__file__).resolve().parents[2] / "shared/reference/dclm-pool-400m-1x.files.txt"


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}  # URL path -> bytes served (each test's subclass has its own)
    log: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.log.append(self.path)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"files": {}, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _list_pool(url: str, data: bytes, *, files: int | None = None, version: int = 1) -> PoolSpec:
    """A list pool whose list at `url` is pinned as the DCLM pools are (commit in the URL, blob id, count)."""
    commit = "c" * 40
    return PoolSpec(
        id="pinned", version=version, description="d", source="list", id_scheme="field",
        list_url=f"{url}/{commit}/pool.txt", list_commit=commit, list_blob=git_blob_id(data),
        list_files=len(data.decode().split()) if files is None else files,
    )  # fmt: skip


def test_git_blob_id_is_gits_object_id(tmp_path):
    data = b"s3://bucket/a.jsonl.gz\ns3://bucket/b.jsonl.gz"  # DCLM's lists end without a newline
    (tmp_path / "f").write_bytes(data)
    git = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True)
    assert git_blob_id(data) == git.stdout.strip()
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob


def test_every_dclm_pool_is_pinned_or_refused_with_its_reason():
    dclm = [name for name in pool_names() if name.startswith("dclm-pool-")]
    assert dclm == ["dclm-pool-1b-1x", "dclm-pool-1b-5x", "dclm-pool-3b-1x", "dclm-pool-400m-1x",
                    "dclm-pool-7b-1x", "dclm-pool-7b-2x"]  # fmt: skip
    for name in dclm:
        spec = get_pool_spec(name)
        assert spec.source == "list" and spec.id_scheme == "sha256-line"
        if spec.unavailable:
            assert not (spec.list_url or spec.list_blob), name  # a refused pool names no list it would download
            continue
        scale = name.removeprefix("dclm-pool-")
        assert spec.list_commit == DCLM_COMMIT, name  # one DCLM commit for every list
        assert spec.list_url == f"{RAW}{scale}.txt", name  # at that commit, never at a branch
        assert len(spec.list_blob) == 40 and spec.list_files >= 0, name
    refused = {name for name in dclm if get_pool_spec(name).unavailable}
    assert refused == {"dclm-pool-3b-1x"}
    reason = get_pool_spec("dclm-pool-3b-1x").unavailable
    for fact in (
        "raw_warcs/3b-1x.txt",
        "4c5ad2cc80a0dec4d5c63e939b4668782d707c8f",
        "DCLM-RefinedWeb",
        DCLM_COMMIT[:12],
    ):
        assert fact in reason
    pinned = get_pool_spec("dclm-pool-400m-1x")
    assert pinned.list_blob == "262fd5253c2833685fd185d0307b2d04f8be7a17" and pinned.list_files == 10306
    assert pinned.list_sha256 == "158077ea183177110c174c26af4c7d7447d6df88c4efad326124c4fdd95fb977"
    assert {t.pool for t in all_tracks() if t.name == "3b"} == {"dclm-pool-3b-1x"}


@pytest.mark.skipif(not REFERENCE_400M.is_file(), reason="no copy of DCLM's 400m-1x list beside the checkout")
def test_dclm_400m_list_matches_its_pins(tmp_path, monkeypatch, server):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    url, handler = server
    data = REFERENCE_400M.read_bytes()
    shipped = get_pool_spec("dclm-pool-400m-1x")
    assert list_problem(shipped, data) is None
    handler.files[f"/{DCLM_COMMIT}/400m-1x.txt"] = data
    served = PoolSpec(**{**shipped.__dict__, "list_url": f"{url}/{DCLM_COMMIT}/400m-1x.txt"})
    urls = shard_urls(served)
    assert len(urls) == 10306 and len(set(urls)) == 10306
    assert all(u.startswith("s3://commoncrawl/contrib/datacomp/DCLM-pool/crawl=") for u in urls)


def test_pool_index_verifies_the_list_blob_and_count(tmp_path, monkeypatch, server):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    url, handler = server
    make_pool(tmp_path / "data", shards=2)
    data = "\n".join(str(p) for p in sorted((tmp_path / "data").glob("*.gz"))).encode()
    spec = _list_pool(url, data)
    handler.files[f"/{spec.list_commit}/pool.txt"] = data
    assert len(index_pool(spec, workers=1, tokens=False)) == 80
    assert (spec.home / "shard-list.txt").read_bytes() == data

    # the published list changed (one byte more): refused, the local copy dropped so a rerun downloads afresh
    moved = _list_pool(url, data, version=2)
    handler.files[f"/{moved.list_commit}/pool.txt"] = data + b"\n"
    with pytest.raises(HarnessError, match=r"git blob [0-9a-f]{40}, pinned [0-9a-f]{40} at commit c{40}") as err:
        index_pool(moved, workers=1, tokens=False)
    assert "harness pool index pinned" in str(err.value)
    assert not (moved.home / "shard-list.txt").exists()

    # the right bytes with a wrong pinned count (and the same bytes without the count pin: accepted)
    handler.files[f"/{moved.list_commit}/pool.txt"] = data
    with pytest.raises(HarnessError, match="2 shard URLs, pinned 3"):
        index_pool(_list_pool(url, data, files=3, version=3), workers=1, tokens=False)
    assert len(index_pool(_list_pool(url, data, files=0, version=4), workers=1, tokens=False)) == 80


def test_list_problem_checks_each_pin():
    data = b"s3://b/a.jsonl.gz\n\ns3://b/b.jsonl.gz\n"
    spec = _list_pool("http://x", data)
    assert spec.list_files == 2 and list_problem(spec, data) is None
    assert "git blob" in (list_problem(spec, data.replace(b"a.", b"c.")) or "")
    sha = PoolSpec(**{**spec.__dict__, "list_commit": "", "list_blob": "", "list_sha256": "0" * 64})
    assert "sha256 " + hashlib.sha256(data).hexdigest() in (list_problem(sha, data) or "")
    both = PoolSpec(**{**spec.__dict__, "list_sha256": hashlib.sha256(data).hexdigest()})
    assert list_problem(both, data) is None


def test_a_list_missing_where_the_definition_says_is_one_clear_error(tmp_path, monkeypatch, server):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    url, handler = server
    spec = _list_pool(url, b"s3://b/a.jsonl.gz")
    with pytest.raises(HarnessError, match=r"could not be downloaded .*published there at commit c{40}"):
        index_pool(spec, workers=1, tokens=False)
    assert handler.log == [f"/{spec.list_commit}/pool.txt"]
    assert not (spec.home / "shard-list.txt").exists()


def test_an_unavailable_pool_is_refused_everywhere_with_its_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    reason = "DCLM publishes no list of DCLM-Pool files for its 3B-1x pool"
    for call in (lambda: index_pool("dclm-pool-3b-1x"), lambda: open_pool("dclm-pool-3b-1x")):
        with pytest.raises(HarnessError, match=reason):
            call()
    assert main(["pool", "index", "dclm-pool-3b-1x"]) == 1
    assert "DCLM-RefinedWeb" in capsys.readouterr().err.replace("\n", " ")
    subset = tmp_path / "s.jsonl"
    subset.write_text(json.dumps({"id": "0" * 32}) + "\n")
    assert main(["validate", "--track", "3b", str(subset)]) == 1
    assert "cannot be used" in capsys.readouterr().err
    assert main(["pool", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert reason in rows["dclm-pool-3b-1x"]["unavailable"] and rows["dclm-pool-1b-1x"]["unavailable"] is None
    assert not (tmp_path / "home").exists()  # nothing was downloaded or created


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"list_blob": "ABC"}, "'list_blob' must be 40 lowercase hex digits"),
        ({"list_commit": ""}, "'list_blob' and 'list_commit' go together"),
        ({"list_url": "https://raw.githubusercontent.com/mlfoundations/dclm/main/x.txt"}, "must name the commit"),
        ({"list_commit": "", "list_blob": "", "list_sha256": ""}, "needs the list pinned"),
        ({"list_url": ""}, "needs 'list_url'"),
        ({"list_files": -1}, "'list_files' must be >= 0"),
    ],
)
def test_pool_file_pins_are_validated(change, message):
    table = {"id": "x", "version": 1, "description": "d", "source": "list", "id_scheme": "sha256-line",
             "list_url": f"{RAW}400m-1x.txt", "list_commit": DCLM_COMMIT, "list_blob": "2" * 40, "list_files": 1}  # fmt: skip
    assert from_dict(PoolSpec, table, "pools/x.toml").list_blob == "2" * 40
    table.update(change)
    with pytest.raises(ConfigError, match=message):
        from_dict(PoolSpec, table, "pools/x.toml")
