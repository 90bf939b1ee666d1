"""`harness eval-data fetch` against a local HTTP server: downloads pinned files, refuses a file whose hash
differs, resumes an interrupted download with a Range request, names the files the server does not have."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from harness.cli import main
from harness.evaluate.icl.fetch import fetch, suite_files
from harness.evaluate.icl.files import DataFile, git_blob_id

REF = Path(__file__).resolve().parents[2] / "shared/reference/dclm-eval"


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}  # URL path -> bytes served (each test's subclass has its own)
    cut: ClassVar[dict[str, int]] = {}  # URL path -> bytes sent before the connection drops (first request only)
    log: ClassVar[list[tuple[str, str | None]]] = []  # (path, Range header)

    def do_GET(self) -> None:
        self.log.append((self.path, self.headers.get("Range")))
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.path in self.cut:
            body = body[: self.cut.pop(self.path)]
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"files": {}, "cut": {}, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pin(path: str, data: bytes, sha: bool = True) -> DataFile:
    return DataFile(path=path, sha256=hashlib.sha256(data).hexdigest() if sha else "", git_blob=git_blob_id(data))


def test_fetch_verifies_resumes_and_names_failures(tmp_path, server):
    url, handler = server
    good, big, bad = b'{"a": 1}\n', bytes(range(256)) * 4000, b'{"b": 2}\n'
    pins = [_pin("local_data/x/good.jsonl", good), _pin("local_data/x/big.jsonl", big, sha=False),
            _pin("local_data/x/bad.jsonl", bad), _pin("local_data/x/gone.jsonl", b"")]  # fmt: skip
    handler.files.update({"/local_data/x/good.jsonl": good, "/local_data/x/big.jsonl": big,
                          "/local_data/x/bad.jsonl": b'{"b": 3}\n'})  # fmt: skip
    handler.cut["/local_data/x/big.jsonl"] = 300_000  # the first download of big.jsonl breaks off

    first = fetch(pins, tmp_path, url=url)
    assert first.downloaded == ["local_data/x/good.jsonl"]
    assert set(first.failed) == {"local_data/x/big.jsonl", "local_data/x/bad.jsonl", "local_data/x/gone.jsonl"}
    assert "interrupted after 300000" in first.failed["local_data/x/big.jsonl"]
    assert "sha256" in first.failed["local_data/x/bad.jsonl"] and not (tmp_path / "local_data/x/bad.jsonl").exists()
    assert "does not have it" in first.failed["local_data/x/gone.jsonl"]
    assert (tmp_path / "local_data/x/big.jsonl.part").stat().st_size == 300_000

    handler.log.clear()
    second = fetch(pins, tmp_path, url=url)
    assert second.present == ["local_data/x/good.jsonl"] and second.resumed == ["local_data/x/big.jsonl"]
    assert ("/local_data/x/big.jsonl", "bytes=300000-") in handler.log
    assert all(path != "/local_data/x/good.jsonl" for path, _ in handler.log)  # a verified file is not fetched
    assert (tmp_path / "local_data/x/big.jsonl").read_bytes() == big
    assert not (tmp_path / "local_data/x/big.jsonl.part").exists()


def test_suite_files_are_the_suites_data():
    core = {f.path for f in suite_files("core")}
    assert (
        len(core) == 21 and "local_data/world_knowledge/jeopardy_all.jsonl" in core
    )  # 22 tasks, 2 share hellaswag.jsonl
    assert {f.path for f in suite_files("mmlu")} == {"local_data/world_knowledge/mmlu.jsonl"}
    assert len(suite_files("extended")) == len(suite_files(None)) == 51  # 49 local_data files + 2 gpqa builds


@pytest.mark.skipif(not (REF / "local_data").is_dir(), reason=f"DCLM reference folder {REF} is absent")
def test_fetch_command_names_files_the_server_lacks(tmp_path, server, capsys):
    url, handler = server
    for path in (REF / "local_data").rglob("*.jsonl"):
        handler.files["/" + str(path.relative_to(REF))] = path.read_bytes()
    dest = tmp_path / "eval-data"
    assert main(["eval-data", "fetch", "--suite", "core", "--url", url, "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    for name in ("hellaswag.jsonl", "squad.jsonl", "coqa.jsonl"):
        assert name in err
    assert "3 file(s) not fetched" in err
    assert (dest / "local_data/world_knowledge/jeopardy_all.jsonl").read_bytes() == (
        REF / "local_data/world_knowledge/jeopardy_all.jsonl"
    ).read_bytes()


def test_gpqa_built_as_dclm_builds_it():
    """DCLM's convert_gpqa: choices [correct, incorrect 1-3] permuted by one random.Random(42) per file."""
    import json
    import random

    from harness.evaluate.icl.gpqa import convert

    csv = 'Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nq1,c1,a1,b1,d1\n"q, 2",c2,a2,b2,d2\n'
    rows = [json.loads(line) for line in convert(csv.encode()).decode().splitlines()]
    rng = random.Random(42)
    for n, row in enumerate(rows, start=1):
        order = list(range(4))
        rng.shuffle(order)
        original = [f"c{n}", f"a{n}", f"b{n}", f"d{n}"]
        assert row["choices"] == [original[i] for i in order] and row["choices"][row["gold"]] == f"c{n}"
    assert [r["query"] for r in rows] == ["q1", "q, 2"]
