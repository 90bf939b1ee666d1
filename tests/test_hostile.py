"""Hostile input and faults: every malformed input is refused with its file and line, never a traceback; valid
controls are accepted; submission fields are checked before any work; killed writers leave nothing behind.

The corpus is generated here (no binary fixtures): each case is a subset file (or folder) built by a function,
the exit code `harness validate` must give, and text its report must show (the file, the line, the problem).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from harness.cli import main
from harness.io.leftovers import owner_tag

TRACK = "debug"


@pytest.fixture(scope="module")
def ids() -> list[str]:
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    pool = ensure_pool(get_track(TRACK).pool)
    return [pool.id_of_row(row) for row in range(40)]


def _lines(ids: list[str], n: int = 20) -> bytes:
    return "".join(json.dumps({"id": i}) + "\n" for i in ids[:n]).encode()


def _zstd_frames(data: bytes) -> list[bytes]:
    """zstd with small blocks (a frame per 1 kB), so a cut at a frame or block boundary is easy to make."""
    cctx = zstandard.ZstdCompressor(level=1)
    return [cctx.compress(data[i : i + 1024]) for i in range(0, len(data), 1024)]


def _zstd_block_cut(data: bytes) -> bytes:
    """One zstd frame cut right after a complete block: decoders that stop at the input's end see no error."""
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=10)
    raw = zstandard.ZstdCompressor(compression_params=params).compress(data)
    # Walk the frame header and blocks (RFC 8878): cut after the first block that is not the last one.
    descriptor = raw[4]
    fcs_size = {0: 1 if descriptor & 0x20 else 0, 1: 2, 2: 4, 3: 8}[descriptor >> 6]
    pos = 5 + (0 if descriptor & 0x20 else 1) + (0, 1, 2, 4)[descriptor & 3] + fcs_size
    header = int.from_bytes(raw[pos : pos + 3], "little")
    assert not header & 1, "the test data must make more than one block"
    size = 1 if (header >> 1) & 3 == 1 else header >> 3  # an RLE block stores one byte
    return raw[: pos + 3 + size]


@dataclass(frozen=True)
class Case:
    """One hostile (or control) input: how to build it, the exit code and what the output must name."""

    name: str
    build: Callable[[Path, list[str]], Path]
    code: int
    shows: tuple[str, ...] = ()


def _file(name: str, data: Callable[[list[str]], bytes]) -> Callable[[Path, list[str]], Path]:
    def build(tmp: Path, ids: list[str]) -> Path:
        path = tmp / name  # may hold a folder ("[/]x.jsonl": a markup tag across the path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data(ids))
        return path

    return build


def _dir(files: dict[str, Callable[[list[str]], bytes] | str]) -> Callable[[Path, list[str]], Path]:
    """A folder; a str value is a symlink target."""

    def build(tmp: Path, ids: list[str]) -> Path:
        root = tmp / "subset"
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.symlink_to(content)
            else:
                path.write_bytes(content(ids))
        return root

    return build


def _line(text: str) -> Callable[[list[str]], bytes]:
    """A valid first line, then `text` (with {id} for a pool id) on line 2."""
    return lambda ids: (json.dumps({"id": ids[0]}) + "\n" + text.replace("{id}", ids[1]) + "\n").encode()


CASES = [
    # compressed streams must end where their format says, and be what their name says
    Case(
        "zst cut at a block boundary",
        _file("cut.jsonl.zst", lambda ids: _zstd_block_cut(_lines(ids, 40) * 50)),
        1,
        ("cut.jsonl.zst", "unreadable-input", "truncated"),
    ),
    Case(
        "zst cut inside a block",
        _file("mid.jsonl.zst", lambda ids: b"".join(_zstd_frames(_lines(ids)))[:-7]),
        1,
        ("mid.jsonl.zst", "unreadable-input"),
    ),
    Case(
        "zst frames concatenated (valid)",
        _file("frames.jsonl.zst", lambda ids: b"".join(_zstd_frames(_lines(ids)))),
        0,
        ("VALID",),
    ),
    Case("not zstd", _file("plain.jsonl.zst", lambda ids: _lines(ids)), 1, ("plain.jsonl.zst", "not valid zstd")),
    Case(
        "zst trailing garbage",
        _file("tail.jsonl.zst", lambda ids: zstandard.compress(_lines(ids)) + b"junk"),
        1,
        ("tail.jsonl.zst", "unreadable-input"),
    ),
    Case(
        "gz truncated",
        _file("cut.jsonl.gz", lambda ids: gzip.compress(_lines(ids))[:-20]),
        1,
        ("cut.jsonl.gz", "truncated"),
    ),
    Case(
        "gz corrupt",
        _file("bad.jsonl.gz", lambda ids: (lambda g: g[:30] + bytes(40) + g[70:])(gzip.compress(_lines(ids), mtime=0))),
        1,
        ("bad.jsonl.gz", "unreadable-input"),
    ),
    Case("not gzip", _file("plain.jsonl.gz", lambda ids: _lines(ids)), 1, ("plain.jsonl.gz", "not valid gzip")),
    Case(
        "gz members (valid)",
        _file("two.jsonl.gz", lambda ids: gzip.compress(_lines(ids[:5])) + gzip.compress(_lines(ids[5:10]))),
        0,
        ("VALID",),
    ),
    Case("empty zst", _file("empty.jsonl.zst", lambda ids: b""), 1, ("empty-subset",)),
    # JSON a parser chokes on
    Case("deep nesting", _file("deep.jsonl", _line("[" * 200_000)), 1, ("deep.jsonl:2", "malformed-json")),
    Case(
        "deep nesting in a field",
        _file("deepf.jsonl", _line('{"id": "{id}", "text": ' + "[" * 100_000 + "]" * 100_000 + "}")),
        1,
        ("deepf.jsonl:2", "malformed-json"),
    ),
    Case("NUL byte", _file("nul.jsonl", _line('{"id": "{id}"}\x00')), 1, ("nul.jsonl:2", "malformed-json")),
    Case(
        "invalid UTF-8",
        _file("utf.jsonl", lambda ids: _line('{"id": "{id}", "text": "X"}')(ids).replace(b"X", b"\xff\xfe")),
        1,
        ("utf.jsonl:2", "invalid-utf8"),
    ),
    Case("lone surrogate", _file("sur.jsonl", _line('{"id": "{id}", "text": "\\ud800"}')), 1, ("sur.jsonl:2",)),
    Case(
        "byte order mark + CRLF (valid)",
        _file("bom.jsonl", lambda ids: b"\xef\xbb\xbf" + _lines(ids).replace(b"\n", b"\r\n")),
        0,
        ("VALID",),
    ),
    Case(
        "huge unknown key (valid)",
        _file("key.jsonl", _line('{"id": "{id}", "' + "k" * 100_000 + '": 1}')),
        0,
        ("VALID", "unknown field"),
    ),
    # ids are exact
    Case(
        "upper-case id",
        _file("upper.jsonl", lambda ids: _line(json.dumps({"id": ids[1].upper()}))(ids)),
        1,
        ("upper.jsonl:2", "invalid-id"),
    ),
    Case(
        "full-width digits",
        _file("wide.jsonl", _line(json.dumps({"id": "\uff11" * 32}))),
        1,
        ("wide.jsonl:2", "invalid-id"),
    ),
    Case(
        "duplicate key overrides id",
        _file("dupkey.jsonl", _line('{"id": "{id}", "id": "zz"}')),
        1,
        ("dupkey.jsonl:2", "invalid-id"),
    ),
    # repeat is bounded by the budget
    Case(
        "repeat 2**63",
        _file("r63.jsonl", _line('{"id": "{id}", "repeat": 9223372036854775808}')),
        1,
        ("r63.jsonl:2", "repeat-over-budget"),
    ),
    Case(
        "repeat 2**63 - 1",
        _file("r62.jsonl", _line('{"id": "{id}", "repeat": 9223372036854775807}')),
        1,
        ("r62.jsonl:2", "repeat-over-budget"),
    ),
    Case(
        "repeat 4300+ digits",
        _file("rdig.jsonl", _line('{"id": "{id}", "repeat": ' + "9" * 5000 + "}")),
        1,
        ("rdig.jsonl:2", "malformed-json"),
    ),
    Case("repeat 1e400", _file("rinf.jsonl", _line('{"id": "{id}", "repeat": 1e400}')), 1, ("rinf.jsonl:2",)),
    Case("repeat NaN", _file("rnan.jsonl", _line('{"id": "{id}", "repeat": NaN}')), 1, ("rnan.jsonl:2",)),
    Case("repeat true", _file("rtrue.jsonl", _line('{"id": "{id}", "repeat": true}')), 1, ("rtrue.jsonl:2",)),
    Case(
        "repeat past the budget",
        _file("r100k.jsonl", _line('{"id": "{id}", "repeat": 100000}')),
        1,
        ("r100k.jsonl:2", "repeat-over-budget"),
    ),
    Case(
        "repeats sum past the budget",
        _file(
            "rsum.jsonl", lambda ids: "".join(json.dumps({"id": i, "repeat": 100}) + "\n" for i in ids[:30]).encode()
        ),
        1,
        ("repeats-over-budget",),
    ),
    Case("repeat 3 (valid)", _file("r3.jsonl", _line('{"id": "{id}", "repeat": 3}')), 0, ("VALID",)),
    # folders and links
    Case(
        "other extensions are reported",
        _dir({"a.jsonl": _lines, "part-1.jsonl.bz2": lambda ids: b"BZh9"}),
        0,
        ("VALID", "skipped-files", "part-1.jsonl.bz2"),
    ),
    Case(
        "dangling symlink",
        _dir({"a.jsonl": _lines, "gone.jsonl": "nowhere.jsonl"}),
        1,
        ("gone.jsonl", "unreadable-input"),
    ),
    Case(
        "looping symlink", _dir({"a.jsonl": _lines, "loop.jsonl": "loop.jsonl"}), 1, ("loop.jsonl", "unreadable-input")
    ),
    Case("folder symlink loop (valid)", _dir({"a.jsonl": _lines, "sub/up": ".."}), 0, ("VALID",)),
    Case("symlinked file (valid)", _dir({"real/a.jsonl": _lines, "b.jsonl": "real/a.jsonl"}), 0, ("duplicate-id",)),
    Case(
        "symlink to /dev/zero",
        _dir({"a.jsonl": _lines, "zero.jsonl": "/dev/zero"}),
        1,
        ("zero.jsonl", "not a regular file"),
    ),
    Case(
        "named pipe",
        lambda tmp, ids: (os.mkfifo(tmp / "pipe.jsonl"), tmp / "pipe.jsonl")[1],
        1,
        ("pipe.jsonl", "not a regular file"),
    ),
    # names that look like markup are printed as typed
    Case("markup in the path", _file("[/]x.jsonl", lambda ids: b'{"id": 5}\n'), 1, ("[/]x.jsonl:1", "wrong-type")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_reported_not_crashed(case: Case, ids: list[str], tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # long paths on one line
    path = case.build(tmp_path, ids)
    code = main(["validate", "--track", TRACK, str(path)])  # any exception other than a report fails the test
    out = " ".join(capsys.readouterr().out.split())
    assert code == case.code, out
    for text in case.shows:
        assert text in out, (text, out)
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "url, env",
    [
        ("s3://harness-no-such-bucket/x.jsonl", {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}),
        ("s3://harness-no-such-bucket/x.jsonl", {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                                                 "FSSPEC_S3_ENDPOINT_URL": "http://127.0.0.1:9"}),
        ("http://127.0.0.1:9/subset.jsonl", {}),
    ],
    ids=["s3 without credentials", "s3 without network", "unreachable http"],
)  # fmt: skip
def test_unreachable_stores_are_reported(url: str, env: dict[str, str], tmp_path: Path) -> None:
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "OMP_NUM_THREADS": "1", **env}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "harness", "validate", "--track", TRACK, url], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1, out
    assert url in out and "Traceback" not in out


def test_long_line_is_one_problem(ids: list[str], tmp_path: Path, capsys) -> None:
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"id": ids[0]}) + "\n" + json.dumps({"id": ids[1], "text": "x" * (8 << 20)}) + "\n")
    assert main(["validate", "--track", TRACK, str(path)]) == 1
    assert "long.jsonl:2 not-a-deletion" in " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------------------------------- submission fields


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--link", "javascript:alert(1)", "http:// or https://"),
        ("--link", "https://", "no host"),
        ("--link", "https://example.org/a b", "spaces"),
        ("--name", "evil\x1b[2J", "control character"),
        ("--name", "   ", "must not be empty"),
        ("--author", "abc\u202edcb", "bidirectional"),
        ("--description", "line\x00", "control character"),
        ("--name", "n" * 500, "at most"),
        ("--track", "[/]", "unknown track"),
    ],
)
def test_submission_fields_are_checked_before_any_work(option, value, says, tmp_path: Path, ids, capsys) -> None:
    subset = tmp_path / "s.jsonl"
    subset.write_bytes(_lines(ids))
    run_dir = tmp_path / "runs"
    code = main(["submit", "--track", TRACK, str(subset), option, value, "--run-dir", str(run_dir)])  # last wins
    err = capsys.readouterr().err
    assert code == 2 and says in " ".join(err.split())
    assert not run_dir.exists()  # refused before validation, let alone training


@pytest.mark.parametrize("multiline", [False, True])
def test_text_check_fast_path_refuses_exactly_what_the_rules_refuse(multiline: bool) -> None:
    """The one-regex pass of `text_problem` must let through exactly the characters its rules accept: every
    code point is checked against the rule (controls, separators, bidirectional controls, lone surrogates,
    noncharacters)."""
    import unicodedata

    from harness import fields

    nonchar = {*range(0xFDD0, 0xFDF0), *(p << 16 | low for p in range(17) for low in (0xFFFE, 0xFFFF))}
    assert len(nonchar) == 66 and {ord(c) for c in fields.NONCHARACTERS} == nonchar
    for code in range(0x110000):
        ch = chr(code)
        refused = ch in fields._BIDI or ch in "\u2028\u2029" or unicodedata.category(ch) in ("Cc", "Cs")
        refused = (refused or code in nonchar) and not (multiline and ch in "\n\r\t")
        assert fields.suspect(ch, multiline=multiline) == refused, f"U+{code:04X}"
        assert (fields.text_problem("description", f"a{ch}b", multiline=multiline) is None) != refused, f"U+{code:04X}"


def test_user_text_is_never_markup(capsys) -> None:
    from rich.console import Console

    from harness.display.submit import render_summary
    from harness.leaderboard.sample import synthetic_record
    from harness.submit.pipeline import SubmitResult

    record = synthetic_record(TRACK, 1, name="[/] [link=javascript:x]me[/link] [bold")
    render_summary(SubmitResult(record.entry_id, Path("runs/[/]"), record, (), "site[/]"), Console(width=200))
    out = capsys.readouterr().out
    assert "[/] [link=javascript:x]me[/link] [bold" in out and "runs/[/]" in out


def test_record_fields_are_exact() -> None:
    from harness.leaderboard.sample import synthetic_record
    from harness.records import Record, RecordError

    data = synthetic_record(TRACK, 2).to_data()
    for key, mutate in [
        ("subset.sha256", lambda d: d["subset"].update(sha256=d["subset"]["sha256"] + "\n")),
        ("tokenizer_sha256", lambda d: d.update(tokenizer_sha256=d["tokenizer_sha256"] + "\n")),
        ("track.sha256", lambda d: d["track"].update(sha256="A" * 64)),
        ("submission", lambda d: d["submission"].update(link="javascript:alert(1)")),
        ("submission", lambda d: d["submission"].update(name="a\u202eb")),
    ]:
        bad = json.loads(json.dumps(data))
        mutate(bad)
        with pytest.raises(RecordError, match="sha256|submission"):
            Record.from_data(bad, f"<{key}>")
    with pytest.raises(RecordError, match="nested too deeply"):
        Record.from_json("[" * 100_000, "<deep>")


# ------------------------------------------------------------------------------------------ writers' leftovers


def _dead_tag() -> str:
    """An owner tag of a process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return owner_tag().replace(f"~{os.getpid()}~", f"~{int(proc.stdout)}~")


def test_killed_writers_leftovers_are_cleaned(tmp_path: Path) -> None:
    from harness.leaderboard.build import build_site
    from harness.leaderboard.sample import synthetic_record
    from harness.records import ResultsStore

    record = synthetic_record(TRACK, 3)
    store = ResultsStore(str(tmp_path / "results"))
    folder = tmp_path / "results" / TRACK
    folder.mkdir(parents=True)
    orphan = folder / f".{record.entry_id}.{_dead_tag()}.tmp"
    live = folder / f".{record.entry_id}.{owner_tag()}.tmp"  # a writer still running (this process)
    orphan.write_text("{")
    live.write_text("{")
    store.add(record)
    assert not orphan.exists() and live.exists()
    half_built = tmp_path / f".site.build-{_dead_tag()}"
    (half_built / "assets").mkdir(parents=True)
    build_site([record], tmp_path / "site")
    assert not half_built.exists() and (tmp_path / "site" / "index.html").is_file()
    assert not list(tmp_path.glob(".site.*"))


def test_slurm_script_never_runs_a_path(tmp_path: Path) -> None:
    from harness.train.launch import write_slurm_script

    run = tmp_path / "run $(touch pwned) `touch pwned2` ';touch pwned3'"
    run.mkdir()
    script = write_slurm_script(run, nodes=2, nproc=4, module="harness.train.native", args=[str(run)])
    srun = next(line for line in script.read_text().splitlines() if line.startswith("srun "))
    shell = f"HEAD=node7; SLURM_JOB_ID=42; set -- {srun.removeprefix('srun ')}; printf '%s\\n' \"$@\""
    words = subprocess.run(["bash", "-c", shell], cwd=tmp_path, capture_output=True, text=True, check=True)
    args = words.stdout.splitlines()
    assert args[-1] == str(run) and "--rdzv-endpoint=node7:29500" in args and "--rdzv-id=42" in args
    assert not list(tmp_path.glob("pwned*"))
    with pytest.raises(Exception, match="control character"):
        bad = tmp_path / "a\nb"
        bad.mkdir()
        write_slurm_script(bad, nodes=1, nproc=1, module="m", args=[])


def test_truncated_training_log_is_repaired(tmp_path: Path) -> None:
    from harness.train.checkpoint import truncate_log

    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 2}\n{"step": 2, "loss": 1}\n{"step": 3, "lo')
    truncate_log(log, 0)
    assert log.read_text() == ""
    log.write_text('{"step": 1, "loss": 2}\n{"step": 2, "loss": 1}\n{"step": 3, "lo')
    truncate_log(log, 2)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2]


def test_reader_output_is_bounded_for_a_bomb() -> None:
    """A zstd bomb (a few kB that decode to 1 GB) costs time, not memory: output comes in bounded pieces."""
    from harness.io.reader import _Decoded

    cobj = zstandard.ZstdCompressor(level=3).compressobj()
    bomb = b"".join(cobj.compress(bytes(1 << 20)) for _ in range(1024)) + cobj.flush()
    stream = io.BufferedReader(_Decoded("bomb.jsonl.zst", io.BytesIO(bomb)), 1 << 20)
    first = stream.read(1 << 20)
    assert len(first) == 1 << 20 and len(stream.raw._pending) <= 64 << 20
