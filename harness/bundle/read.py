"""Opening a bundle without executing anything in it, and checking its files against its manifest.

A bundle is read as JSON, JSONL(.gz), safetensors and (optional) shard tars only; a manifest naming any other
kind of file, a path leaving the bundle, or a file that is absent makes the bundle unusable (exit 2). A file whose
bytes differ from the manifest's hash, or a file the manifest does not list, is a mismatch (exit 1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from harness.bundle import FORMAT, MANIFEST, VERIFICATION, BundleUnusable
from harness.bundle.outcome import Outcome
from harness.io.files import file_sha256

#: The kinds of file a bundle may hold; nothing else is read (or could be run).
SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".safetensors", ".tar")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its folder, manifest and hash (the sha256 of manifest.json's bytes)."""

    root: Path
    manifest: dict[str, Any]
    bundle_hash: str
    source: Path  # what the user named: the folder or the archive

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.manifest["files"]

    def path(self, rel: str) -> Path:
        if rel not in self.files:
            raise BundleUnusable(f"{self.source}: the manifest lists no {rel}, which every bundle holds")
        return self.root / rel

    def json(self, rel: str) -> Any:
        path = self.path(rel)
        try:
            return json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleUnusable(f"{path}: not valid JSON ({exc})") from None

    def default_outcome_path(self) -> Path:
        """verification.json beside the manifest; for an archive, `<archive>.verification.json` beside it."""
        if self.source.is_dir():
            return self.source / VERIFICATION
        return self.source.with_name(self.source.name + "." + VERIFICATION)


@contextlib.contextmanager
def open_bundle(source: str | Path) -> Iterator[Bundle]:
    """A bundle folder, or its .tar.gz unpacked into a temporary folder (regular files only)."""
    source = Path(source)
    if source.is_dir():
        yield _load(source, source)
        return
    if not source.is_file():
        raise BundleUnusable(f"bundle {source} does not exist (give the folder `harness bundle` wrote, or its .tar.gz)")
    with tempfile.TemporaryDirectory(prefix="harness-bundle-") as tmp:
        root = _unpack(source, Path(tmp))
        yield _load(root, source)


def _unpack(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            bad = [m.name for m in members if not (m.isfile() or m.isdir())]
            if bad:
                raise BundleUnusable(
                    f"{archive}: holds {bad[0]!r}, which is not a plain file (a bundle holds no links)"
                )
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleUnusable(f"{archive}: not a bundle archive (.tar.gz): {exc}") from None
    if (into / MANIFEST).is_file():
        return into
    tops = [p for p in into.iterdir() if (p / MANIFEST).is_file()]
    if len(tops) != 1:
        raise BundleUnusable(f"{archive}: no {MANIFEST} at its top or in one top folder: not a bundle")
    return tops[0]


def _load(root: Path, source: Path) -> Bundle:
    path = root / MANIFEST
    if not path.is_file():
        raise BundleUnusable(f"{source}: no {MANIFEST}: not a bundle (make one with `harness bundle`)")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleUnusable(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleUnusable(f"{path}: format {got!r}, this harness reads {FORMAT!r}")
    for key in ("entry_id", "track", "files", "checkpoint"):
        if key not in manifest:
            raise BundleUnusable(f"{path}: no {key!r}: not a bundle manifest")
    files = manifest["files"]
    if not isinstance(files, dict):
        raise BundleUnusable(f"{path}: 'files' must map paths to {{sha256, bytes}}")
    for rel, info in files.items():
        _check_entry(path, rel, info)
    missing = [rel for rel in files if not (root / rel).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BundleUnusable(f"{source}: {missing[0]} is missing{more}; the manifest lists it")
    return Bundle(root, manifest, hashlib.sha256(raw).hexdigest(), source)


def _check_entry(manifest: Path, rel: str, info: Any) -> None:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or rel in (MANIFEST, VERIFICATION) or "\\" in rel:
        raise BundleUnusable(f"{manifest}: lists {rel!r}, a path a bundle cannot hold")
    if not rel.endswith(SUFFIXES):
        raise BundleUnusable(f"{manifest}: lists {rel!r}; a bundle holds only {', '.join(SUFFIXES)} files")
    if (
        not isinstance(info, dict)
        or not _HEX64.fullmatch(str(info.get("sha256")))
        or type(info.get("bytes")) is not int
    ):
        raise BundleUnusable(f"{manifest}: the entry of {rel!r} needs a sha256 (64 hex digits) and a byte count")


def check_files(bundle: Bundle, outcome: Outcome) -> None:
    """Every listed file (all present: `open_bundle` checked) with its hash; files not listed are mismatches too."""
    bad = 0
    for rel, info in sorted(bundle.files.items()):
        path = bundle.root / rel
        size = path.stat().st_size
        digest = file_sha256(path)
        if digest != info["sha256"] or size != info["bytes"]:
            bad += 1
            outcome.add("data", f"file {rel}", False,
                        f"sha256 {digest[:16]}... ({size:,} bytes) but the manifest says {info['sha256'][:16]}... "
                        f"({info['bytes']:,} bytes): the file changed after the bundle was made")  # fmt: skip
    listed = set(bundle.files) | {MANIFEST, VERIFICATION}
    extra = sorted(p.relative_to(bundle.root).as_posix() for p in bundle.root.rglob("*") if p.is_file())
    for rel in [r for r in extra if r not in listed]:
        bad += 1
        outcome.add("data", f"file {rel}", False, "not listed in the manifest: a bundle holds only what it lists")
    if not bad:
        outcome.add("data", "files", True, f"all {len(bundle.files)} files match the manifest's sha256")
