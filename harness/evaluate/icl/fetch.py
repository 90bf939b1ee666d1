"""`harness eval-data fetch`: DCLM's evaluation data files downloaded into the eval-data folder, each checked
against its pin (`evaluation/dclm/data.toml`) before it takes its final name.

Resumable: bytes arrive in `<file>.part`; an interrupted download keeps them and the next run asks the server for
the rest (an HTTP Range request; a server that ignores it sends the whole file again). A file already present and
matching its pin is not downloaded again. Failures (a file the server does not have, a hash that differs, a
broken connection) are collected and reported together, naming each file; everything else is kept.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.evaluate.icl.files import DataFile, check_pin, manifest

URL_ENV = "HARNESS_EVAL_DATA_URL"
CHUNK = 1 << 20
TIMEOUT_S = 60


@dataclass
class FetchReport:
    """What a fetch did, per file path."""

    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already there and matching the pin
    resumed: list[str] = field(default_factory=list)  # continued from a .part file
    failed: dict[str, str] = field(default_factory=dict)  # path -> why


def suite_files(suite: str | None) -> list[DataFile]:
    """The pinned files a suite's DCLM tasks read (every pinned file when `suite` is None)."""
    pins = manifest()
    if suite is None:
        return list(pins.files)
    from harness.evaluate.icl.spec import get_icl_task
    from harness.evaluate.suites import get_suite

    uris = dict.fromkeys(get_icl_task(t.icl).dataset_uri for t in get_suite(suite).tasks if t.icl)
    return [f for f in pins.files if f.path in uris]


def base_url(url: str | None = None) -> str:
    chosen = url or os.environ.get(URL_ENV) or manifest().url
    return chosen if chosen.endswith("/") else chosen + "/"


def fetch(
    files: list[DataFile], dest: Path, *, url: str | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> FetchReport:  # fmt: skip
    """Download `files` under `dest` from `url` (default $HARNESS_EVAL_DATA_URL, else llm-foundry v0.9.0 on GitHub).
    `progress(path, bytes so far, total or None)` is called as bytes arrive."""
    report = FetchReport()
    base = base_url(url)
    built = []
    for pin in files:
        target = dest / pin.path
        if target.is_file() and check_pin(pin, target.read_bytes()) is None:
            report.present.append(pin.path)
            continue
        if pin.built_from:
            built.append(pin)
            continue
        try:
            resumed = _download(base + pin.path, target, progress and (lambda n, t, p=pin.path: progress(p, n, t)))
        except _Failed as exc:
            report.failed[pin.path] = str(exc)
            continue
        part = _part(target)
        wrong = check_pin(pin, part.read_bytes())
        if wrong:
            part.unlink()
            report.failed[pin.path] = f"downloaded file has {wrong}; it was deleted (is {base} DCLM's source?)"
            continue
        part.replace(target)
        (report.resumed if resumed else report.downloaded).append(pin.path)
    if built:
        _build_gpqa(built, dest, url and base + "gpqa/dataset.zip", report, progress)
    return report


def _build_gpqa(
    pins: list[DataFile], dest: Path, url: str | None, report: FetchReport,
    progress: Callable[[str, int, int | None], None] | None,
) -> None:  # fmt: skip
    """gpqa_data/ built from DCLM's archive (downloaded, resumably, to <dest>/gpqa/dataset.zip) as DCLM builds it."""
    from harness.evaluate.icl import gpqa

    archive, zip_path = manifest().gpqa, dest / "gpqa" / "dataset.zip"
    try:
        if not (zip_path.is_file() and check_pin(archive, zip_path.read_bytes()) is None):
            _download(url or archive.url, zip_path, progress and (lambda n, t: progress("gpqa/dataset.zip", n, t)))
            wrong = check_pin(archive, _part(zip_path).read_bytes())
            if wrong:
                _part(zip_path).unlink()
                raise _Failed(f"DCLM's gpqa archive has {wrong}")
            _part(zip_path).replace(zip_path)
    except _Failed as exc:
        report.failed.update({p.path: str(exc) for p in pins})
        return
    outputs = gpqa.build(zip_path.read_bytes())
    for pin in pins:
        data = outputs[pin.path]
        wrong = check_pin(pin, data)
        if wrong:  # e.g. another pandas parsing the csv differently
            report.failed[pin.path] = f"built file has {wrong}"
            continue
        target = dest / pin.path
        target.parent.mkdir(parents=True, exist_ok=True)
        _part(target).write_bytes(data)
        _part(target).replace(target)
        report.downloaded.append(pin.path)


class _Failed(Exception):
    pass


def _part(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _download(url: str, target: Path, progress: Callable[[int, int | None], None] | None) -> bool:
    """Fill target.part from `url`, continuing what is there; True when it continued a partial file."""
    part = _part(target)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part already holds every byte
            return True
        why = "the server does not have it" if exc.code == 404 else f"HTTP {exc.code} {exc.reason}"
        raise _Failed(f"{why} ({url})") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _Failed(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    with response:
        resumed = have > 0 and response.status == 206
        if not resumed:
            have = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with part.open("ab" if resumed else "wb") as out:
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    have += len(block)
                    if progress:
                        progress(have, total)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise _Failed(f"interrupted after {have} bytes ({exc}); run the command again to resume") from exc
    if total is not None and have < total:
        raise _Failed(f"interrupted after {have} of {total} bytes; run the command again to resume")
    return resumed


def raise_for_failures(report: FetchReport, dest: Path) -> None:
    if report.failed:
        lines = "\n".join(f"  {path}: {why}" for path, why in report.failed.items())
        raise HarnessError(f"{len(report.failed)} file(s) not fetched into {dest}:\n{lines}")
