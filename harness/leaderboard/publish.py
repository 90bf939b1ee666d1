"""`harness leaderboard publish`: upload a built site to S3 (or any S3-compatible store) with content types.

A static host serves each object with the Content-Type stored on it, so every file is uploaded with an explicit
one (the browser would otherwise download HTML instead of showing it). Credentials come from the usual boto3
chain (environment, ~/.aws, instance role). Pages are uploaded last, so a visitor never follows a link to a chart
or record that is not there yet.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from harness.errors import UsageError

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, 'prefix/'); the prefix may be empty."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise UsageError(f"--out must be an s3://bucket or s3://bucket/prefix URL, got {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def publish_site(site: Path, url: str, *, endpoint_url: str | None = None, progress: bool = False) -> int:
    """Upload every file under `site` to `url`; returns the number of files uploaded."""
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.markup import escape
    from rich.progress import Progress

    from harness.leaderboard.build import MARKER

    site = Path(site)
    if not (site / "index.html").is_file() or not (site / MARKER).is_file():
        raise UsageError(f"--site {site} is not a site built by `harness leaderboard build` (no index.html there).")
    bucket, prefix = split_s3_url(url)
    files = sorted((p for p in site.rglob("*") if p.is_file() and p.name != MARKER),
                   key=lambda p: (p.suffix == ".html", p.name == "index.html", str(p)))  # fmt: skip
    client = boto3.client("s3", endpoint_url=endpoint_url)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"uploading to {escape(url)}", total=len(files))  # a URL is text, never markup
        for path in files:
            key = prefix + path.relative_to(site).as_posix()
            try:
                client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type(path)})
            except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
                raise UsageError(f"uploading {path} to s3://{bucket}/{key} failed: {exc}") from exc
            bar.advance(task)
    return len(files)
