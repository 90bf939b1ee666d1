"""Hostile input and outputs, part two: compression bombs are refused at their file and line with memory bounded;
the streamed contamination check gives the report of the materialising one; an output folder that cannot be
written fails before any work; a closed pipe ends quietly; a control character never reaches a batch script.

Every input is generated here (the bombs in a second: one compressed member or frame, written many times).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zstandard

from harness.cli import main

TRACK = "debug"
ROOT = Path(__file__).resolve().parent.parent
#: Peak resident memory a bomb may add to validating a one-line subset: the line bound (64 MiB) held once while
#: the reader refuses it, with room for its pieces; a bomb read whole would add 1 GiB.
BOMB_EXTRA_MIB = 3 * 64


@pytest.fixture(scope="module")
def ids() -> list[str]:
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    pool = ensure_pool(get_track(TRACK).pool)
    return [pool.id_of_row(row) for row in range(40)]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _validate_peak(path: Path) -> tuple[int, str, float]:
    """Exit code, output and peak resident MiB of `harness validate` in a fresh process (VmHWM: its own peak)."""
    code = (
        "import sys, contextlib, io\n"
        "from harness.cli import main\n"
        f"code = main(['validate', '--track', {TRACK!r}, '--no-contamination', {str(path)!r}])\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print('PEAK', peak, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    peak = int(out.rsplit("PEAK", 1)[1].split()[0]) / 1024
    return proc.returncode, " ".join(out.split()), peak


def _gzip_bomb(path: Path, prefix: bytes, block: bytes, copies: int) -> None:
    member = gzip.compress(block, 9, mtime=0)  # a gzip file may be many members: one, written `copies` times
    with open(path, "wb") as fh:
        fh.write(gzip.compress(prefix, mtime=0))
        for _ in range(copies):
            fh.write(member)


def _zstd_bomb(path: Path, prefix: bytes, block: bytes, copies: int) -> None:
    frame = zstandard.ZstdCompressor(level=19).compress(block)  # likewise: concatenated zstd frames
    with open(path, "wb") as fh:
        fh.write(zstandard.ZstdCompressor().compress(prefix))
        for _ in range(copies):
            fh.write(frame)


@pytest.mark.parametrize("make", [_gzip_bomb, _zstd_bomb], ids=["gzip", "zstd"])
def test_a_bomb_without_newlines_is_refused_at_its_line_with_memory_bounded(make, ids, tmp_path: Path) -> None:
    from harness.io.reader import MAX_LINE_BYTES

    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps({"id": ids[0]}) + "\n")
    code, out, baseline = _validate_peak(small)
    assert code == 0, out
    bomb = tmp_path / f"bomb.jsonl.{'gz' if make is _gzip_bomb else 'zst'}"
    # 1 GiB of 'a' without a newline on line 2 (a valid first line), from about 1 MB (gzip) or 50 kB (zstd)
    make(bomb, (json.dumps({"id": ids[0]}) + '\n{"id": "' + ids[1] + '", "text": "').encode(), b"a" * (1 << 20), 1024)
    assert bomb.stat().st_size < 4 << 20
    code, out, peak = _validate_peak(bomb)
    assert code == 1 and "Traceback" not in out and "MemoryError" not in out, out
    assert f"{bomb.name}:2 line-too-long line 2 is longer than {MAX_LINE_BYTES >> 20} MiB" in out, out
    assert peak - baseline < BOMB_EXTRA_MIB, f"peak {peak:.0f} MiB against {baseline:.0f} MiB for one line"


def test_a_bomb_of_short_lines_is_refused_past_the_file_bound(ids, tmp_path: Path) -> None:
    from harness.io.reader import FILE_FLOOR, MAX_RATIO

    bomb = tmp_path / "lines.jsonl.zst"
    # blank lines of 1 kB (skipped cheaply), 256 MiB of them from a few kB: past 100x and past 64 MiB
    _zstd_bomb(bomb, (json.dumps({"id": ids[0]}) + "\n").encode(), (b" " * 1023 + b"\n") * 1024, 256)
    assert bomb.stat().st_size * MAX_RATIO < FILE_FLOOR
    code, out, _ = _validate_peak(bomb)
    assert code == 1 and "Traceback" not in out, out
    assert f"{bomb.name}:" in out and "compression-bomb" in out and f"more than {MAX_RATIO} times" in out, out


def test_the_reader_counts_lines_the_same_for_every_format(ids, tmp_path: Path) -> None:
    from harness.io.reader import open_stream

    data = "".join(json.dumps({"id": i}) + "\n" for i in ids).encode()
    for name, blob in (
        ("a.jsonl", data),
        ("a.jsonl.gz", gzip.compress(data)),
        ("a.jsonl.zst", zstandard.compress(data)),
    ):
        (tmp_path / name).write_bytes(blob)
        with open_stream(str(tmp_path / name)) as fh:
            assert list(fh) == data.splitlines(keepends=True)
            assert fh.raw.newlines == len(ids) and fh.raw.consumed == len(blob)


# ------------------------------------------------------------------------------------ streamed decontamination


def _contaminated_subset(tmp_path: Path) -> tuple[Path, object]:
    """A subset of the debug pool with leaked documents (id-only, repeated, duplicated, edited) and clean ones,
    and outside documents quoting items, on the debug track made a mixing track (so every kind of entry occurs)."""
    import gzip as gz

    from harness.pools import ensure_pool
    from harness.tracks import get_track

    track = get_track(TRACK)
    track = dataclasses.replace(track, rules=dataclasses.replace(track.rules, kind="mixing", text_edits=True))
    pool = ensure_pool(track.pool)
    with gz.open(pool.labels_path, "rt") as fh:
        labels = [json.loads(line) for line in fh]
    leaked = [lab["id"] for lab in labels if lab["class"] == "leaked"][:12]
    clean = [lab["id"] for lab in labels if lab["class"] == "clean"][:60]
    texts = {row: pool.text_of(doc) for row, doc in pool.read_rows(pool.rows(leaked[:4]))}
    lines = [{"id": i} for i in clean[:30] + leaked] + [{"id": leaked[0]}, {"id": leaked[1], "repeat": 3}]
    for row, text in texts.items():  # a deletion of a leaked text (its last character), and an outside copy
        lines.append({"id": pool.id_of_row(row), "text": text[:-1]})
        lines.append({"id": f"{row:032x}"[::-1], "source": "web", "text": "Quoted: " + text})
    lines += [{"id": i} for i in clean[30:]]
    subset = tmp_path / "leaky.jsonl"
    subset.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return subset, track


def test_streamed_contamination_report_is_the_materialised_one(tmp_path: Path, monkeypatch) -> None:
    from harness.submit import decontam, materialize
    from harness.submit.decontam_subset import check_subset, validate_and_check

    subset, track = _contaminated_subset(tmp_path)
    # Small batches and lists, so that the order documents are counted in decides what the lists keep.
    monkeypatch.setattr(decontam, "BATCH_DOCUMENTS", 7)
    monkeypatch.setattr(decontam, "MAX_DOCS_PER_ITEM", 2)
    monkeypatch.setattr(decontam, "MAX_DOCUMENTS_LISTED", 5)
    suite, index = decontam.track_index(track)
    files = materialize.materialize_subset(subset, track, tmp_path / "resolved")
    reference = decontam.scan_documents(decontam.iter_jsonl_documents(map(str, files)), suite, index).to_dict()
    assert reference["contaminated_documents"] > 10 and reference["contaminated_items"] > 5

    def no_copy(*args, **kwargs):
        raise AssertionError("the check must not write the subset out")

    monkeypatch.setattr(materialize, "materialize_subset", no_copy)
    for _ in range(2):  # the first fills the pool's cache, the second reads it
        assert check_subset(track, str(subset)).to_dict() == reference
    report, contamination = validate_and_check(track, str(subset))
    assert report.ok and contamination is not None and contamination.to_dict() == reference


def test_a_prefilled_pool_is_checked_by_lookups_and_an_interrupted_fill_resumes(tmp_path: Path, monkeypatch) -> None:
    from harness.pools import ensure_pool
    from harness.submit import decontam, decontam_subset
    from harness.submit.decontam_subset import _Cache, check_subset, prefill_pool

    subset, track = _contaminated_subset(tmp_path)
    pool = ensure_pool(track.pool)
    prefill_pool(pool, track)  # what `harness pool create` and the demo do; a no-op once done
    _, index = decontam.track_index(track)
    whole = _Cache.load(pool, index, decontam.MIN_COVERAGE)
    assert whole.complete(pool)
    reference = check_subset(track, str(subset)).to_dict()

    match, matched = decontam.Scanner.match, []

    def counted(self, texts):
        matched.append(len(texts))
        return match(self, texts)

    with monkeypatch.context() as m:
        m.setattr(decontam.Scanner, "match", counted)
        assert check_subset(track, str(subset)).to_dict() == reference
    assert sum(matched) == 8  # the 4 edited and 4 outside texts: every pool document is a lookup

    # A fill that stops after its first shard keeps that shard; the next one does only the rest.
    shard = np.asarray(pool.index.shard)
    keep = ~np.isin(whole.rows, np.flatnonzero(shard >= shard.max() - 1))  # forget the last two shards
    part = _Cache(tmp_path / "cache.npz", {"rows": whole.rows[keep], "nbytes": whole.nbytes[keep]})
    hit = np.isin(whole.hit_rows, part.rows)
    part.hit_rows, part.hit_rank, part.hit_item = whole.hit_rows[hit], whole.hit_rank[hit], whole.hit_item[hit]
    scanner = decontam.Scanner(index)
    fill, calls = _Cache.fill, []

    def stop_after_one(self, pool, rows, scanner):
        if calls:
            raise KeyboardInterrupt
        calls.append(len(rows))
        fill(self, pool, rows, scanner)

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(decontam_subset._Cache, "fill", stop_after_one)
        part.fill_pool(pool, scanner, None)
    resumed = _Cache(tmp_path / "cache.npz", dict(np.load(tmp_path / "cache.npz")))
    assert len(resumed.rows) == keep.sum() + calls[0]
    left = len(whole.rows) - len(resumed.rows)
    assert left > 0 and resumed.fill_pool(pool, scanner, None) == left
    for name in ("rows", "nbytes", "hit_rows", "hit_rank", "hit_item"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name


# ------------------------------------------------------------------------------------------ outputs and pipes


def test_an_unwritable_results_folder_fails_before_any_work(ids, tmp_path: Path, capsys) -> None:
    subset = tmp_path / "s.jsonl"
    subset.write_text("".join(json.dumps({"id": i}) + "\n" for i in ids[:10]))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    results = blocker / "results"
    run_dir = tmp_path / "runs"
    code = main(["submit", "--track", TRACK, str(subset), "--results", str(results), "--run-dir", str(run_dir)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and f"--results {results}" in err and "is a file, not a folder" in err, err
    assert not run_dir.exists()  # nothing validated, tokenized or trained
    assert main(["leaderboard", "add", str(subset), "--results", str(results)]) == 2
    assert main(["leaderboard", "build", "--out", str(blocker / "site"), "--results", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and f"--out {blocker / 'site'}" in err


def test_unwritable_reason_names_the_folder(tmp_path: Path) -> None:
    from harness.io.files import unwritable_reason

    assert unwritable_reason(tmp_path / "new" / "deeper") is None
    assert unwritable_reason("s3://bucket/results") is None  # the store answers when written
    (tmp_path / "f").write_text("x")
    assert unwritable_reason(tmp_path / "f") == f"{tmp_path / 'f'} is a file, not a folder"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "not writable" in (unwritable_reason(locked / "x") or "")


@pytest.mark.parametrize("command", ["validate", "tracks"])
def test_output_into_a_closed_pipe_ends_quietly(command: str, ids, tmp_path: Path) -> None:
    subset = tmp_path / "s.jsonl"
    subset.write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))
    args = ["validate", "--track", TRACK, "--json", "--no-contamination", str(subset)] if command == "validate" else [
        "tracks", "--json"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    proc.stdout.close()  # the reader is gone before anything is written (`| head -c 0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err  # as rich and Python's documentation end on a broken pipe
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# --------------------------------------------------------------------------------------------- batch scripts


@pytest.mark.parametrize("name", ["run\ntouch pwned", "run\rx", "run\x1b[2Jx", "run\tx"])
def test_a_control_character_never_reaches_a_batch_script(name: str, tmp_path: Path, capsys) -> None:
    from harness.errors import UsageError
    from harness.pools import ensure_pool
    from harness.train.launch import write_slurm_script

    run = tmp_path / name
    with pytest.raises(UsageError, match="control character"):
        write_slurm_script(tmp_path / "ok", nodes=1, nproc=1, module="m", args=[str(run)])
    with pytest.raises(UsageError, match="control character"):
        write_slurm_script(run, nodes=1, nproc=1, module="m", args=[])
    pool = ensure_pool("sandbox")
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"id": pool.id_of_row(r)}) + "\n" for r in range(20)))
    experiment = tmp_path / "exp.toml"
    experiment.write_text('name = "exp"\ndescription = "d"\ntrack = "debug"\n[base]\nsubset = "base.jsonl"\n'
                          "[factors]\nsize = [0.5]\n")  # fmt: skip
    assert main(["sweep", "run", str(experiment), "--out", str(run), "--launcher", "slurm"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "control character" in err and not run.exists() and not list(tmp_path.rglob("*.sbatch"))
