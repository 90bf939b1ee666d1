"""DCLM's evaluation data files: the pinned list (`evaluation/dclm/data.toml`), where a tree of them is
(`--eval-data DIR`, `$HARNESS_EVAL_DATA`, else what `harness eval-data fetch` wrote under `$HARNESS_HOME`), and
reading one file as llm-foundry reads it (JSON lines split on "\\n" only), checked against its pin."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from harness.config import doc, from_dict, read_toml
from harness.evaluate.data import MissingData
from harness.io.files import git_blob_id
from harness.resources import harness_home, resource_dir

EVAL_DATA_ENV = "HARNESS_EVAL_DATA"
FETCH_HINT = "run `harness eval-data fetch` (or pass --eval-data DIR, a folder holding DCLM's local_data/)"


@dataclass(frozen=True, kw_only=True)
class DataFile:
    """One pinned data file."""

    path: str = doc("Path relative to the eval-data folder (llm-foundry's local_data/... as DCLM names it).")
    sha256: str = doc("sha256 of the file's bytes; '' where only the git blob id is known.", default="")
    git_blob: str = doc("The file's git object id in llm-foundry's tree at `commit`.", default="")
    bytes: int = doc("Size in bytes, where known; 0 = unknown.", default=0)
    built_from: str = doc(
        "'' = downloaded as is; 'gpqa' = built from the [gpqa] archive as DCLM builds it.", default=""
    )

    def __post_init__(self) -> None:
        if not (self.sha256 or self.git_blob):
            raise ValueError(f"data file {self.path!r}: give 'sha256' or 'git_blob'")
        if self.built_from not in ("", "gpqa"):
            raise ValueError(f"data file {self.path!r}: 'built_from' must be '' or 'gpqa'")


@dataclass(frozen=True, kw_only=True)
class Archive:
    """A pinned archive that files are built from."""

    url: str = doc("Where it is downloaded from.")
    sha256: str = doc("sha256 of its bytes.")
    git_blob: str = doc("Its git object id in DCLM's repository.", default="")


@dataclass(frozen=True, kw_only=True)
class DataManifest:
    """The contents of evaluation/dclm/data.toml."""

    commit: str = doc("llm-foundry commit of the local_data tree (tag v0.9.0).")
    url: str = doc("Base URL the files' paths are appended to.")
    files: tuple[DataFile, ...] = doc("Every pinned file.")
    gpqa: Archive = doc("DCLM's eval/gpqa/dataset.zip, which gpqa_data/ is built from.")

    def file(self, path: str) -> DataFile | None:
        return next((f for f in self.files if f.path == path), None)


@cache
def manifest() -> DataManifest:
    path = resource_dir("evaluation") / "dclm" / "data.toml"
    return from_dict(DataManifest, read_toml(path), str(path))


def default_root() -> Path:
    """Where `harness eval-data fetch` puts the files."""
    return harness_home() / "eval-data" / "dclm"


def data_root(value: str | os.PathLike[str] | None = None) -> Path:
    """The eval-data folder: the argument, else $HARNESS_EVAL_DATA, else the fetch folder."""
    chosen = value or os.environ.get(EVAL_DATA_ENV)
    return Path(chosen).expanduser() if chosen else default_root()


def locate(root: Path, rel: str) -> Path | None:
    """`rel` (local_data/x/y.jsonl) under `root`, which may hold local_data/ or be that folder itself."""
    for candidate in (root / rel, root / Path(*Path(rel).parts[1:])):
        if candidate.is_file():
            return candidate
    return None


def check_pin(pin: DataFile | Archive, data: bytes) -> str | None:
    """None when `data` matches every hash the pin has, else what differs."""
    digest = hashlib.sha256(data).hexdigest()
    if pin.sha256 and digest != pin.sha256:
        return f"sha256 {digest}, DCLM's is {pin.sha256}"
    blob = git_blob_id(data) if pin.git_blob else ""
    if pin.git_blob and blob != pin.git_blob:
        return f"git blob {blob}, DCLM's is {pin.git_blob}"
    return None


@dataclass(frozen=True)
class LoadedFile:
    """A data file's rows and where they came from (recorded in eval.json)."""

    path: Path
    rel: str
    sha256: str
    rows: list[dict[str, Any]]


def load_rows(task: str, root: Path, rel: str) -> LoadedFile:
    """The rows of DCLM's data file `rel` under `root`, verified against the pin; MissingData names what is wrong."""
    path = locate(root, rel)
    if path is None:
        raise MissingData(f"task {task}: data file {rel} is not in {root}; {FETCH_HINT}")
    data = path.read_bytes()
    pin = manifest().file(rel)
    if pin is None:
        raise MissingData(f"task {task}: {rel} is not in the pinned list evaluation/dclm/data.toml")
    wrong = check_pin(pin, data)
    if wrong:
        raise MissingData(f"task {task}: {path} is not DCLM's file ({wrong}); fetch it again: harness eval-data fetch")
    text = data.decode("utf-8")
    rows = [json.loads(line) for line in text.split("\n") if line.strip()]
    return LoadedFile(path, rel, hashlib.sha256(data).hexdigest(), rows)
