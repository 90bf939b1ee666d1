"""A real one-node Ray cluster for the tests of every `--executor ray`: `ray start --head` on 127.0.0.1 with 2 CPUs and
a small object store, in its own temporary folder, which commands join by address as a user's would.

The cluster's workers import the harness (and the test helpers) from this checkout through PYTHONPATH. It is
stopped by signalling the session `ray start --block` was started in (its own: the cluster's processes only), never
`ray stop` (which would end every Ray cluster on the machine).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "")


def start_cluster() -> Iterator[str]:
    """Start the cluster, yield its address (HOST:PORT), stop it. Its folder is short (/tmp/rayXXXX): Ray's socket
    paths under it must fit the 107 bytes of a Unix socket name."""
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed: `./scripts/setup.sh --dev` installs it (the dev extra)")
    exe = _ray_executable()
    if not exe:
        pytest.skip("the `ray` command is not on PATH beside this Python; reinstall with `./scripts/setup.sh --dev`")
    port = _free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), *filter(None, [env.get("PYTHONPATH")])])
    # Token authentication off on both sides, whatever ~/.ray/auth_token this machine holds (with a token file Ray
    # turns it on for `ray start` but not for a driver that does not set RAY_AUTH_MODE=token).
    env.update(
        RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false"
    )
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    command = [
        exe, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}",
        f"--object-store-memory={200 * 1000 * 1000}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError("`ray start --head` ended early:\n" + "".join(seen[-30:]))
            seen.append(line)
            if "Ray runtime started" in line:
                break
    except queue.Empty:
        _stop(proc)
        raise RuntimeError(f"`ray start --head` not ready in {START_TIMEOUT_S} s:\n" + "".join(seen[-30:])) from None
    address = f"127.0.0.1:{port}"
    try:
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


def _stop(proc: subprocess.Popen[str]) -> None:
    """End the cluster: every process of the session `ray start` was started in (its own), SIGTERM then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _group_alive(proc.pid):
            proc.poll()
            time.sleep(0.2)
    proc.poll()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
