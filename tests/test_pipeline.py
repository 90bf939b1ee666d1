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


def random_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random-sample example's subset for the debug track."""
    out = tmp_path_factory.mktemp("subset") / "random.jsonl"
    subprocess.run(
        [sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--out", str(out)], check=True
    )
    return out


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_subset(tmp_path_factory)


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
    for run in record["replicates"]["runs"]:
        run.pop("wall_time_s")
    return record


@pytest.mark.slow
def test_submit_end_to_end(finished: Path) -> None:
    record = _record(finished)
    assert record["track"]["name"] == "debug" and record["evaluation"]["primary_aggregate"] == "Sandbox_v1"
    assert set(record["evaluation"]["tasks"]) == {"fact_cloze", "next_sentence", "last_word", "heldout"}
    tasks = record["evaluation"]["tasks"]  # continuous metrics beside accuracy, in the record and its replicate runs
    assert {"norm_correct_prob", "margin_per_token", "bits_per_byte"} <= set(tasks["fact_cloze"]["continuous"])
    assert "correct_prob" in tasks["last_word"]["continuous"] and not tasks["heldout"]["continuous"]
    assert record["replicates"]["runs"][0]["continuous"]["next_sentence"] == tasks["next_sentence"]["continuous"]
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


def _wait_for(proc: subprocess.Popen, cwd: Path, pattern: str) -> Path:
    deadline = time.monotonic() + 300
    while not (found := list((cwd / "runs").glob(pattern))):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"never saw {pattern}"
        time.sleep(0.02)
    return found[0]


def _dead_owner_tag() -> str:
    from harness.io.leftovers import owner_tag

    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    return owner_tag().replace(f"~{os.getpid()}~", f"~{pid}~")


@pytest.mark.slow
def test_killed_at_random_instants_resumes_to_the_same_record(tmp_path: Path, subset: Path, finished: Path) -> None:
    """kill -9 before the first checkpoint (with a row torn mid-write), then mid-checkpoint (a half-written
    checkpoint left behind), then finish: the record is the uninterrupted one's and nothing temporary is left."""
    import random

    rng = random.Random(os.environ.get("HARNESS_KILL_SEED", "15"))
    proc = _harness("submit", "--track", "debug", str(subset), "--name", "debug random", cwd=tmp_path)
    log = _wait_for(proc, tmp_path, "debug/*/train/train_log.jsonl")
    time.sleep(rng.uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    train = log.parent
    assert not (train / "checkpoints" / "stats_1.pt").exists(), "the kill came after the first checkpoint"
    with open(log, "a") as fh:  # what a kill in the middle of writing a row leaves: a torn last line
        fh.write('{"step": 3, "loss": 7.1')

    proc = _harness("submit", "--track", "debug", str(subset), "--name", "debug random", cwd=tmp_path)
    _wait_for(proc, tmp_path, "debug/*/train/checkpoints/stats_1.pt")
    time.sleep(rng.uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = train / "checkpoints"
    if not (ckpt / "stats_2.pt").exists():  # what a kill inside the second checkpoint's writes leaves
        (ckpt / "epoch_2.pt").write_bytes((ckpt / "epoch_1.pt").read_bytes())
        (ckpt / f".optimizer_2.pt.{_dead_owner_tag()}.tmp").write_bytes(b"PK\x03\x04 half a zip")
    code, out = _submit(tmp_path, subset)
    assert code == 0, out
    assert _comparable(_record(tmp_path)) == _comparable(_record(finished))
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))
    left = [p for p in tmp_path.rglob("*") if ".tmp" in p.name or "~" in p.name or p.name == "_work"]
    assert not left


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
        "--replicates", "--no-sbatch", "--wait", "--checkpoint-scores",
    }  # fmt: skip
    assert command_options("demo") == {"--track", "--dir", "--workers"}
