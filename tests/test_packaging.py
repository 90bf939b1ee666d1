"""The installed wheel carries the data folders, and the package finds them there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_data_folders(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)], check=True
    )
    (wheel,) = tmp_path.glob("harness-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "harness/_data/tracks/412m.toml",
        "harness/_data/tracks/nano.toml",
        "harness/_data/pools/sandbox.toml",
        "harness/_data/evaluation/core.toml",
        "harness/_data/evaluation/sandbox.toml",
        "harness/_data/leaderboard/templates/index.html",
        "harness/_data/examples/random_sample.py",
        "harness/assets/sandbox-bpe-2k.json",
    ):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)


def test_resource_dir_prefers_installed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.resources as resources

    monkeypatch.setattr(resources, "_PACKAGE", tmp_path / "harness")
    (tmp_path / "harness" / "_data" / "tracks").mkdir(parents=True)
    assert resources.resource_dir("tracks") == tmp_path / "harness" / "_data" / "tracks"
    assert resources.resource_dir("pools") == tmp_path / "pools"


def test_setup_and_ci_install_with_the_venvs_own_pip() -> None:
    """pip 23 (what `python3 -m venv` ships here) must resolve `.[dev]`: setup never upgrades pip, and CI runs
    setup in a fresh venv, so the old resolver is what CI exercises (a bare `boto3` range once made it fail)."""
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    commands = [line for line in setup.splitlines() if not line.lstrip().startswith("#")]
    assert "python3 -m venv .venv" in setup
    assert not any("pip" in line and "--upgrade" in line for line in commands)
    assert "./scripts/setup.sh --dev" in (ROOT / ".ci" / "run").read_text()
