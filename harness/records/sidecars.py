"""Files the results store holds beside the records, one folder per name: `<store>/<FOLDER>/<name>/<file>.json`.

Experiment summaries (`_experiments/<experiment>/experiment.json`, harness.leaderboard.experiments) and verification
outcomes (`_verified/<entry-id>/verification.json`) live there; folders starting with `_` are never track names, so
record listings pass them by. Like every store file they are untrusted: read without following links or waiting on
FIFOs, at most MAX_FILE_BYTES each, and parsed here; the caller checks what they hold.
"""

from __future__ import annotations

import json
import os
from typing import Any

from harness.records.parse import MAX_FILE_BYTES, StoreProblem, read_regular


def _fs(results_url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str, bool]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(results_url.rstrip("/"), **(storage_options or {}))
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    return fs, root.rstrip("/"), local


def _named_files(fs: Any, base: str, filename: str, local: bool, problems: list[StoreProblem]) -> list[tuple[str, str]]:
    """(folder name, path of its `filename`) of every folder under `base`; locally, links are skipped and named."""
    if not local:
        return [(p.rsplit("/", 2)[-2], p) for p in sorted(fs.glob(f"{base}/*/{filename}"))]
    try:
        with os.scandir(base) as entries:
            folders = sorted(entries, key=lambda d: d.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for d in folders:
        if d.is_symlink():
            problems.append(StoreProblem(d.path, "a symbolic link; the store's folders must be real folders"))
        elif d.is_dir(follow_symlinks=False) and os.path.lexists(f"{d.path}/{filename}"):
            out.append((d.name, f"{d.path}/{filename}"))
    return out


def read_sidecars(
    results_url: str, folder: str, filename: str, what: str, storage_options: dict[str, Any] | None = None
) -> tuple[list[tuple[str, str, Any]], list[StoreProblem]]:
    """(folder name, path shown, parsed JSON) of every `<store>/<folder>/*/<filename>`, and each file that could not
    be read or parsed, with the reason (`what` names the kind of file in the messages)."""
    fs, root, local = _fs(results_url, storage_options)
    problems: list[StoreProblem] = []
    found = []
    for name, path in _named_files(fs, f"{root}/{folder}", filename, local, problems):
        shown = path if local else fs.unstrip_protocol(path)
        try:
            if local:
                blob = read_regular(path)
            else:
                size = fs.info(path).get("size") or 0
                if size > MAX_FILE_BYTES:
                    raise OSError(f"{size:,} bytes; a store file holds at most {MAX_FILE_BYTES:,}")
                blob = fs.cat_file(path)
            found.append((name, shown, json.loads(blob)))
        except OSError as exc:
            problems.append(StoreProblem(shown, f"cannot read: {exc}"))
        except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, an integer of 4,300 digits, deep nesting
            problems.append(StoreProblem(shown, f"not a valid {what}: not valid JSON: {exc}"))
    return found, problems


def write_sidecar(
    results_url: str, folder: str, name: str, filename: str, blob: bytes, storage_options: dict[str, Any] | None = None
) -> str:
    """Write `<store>/<folder>/<name>/<filename>` atomically (one PUT on object stores); returns its path. `name` is
    checked by the caller (harness.fields.name_problem)."""
    fs, root, local = _fs(results_url, storage_options)
    path = f"{root}/{folder}/{name}/{filename}"
    if local:
        from pathlib import Path

        from harness.io.files import write_bytes_atomic

        write_bytes_atomic(Path(path), blob)
    else:
        fs.pipe_file(path, blob)
    return path
