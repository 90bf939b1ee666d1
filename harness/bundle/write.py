"""`make_bundle`: an entry of `harness submit` -> one content-addressed folder (harness.bundle has the layout).

Every file is hashed into `manifest.json`; the manifest's own sha256 identifies the bundle. Nothing in it depends on
when or where it was bundled beyond the machine's environment (environment.json), so bundling the same entry twice
on one machine gives the same bundle hash. The folder appears under its final name only when complete.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.bundle import (
    CHECKPOINT,
    DATA_MANIFEST,
    DATA_STATS,
    ENVIRONMENT,
    EVAL,
    FORMAT,
    MANIFEST,
    RECORD,
    SHARD_HASHES,
    SHARDS_DIR,
    SUBSET_DIR,
    VERIFICATION,
)
from harness.errors import UsageError
from harness.io.files import file_sha256, write_json_atomic

#: The stages an entry must have finished to be bundled (harness.submit.stages).
NEEDED = ("validate", "tokenize", "train", "evaluate")
#: Packages whose versions environment.json lists (those that decide a byte of the data, weights or scores).
PACKAGES = ("torch", "numpy", "lm_eval", "tokenizers", "safetensors", "datasets", "transformers", "fsspec")


@dataclass(frozen=True)
class BundleResult:
    """What `make_bundle` wrote: the folder, its hash (the manifest's sha256), and the optional side files."""

    path: Path
    bundle_hash: str
    entry_id: str
    files: int
    bytes: int
    archive: Path | None = None
    checkpoint_file: Path | None = None  # with a checkpoint URL: the file to upload there (outside the bundle)


def find_entry(entry: str, run_dir: str = "runs") -> Path:
    """The entry folder: `entry` itself (runs/<track>/<entry-id>, as `harness submit` prints it), or the folder of
    the entry id `entry` under `run_dir`."""
    path = Path(entry)
    if path.is_dir() and (path / "validate").is_dir():
        return path
    if path.is_dir():
        raise UsageError(
            f"{path} is not an entry folder (it has no validate/ stage): pass runs/<track>/<entry-id> as `harness "
            "submit` prints it"
        )
    if os.sep not in entry:
        found = sorted(p for p in Path(run_dir).glob(f"*/{entry}") if (p / "validate").is_dir())
        if len(found) == 1:
            return found[0]
    raise UsageError(
        f"no entry {entry!r}: give an entry folder (runs/<track>/<entry-id>) or an entry id with --run-dir naming the "
        f"folder of runs (looked in {run_dir}/*/{entry})"
    )


def _marker(entry: Path, stage: str) -> dict[str, Any]:
    from harness.submit.stages import read_marker

    marker = read_marker(entry / stage)
    if marker is None:
        raise UsageError(
            f"{entry}: stage {stage!r} has not finished (no {entry / stage / '_COMPLETE.json'}); re-run the same "
            "`harness submit` to finish the entry, then bundle it"
        )
    return marker


def _record_bytes(entry: Path, results: str | None) -> bytes:
    """The record as submitted: the record stage's copy, else the results store's."""
    local = entry / "record" / "record.json"
    if local.is_file():
        return local.read_bytes()
    if results:
        from harness.records import ResultsStore

        return ResultsStore(results).get(entry.name).to_json().encode()
    raise UsageError(
        f"{entry}: no record (record/record.json): the entry was not evaluated and recorded; finish it with "
        "`harness submit`, or pass --results naming the results store that holds it"
    )


def _copy(src: Path, out: Path, rel: str) -> None:
    if not src.is_file():
        raise UsageError(f"{src} is missing: the entry folder is incomplete; re-run `harness submit` to repair it")
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, out / rel)


def _environment(record: dict[str, Any]) -> dict[str, Any]:
    """Versions and hardware: the record's (where it ran) and this machine's (where it was bundled)."""
    import platform
    from importlib import metadata

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = ""
    machine = {
        "harness": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "packages": packages,
    }
    return {"record": {"versions": record["versions"], "hardware": record["hardware"]}, "bundled_on": machine}


def make_bundle(
    entry: str | Path,
    out: str | Path,
    *,
    run_dir: str = "runs",
    results: str | None = None,
    archive: bool = False,
    checkpoint_url: str | None = None,
    with_shards: bool = False,
) -> BundleResult:
    """Bundle a finished entry into `out` (a new folder); see the module docstring."""
    from harness.bundle.weights import to_safetensors
    from harness.train.checkpoint import read_params

    entry_dir = find_entry(str(entry), run_dir)
    markers = {stage: _marker(entry_dir, stage) for stage in NEEDED}
    record_bytes = _record_bytes(entry_dir, results)
    record = json.loads(record_bytes)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not empty: choose another folder for the bundle, or delete it")
    part = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        (part / RECORD).write_bytes(record_bytes)
        validate = entry_dir / "validate"
        for rel in markers["validate"]["outputs"]["files"]:
            _copy(validate / rel, part, f"{SUBSET_DIR}/{Path(rel).name}")
        _copy(validate / "report.json", part, "validation/report.json")
        _copy(validate / "contamination.json", part, "validation/contamination.json")
        shards = entry_dir / "tokenize" / "shards"
        _copy(shards / "manifest.jsonl", part, DATA_MANIFEST)
        _copy(shards / "stats.json", part, DATA_STATS)
        tars = sorted(shards.glob("shard_*.tar"))
        hashes = {p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size} for p in tars}
        write_json_atomic(part / SHARD_HASHES, hashes)
        if with_shards:
            for p in tars:
                _copy(p, part, f"{SHARDS_DIR}/{p.name}")
        train = entry_dir / "train"
        weights = Path(markers["train"]["outputs"]["checkpoint"])
        if not weights.is_absolute() or not weights.is_file():
            from harness.evaluate.checkpoint import find_weights

            weights = find_weights(train)
        ckpt_file = part / CHECKPOINT if checkpoint_url is None else out.with_name(out.name + ".safetensors")
        ckpt_file.parent.mkdir(parents=True, exist_ok=True)
        to_safetensors(weights, ckpt_file)
        write_json_atomic(part / "checkpoint" / "params.json", read_params(train / "params.txt"))
        _copy(train / "train_log.jsonl", part, "train/train_log.jsonl")
        _copy(entry_dir / "evaluate" / "eval.json", part, EVAL)
        write_json_atomic(part / ENVIRONMENT, _environment(record))
        manifest = _manifest(part, record, ckpt_file, checkpoint_url)
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        (part / MANIFEST).write_text(text)
        if out.exists():
            out.rmdir()
        part.replace(out)
    finally:
        shutil.rmtree(part, ignore_errors=True)
    files = manifest["files"]
    result = BundleResult(
        path=out, bundle_hash=hashlib.sha256(text.encode()).hexdigest(), entry_id=record["entry_id"],
        files=len(files), bytes=sum(f["bytes"] for f in files.values()),
        checkpoint_file=ckpt_file if checkpoint_url else None,
    )  # fmt: skip
    if archive:
        result = BundleResult(**{**result.__dict__, "archive": write_archive(out, result.entry_id)})
    return result


def _manifest(part: Path, record: dict[str, Any], ckpt_file: Path, url: str | None) -> dict[str, Any]:
    files = {}
    for path in sorted(p for p in part.rglob("*") if p.is_file()):
        rel = path.relative_to(part).as_posix()
        files[rel] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    digest = {"sha256": file_sha256(ckpt_file), "bytes": ckpt_file.stat().st_size}
    checkpoint = {"path": CHECKPOINT, **digest} if url is None else {"url": url, **digest}
    track = record["track"]
    return {
        "format": FORMAT,
        "entry_id": record["entry_id"],
        "track": {"name": track["name"], "version": track["version"], "sha256": track["sha256"]},
        "subset_sha256": record["subset"]["sha256"],
        "harness_version": __version__,
        "checkpoint": checkpoint,
        "files": files,
    }


def write_archive(folder: Path, top: str) -> Path:
    """`<folder>.tar.gz` of the bundle, its files under the folder `top` (the entry id), byte-identical for the same
    bundle wherever it lies (sorted members, no times or owners)."""
    target = folder.with_name(folder.name + ".tar.gz")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name == VERIFICATION:
                continue
            info = tarfile.TarInfo(f"{top}/{path.relative_to(folder).as_posix()}")
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    tmp.replace(target)
    return target
