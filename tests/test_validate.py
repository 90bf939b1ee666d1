"""Subset validation: every problem with its place, the deletion rule, input formats, the report, materialization."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest
import zstandard
from test_pools import make_pool

from cli_helpers import command_options
from harness.pools import PoolSpec, index_pool
from harness.submit.edits import is_deletion
from harness.submit.materialize import materialize_subset
from harness.submit.validate import validate_subset
from harness.tracks import Rules, get_track


def word_tokenizer():
    """A tiny tokenizer (one token per word or punctuation mark): deterministic counts without assets."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


@pytest.fixture(scope="module")
def pool_and_docs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_HOME", str(home))
        spec, docs = make_pool(home / "data", zstd_last=True)
        pool = index_pool(spec, workers=1, tokens=False)
    return pool, docs


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def validate(path, pool, track="nano", **kw):
    return validate_subset(get_track(track) if isinstance(track, str) else track, path, pool=pool,
                           tokenizer=word_tokenizer(), **kw)  # fmt: skip


def test_deletion_rule():
    original = "Header\nline one is here\nline two\nfooter text"
    assert is_deletion(original, original)
    assert is_deletion(original, "line one is here\nline two")  # lines removed
    assert is_deletion(original, "Header\nline one here\nfooter")  # substrings removed
    assert is_deletion(original, "")
    assert is_deletion("aXbab", "aba")  # greedy would fail if it matched "ab" at its first contiguous place
    assert not is_deletion(original, original + "!")  # insertion at the end
    assert not is_deletion(original, "Header\nline one is NOT here")  # insertion inside
    assert not is_deletion(original, "Header\nline one is hare")  # substitution
    assert not is_deletion(original, "line two\nHeader")  # reordering
    long = "abc " * 50_000
    assert is_deletion(long, long[: len(long) // 2] + long[len(long) // 2 + 7 :])


def test_every_problem_is_listed_with_its_line(tmp_path, pool_and_docs):
    pool, docs = pool_and_docs
    good, other = docs[0], docs[1]
    lines = [
        json.dumps({"id": good["id"]}),  # 1 valid
        '{"id": "broken',  # 2 malformed JSON
        json.dumps({"id": 12}),  # 3 wrong type
        json.dumps({"id": other["id"], "text": ""}),  # 4 empty text
        json.dumps({"id": "f" * 32}),  # 5 unknown id
        json.dumps({"id": other["id"], "text": other["text"] + " invented"}),  # 6 not a deletion
        json.dumps({"id": good["id"], "repeat": 0}),  # 7 bad repeat
        json.dumps([good["id"]]),  # 8 not an object
        json.dumps({"id": "z" * 32}),  # 9 not hex
        json.dumps({"id": good["id"]}),  # 10 duplicate (warning)
        json.dumps({"text": "no id"}),  # 11 missing id
    ]
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with open(path, "ab") as fh:
        fh.write(b'{"id": "' + other["id"].encode() + b'", "text": "caf\xe9"}\n')  # 12 invalid UTF-8
    report = validate(path, pool)
    assert not report.ok
    got = {(p.line, p.code) for p in report.problems}
    assert got == {
        (2, "malformed-json"), (3, "wrong-type"), (4, "empty-text"), (5, "unknown-id"), (6, "not-a-deletion"),
        (7, "wrong-type"), (8, "not-an-object"), (9, "invalid-id"), (11, "missing-id"), (12, "invalid-utf8"),
    }  # fmt: skip
    assert all(p.file == str(path) for p in report.problems)
    assert [p.line for p in report.problems] == sorted(p.line for p in report.problems)
    dup = [w for w in report.warnings if w.code == "duplicate-id"]
    assert dup[0].line == 10 and "repeat" in dup[-1].message


def test_first_20_problems_listed_rest_counted(tmp_path, pool_and_docs):
    pool, _ = pool_and_docs
    path = write_lines(tmp_path / "many.jsonl", [json.dumps({"id": f"{i:032x}"}) for i in range(1, 3000)])
    report = validate(path, pool)
    assert report.n_problems == 2999 and report.problem_counts == {"unknown-id": 2999}
    assert [p.line for p in report.problems] == list(range(1, 21))


def test_empty_subset_is_invalid(tmp_path, pool_and_docs):
    pool, _ = pool_and_docs
    report = validate(write_lines(tmp_path / "empty.jsonl", [""]), pool)
    assert not report.ok and report.problems[0].code == "empty-subset"


def test_valid_subset_report(tmp_path, pool_and_docs):
    pool, docs = pool_and_docs
    edited = docs[5]["text"].split("\n", 1)[1]  # first line deleted
    lines = [json.dumps({"id": docs[0]["id"], "repeat": 3}), json.dumps({"id": docs[5]["id"], "text": edited}),
             json.dumps({"id": docs[90]["id"], "text": docs[90]["text"]})]  # fmt: skip
    report = validate(write_lines(tmp_path / "ok.jsonl", lines), pool)
    assert report.ok, report.problems
    s = report.stats
    assert (s.lines, s.documents, s.unique_documents, s.edited_documents) == (3, 5, 3, 1)
    count = lambda text: len(word_tokenizer().encode(text).ids) + 1  # noqa: E731
    assert s.tokens == 3 * count(docs[0]["text"]) + count(edited) + count(docs[90]["text"])
    assert s.unique_tokens == count(docs[0]["text"]) + count(edited) + count(docs[90]["text"])
    assert s.pool_share == pytest.approx(3 / 120)
    assert s.passes == pytest.approx(get_track("nano").tokens / s.tokens)
    assert any(w.code == "many-passes" for w in report.warnings)
    # order-independent hash; the unchanged text counts as no edit; a different repeat changes the hash
    shuffled = [lines[2].replace(', "text": ' + json.dumps(docs[90]["text"]), ""), lines[1], lines[0]]
    assert validate(write_lines(tmp_path / "b.jsonl", shuffled), pool).subset_hash == report.subset_hash
    other = [lines[0].replace('"repeat": 3', '"repeat": 2'), *lines[1:]]
    assert validate(write_lines(tmp_path / "c.jsonl", other), pool).subset_hash != report.subset_hash


def test_input_formats_agree(tmp_path, pool_and_docs):
    pool, docs = pool_and_docs
    lines = [json.dumps({"id": d["id"]}) for d in docs[:30]]
    data = "".join(line + "\n" for line in lines).encode()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl.gz").write_bytes(gzip.compress(data[: len(data) // 2 // 1]))
    half = data.index(b"\n", len(data) // 2) + 1
    (tmp_path / "d" / "a.jsonl.gz").write_bytes(gzip.compress(data[:half]))
    (tmp_path / "d" / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data[half:]))
    (tmp_path / "d" / "notes.txt").write_text("ignored in a directory")
    plain = validate(write_lines(tmp_path / "all.jsonl", lines), pool)
    by_dir = validate(tmp_path / "d", pool)
    by_glob = validate(str(tmp_path / "d" / "*.jsonl.*"), pool)
    assert plain.ok and by_dir.ok and by_glob.ok
    assert plain.subset_hash == by_dir.subset_hash == by_glob.subset_hash
    assert by_dir.stats.tokens == plain.stats.tokens and len(by_dir.inputs) == 2


def test_text_edits_forbidden_by_track(tmp_path, pool_and_docs):
    pool, docs = pool_and_docs
    track = dataclasses.replace(get_track("nano"), rules=Rules(kind="filtering", text_edits=False))
    lines = [json.dumps({"id": docs[1]["id"], "text": docs[1]["text"][5:]})]
    report = validate(write_lines(tmp_path / "e.jsonl", lines), pool, track=track)
    assert [p.code for p in report.problems] == ["edits-not-allowed"]


def test_mixing_track_needs_source_and_text_outside_the_pool(tmp_path, pool_and_docs):
    pool, docs = pool_and_docs
    track = dataclasses.replace(get_track("nano"), rules=Rules(kind="mixing"))
    lines = [
        json.dumps({"id": "a" * 32, "text": "outside text", "source": "my-crawl"}),  # 1 fine
        json.dumps({"id": "b" * 32, "text": "outside text"}),  # 2 no source
        json.dumps({"id": "c" * 32, "source": "my-crawl"}),  # 3 no text
        json.dumps({"id": docs[2]["id"]}),  # 4 pool document
    ]
    report = validate(write_lines(tmp_path / "m.jsonl", lines), pool, track=track)
    assert {(p.line, p.code) for p in report.problems} == {(2, "unknown-id"), (3, "missing-text")}
    assert "source" in report.problems[0].message
    filtering = validate(write_lines(tmp_path / "f.jsonl", lines[:1]), pool)
    assert filtering.problems[0].code == "source-not-allowed"


def test_materialize_writes_resolved_texts_in_canonical_order(tmp_path, pool_and_docs):
    pool, docs = pool_and_docs
    edited = docs[7]["text"].replace("first line", "")
    lines = [json.dumps({"id": docs[60]["id"]}), json.dumps({"id": docs[7]["id"], "text": edited}),
             json.dumps({"id": docs[119]["id"], "repeat": 2})]  # fmt: skip
    report = validate(write_lines(tmp_path / "s.jsonl", lines), pool)
    paths = materialize_subset(report, get_track("nano"), tmp_path / "out", shard_docs=2, pool=pool)
    assert [p.name for p in paths] == ["subset-00000.jsonl.gz", "subset-00001.jsonl.gz"]
    rows = [json.loads(line) for p in paths for line in gzip.decompress(p.read_bytes()).splitlines()]
    by_id = {r["id"]: r for r in rows}
    assert by_id[docs[7]["id"]]["text"] == edited
    assert by_id[docs[60]["id"]] == {"id": docs[60]["id"], "text": docs[60]["text"], "repeat": 1}
    assert by_id[docs[119]["id"]]["repeat"] == 2
    again = materialize_subset(write_lines(tmp_path / "r.jsonl", lines[::-1]), "nano", tmp_path / "o2", pool=pool)
    assert [json.loads(x) for x in gzip.decompress(again[0].read_bytes()).splitlines()] == rows


def test_materialize_refuses_an_invalid_subset(tmp_path, pool_and_docs):
    from harness.errors import HarnessError

    pool, _ = pool_and_docs
    with pytest.raises(HarnessError, match="invalid"):
        materialize_subset(write_lines(tmp_path / "x.jsonl", ['{"id": 1}']), "nano", tmp_path / "o", pool=pool)


def test_class_shares_on_a_labelled_pool(tmp_path, monkeypatch):
    """A pool laid out as the sandbox generator writes it (manifest, shards/, labels.jsonl.gz)."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    spec = PoolSpec(id="sandbox", version=9, description="d", source="sandbox", id_scheme="field")
    _, docs = make_pool(spec.home / "shards", shards=1, docs=10)
    shard = {"path": "shards/shard-00000.jsonl.gz", "documents": 10}
    (spec.home / "manifest.json").write_text(json.dumps({"shards": [shard]}))
    labels = [{"id": d["id"], "class": "clean" if i < 4 else "spam"} for i, d in enumerate(docs)]
    (spec.home / "labels.jsonl.gz").write_bytes(gzip.compress("\n".join(map(json.dumps, labels)).encode()))
    pool = index_pool(spec, workers=1, tokens=False)
    lines = [json.dumps({"id": docs[0]["id"], "repeat": 3}), json.dumps({"id": docs[9]["id"]})]
    shares = validate(write_lines(tmp_path / "s.jsonl", lines), pool).class_shares
    assert shares["clean"]["documents"] == pytest.approx(0.75) and shares["spam"]["documents"] == pytest.approx(0.25)
    assert shares["clean"]["pool"] == pytest.approx(0.4)
    assert pool.labels_path.name == "labels.jsonl.gz" and pool.eval_dir.name == "eval"


def test_cli_exit_codes_and_json(tmp_path, pool_and_docs, monkeypatch, capsys):
    import harness.pools
    from harness.cli import main

    pool, docs = pool_and_docs
    monkeypatch.setattr(harness.pools, "ensure_pool", lambda pool_id, progress=None: pool)
    good = write_lines(tmp_path / "good.jsonl", [json.dumps({"id": docs[0]["id"]})])
    # This pool has no evaluation data, so the contamination check is skipped (tests/test_decontam.py runs it).
    assert main(["validate", "--track", "nano", str(good), "--json", "--no-contamination"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("{")  # the report and nothing else: progress goes to stderr
    data = json.loads(out)
    assert data["ok"] and data["stats"]["unique_documents"] == 1 and len(data["subset_hash"]) == 64
    bad = write_lines(tmp_path / "bad.jsonl", ['{"id": 1}'])
    assert main(["validate", "--track", "nano", str(bad)]) == 1
    assert "bad.jsonl:1" in capsys.readouterr().out
    assert main(["validate", "--track", "nano", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["validate", "--track", "nanoo", str(good)]) == 2


def test_validate_cli_options():
    assert command_options("validate") == {"subset", "--track", "--json", "--no-contamination"}


def test_id_only_fast_path_agrees_with_the_parser(pool_and_docs, tmp_path):
    """Canonical `{"id": ...}` lines skip the JSON parser; any other spelling of the same entry gives the same result."""
    pool, docs = pool_and_docs
    ids = [d["id"] for d in docs[:4]]
    fast = validate(write_lines(tmp_path / "fast.jsonl", [json.dumps({"id": i}) for i in ids]), pool)
    spelled = [f'{{ "id" : "{ids[0]}" }}', f'{{"id":"{ids[1]}"}}', json.dumps({"id": ids[2], "repeat": 1}),
               json.dumps({"id": ids[3]}, indent=None, separators=(", ", ": "))]  # fmt: skip
    slow = validate(write_lines(tmp_path / "slow.jsonl", spelled), pool)
    assert fast.ok and slow.ok and fast.subset_hash == slow.subset_hash
    assert fast.stats.documents == slow.stats.documents == 4
    upper = validate(write_lines(tmp_path / "upper.jsonl", [json.dumps({"id": ids[0].upper()})]), pool)
    lower = validate(write_lines(tmp_path / "lower.jsonl", [json.dumps({"id": ids[0]})]), pool)
    assert lower.ok and not upper.ok  # ids are exact: an upper-case spelling is refused, never mapped
    assert upper.problems[0].code == "invalid-id" and "lowercase" in upper.problems[0].message
