"""Test-wide settings: nothing waits on the network; generated data goes to a shared cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_cluster import slurm_cluster  # noqa: F401  (the session's one-node Slurm cluster: the fixture `slurm`)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# One cache per machine for generated data (the sandbox pool takes seconds to build; tests share it).
os.environ.setdefault("HARNESS_HOME", str(Path(tempfile.gettempdir()) / "harness-test-home"))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address (HOST:PORT) of a real local Ray cluster started once per session (tests/ray_cluster.py)."""
    from ray_cluster import start_cluster

    yield from start_cluster()
