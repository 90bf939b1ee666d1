"""`--executor slurm` of `harness tokenize` and `harness score` on the real one-node Slurm cluster
(tests/slurm_cluster.py): the stages are dependent job arrays whose ids are printed and kept; a re-run while they
run submits nothing; `--wait` follows them and finishes with the local executor's bytes; a task cancelled (scancel)
or killed mid-stage is one clear message, and the re-run resumes without repeating finished tasks; a refused job and
a controller that is down are one message each."""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import time
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster
from test_tokenize import CONTEXT, PER_SHARD, SEED, SPEC, _documents, _run, _tree, _write_inputs
from tokenize_faults import FaultStep

import harness.data.staged_run as staged_run
from harness.cli import main
from harness.data.staged_run import tokenize_staged
from harness.errors import HarnessError
from harness.scores.run import ExecutorOptions
from harness.scores.slurm import read_chain

TESTS = Path(__file__).resolve().parent
SLURM = ("--executor", "slurm", "--slurm-partition", "debug")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _chain(folder: Path) -> dict[str, str]:
    return {j.stage: j.job.job_id for j in read_chain(folder)}


def _staged(inputs: list[str], out: Path, executor: ExecutorOptions, said: list[str]):
    return tokenize_staged(inputs, str(out), tokenizer_spec=SPEC, context=CONTEXT, seed=SEED,
                           shard_sequences=PER_SHARD, executor=executor, notify=said.append)  # fmt: skip


def _faults(monkeypatch: pytest.MonkeyPatch, tmp: Path, fault: str, at: tuple[str, int]) -> Path:
    """Every task runs through FaultStep (one `fault` at `at`), which the jobs import from tests/ (PYTHONPATH, which
    sbatch passes on); returns the file recording which tasks ran."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    step = functools.partial(FaultStep, fault=fault, at=at, marker=str(tmp / "fault-done"), record=str(tmp / "ran"))
    monkeypatch.setattr(staged_run, "StageStep", step)
    return tmp / "ran"


def _ran(record: Path) -> list[tuple[str, int]]:
    return sorted((s, int(r)) for s, r in (line.split() for line in record.read_text().splitlines() if line))


@pytest.mark.slow
def test_tokenize_command_on_slurm_matches_local(slurm: SlurmCluster, tmp_path, monkeypatch, capsys) -> None:
    from test_pools import use_small_pool

    docs = use_small_pool(tmp_path, monkeypatch)
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(json.dumps({"id": d["id"], "repeat": 1 + i % 3}) + "\n" for i, d in enumerate(docs)))
    base = ["tokenize", "--track", "debug", str(subset)]
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    out = tmp_path / "slurm"
    command = [*base, "--out", str(out), *SLURM, "--workers", "2"]
    capsys.readouterr()
    assert main(command) == 0
    said = _flat(capsys.readouterr().err)
    jobs = _chain(out / "_work")
    first, last = f"as slurm jobs {jobs['tokenize']} (tokenize: 1 task)", f"{jobs['write']} (write: 2 tasks)"
    assert list(jobs) == ["tokenize", "plan", "scatter", "sort", "write"]
    ids = ",".join(jobs.values())
    assert first in said and last in said, said
    assert f"squeue -j {ids}" in said and "re-run this command when they end" in said, said
    assert not (out / "manifest.jsonl").exists()

    assert main(command) == 0  # while they are queued or running: nothing submitted
    said = _flat(capsys.readouterr().err)
    assert "is already slurm jobs" in said and "not submitted again" in said and _chain(out / "_work") == jobs, said
    assert main([*command, "--wait"]) == 0  # follows them, then writes the manifest and stats
    said = _flat(capsys.readouterr().err)
    assert re.search(rf"{jobs['write']} \(write: 2 COMPLETED\)", said) and "submitted" not in said, said
    assert not slurm.active_jobs() and not (out / "_work").exists() and not (out / "_input").exists()
    slurm_tree, local_tree = _tree(out), _tree(tmp_path / "local")
    assert slurm_tree.keys() == local_tree.keys() and len(slurm_tree) > 2
    # The stats too, but for the fingerprint: it names the inputs, materialized under each output folder.
    slurm_stats, local_stats = ({k: v for k, v in json.loads(tree.pop("stats.json")).items() if k != "fingerprint"}
                                for tree in (slurm_tree, local_tree))  # fmt: skip
    assert slurm_tree == local_tree and slurm_stats == local_stats  # the shards and the manifest, byte for byte
    assert main(command) == 0 and "tokenized into" in capsys.readouterr().out  # finished: answers at once


@pytest.mark.slow
def test_a_task_cancelled_mid_stage_resumes_without_repeating_finished_tasks(
    slurm: SlurmCluster, tmp_path, monkeypatch
) -> None:
    inputs = _write_inputs(tmp_path / "in", _documents())
    reference = _run(inputs, tmp_path / "ref")
    record = _faults(monkeypatch, tmp_path, "hang", ("scatter", 1))
    out, said = tmp_path / "o", []
    assert _staged(inputs, out, ExecutorOptions("slurm", 1, slurm_partition="debug"), said) is None
    deadline = time.monotonic() + 120
    while not (tmp_path / "fault-done").exists():  # scatter's task 1 is running (0 is done, 2 waits: one at a time)
        assert time.monotonic() < deadline, "the scatter stage never started"
        time.sleep(0.1)
    scatter = _chain(out / "_work")["scatter"]
    slurm.run("scancel", scatter)
    # Under load Slurm takes a moment to end a cancelled array; a re-run before that follows the dying jobs and
    # reports the cancellation instead (also right, but not what this test is about).
    deadline = time.monotonic() + 60
    while any(job.split("_")[0] == scatter for job in slurm.active_jobs()):
        assert time.monotonic() < deadline, "the cancelled scatter job never ended"
        time.sleep(0.2)
    said.clear()
    assert _staged(inputs, out, ExecutorOptions("slurm", 1, slurm_partition="debug", wait=True), said) == reference
    assert _tree(out) == _tree(tmp_path / "ref") and not slurm.active_jobs()
    text = _flat(" ".join(said))
    assert f"slurm job {scatter} ended CANCELLED" in text and "(scatter stage); these jobs resume" in text, text
    assert "(scatter: 2 tasks)" in text and "(tokenize:" not in text.split("submitted")[1], text
    ran = _ran(record)  # every task once, but scatter 1, cancelled while it ran
    assert ran == sorted([*((s, r) for s in ("tokenize", "scatter") for r in range(3)), ("plan", 0), ("scatter", 1),
                          ("sort", 0), ("write", 0)])  # fmt: skip


@pytest.mark.slow
def test_a_killed_task_is_one_message_and_the_rerun_resumes(slurm: SlurmCluster, tmp_path, monkeypatch) -> None:
    inputs = _write_inputs(tmp_path / "in", _documents())
    reference = _run(inputs, tmp_path / "ref")
    record = _faults(monkeypatch, tmp_path, "kill", ("tokenize", 1))  # SIGKILL, as the OOM killer would
    out, said = tmp_path / "o", []
    executor = ExecutorOptions("slurm", 3, slurm_partition="debug", wait=True)
    message = r"tokenize stage \(1 of 3 tasks unfinished\): slurm job \d+ ended FAILED \(1 of its 3 tasks\).*re-run"
    with pytest.raises(HarnessError, match=message):
        _staged(inputs, out, executor, said)
    assert not slurm.active_jobs()  # the later stages, which waited for it, are cancelled
    assert _staged(inputs, out, executor, said) == reference and _tree(out) == _tree(tmp_path / "ref")
    assert _ran(record).count(("tokenize", 0)) == 1 and _ran(record).count(("tokenize", 1)) == 2


def test_a_refused_job_or_a_controller_that_is_down_is_one_message(slurm: SlurmCluster, tmp_path, capsys) -> None:
    inputs = _write_inputs(tmp_path / "in", _documents())
    refused = r"Slurm refused tokenize\+shuffle .*\(tokenize stage\).*Memory spec.*less memory than asked \(--slurm-mem"
    with pytest.raises(HarnessError, match=refused):
        _staged(inputs, tmp_path / "o", ExecutorOptions("slurm", 1, slurm_mem="64G"), [])
    assert read_chain(tmp_path / "o" / "_work") == [] and not slurm.active_jobs()
    down = tmp_path / "down.conf"
    text = slurm.conf.read_text()
    port = next(line for line in text.splitlines() if line.startswith("SlurmctldPort="))
    down.write_text(text.replace(port, "SlurmctldPort=1") + "MessageTimeout=2\n")
    os.environ["SLURM_CONF"] = str(down)
    try:
        code = main(["score", str(inputs[0]), "--scorer", "compression", "--out", str(tmp_path / "s"), *SLURM])
    finally:
        os.environ["SLURM_CONF"] = str(slurm.conf)
    err = _flat(capsys.readouterr().err)
    assert code == 1 and "the Slurm controller is not answering" in err and "Traceback" not in err, err


def test_no_sbatch_on_path_is_one_clear_message(tmp_path, monkeypatch) -> None:
    inputs = _write_inputs(tmp_path / "in", _documents())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessError, match=r"`sbatch` is not on PATH.*use --executor local or ray"):
        _staged(inputs, tmp_path / "o", ExecutorOptions("slurm", 1), [])


@pytest.mark.slow
def test_score_on_slurm_writes_the_local_files(slurm: SlurmCluster, tmp_path, capsys) -> None:
    source = tmp_path / "docs"
    source.mkdir()
    for s in range(3):
        lines = [json.dumps({"id": f"{s}-{i}", "text": f"Doc {i} of shard {s}. " * (1 + i % 4)}) for i in range(40)]
        (source / f"part-{s}.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    base = ["score", str(source), "--scorer", "compression", "--out"]
    assert main([*base, str(tmp_path / "local")]) == 0
    assert main([*base, str(tmp_path / "slurm"), *SLURM, "--workers", "2", "--wait"]) == 0
    said = _flat(capsys.readouterr().err)
    (job,) = _chain(tmp_path / "slurm" / "_logs").values()
    assert f"as slurm jobs {job} (score: 3 tasks)" in said and f"{job} (score: 3 COMPLETED)" in said, said
    parts = {p.name: p.read_bytes() for p in sorted((tmp_path / "slurm").glob("part-*.parquet"))}
    assert len(parts) == 3 and parts == {p.name: p.read_bytes() for p in sorted((tmp_path / "local").glob("part-*"))}
    assert json.loads((tmp_path / "slurm" / "manifest.json").read_text())["rows"] == 120
