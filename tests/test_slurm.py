"""`--launcher slurm` on a real one-node Slurm cluster (tests/slurm_cluster.py): `harness submit` hands the entry to
a job that writes the record, scancel mid-training then a re-run resumes, a sweep runs as a job array, two job
steps on the one node meet in torchrun's rendezvous, and a controller that is down, a refused job, a node lost
mid-training or a machine without sbatch each give one clear message (and a re-run resumes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster  # the `slurm` fixture comes from conftest.py

from harness.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _harness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = _harness(*args, cwd=cwd, env=env)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, " ".join(out.split())


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("subset") / "random.jsonl"
    subprocess.run([sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--out", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, subset: Path) -> Path:
    out = tmp_path_factory.mktemp("shards")
    assert main(["tokenize", str(subset), "--track", "debug", "--out", str(out)]) == 0
    return out


def test_the_cluster_runs_two_tasks(slurm: SlurmCluster) -> None:
    assert slurm.run("srun", "--ntasks=2", "hostname").stdout.split() == [slurm.node] * 2


@pytest.mark.slow
def test_submit_runs_in_a_job_and_resumes_after_scancel(slurm: SlurmCluster, subset: Path, tmp_path: Path) -> None:
    submit = ("submit", "--track", "debug", str(subset), "--name", "debug random", "--launcher", "slurm",
              "--device", "cpu")  # fmt: skip
    follower = _harness(*submit, "--wait", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob("runs/debug/*/train/checkpoints/stats_1.pt")):
            assert follower.poll() is None, follower.communicate()[0]
            assert time.monotonic() < deadline, "training never wrote its first checkpoint"
            time.sleep(0.1)
        (run,) = tmp_path.glob("runs/debug/debug-*")
        first = json.loads((run / "slurm-job.json").read_text())["job_id"]
        tokenized = (run / "tokenize" / "_COMPLETE.json").stat().st_mtime_ns
        slurm.run("scancel", first)
        out = " ".join(follower.communicate(timeout=120)[0].split())
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 1, out
    assert f"submitted entry {run.name}'s stages as slurm job {first}" in out and f"squeue -j {first}" in out
    assert f"slurm job {first} ended CANCELLED" in out and "re-running the same command submits again" in out
    assert not (run / "train" / "_COMPLETE.json").exists()

    code, out = _run(*submit, cwd=tmp_path)  # a re-run submits again; the new job resumes
    second = json.loads((run / "slurm-job.json").read_text())["job_id"]
    assert code == 0 and second != first, out
    assert f"as slurm job {second} (slurm job {first} ended CANCELLED" in out and "re-run this command" in out
    code, out = _run(*submit, cwd=tmp_path)  # while it is queued or running, nothing is submitted twice
    assert code == 0 and f"already slurm job {second}" in out and "not submitted again" in out, out
    code, out = _run(*submit, "--wait", "--json", cwd=tmp_path)
    assert code == 0, out
    assert json.loads((run / "slurm-job.json").read_text())["job_id"] == second
    assert (run / "tokenize" / "_COMPLETE.json").stat().st_mtime_ns == tokenized  # finished stages not redone
    trained = json.loads((run / "train" / "_COMPLETE.json").read_text())["outputs"]
    assert trained["resumed_from"] and trained["resumed_from"].endswith("epoch_1.pt")
    (record,) = (tmp_path / "results" / "debug").glob("*.json")
    assert json.loads(record.read_text())["entry_id"] == run.name
    assert slurm.active_jobs() == []


@pytest.mark.slow
def test_sweep_runs_as_a_job_array(slurm: SlurmCluster, tmp_path: Path) -> None:
    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"id": pool.id_of_row(r)}) + "\n" for r in range(300)))
    (tmp_path / "exp.toml").write_text('name = "exp"\ndescription = "d"\ntrack = "debug"\n[base]\n'
                                       'subset = "base.jsonl"\n[factors]\nsize = [1.0, 0.5]\n')  # fmt: skip
    code, out = _run("sweep", "run", "exp.toml", "--out", "sw", "--launcher", "slurm", "--device", "cpu", "--wait",
                     cwd=tmp_path)  # fmt: skip
    job = json.loads((tmp_path / "sw" / "slurm-job.json").read_text())["job_id"]
    assert code == 0, out
    assert f"submitted 2 sweep cell(s) as slurm job {job}" in out and "2/2 cells finished" in out
    assert "#SBATCH --array=0-1" in (tmp_path / "sw" / "sweep.sbatch").read_text()
    assert len(list((tmp_path / "sw" / "logs").glob(f"slurm-{job}_*.out"))) == 2
    assert len(list((tmp_path / "sw" / "results" / "debug").glob("*.json"))) == 2
    code, out = _run("sweep", "run", "exp.toml", "--out", "sw", "--launcher", "slurm", "--device", "cpu", cwd=tmp_path)
    assert code == 0 and "every cell is finished" in out, out


@pytest.mark.slow
def test_two_job_steps_meet_in_torchruns_rendezvous(slurm: SlurmCluster, shards: Path, tmp_path: Path) -> None:
    """The two-node script, with its two tasks placed on the one node: each step is a torchrun agent with
    --nnodes=2 meeting at the allocation's first host; training runs with a world of 2 and completes."""
    train = ("train", "--track", "debug", "--data", str(shards), "--out", str(tmp_path / "run"),
             "--launcher", "slurm", "--nodes", "2", "--device", "cpu")  # fmt: skip
    code, out = _run(*train, cwd=tmp_path)  # the cluster has one node: refused, with what to change
    assert code == 1 and "Slurm refused training" in out and "fewer nodes" in out, out
    assert _run(*train, "--no-sbatch", cwd=tmp_path)[0] == 0
    script = tmp_path / "run" / "train.sbatch"
    assert "#SBATCH --nodes=2" in script.read_text() and "--nnodes=2" in script.read_text()
    env = {**slurm.env(), "LOGLEVEL": "INFO"}  # torchrun's agents then log their rendezvous
    cmd = ["sbatch", "--wait", "--nodes=1", "--ntasks-per-node=2", str(script)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    (log,) = (tmp_path / "run").glob("slurm-*.out")
    assert done.returncode == 0, done.stderr + log.read_text()
    text = log.read_text()  # each agent: "Rendezvous complete ... global_ranks=[r] ... global_world_sizes=[2]"
    assert sorted(re.findall(r"global_ranks=\[(\d+)\]", text)) == ["0", "1"], text
    assert re.findall(r"global_world_sizes=\[(\d+)\]", text) == ["2", "2"], text
    code, out = _run(*train, "--json", cwd=tmp_path)  # the re-run collects the result
    assert code == 0 and json.loads(out)["steps"] == 64, out


@pytest.mark.slow
def test_a_node_lost_mid_training_is_one_clear_message_and_a_rerun_resumes(
    slurm: SlurmCluster, shards: Path, tmp_path: Path
) -> None:
    from harness.train import read_result

    run = tmp_path / "run"
    train = ("train", "--track", "debug", "--data", str(shards), "--out", str(run), "--launcher",
             "slurm", "--device", "cpu", "--wait")  # fmt: skip
    env = {**os.environ, "SBATCH_NO_REQUEUE": "1"}  # else Slurm requeues the job itself, which then resumes alike
    follower = _harness(*train, cwd=tmp_path, env=env)
    node = f"nodename={slurm.node}"
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoints" / "stats_1.pt").exists():
            assert follower.poll() is None, follower.communicate()[0]
            assert time.monotonic() < deadline, "training never wrote its first checkpoint"
            time.sleep(0.1)
        first = json.loads((run / "slurm-job.json").read_text())["job_id"]
        slurm.run("scontrol", "update", node, "state=down", "reason=lost in a test")
        out = " ".join(follower.communicate(timeout=120)[0].split())
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        slurm.run("scontrol", "update", node, "state=resume", check=False)  # or back already (ReturnToService=2)
    assert follower.returncode == 1, out
    assert f"slurm job {first} ended NODE_FAIL: its node was lost" in out and "Traceback" not in out
    assert "re-running the same command submits again and resumes" in out and read_result(run) is None
    deadline = time.monotonic() + 60
    while slurm.run("sinfo", "-h", "-N", "-o", "%T").stdout.strip() != "idle":
        assert time.monotonic() < deadline, "the node never came back"
        time.sleep(0.5)
    code, out = _run(*train, cwd=tmp_path, env=env)
    assert code == 0 and f"(slurm job {first} ended NODE_FAIL" in out and "trained debug: 64 steps" in out, out
    result = read_result(run)
    assert result is not None and result.resumed_from and result.resumed_from.endswith("epoch_1.pt")


def test_a_controller_that_is_down_or_a_refused_job_is_one_clear_message(
    slurm: SlurmCluster, subset: Path, tmp_path: Path
) -> None:
    submit = ("submit", "--track", "debug", str(subset), "--launcher", "slurm")
    code, out = _run(*submit, cwd=tmp_path)  # GPUs asked of a cluster without any
    assert code == 1 and "Slurm refused entry" in out and "pass --device cpu" in out and "Traceback" not in out, out
    down = tmp_path / "down.conf"
    text = slurm.conf.read_text()
    port = next(line for line in text.splitlines() if line.startswith("SlurmctldPort="))
    down.write_text(text.replace(port, "SlurmctldPort=1") + "MessageTimeout=2\n")
    code, out = _run(*submit, "--device", "cpu", cwd=tmp_path, env={**os.environ, "SLURM_CONF": str(down)})
    assert code == 1 and "the Slurm controller is not answering" in out and "sinfo" in out, out
    assert "Traceback" not in out
    (run,) = tmp_path.glob("runs/debug/debug-*")
    assert (run / "validate" / "report.json").is_file() and not (run / "slurm-job.json").exists()


def test_no_sbatch_on_path_is_one_clear_message(subset: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    code, out = _run("submit", "--track", "debug", str(subset), "--launcher", "slurm", cwd=tmp_path, env=env)
    assert code == 1 and "`sbatch` is not on PATH" in out and "--no-sbatch" in out and "Traceback" not in out, out


def test_the_jobs_command_line_is_the_submission_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option of `harness submit` reaches the job (a new option that does not fails here), with
    `--launcher local`; the script runs it in the submitting folder and never runs a piece of user text."""
    import dataclasses

    from harness.cli import build_parser
    from harness.commands.submit import options_from_args
    from harness.submit.options import SubmitOptions
    from harness.submit.slurm import job_argv, write_job_script
    from harness.submit.stages import Submission
    from harness.tracks import get_track

    opts = SubmitOptions(
        track="debug", subset="my subset.jsonl", name="n $(touch pwned)", authors=("a", "b"), description="d`x`",
        link="https://x.org/'q'", run_dir=str(tmp_path / "runs"), results=str(tmp_path / "res"),
        leaderboard=str(tmp_path / "site"), trainer="open_lm", nproc=2, launcher="slurm", workers=3, device="cpu",
        skip_evaluate=True, replicates=2, slurm_wait=True,
    )  # fmt: skip
    argv = job_argv(opts)
    assert argv[:3] == [sys.executable, "-m", "harness"]
    parsed = options_from_args(build_parser().parse_args(argv[3:]))
    assert parsed == dataclasses.replace(opts, launcher="local", slurm_wait=False)
    sub = Submission(opts, get_track("debug"), tmp_path / "runs" / "debug" / "e", "e")
    sub.run_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    script = write_job_script(sub).read_text()
    assert f'#SBATCH --chdir="{tmp_path}"' in script and "#SBATCH --cpus-per-task=2" in script
    line = next(x for x in script.splitlines() if x.startswith("exec "))
    words = subprocess.run(["bash", "-c", f"set -- {line.removeprefix('exec ')}; printf '%s\\n' \"$@\""],
                           cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
    assert words.stdout.splitlines() == argv and not list(tmp_path.glob("pwned*"))
