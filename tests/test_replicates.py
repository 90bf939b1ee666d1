"""`harness submit --replicates K` on the debug track: every replicate is recorded with the spread, each replicate
is a resumable stage (kill -9 in the middle of replicate 2, resume: the same record apart from timings)."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from test_pipeline import _comparable, _harness, _record, _submit, random_subset

from harness.cli import main


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_subset(tmp_path_factory)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, subset: Path) -> Path:
    cwd = tmp_path_factory.mktemp("replicated")
    code, out = _submit(cwd, subset, "--replicates", "2")
    assert code == 0, out
    return cwd


@pytest.mark.slow
def test_every_replicate_is_recorded_with_the_spread(finished: Path) -> None:
    record = _record(finished)
    reps = record["replicates"]
    assert reps["seeds"] == [124, 125] and [r["seed"] for r in reps["runs"]] == [124, 125]
    run = finished / "runs" / "debug" / record["entry_id"]
    for stage in ("tokenize", "train", "evaluate"):
        assert (run / "replicate-125" / stage / "_COMPLETE.json").is_file(), stage
    assert json.loads((run / "replicate-125" / "tokenize" / "_COMPLETE.json").read_text())["outputs"]["seed"] == 125
    first, second = reps["runs"]
    assert first["aggregates"]["Sandbox_v1"] == record["evaluation"]["aggregates"]["Sandbox_v1"]["value"]
    assert first["final_loss"] != second["final_loss"]  # another initialisation and data order
    stat = reps["aggregates"]["Sandbox_v1"]
    values = [r["aggregates"]["Sandbox_v1"] for r in reps["runs"]]
    assert stat["n"] == 2 and stat["mean"] == pytest.approx(sum(values) / 2)
    assert stat["std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    assert stat["low"] < stat["mean"] < stat["high"] and "2 replicates" in reps["note"]
    assert set(first["examples"]) == {"fact_cloze", "next_sentence", "last_word", "heldout"}
    assert first["heldout_lm"]["loss"] == record["evaluation"]["heldout_lm"]["loss"] != second["heldout_lm"]["loss"]
    assert record["contamination"]["suite"] == "sandbox" and record["contamination"]["ngram"] == 13
    evaluation = json.loads((run / "evaluate" / "eval.json").read_text())
    assert evaluation["aggregates"]["Sandbox_v1"]["interval"]["resamples"] == 1000


@pytest.mark.slow
def test_killed_in_replicate_2_resumes_to_the_same_record(tmp_path: Path, subset: Path, finished: Path) -> None:
    # Replicate 1 as finished (copied), then a submit killed while replicate 2 trains, then the same command again.
    shutil.copytree(finished / "runs", tmp_path / "runs")
    (entry,) = (p for p in (tmp_path / "runs" / "debug").iterdir() if not p.name.startswith("_"))
    shutil.rmtree(entry / "replicate-125")
    shutil.rmtree(entry / "record")
    proc = _harness("submit", "--track", "debug", str(subset), "--name", "debug random", "--replicates", "2",
                    cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (entry / "replicate-125" / "train" / "checkpoints" / "stats_1.pt").is_file():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "replicate 2 never wrote its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (entry / "replicate-125" / "train" / "_COMPLETE.json").exists()
    code, out = _submit(tmp_path, subset, "--replicates", "2")
    assert code == 0, out
    assert "replicate-125/tokenize" in " ".join(out.split())  # finished stages of replicate 2 were reused
    assert _comparable(_record(tmp_path)) == _comparable(_record(finished))


def test_more_replicates_than_the_track_names_is_one_clear_message(tmp_path: Path, capsys) -> None:
    subset = tmp_path / "s.jsonl"
    subset.write_text('{"id": "00000000000000000000000000000000"}\n')
    assert main(["submit", "--track", "debug", str(subset), "--replicates", "4", "--run-dir", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "track debug names 3 replicate seed(s) (124, 125, 126)" in err and "at most 3" in err
    assert not list(tmp_path.rglob("_COMPLETE.json"))
