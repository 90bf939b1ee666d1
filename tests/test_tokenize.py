"""Tokenize + shuffle: open_lm's format, exact round trip, determinism, resume after a kill, the command."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import tarfile
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zstandard

import harness.data.tokenize as tk
from cli_helpers import command_options
from harness.data import MANIFEST_NAME, STATS_NAME, iter_dataset, iter_shard, read_manifest
from harness.data.shuffle import sort_keys
from harness.errors import HarnessError
from harness.tokenizer import load_tokenizer
from harness.tracks import get_track

SPEC = get_track("debug").tokenizer  # the shipped sandbox BPE: eot 0, pad 1
CONTEXT, SEED, PER_SHARD = 32, 124, 40
HUGE = " ".join(f"word{i % 97} of the long river page" for i in range(3000))  # ~100 sequences on its own


def _documents() -> list[dict]:
    docs = [{"text": f"Document {i} tells of the city Vesk and its {i % 7} bridges." * (1 + i % 5)} for i in range(150)]
    docs[3] = {"text": ""}  # empty: just an eot
    docs[10] = {"text": "quoting <|endoftext|> and <|padding|> as plain text", "repeat": 2}
    docs[20] = {"text": "Ünïcödé, emoji 🙂 and\ttabs\nand newlines", "repeat": 3}
    docs[40] = {"text": HUGE}
    return docs


def _write_inputs(root: Path, docs: list[dict]) -> list[str]:
    """The same documents split over a .jsonl (with a blank line), a .jsonl.gz and a .jsonl.zst file."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(d, ensure_ascii=False) for d in docs]
    a, b, c = lines[:50], lines[50:100], lines[100:]
    (root / "a.jsonl").write_text("\n".join(a[:5]) + "\n\n" + "\n".join(a[5:]) + "\n", encoding="utf-8")
    (root / "b.jsonl.gz").write_bytes(gzip.compress(("\n".join(b) + "\n").encode(), mtime=0))
    (root / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress("\n".join(c).encode()))
    return [str(root / "a.jsonl"), str(root / "b.jsonl.gz"), str(root / "c.jsonl.zst")]


def _run(inputs: list[str], out: Path, **kw) -> tk.TokenizeStats:
    args = {"tokenizer_spec": SPEC, "context": CONTEXT, "seed": SEED, "shard_sequences": PER_SHARD, **kw}
    return tk.tokenize_shuffle(inputs, str(out), **args)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, tk.TokenizeStats]:
    root = tmp_path_factory.mktemp("tok")
    inputs = _write_inputs(root / "in", _documents())
    return inputs, root / "out", _run(inputs, root / "out")


def test_shards_match_open_lm_format(reference) -> None:
    _, out, stats = reference
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_NAME, STATS_NAME] + [f"shard_{k:08d}.tar" for k in range(stats.shards)]
    )  # the work folder is gone
    manifest = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [m["shard"] for m in manifest] == [f"shard_{k:08d}" for k in range(stats.shards)]
    position = 0
    for entry in manifest:
        with tarfile.open(out / f"{entry['shard']}.tar") as tar:
            members = tar.getmembers()
            assert entry["num_sequences"] == len(members)
            for m in members:
                assert m.name == f"{position:012d}.json.gz" and (m.mtime, m.uid, m.gid, m.uname, m.mode) == (
                    0, 0, 0, "", 0o644,
                )  # fmt: skip
                blob = tar.extractfile(m).read()
                assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip header without time or OS
                ids = json.loads(gzip.decompress(blob))
                assert len(ids) == CONTEXT + 1 and all(isinstance(i, int) for i in ids)
                position += 1
    assert sum(m["num_sequences"] for m in manifest) == stats.sequences == position
    assert all(m["num_sequences"] == PER_SHARD for m in manifest[:-1])
    assert json.loads((out / STATS_NAME).read_text()) == stats.to_dict()


def _unshuffled_stream(out: Path, seed: int) -> np.ndarray:
    """The packed stream, recovered by undoing the documented shuffle (output sorted by sort_keys(seed, i))."""
    seqs = np.array([ids for _, ids in iter_dataset(str(out))], dtype=np.int64)
    order = np.argsort(sort_keys(seed, np.arange(len(seqs), dtype=np.uint64)), kind="stable")
    stream = np.empty_like(seqs)
    stream[order] = seqs
    return stream.reshape(-1)


def test_round_trip_gives_back_every_document_copy(reference) -> None:
    _, out, stats = reference
    docs = _documents()
    stream = _unshuffled_stream(out, SEED)
    assert stats.padding_tokens > 0 and (stream[-stats.padding_tokens :] == SPEC.pad_id).all()
    body = stream[: len(stream) - stats.padding_tokens]
    assert SPEC.pad_id not in body and body[-1] == SPEC.eot_id
    tok = load_tokenizer(SPEC)
    cuts = np.flatnonzero(body == SPEC.eot_id)
    pieces = np.split(body, cuts + 1)[:-1]
    decoded = [tok.decode(p[:-1].tolist(), skip_special_tokens=False) for p in pieces]
    expected = [d["text"] for d in docs for _ in range(d.get("repeat", 1))]
    assert decoded == expected  # the stream is the documents in input order, each copy followed by eot
    assert stats.documents == len(docs) and stats.documents_expanded == len(expected) == stats.eot_tokens
    assert stats.tokens == stats.text_tokens + stats.eot_tokens + stats.padding_tokens == len(stream)
    assert Counter(decoded)["quoting <|endoftext|> and <|padding|> as plain text"] == 2


def test_identical_bytes_for_any_workers_buckets_and_batches(reference, tmp_path, monkeypatch) -> None:
    inputs, out, _ = reference
    # Many small buckets, sub-range sorting, tiny batches and flushes: none of it may change a byte.
    monkeypatch.setattr(tk, "BUCKET_BYTES", 20_000)
    monkeypatch.setattr(tk, "MAX_SORT_BYTES", 1500)  # 11 rows: sorted in sub-ranges
    monkeypatch.setattr(tk, "BATCH_BYTES", 700)
    monkeypatch.setattr(tk, "FLUSH_BYTES", 5000)
    _run(inputs, tmp_path / "w2", workers=2)
    assert _tree(tmp_path / "w2") == _tree(out)


def test_shuffle_depends_on_the_seed(reference, tmp_path) -> None:
    inputs, out, stats = reference
    other = _run(inputs, tmp_path / "s", seed=SEED + 1)
    assert other.sequences == stats.sequences
    assert [ids for _, ids in iter_dataset(str(out))] != [ids for _, ids in iter_dataset(str(tmp_path / "s"))]
    assert (_unshuffled_stream(tmp_path / "s", SEED + 1) == _unshuffled_stream(out, SEED)).all()


def test_finished_output_is_reused_and_a_different_run_refused(reference, tmp_path) -> None:
    inputs, out, stats = reference
    before = _tree(out)
    assert _run(inputs, out) == stats and _tree(out) == before
    with pytest.raises(HarnessError, match="already holds tokenized data"):
        _run(inputs, out, seed=1)


KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import harness.data.tokenize as tk
    import harness.data.buckets as bk
    import harness.data.scatter as sc
    import harness.data.shuffle as sh
    point, calls = sys.argv[1], {"n": 0}

    def die_on(n):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "scatter":  # buckets appended, journal not yet updated
        real = sc.write_json_atomic
        def journal(path, data):
            if path.name == "scatter.json":
                die_on(3)
            real(path, data)
        sc.write_json_atomic = journal
    elif point == "sort":  # some buckets sorted
        real_sort = bk._sort_job
        def sort(args):
            die_on(3)
            return real_sort(args)
        bk._sort_job = sort
    elif point == "shard":  # half of a shard's tar written
        real_tar = sh.write_tar
        def write_tar(fh, rows, first):
            real_tar(fh, rows[: len(rows) // 2], first) if calls["n"] == 1 else None
            die_on(2)
            real_tar(fh, rows, first)
        sh.write_tar = write_tar
    tk.BUCKET_BYTES, tk.FLUSH_BYTES, tk.BATCH_BYTES = 3000, 5000, 700
    from harness.tracks import get_track
    tk.tokenize_shuffle(json.loads(sys.argv[2]), sys.argv[3], tokenizer_spec=get_track("debug").tokenizer,
                        context=32, seed=124, shard_sequences=40)
    """
)


@pytest.mark.parametrize("point", ["scatter", "sort", "shard"])
def test_resume_after_a_killed_run_gives_identical_bytes(reference, tmp_path, monkeypatch, point) -> None:
    inputs, out, _ = reference
    run = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, point, json.dumps(inputs), str(tmp_path / "o")], capture_output=True
    )
    assert run.returncode == -9, run.stderr.decode()[-2000:]
    assert not (tmp_path / "o" / STATS_NAME).exists() and (tmp_path / "o" / "_work").is_dir()
    monkeypatch.setattr(tk, "BUCKET_BYTES", 3000)  # resumes with the journaled bucket count whatever this says
    _run(inputs, tmp_path / "o")
    assert _tree(tmp_path / "o") == _tree(out)


def test_remote_output_through_fsspec(reference, tmp_path, monkeypatch) -> None:
    inputs, out, stats = reference
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    remote = "memory://tokenize-test/out"
    assert _run(inputs, remote) == stats  # type: ignore[arg-type]
    assert read_manifest(remote) == [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert list(iter_dataset(remote)) == list(iter_dataset(str(out)))
    assert not list((tmp_path / "home" / "tokenize-work").iterdir())  # the local work folder is cleaned up


def test_bad_input_lines_name_file_and_line(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "x", "repeat": 0}\n')
    with pytest.raises(HarnessError, match=r"bad\.jsonl, line 2: 'repeat' must be a positive integer"):
        _run([str(bad)], tmp_path / "o1")
    bad.write_text('{"text": "fine"}\n\n{"text": 5}\n')
    with pytest.raises(HarnessError, match=r"bad\.jsonl, line 3: 'text' must be a string"):
        _run([str(bad)], tmp_path / "o2")
    bad.write_text("{not json\n")
    with pytest.raises(HarnessError, match=r"bad\.jsonl, line 1: "):
        _run([str(bad)], tmp_path / "o3")
    with pytest.raises(HarnessError, match="missing.jsonl: no such file"):
        _run([str(tmp_path / "missing.jsonl")], tmp_path / "o4")


def test_exact_multiple_of_the_sequence_length_has_no_padding(tmp_path) -> None:
    tok = load_tokenizer(SPEC)
    text = "The river Orlan flows past the city of Vesk"
    n = len(tok.encode(text, add_special_tokens=False).ids) + 1
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"text": text, "repeat": CONTEXT + 1}) + "\n")  # n * (CONTEXT + 1) ids in all
    stats = _run([str(path)], tmp_path / "o")
    assert stats.padding_tokens == 0 and stats.sequences == n
    with open(tmp_path / "o" / "shard_00000000.tar", "rb") as fh:
        assert all(SPEC.pad_id not in ids for _, ids in iter_shard(fh))


def test_tokenize_command_on_a_validated_subset(tmp_path, monkeypatch, capsys) -> None:
    """Acceptance: manifest counts equal the tars' contents; ids = subset tokens + one eot per copy + padding."""
    from test_pools import use_small_pool

    import harness.pools
    from harness.cli import main
    from harness.submit.validate import validate_subset

    docs = use_small_pool(tmp_path, monkeypatch)
    subset = tmp_path / "subset.jsonl"
    lines = [{"id": d["id"], **({"repeat": 2} if i % 5 == 0 else {})} for i, d in enumerate(docs[::2])]
    lines[1]["text"] = docs[2]["text"].replace("first line", "")  # a deletion edit
    subset.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "shards"
    assert main(["tokenize", "--track", "debug", str(subset), "--out", str(out), "--workers", "2"]) == 0
    stats = json.loads((out / STATS_NAME).read_text())
    manifest = read_manifest(str(out))
    for entry in manifest:
        with tarfile.open(out / f"{entry['shard']}.tar") as tar:
            assert entry["num_sequences"] == len(tar.getmembers())
    report = validate_subset("debug", subset, pool=harness.pools.ensure_pool("sandbox"))
    total = sum(m["num_sequences"] for m in manifest) * (get_track("debug").model.context + 1)
    assert total == stats["tokens"] == report.stats.tokens + stats["padding_tokens"]
    assert stats["documents_expanded"] == report.stats.documents and stats["subset_hash"] == report.subset_hash
    assert not (out / "_input").exists() and re.search(
        r"sequences\s.*\s" + str(stats["sequences"]), capsys.readouterr().out
    )
    # Run again: the finished folder is recognised after validation, nothing is rewritten.
    before = _tree(out)
    assert main(["tokenize", "--track", "debug", str(subset), "--out", str(out)]) == 0
    assert _tree(out) == before
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "nope"}\n')
    assert main(["tokenize", "--track", "debug", str(bad), "--out", str(tmp_path / "o2")]) == 1
    assert not (tmp_path / "o2").exists()


def test_tokenize_cli_options() -> None:
    assert command_options("tokenize") == {
        "subset", "--track", "--out", "--workers", "--executor", "--ray-address", "--slurm-partition", "--slurm-time",
        "--slurm-mem", "--cpus-per-task", "--wait",
    }  # fmt: skip
