"""`harness submit` end to end on the debug track: a full run, skip on re-run, kill -9 + resume, invalid input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import command_options
from harness.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _harness(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _submit(cwd: Path, subset: Path, *extra: str) -> tuple[int, str]:
    proc = _harness("submit", "--track", "debug", str(subset), "--name", "debug random", *extra, cwd=cwd)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("subset") / "random.jsonl"
    subprocess.run(
        [sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--out", str(out)], check=True
    )
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, subset: Path) -> Path:
    """One uninterrupted debug submit (with the leaderboard)."""
    cwd = tmp_path_factory.mktemp("full")
    code, out = _submit(cwd, subset, "--leaderboard", "site", "--json")
    assert code == 0, out
    return cwd


def _record(cwd: Path) -> dict:
    (path,) = (cwd / "results" / "debug").glob("*.json")
    return json.loads(path.read_text())


def _comparable(record: dict) -> dict:
    """A record without what legitimately changes between runs: times and the creation date."""
    record = json.loads(json.dumps(record))
    record.pop("created_at")
    record["training"].pop("wall_time_s")
    return record


@pytest.mark.slow
def test_submit_end_to_end(finished: Path) -> None:
    record = _record(finished)
    assert record["track"]["name"] == "debug" and record["evaluation"]["primary_aggregate"] == "Sandbox_v1"
    assert set(record["evaluation"]["tasks"]) == {"fact_cloze", "next_sentence", "last_word", "heldout"}
    assert record["training"]["tokens_seen"] >= 131_072 - 16 * 128 and record["training"]["curve"]
    run = finished / "runs" / "debug" / record["entry_id"]
    for stage in ("validate", "tokenize", "train", "evaluate", "record"):
        assert (run / stage / "_COMPLETE.json").is_file(), stage
    assert (run / "train" / "checkpoints" / "epoch_2.pt").is_file()
    assert (finished / "site" / "index.html").is_file()


@pytest.mark.slow
def test_second_submit_skips_every_stage(finished: Path, subset: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in (finished / "runs").rglob("_COMPLETE.json")}
    started = time.monotonic()
    code, out = _submit(finished, subset)
    assert code == 0, out
    assert "Reused finished stages: validate, tokenize, train, evaluate, record" in " ".join(out.split())
    assert {p: p.stat().st_mtime_ns for p in (finished / "runs").rglob("_COMPLETE.json")} == before
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_killed_during_training_resumes_to_the_same_record(tmp_path: Path, subset: Path, finished: Path) -> None:
    proc = _harness("submit", "--track", "debug", str(subset), "--name", "debug random", cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "runs").glob("debug/*/train/checkpoints/stats_1.pt")):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "training never wrote its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "runs").glob("debug/*/train/_COMPLETE.json"))
    code, out = _submit(tmp_path, subset)
    assert code == 0, out
    assert _comparable(_record(tmp_path)) == _comparable(_record(finished))


def test_invalid_subset_stops_before_any_work(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "00000000000000000000000000000000"}\n{"id": \n')
    os.chdir(tmp_path)
    assert main(["submit", "--track", "debug", str(bad)]) == 1
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("_COMPLETE.json"))


def test_submit_options_pinned() -> None:
    assert command_options("submit") == {
        "subset", "--track", "--scale", "--name", "--author", "--description", "--link", "--run-dir", "--results",
        "--leaderboard", "--trainer", "--nproc", "--launcher", "--workers", "--device", "--skip-evaluate", "--json",
    }  # fmt: skip
    assert command_options("demo") == {"--track", "--dir", "--workers"}
