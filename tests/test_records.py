"""Result records: schema round trip and strictness, entry ids, curves, and the results store (local and S3)."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness.records.parse as records_parse
from harness.errors import UsageError
from harness.leaderboard.sample import synthetic_record
from harness.records import (
    MAX_CURVE_POINTS,
    SCHEMA_VERSION,
    Record,
    RecordError,
    ResultsStore,
    Stored,
    downsample_curve,
    entry_id,
)

FIXTURES = Path(__file__).parent / "fixtures" / "records"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local S3-compatible server (moto) on a free port, emptied first; credentials are dummies."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: reset so tests never see each other's buckets.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


def test_round_trip_is_exact() -> None:
    record = synthetic_record("debug", 1, name="<b>round & trip</b> ✓")
    text = record.to_json()
    again = Record.from_json(text, "test")
    assert again == record
    assert again.to_json() == text
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["evaluation"]["aggregates"]["heldout_bpb"]["higher_is_better"] is False
    assert len(data["training"]["curve"]) == MAX_CURVE_POINTS  # 400 logged points downsampled


def test_fixture_records_load() -> None:
    for path in sorted(FIXTURES.glob("*/*.json")):
        record = Record.from_json(path.read_bytes(), str(path))
        assert path.stem == record.entry_id and path.parent.name == record.track.name


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0, "1", None])
def test_unknown_schema_version_is_a_clear_error(version: object) -> None:
    data = synthetic_record("debug", 1).to_data()
    data["schema_version"] = version
    with pytest.raises(
        RecordError,
        match=rf"mine\.json: record schema_version {version!r} is not supported.*reads versions 1, 2, {SCHEMA_VERSION}",
    ):
        Record.from_data(data, "mine.json")


def _broken(edit) -> dict:
    data = synthetic_record("debug", 1).to_data()
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d["submission"].update(nmae="x"), "unknown key 'submission.nmae'"),
        (lambda d: d["training"].update(tokens_seen="many"), "'training.tokens_seen' must be an integer"),
        (lambda d: d["training"].update(trainer="mine"), "'training.trainer' must be one of"),
        (lambda d: d["evaluation"]["tasks"]["fact_cloze"].update(value=None), "evaluation.tasks.fact_cloze.value"),
        (lambda d: d["evaluation"]["aggregates"]["Sandbox_v1"].pop("version"), "evaluation.aggregates.Sandbox_v1.version"),
        (lambda d: d["evaluation"].update(primary_aggregate="Core_v2"), "'Core_v2' is not among the aggregates"),
        (lambda d: d.update(entry_id="debug-000000000000"), "track and subset hash give"),
        (lambda d: d.update(created_at="2026-01-01T00:00:00"), "needs a UTC offset"),
        (lambda d: d["training"]["curve"].__setitem__(0, [1, 2]), r"must be \[step, tokens, loss\]"),
        (lambda d: d["training"]["curve"].append([1, 2, 3]), "has 201 points; at most 200"),
        (lambda d: d["training"]["curve"].__setitem__(5, 7), r"'training\.curve\[5\]' must be \[step"),
        (lambda d: d["training"]["curve"].__setitem__(3, [1, True, 0.5]), r"'training\.curve\[3\]' must be"),
        (lambda d: d["training"]["curve"].__setitem__(4, "abc"), r"'training\.curve\[4\]' must be"),
        (lambda d: d["training"].update(curve="abc"), "must be a list of"),
        (lambda d: d["submission"].update(link="javascript:alert(1)"), "must be an http:// or https:// URL"),
        (lambda d: d["evaluation"]["aggregates"]["Sandbox_v1"].update(missing=["last_word"]), "must have value null"),
    ],
)  # fmt: skip
def test_schema_violations_name_the_key(edit, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Record.from_data(_broken(edit), "r.json")


def test_bad_json_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="r.json: not valid JSON"):
        Record.from_json('{"schema_version": 1', "r.json")


def test_entry_id_is_track_and_hash_prefix() -> None:
    subset = "ab" * 32
    expected = "1b-5x-" + hashlib.sha256(("1b-5x" + subset).encode()).hexdigest()[:12]
    assert entry_id("1b-5x", subset) == expected
    assert entry_id("1b", subset) != entry_id("1b-5x", subset)


def test_downsample_curve_keeps_ends_and_bound() -> None:
    points = [[i, i * 10, 10.0 - i / 1000] for i in range(1001)]
    small = downsample_curve(points, 200)
    assert len(small) <= 200 and small[0] == points[0] and small[-1] == points[-1]
    assert all(a[0] < b[0] for a, b in itertools.pairwise(small))
    assert downsample_curve(points[:5]) == points[:5]


def test_store_add_get_list_and_replace(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "results"))
    a, b = synthetic_record("debug", 1), synthetic_record("nano", 2)
    path = store.add(a)
    store.add(b)
    assert path.endswith(f"/debug/{a.entry_id}.json")
    assert store.get(b.entry_id) == b
    records, problems = store.list()
    assert {r.entry_id for r in records} == {a.entry_id, b.entry_id} and problems == []
    assert [r.entry_id for r in store.list("nano")[0]] == [b.entry_id]
    rerun = synthetic_record("debug", 1, name="re-run")  # same subset and track: the same entry
    store.add(rerun)
    assert store.get(a.entry_id).submission.name == "re-run"
    assert len(list((tmp_path / "results" / "debug").iterdir())) == 1
    with pytest.raises(UsageError, match="no record 'debug-0123456789ab'"):
        store.get("debug-0123456789ab")


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "forked-parsers"])
def test_corrupt_files_are_reported_by_name_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    if parallel:
        monkeypatch.setattr(records_parse, "PARALLEL_PARSE_ABOVE", 2)
    store = ResultsStore(str(tmp_path))
    good = synthetic_record("debug", 1)
    store.add(good)
    folder = tmp_path / "debug"
    (folder / "debug-aaaaaaaaaaaa.json").write_text('{"schema_version": 1, "entry')  # truncated
    (folder / "debug-bbbbbbbbbbbb.json").write_bytes(b"\xff\xfe garbage")
    future = good.to_data() | {"schema_version": 99}
    (folder / "debug-cccccccccccc.json").write_text(json.dumps(future))
    misplaced = synthetic_record("debug", 2)
    (folder / "debug-dddddddddddd.json").write_text(misplaced.to_json())
    (folder / "debug-eeeeeeeeeeee.json").mkdir()  # matches the pattern, cannot be read
    records, problems = store.list()
    assert records == [good]
    by_name = {Path(p.path).name: p.message for p in problems}
    assert set(by_name) == {f"debug-{c * 12}.json" for c in "abcde"}
    assert "cannot read" in by_name["debug-eeeeeeeeeeee.json"]
    stored = folder / f"{good.entry_id}.json"
    assert store.load()[2] == {good.entry_id: Stored(stored.read_bytes(), str(stored))}  # the bytes as stored
    assert "not valid JSON" in by_name["debug-aaaaaaaaaaaa.json"]
    assert "schema_version 99 is not supported" in by_name["debug-cccccccccccc.json"]
    assert misplaced.entry_id in by_name["debug-dddddddddddd.json"]


def _writer(url: str, track: str, offset: int, count: int, shared: int, start) -> None:
    store = ResultsStore(url)
    records = [synthetic_record(track, offset + i, curve_points=50) for i in range(count)]
    shared_records = [synthetic_record("nano", i, name=f"from {offset}", curve_points=50) for i in range(shared)]
    start.wait()
    for i, record in enumerate(records):
        store.add(record)
        if i < shared:
            store.add(shared_records[i])  # both writers write these entries at once: last writer wins, whole


def test_concurrent_writers_keep_every_record(tmp_path: Path) -> None:
    url = str(tmp_path / "results")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(url, "debug", k * 1000, 100, 20, start)) for k in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    records, problems = ResultsStore(url).list()
    assert problems == []
    assert len([r for r in records if r.track.name == "debug"]) == 200
    shared = [r for r in records if r.track.name == "nano"]
    assert len(shared) == 20 and {r.submission.name for r in shared} <= {"from 0", "from 1000"}
    leftovers = [p.name for p in (tmp_path / "results").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.s3
def test_store_on_s3(s3_endpoint: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="results")
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_endpoint}}
    store = ResultsStore("s3://results/shared", options)
    a, b = synthetic_record("debug", 1), synthetic_record("nano", 1)
    assert store.add(a) == f"results/shared/debug/{a.entry_id}.json"
    store.add(b)
    store.fs.pipe_file("results/shared/debug/debug-eeeeeeeeeeee.json", b"not json")
    fresh = ResultsStore("s3://results/shared/", options)  # a new reader, as another machine would be
    records, problems = fresh.list()
    assert sorted(r.entry_id for r in records) == sorted([a.entry_id, b.entry_id])
    assert [p.path for p in problems] == ["s3://results/shared/debug/debug-eeeeeeeeeeee.json"]
    assert fresh.get(b.entry_id) == b


def test_a_verification_counts_for_the_bytes_it_verified_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    from harness.leaderboard.sample import synthetic_record
    from harness.records.verified import FOLDER, Verification, add_verification, record_sha256

    store = ResultsStore(str(tmp_path))
    a, b = synthetic_record("debug", 1), synthetic_record("debug", 2)
    store.add(a)
    store.add(b)
    common = {"bundle": "a" * 64, "verified_at": "2026-12-06T00:00:00+00:00", "harness_version": "0"}
    add_verification(str(tmp_path), Verification(entry_id=a.entry_id, level="eval",
                     record_sha256=record_sha256(a.to_json().encode()), **common))  # fmt: skip
    add_verification(
        str(tmp_path), Verification(entry_id=b.entry_id, level="train", record_sha256="b" * 64, **common)
    )  # fmt: skip  (of other bytes than stored)
    bad = tmp_path / FOLDER / "debug-000000000000"
    bad.mkdir()
    (bad / "verification.json").write_text(json.dumps({**common, "entry_id": "x/../y", "level": "all"}))
    records, problems, sources = store.load()
    assert len(records) == 2 and sources[a.entry_id].checked == "verified: eval"
    assert sources[b.entry_id].checked == "self-reported"
    assert [p.path for p in problems] == [str(bad / "verification.json")]
    with pytest.raises(ValueError, match="'level' must be one of"):
        add_verification(str(tmp_path), Verification(entry_id=a.entry_id, level="all", record_sha256="a" * 64,
                                                     **common))  # fmt: skip
