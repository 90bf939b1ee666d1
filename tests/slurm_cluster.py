"""A real one-node Slurm cluster on this machine for the tests (Debian's slurm-wlm and munge).

The fixture `slurm` (session scope; import `slurm_cluster` into a test module) writes a minimal slurm.conf and a
fresh munge key into a temporary folder, starts munged, slurmctld and slurmd in the foreground as children of the
test process (no cgroups: proctrack/linuxproc, task/none), points SLURM_CONF at it, waits until `sinfo` shows the
node idle, and stops everything afterwards (cancelling any job still queued). Without the binaries or without root
it skips with one reason; with both, a cluster that does not come up is a failure that shows the daemons' logs.
`scripts/install-slurm.sh` installs the packages (`.ci/run` calls it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "scontrol", "srun")


@dataclass(frozen=True)
class SlurmCluster:
    """A running one-node cluster."""

    conf: Path
    """Its slurm.conf (SLURM_CONF points here while the session runs)."""
    root: Path
    """The folder holding its state, spool, logs and munge socket."""
    node: str
    """The node's name (this machine's short host name)."""

    def env(self) -> dict[str, str]:
        """The environment of a process that talks to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        return subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=120, check=check)

    def active_jobs(self) -> list[str]:
        return self.run("squeue", "-h", "-o", "%i").stdout.split()

    def logs(self) -> str:
        """The tails of the daemons' logs (for a failure message)."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            text = path.read_text(errors="replace") if path.is_file() else "(none)"
            parts.append(f"--- {name}\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(root: Path, node: str, ctld_port: int, slurmd_port: int) -> Path:
    """A minimal slurm.conf for one node with 2 CPUs, everything under `root`."""
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=harness-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root / "munge.sock"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "slurmctld.log"}
SlurmdLogFile={root / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
MaxArraySize=1001
EnforcePartLimits=ALL
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


def _why_not() -> str | None:
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).is_file()]
    if missing:
        return (f"no Slurm on this machine ({', '.join(missing)} missing): install it with "
                "`sudo scripts/install-slurm.sh` (Debian: slurm-wlm and munge)")  # fmt: skip
    if os.geteuid() != 0:
        return "a one-node Slurm cluster needs root (slurmd runs jobs as their users); run the tests as root"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@pytest.fixture(scope="session", name="slurm")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    why = _why_not()
    if why:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    root.chmod(0o700)
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    node = socket.gethostname().split(".")[0]
    conf = write_conf(root, node, _free_port(), _free_port())
    cluster = SlurmCluster(conf, root, node)
    env = cluster.env()
    daemons: list[subprocess.Popen[bytes]] = []
    previous = os.environ.get("SLURM_CONF")
    try:
        munge = [_binary("munged"), "-F", "--force", f"--socket={root / 'munge.sock'}", f"--key-file={key}",
                 f"--pid-file={root / 'munged.pid'}", f"--log-file={root / 'munged.log'}",
                 f"--seed-file={root / 'munged.seed'}"]  # fmt: skip
        daemons.append(subprocess.Popen(munge, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: (root / "munge.sock").exists(), 20, "munged never opened its socket", cluster)
        for daemon in ("slurmctld", "slurmd"):
            cmd = [_binary(daemon), "-D", "-f", str(conf)] + (["-i"] if daemon == "slurmctld" else [])
            log = (root / f"{daemon}.stderr").open("wb")
            daemons.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait(lambda: _node_state(cluster) == "idle", 60, "the node never became idle", cluster)
        os.environ["SLURM_CONF"] = str(conf)
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        _stop(cluster, daemons)


def _node_state(cluster: SlurmCluster) -> str:
    try:
        out = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _wait(ready, seconds: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"the test Slurm cluster did not start: {what}\n{cluster.logs()}")
        time.sleep(0.2)


def _stop(cluster: SlurmCluster, daemons: list[subprocess.Popen[bytes]]) -> None:
    """Cancel what is left, then stop slurmd, slurmctld and munged (in that order) and reap them."""
    if daemons and len(daemons) == 3 and daemons[-1].poll() is None:
        try:
            cluster.run("scancel", "--full", "--partition=debug", check=False)
            deadline = time.monotonic() + 30
            while cluster.active_jobs() and time.monotonic() < deadline:
                time.sleep(0.5)
        except (subprocess.SubprocessError, OSError):
            pass
    for proc in reversed(daemons):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
