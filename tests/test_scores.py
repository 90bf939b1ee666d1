"""Scores and selection: each scorer on a small slice of the sandbox pool, worker-count invariance, resume,
select's budget arithmetic and validity, the fastText round trip, the bad inputs, and the Ray executor."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.errors import HarnessError, UsageError
from harness.pools import ensure_pool
from harness.scores import make_scorer
from harness.scores.run import ExecutorOptions, score
from harness.scores.select import Selection, select
from harness.submit.validate import validate_subset
from harness.tracks import get_track

SHARDS, PER_SHARD = 3, 120


@pytest.fixture(scope="module")
def pool():
    return ensure_pool("sandbox")


@pytest.fixture(scope="module")
def slice_dir(pool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three JSONL shards of pool documents (every class, duplicates included), as a participant's subset."""
    out = tmp_path_factory.mktemp("slice")
    rows = np.arange(SHARDS * PER_SHARD) * 37
    docs = [d for _, d in pool.read_rows(rows)]
    for s in range(SHARDS):
        with gzip.open(out / f"part-{s}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for d in docs[s::SHARDS]:
                fh.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
        # an exact copy of a document of shard 0 in every shard, so dedup crosses shards
        with gzip.open(out / f"part-{s}.jsonl.gz", "at", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": docs[0]["id"], "text": docs[0]["text"]}) + "\n")
    return out


def _parts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("part-*.parquet"))}


def _rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def scored(slice_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scores") / "s1"
    scorers = [make_scorer(n) for n in ("compression", "heuristics", "dedup")]
    score(str(slice_dir), scorers, out, executor=ExecutorOptions(workers=1))
    return out


def test_scorers_write_one_row_per_document_keyed_by_pool_id(scored: Path, pool) -> None:
    manifest = json.loads((scored / "manifest.json").read_text())
    assert [p["path"] for p in manifest["parts"]] == [f"part-{i:05d}.parquet" for i in range(SHARDS)]
    assert manifest["rows"] == SHARDS * (PER_SHARD + 1)
    assert list(manifest["columns"])[:3] == ["id", "compression_bytes", "compression_ratio"]
    assert [s["name"] for s in manifest["scorers"]] == ["compression", "heuristics", "dedup"]
    rows = _rows(scored)
    assert len(rows) == manifest["rows"] and pool.contains([r["id"] for r in rows]).all()
    by_id = {r["id"]: r for r in rows}
    for _, doc in pool.read_rows(pool.rows(list(by_id))):
        r = by_id[doc["id"]]
        assert r["compression_bytes"] == len(doc["text"].encode())
        assert 0 < r["compression_ratio"] < 2  # a short text can grow by the zstd frame header
        assert r["heuristics_pass"] == (r["heuristics_reason"] is None)
        assert r["heuristics_pass"] == all(r[f"{f}_pass"] for f in ("gopher", "gopher_repetition", "c4", "fineweb"))
    # the copy of doc 0 in every shard: one exact cluster, one MinHash cluster, only one member kept
    first = rows[0]["id"]
    copies = [r for r in rows if r["id"] == first]
    assert len(copies) == SHARDS + 1 and len({r["exact_cluster"] for r in copies}) == 1
    assert len({r["minhash_cluster"] for r in copies}) == 1 and copies[0]["minhash_cluster"] is not None
    assert sum(r["minhash_keep"] for r in copies) == 1
    labels = _labels(pool, [r["id"] for r in rows])
    spam = [r for r in rows if labels[r["id"]] in ("spam", "gibberish")]
    assert spam and not any(r["heuristics_pass"] for r in spam)  # datatrove's rules reject the junk


def _labels(pool, ids: list[str]) -> dict[str, str]:
    wanted = set(ids)
    out = {}
    with gzip.open(pool.labels_path, "rt") as fh:
        for line in fh:
            item = json.loads(line)
            if item["id"] in wanted:
                out[item["id"]] = item["class"]
    return out


def test_three_workers_write_the_same_files(scored: Path, slice_dir: Path, tmp_path: Path) -> None:
    scorers = [make_scorer(n) for n in ("compression", "heuristics", "dedup")]
    score(str(slice_dir), scorers, tmp_path / "s3", executor=ExecutorOptions(workers=3))
    assert _parts(tmp_path / "s3") == _parts(scored)


def test_a_killed_run_resumes_where_it_stopped(scored: Path, slice_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume"
    cmd = [sys.executable, "-m", "harness", "score", str(slice_dir), "--scorer", "compression", "--scorer",
           "heuristics", "--scorer", "dedup", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = out / "_logs" / "score" / "completions"
    while proc.poll() is None and not (done.is_dir() and any(done.iterdir())):
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    finished = {p.name for p in done.iterdir()} if done.is_dir() else set()
    kept = {f"part-{int(n):05d}.parquet": (out / f"part-{int(n):05d}.parquet").stat().st_mtime_ns for n in finished}
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert _parts(out) == _parts(scored)
    for name, mtime in kept.items():  # shards finished before the kill were not redone
        assert (out / name).stat().st_mtime_ns == mtime


def test_select_fills_the_budget_and_validates(scored: Path, tmp_path: Path) -> None:
    track = get_track("debug")
    out = tmp_path / "subset.jsonl"
    report = select([scored], "debug", Selection(where=("minhash_keep",), unique=("exact_cluster",)), out)
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert len(ids) == report.selected == len(set(ids))
    pool = ensure_pool("sandbox")
    tokens = np.asarray(pool.token_counts(track.tokenizer))[pool.rows(ids)] + 1
    assert report.tokens == int(tokens.sum()) <= track.tokens
    assert report.passes == pytest.approx(track.tokens / report.tokens) and report.passes > 1  # the slice is small
    validation = validate_subset(track, str(out))
    assert validation.ok and validation.stats.tokens == report.tokens


def test_select_never_goes_past_the_budget(scored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.scores import select as select_module

    track = get_track("debug")
    # What select reads of a track, with a budget below the slice; every track it looks up (the pool's own, for its
    # tokenizer) is this one.
    fields = {"name": "debug", "tokens": 5000, "pool": track.pool, "tokenizer": track.tokenizer}
    small = type("T", (), fields)()
    monkeypatch.setattr("harness.tracks.get_track", lambda name: small)
    report = select_module.select([scored], "debug", Selection(by="compression_ratio"), tmp_path / "s.jsonl")
    rows = _rows(scored)
    ranked = sorted(rows, key=lambda r: -r["compression_ratio"])
    pool = ensure_pool("sandbox")
    counts = np.asarray(pool.token_counts(track.tokenizer))[pool.rows([r["id"] for r in ranked])] + 1
    assert report.tokens <= 5000 < report.tokens + counts[report.selected]
    assert report.tokens == int(counts[: report.selected].sum())


def test_select_composes_where_unique_and_top(scored: Path, tmp_path: Path) -> None:
    rows = _rows(scored)
    sel = Selection(where=("compression_ratio > 0.3 and not gopher_pass",), unique=("exact_cluster",),
                    by="compression_ratio", top=0.5)  # fmt: skip
    report = select([scored], "debug", sel, tmp_path / "s.jsonl")
    first_seen: set[str] = set()
    expected = []
    for r in rows:
        if r["compression_ratio"] > 0.3 and not r["gopher_pass"] and r["exact_cluster"] not in first_seen:
            first_seen.add(r["exact_cluster"])
            expected.append(r)
    assert [k for _, k in report.steps] == [
        sum(r["compression_ratio"] > 0.3 and not r["gopher_pass"] for r in rows), len(expected),
        -(-len(expected) // 2),
    ]  # fmt: skip
    top = sorted(expected, key=lambda r: -r["compression_ratio"])[: -(-len(expected) // 2)]
    chosen = {json.loads(line)["id"] for line in (tmp_path / "s.jsonl").read_text().splitlines()}
    assert chosen == {r["id"] for r in top}


def test_select_bad_inputs(scored: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Did you mean 'heuristics_pass'"):
        select([scored], "debug", Selection(where=("heuristic_pass",)), tmp_path / "a.jsonl")
    with pytest.raises(HarnessError, match="the selection is empty"):
        select([scored], "debug", Selection(where=("compression_ratio > 5",)), tmp_path / "b.jsonl")
    with pytest.raises(UsageError, match="not allowed"):
        select([scored], "debug", Selection(where=("compression_ratio.real > 0",)), tmp_path / "c.jsonl")
    with pytest.raises(UsageError, match="not a condition"):
        select([scored], "debug", Selection(where=("compression_ratio",)), tmp_path / "e.jsonl")
    with pytest.raises(UsageError, match="not a finished score folder"):
        select([tmp_path], "debug", Selection(), tmp_path / "d.jsonl")
    assert not any(tmp_path.glob("*.jsonl"))


def test_fasttext_train_and_score_round_trip(pool, slice_dir: Path, tmp_path: Path) -> None:
    from harness.scores.classifier import read_texts, train_classifier

    positives = list(read_texts(pool.reference_files[0]))[:2000]
    negatives = [d["text"] for _, d in pool.read_rows(np.arange(2000) * 101 + 7)]
    model = tmp_path / "clf.bin"
    card = train_classifier(positives, negatives, model)
    assert card["recipe"]["wordNgrams"] == 2 and card["positives"] == card["negatives"] == 2000
    assert json.loads((tmp_path / "clf.bin.json").read_text())["sha256"] == card["sha256"]
    out = tmp_path / "ft"
    manifest = score(str(slice_dir), [make_scorer("fasttext", model=str(model))], out)
    assert manifest["scorers"][0]["model_sha256"] == card["sha256"]
    rows = _rows(out)
    labels = _labels(pool, [r["id"] for r in rows])
    prob = {c: np.mean([r["fasttext_hq_prob"] for r in rows if labels[r["id"]] == c]) for c in ("clean", "spam")}
    assert all(0 <= r["fasttext_hq_prob"] <= 1 for r in rows)
    assert prob["clean"] > prob["spam"] + 0.2  # measured: 0.40 and 0.02


def test_loglik_scores_a_checkpoint(slice_dir: Path, tmp_path: Path) -> None:
    import math

    import torch
    from safetensors.torch import save_file

    from harness.model import build_model

    torch.manual_seed(0)
    model = build_model(get_track("debug"))
    ckpt = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if "inv_freq" not in k}, str(ckpt))
    out = tmp_path / "ll"
    manifest = score(
        str(slice_dir), [make_scorer("loglik", checkpoint=str(ckpt), track="debug", batch_tokens=2048)], out
    )
    assert manifest["scorers"][0]["context"] == 128
    rows = _rows(out)
    # an untrained model is close to uniform over the 2048-token vocabulary: ~7.6 nats per token
    losses = np.array([r["loglik_token_loss"] for r in rows])
    assert np.allclose(losses, math.log(2048), atol=1.0)
    for r in rows:
        assert r["loglik_bits"] == pytest.approx(r["loglik_token_loss"] * r["loglik_tokens"] / math.log(2))
    # windows: a long document is scored in pieces of the context; its total equals one-window-at-a-time scoring
    long = [r for r in rows if r["loglik_tokens"] > 129]
    assert long
    one = tmp_path / "ll1"
    score(str(slice_dir), [make_scorer("loglik", checkpoint=str(ckpt), track="debug", batch_tokens=129)], one)
    for a, b in zip(rows, _rows(one), strict=True):
        assert a["loglik_bits"] == pytest.approx(b["loglik_bits"], rel=1e-4)


def test_score_bad_inputs(slice_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Did you mean 'compression'"):
        make_scorer("compresion")
    with pytest.raises(UsageError, match="does not exist"):
        make_scorer("fasttext", model=str(tmp_path / "missing.bin")).config()
    with pytest.raises(UsageError, match="neither a pool"):
        score(str(tmp_path / "nothing"), [make_scorer("compression")], tmp_path / "o")
    with pytest.raises(HarnessError, match="no index"):
        score("dclm-pool-400m-1x", [make_scorer("compression")], tmp_path / "o")
    score(str(slice_dir), [make_scorer("compression")], tmp_path / "o")
    with pytest.raises(UsageError, match="another configuration"):
        score(str(slice_dir), [make_scorer("compression", level=9)], tmp_path / "o")


def test_loglik_vocabulary_mismatch_is_one_clear_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from harness.model import build_model

    state = build_model(get_track("debug")).state_dict()
    state = {k: (v[:1000] if k in ("tok_embeddings.weight", "output.weight") else v).contiguous()
             for k, v in state.items() if "inv_freq" not in k}  # fmt: skip
    save_file(state, str(tmp_path / "m.safetensors"))
    with pytest.raises(HarnessError, match=r"embedding is \(1000, 64\)"):
        make_scorer("loglik", checkpoint=str(tmp_path / "m.safetensors"), track="debug").config()


def test_cli_errors_exit_non_zero_without_traceback(slice_dir: Path, tmp_path: Path) -> None:
    run = [sys.executable, "-m", "harness"]
    bad = subprocess.run([*run, "score", str(slice_dir), "--scorer", "fasttext", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "--fasttext-model" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_ray_executor_writes_the_same_files(slice_dir: Path, tmp_path: Path, ray_cluster: str) -> None:
    """`harness score --executor ray` on a real cluster (tests/ray_cluster.py), joined by --ray-address."""
    from harness.cli import main

    ray = ["--executor", "ray", "--workers", "2", "--ray-address", ray_cluster]
    assert main(["score", str(slice_dir), "--scorer", "compression", "--out", str(tmp_path / "ray"), *ray]) == 0
    score(str(slice_dir), [make_scorer("compression")], tmp_path / "local")
    assert _parts(tmp_path / "ray") == _parts(tmp_path / "local") and len(_parts(tmp_path / "ray")) == SHARDS


def _bad_line_source(root: Path) -> Path:
    """Three small JSONL shards; shard 1's sixth line has no text."""
    root.mkdir()
    for s in range(3):
        lines = [json.dumps({"id": f"{s}-{i}", "text": f"Doc {i} of shard {s}. " * (1 + i % 4)}) for i in range(40)]
        if s == 1:
            lines.insert(5, json.dumps({"id": "x", "txt": "no text"}))
        (root / f"part-{s}.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return root


def test_a_failed_earlier_stage_is_one_message_naming_it(tmp_path: Path) -> None:
    """dedup's first stage fails on a bad line: the run stops there with the stage, the cause and its logs (datatrove's
    `depends` would have run the next stages or waited for the failed one)."""
    source, out = _bad_line_source(tmp_path / "src"), tmp_path / "o"
    message = (r"scoring stopped in its minhash-signatures stage: .*part-1\.jsonl\.gz:6: not a document line.*"
               r"Task logs are in .*_logs/minhash-signatures/logs.*re-run the same command")  # fmt: skip
    with pytest.raises(HarnessError, match=message):
        score(str(source), [make_scorer("dedup")], out, executor=ExecutorOptions(workers=2))
    assert not (out / "_logs" / "minhash-buckets").exists() and not (out / "manifest.json").exists()


@pytest.mark.slow
def test_a_failed_earlier_stage_on_ray_is_one_message(tmp_path: Path, ray_cluster: str) -> None:
    """Ray's executor logs a failed task and returns: the next stage used to wait for it forever."""
    from harness.scores.run import connect_ray

    connect_ray(ray_cluster)
    source = _bad_line_source(tmp_path / "src")
    with pytest.raises(HarnessError, match=r"its minhash-signatures stage: 1 of its 3 tasks did not finish"):
        score(str(source), [make_scorer("dedup")], tmp_path / "o", executor=ExecutorOptions("ray", 2))


def test_command_options() -> None:
    from cli_helpers import command_options, subcommands

    assert {"--scorer", "--out", "--workers", "--executor", "--fasttext-model", "--checkpoint"} <= command_options(
        "score"
    )
    assert {"--scores", "--where", "--unique", "--by", "--top", "--track", "--out"} <= command_options("select")
    assert subcommands("classifier") == {"train"}
    assert {"--pos", "--neg", "--out", "--wordNgrams"} <= command_options("classifier", "train")


def test_loglik_on_forked_workers_after_torch_ran_in_the_parent(tmp_path: Path) -> None:
    """Workers forked after torch's thread pool ran in the parent (a reference model trained in-process, as
    examples/information_pruning.py does) used to hang at their first parallel op; they now score, equal to one
    worker's scores."""
    import textwrap

    script = textwrap.dedent(
        """
        import gzip, json, sys
        from pathlib import Path
        import pyarrow.parquet as pq
        import torch
        from safetensors.torch import save_file
        from harness.model import build_model
        from harness.scores import make_scorer
        from harness.scores.run import ExecutorOptions, score
        from harness.tracks import get_track

        root = Path(sys.argv[1])
        torch.set_num_threads(2)
        torch.manual_seed(0)
        model = build_model(get_track("debug"))
        x = torch.randn(1500, 1500)
        (x @ x).sum()  # the parent's intra-op pool is live
        ckpt = root / "model.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if "inv_freq" not in k}, str(ckpt))
        (root / "docs").mkdir()
        for s in range(2):
            with gzip.open(root / "docs" / f"part-{s}.jsonl.gz", "wt") as fh:
                for i in range(12):
                    fh.write(json.dumps({"id": f"d{s}-{i}", "text": "a word " * (40 + i)}) + "\\n")
        bits = []
        for workers in (2, 1):
            out = root / f"w{workers}"
            score(str(root / "docs"), [make_scorer("loglik", checkpoint=str(ckpt), track="debug")], out,
                  executor=ExecutorOptions(workers=workers))
            rows = [r for p in sorted(out.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]
            bits.append({r["id"]: r["loglik_bits"] for r in rows})
        assert len(bits[0]) == 24 and bits[0].keys() == bits[1].keys()
        assert all(abs(bits[0][k] - bits[1][k]) <= 1e-3 * abs(bits[1][k]) for k in bits[0])
        print("ok")
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the hung workers too
        proc.communicate()
        pytest.fail("scoring on forked workers hung (torch's thread pool inherited across fork)")
    assert proc.returncode == 0 and stdout.strip().endswith("ok"), stderr[-2000:]
