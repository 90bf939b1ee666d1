"""Tokenize + shuffle beyond one process pool: the staged tasks (harness.data.staged) write the reference's bytes
(the process pool, one worker) on datatrove's local executor and on a real Ray cluster, for any worker count;
a failed or killed task is one clear message and a re-run resumes without redoing finished tasks; S3 in and out;
a dead process-pool worker is one clear message too."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import test_s3
from test_tokenize import CONTEXT, PER_SHARD, SEED, SPEC, _documents, _run, _tree, _write_inputs
from tokenize_faults import FaultStep

import harness.data.staged as staged
import harness.data.staged_run as staged_run
from harness.data import iter_dataset, read_manifest
from harness.data.staged_run import tokenize_staged
from harness.errors import HarnessError
from harness.scores.run import ExecutorOptions, connect_ray

#: Runs of 22 rows, buckets of ~68 rows, chunks of 7 rows: every piece of the gather path is exercised.
SMALL = {"RUN_BYTES": 3000, "BUCKET_BYTES": 9000, "CHUNK_ROWS": 7}
s3 = test_s3.s3  # the moto server fixture


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, object]:
    root = tmp_path_factory.mktemp("ref")
    inputs = _write_inputs(root / "in", _documents())
    return inputs, root / "out", _run(inputs, root / "out")


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SMALL.items():
        monkeypatch.setattr(staged, name, value)


def _staged(inputs: list[str], out: Path | str, executor: ExecutorOptions, **kw):
    return tokenize_staged(inputs, str(out), tokenizer_spec=SPEC, context=CONTEXT, seed=SEED,
                           shard_sequences=PER_SHARD, executor=executor, **kw)  # fmt: skip


def _faults(monkeypatch: pytest.MonkeyPatch, tmp: Path, fault: str, at: tuple[str, int]) -> Path:
    """Run every task through FaultStep (one `fault` at `at`); returns the file recording which tasks ran."""
    record = tmp / "ran.txt"
    step = functools.partial(FaultStep, fault=fault, at=at, marker=str(tmp / "fault-done"), record=str(record))
    monkeypatch.setattr(staged_run, "StageStep", step)
    return record


def _ran(record: Path) -> list[tuple[str, int]]:
    lines = record.read_text().split("\n") if record.exists() else []
    return sorted((stage, int(rank)) for stage, rank in (line.split() for line in lines if line))


def test_staged_tasks_write_the_reference_bytes_for_any_workers(reference, tmp_path, small) -> None:
    inputs, out, stats = reference
    for workers in (1, 2):
        assert _staged(inputs, tmp_path / f"w{workers}", ExecutorOptions("local", workers)) == stats
        assert _tree(tmp_path / f"w{workers}") == _tree(out)  # shards, manifest, stats; no work folder left
    merged = _run(inputs, tmp_path / "pool-merged", merge_rest=True)
    assert _staged(inputs, tmp_path / "merged", ExecutorOptions("local", 2), merge_rest=True) == merged
    assert _tree(tmp_path / "merged") == _tree(tmp_path / "pool-merged")


def test_unreachable_input_is_one_message_and_the_rerun_resumes(tmp_path, small, monkeypatch) -> None:
    inputs = _write_inputs(tmp_path / "in", _documents())
    out, stats = tmp_path / "ref", _run(inputs, tmp_path / "ref")
    record = _faults(monkeypatch, tmp_path, "unreachable", ("tokenize", 1))
    message = r"tokenize stage \(2 of 3 tasks unfinished\): .*b\.jsonl\.gz.*no such file.*re-run the same"
    with pytest.raises(HarnessError, match=message):
        _staged(inputs, tmp_path / "o", ExecutorOptions("local", 1))
    assert not (tmp_path / "o" / "stats.json").exists() and _ran(record) == [("tokenize", 0), ("tokenize", 1)]
    Path(inputs[1] + ".away").rename(inputs[1])  # the input is back
    record.unlink()
    assert _staged(inputs, tmp_path / "o", ExecutorOptions("local", 2)) == stats
    assert _tree(tmp_path / "o") == _tree(out)
    ran = _ran(record)  # finished tasks are not run again: tokenize 0 was done, 1 and 2 were not
    assert [r for s, r in ran if s == "tokenize"] == [1, 2] and ("plan", 0) in ran


@pytest.mark.s3
def test_s3_in_and_out(reference, tmp_path, s3, monkeypatch) -> None:
    _, out, stats = reference
    inputs = _write_inputs(tmp_path / "in", _documents())
    for path in inputs:
        s3.put_object(Bucket="pool", Key=f"in/{Path(path).name}", Body=Path(path).read_bytes())
    remote = [f"s3://pool/in/{Path(path).name}" for path in inputs]
    got = _staged(remote, "s3://pool/tok", ExecutorOptions("local", 2))  # work folder on S3 too: s3://pool/tok/_work
    assert got.sequences == stats.sequences and got.tokens == stats.tokens and got.documents == stats.documents
    assert read_manifest("s3://pool/tok") == read_manifest(str(out))
    assert list(iter_dataset("s3://pool/tok")) == list(iter_dataset(str(out)))
    assert not [k for k in (o["Key"] for o in s3.list_objects_v2(Bucket="pool")["Contents"]) if "_work" in k]


KILL_POOL_WORKER = textwrap.dedent(
    """
    import json, os, signal, sys
    import harness.data.scatter as sc
    from harness.errors import HarnessError
    from harness.data.tokenize import tokenize_shuffle
    from harness.tracks import get_track
    real, calls = sc._encode, {"n": 0}
    def encode(batch, eot):  # runs in the forked worker processes
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(batch, eot)
    sc._encode = encode
    import harness.data.tokenize as tk
    tk.BATCH_BYTES = 700
    try:
        tokenize_shuffle(json.loads(sys.argv[1]), sys.argv[2], tokenizer_spec=get_track("debug").tokenizer,
                         context=32, seed=124, shard_sequences=40, workers=2)
    except HarnessError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    """
)


def test_a_killed_pool_worker_is_one_message_and_the_rerun_resumes(reference, tmp_path) -> None:
    inputs, out, stats = reference
    run = subprocess.run([sys.executable, "-c", KILL_POOL_WORKER, json.dumps(inputs), str(tmp_path / "o")],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 1 and "a tokenize worker process died" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert _run(inputs, tmp_path / "o", workers=2) == stats and _tree(tmp_path / "o") == _tree(out)


# ---------------------------------------------------------------------------------------------------------------
# A real Ray cluster (tests/ray_cluster.py), joined by address.


@pytest.mark.slow
def test_ray_cluster_writes_the_reference_bytes_and_survives_a_killed_worker(
    ray_cluster, reference, tmp_path, small, monkeypatch
) -> None:
    inputs, out, stats = reference
    connect_ray(ray_cluster)
    assert _staged(inputs, tmp_path / "ray", ExecutorOptions("ray", 2)) == stats
    assert _tree(tmp_path / "ray") == _tree(out)
    record = _faults(monkeypatch, tmp_path, "kill", ("scatter", 1))  # SIGKILL in a Ray worker, mid-run
    with pytest.raises(HarnessError, match=r"scatter stage \(1 of 3 tasks unfinished\): its worker process died"):
        _staged(inputs, tmp_path / "killed", ExecutorOptions("ray", 2))
    before = _ran(record)
    assert [r for s, r in before if s == "tokenize"] == [0, 1, 2] and ("scatter", 1) in before
    record.unlink()
    assert _staged(inputs, tmp_path / "killed", ExecutorOptions("ray", 2)) == stats
    assert _tree(tmp_path / "killed") == _tree(out)
    again = _ran(record)  # the tokenize and plan tasks are not repeated; the killed scatter task is
    assert not [s for s, _ in again if s in ("tokenize", "plan")] and ("scatter", 1) in again


@pytest.mark.slow
def test_tokenize_command_on_ray_matches_local(ray_cluster, tmp_path, monkeypatch, capsys) -> None:
    from test_pools import use_small_pool

    from harness.cli import main

    docs = use_small_pool(tmp_path, monkeypatch)
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(json.dumps({"id": d["id"], "repeat": 1 + i % 3}) + "\n" for i, d in enumerate(docs)))
    base = ["tokenize", "--track", "debug", str(subset)]
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    ray = ["--executor", "ray", "--workers", "2", "--ray-address", ray_cluster]
    assert main([*base, "--out", str(tmp_path / "ray"), *ray]) == 0
    ray_tree, local_tree = _tree(tmp_path / "ray"), _tree(tmp_path / "local")
    stats = [json.loads(tree.pop("stats.json")) for tree in (ray_tree, local_tree)]
    assert ray_tree == local_tree and len(ray_tree) > 1  # the shards and the manifest, byte for byte
    # The stats too, but for the fingerprint: it names the inputs, materialized under each output folder.
    ray_stats, local_stats = ({k: v for k, v in s.items() if k != "fingerprint"} for s in stats)
    assert ray_stats == local_stats and ray_stats["sequences"] > 0
