"""A pool shard and a subset served by a local S3-compatible server (moto), read through s3:// URLs."""

from __future__ import annotations

import gzip
import json
import socket

import pytest
from test_pools import make_pool
from test_validate import word_tokenizer

from harness.pools import PoolSpec, ShardSpec, index_pool
from harness.submit.validate import validate_subset
from harness.tracks import get_track

pytestmark = pytest.mark.s3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    """A moto server on a free port; s3fs finds it through fsspec's environment configuration."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"FSSPEC_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    import boto3
    import fsspec.config
    import s3fs

    # fsspec reads FSSPEC_S3_* only when it is first imported: set its live configuration as well
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
    s3fs.S3FileSystem.clear_instance_cache()

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="pool")
    yield client
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_pool_and_subset_over_s3(tmp_path, monkeypatch, s3):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    _, docs = make_pool(tmp_path / "data", shards=1, docs=20)
    s3.put_object(Bucket="pool", Key="shards/shard-00000.jsonl.gz",
                  Body=(tmp_path / "data" / "shard-00000.jsonl.gz").read_bytes())  # fmt: skip
    spec = PoolSpec(id="s3pool", version=1, description="d", source="shards", id_scheme="field",
                    shards=(ShardSpec(path="s3://pool/shards/shard-00000.jsonl.gz", documents=20),))  # fmt: skip
    pool = index_pool(spec, workers=1, tokens=False)
    assert pool.shards() == ["s3://pool/shards/shard-00000.jsonl.gz"]
    assert pool.get(docs[13]["id"]) == docs[13]
    lines = [json.dumps({"id": docs[3]["id"]}), json.dumps({"id": docs[4]["id"], "text": docs[4]["text"][6:]})]
    s3.put_object(Bucket="pool", Key="subsets/mine.jsonl.gz", Body=gzip.compress("\n".join(lines).encode()))
    s3.put_object(Bucket="pool", Key="subsets/bad.jsonl", Body=b'{"id": "nope"}\n')
    report = validate_subset(get_track("nano"), "s3://pool/subsets/mine.jsonl.gz", pool=pool,
                             tokenizer=word_tokenizer())  # fmt: skip
    assert report.ok, report.problems
    assert report.stats.unique_documents == 2 and report.stats.edited_documents == 1
    both = validate_subset(get_track("nano"), "s3://pool/subsets/", pool=pool, tokenizer=word_tokenizer())
    assert both.inputs == ("s3://pool/subsets/bad.jsonl", "s3://pool/subsets/mine.jsonl.gz")
    assert [(p.file, p.line, p.code) for p in both.problems] == [("s3://pool/subsets/bad.jsonl", 1, "invalid-id")]
