"""`harness leaderboard build|publish|add`: the static website from result records, and its upload."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="build the static leaderboard website from result records, or publish it")
    p.set_defaults(run=lambda args: _help(p))
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND")

    build = lsub.add_parser("build", help="write the static site (opens from disk or any static host)")
    build.add_argument(
        "--results",
        metavar="URL",
        default=None,
        help="results store: a folder or s3://bucket/prefix (default: $HARNESS_RESULTS or ./results)",
    )
    build.add_argument("--out", metavar="DIR", required=True, type=Path, help="output folder of the site")
    build.add_argument("--title", default="harness leaderboard", help="title of the site")
    build.set_defaults(run=run_build)

    publish = lsub.add_parser("publish", help="upload a built site to S3 with correct content types")
    publish.add_argument("--site", metavar="DIR", required=True, type=Path, help="folder written by `build`")
    publish.add_argument("--out", metavar="URL", required=True, help="s3://bucket/prefix to upload to")
    publish.add_argument(
        "--endpoint-url",
        metavar="URL",
        default=None,
        help="S3-compatible endpoint (MinIO, R2, a local test server); default: AWS",
    )
    publish.set_defaults(run=run_publish)

    add = lsub.add_parser(
        "add", help="validate record files, or verify bundles, and add them to a results store"
    )  # fmt: skip
    add.add_argument(
        "records", nargs="+", type=Path, metavar="RECORD.json|BUNDLE",
        help="record files (self-reported), or bundles written by `harness bundle` (a folder or its .tar.gz)",
    )  # fmt: skip
    add.add_argument(
        "--results", metavar="URL", default=None, help="results store (default: $HARNESS_RESULTS or ./results)"
    )
    add.add_argument(
        "--verify", choices=("data", "eval", "train"), default="data",
        help="level to which each bundle is verified before it is added (harness verify; default: data)",
    )  # fmt: skip
    add.set_defaults(run=run_add)  # fmt: skip


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_build(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from harness.fields import printable
    from harness.io.files import require_writable
    from harness.leaderboard.build import build_from_store
    from harness.records import default_results_url

    console = Console(stderr=True)
    url = args.results or default_results_url()
    require_writable(args.out, "--out")
    summary = build_from_store(url, args.out, title=args.title, progress=True)
    for problem in summary.problems:
        # Paths and messages may hold '[' (rich markup), control characters or undecodable bytes of a file name.
        text = escape(printable(f"{problem.path}: {problem.message}"))
        console.print(f"[yellow]skipped[/] {text}", highlight=False, markup=True, soft_wrap=True)
    tracks = ", ".join(f"{t} ({n})" for t, n in summary.entries.items())
    console.print(f"wrote {summary.out}/index.html: {sum(summary.entries.values())} entries on {tracks}; "
                  f"index {summary.index_bytes / 1024:.0f} KiB; open it from disk or serve the folder.",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.leaderboard.publish import publish_site

    n = publish_site(args.site, args.out, endpoint_url=args.endpoint_url, progress=True)
    Console(stderr=True).print(f"uploaded {n} files to {args.out}", highlight=False, markup=False, soft_wrap=True)
    return 0


def _is_bundle(path: Path) -> bool:
    from harness.bundle import MANIFEST

    return (path / MANIFEST).is_file() if path.is_dir() else path.name.endswith((".tar.gz", ".tgz"))


def run_add(args: argparse.Namespace) -> int:
    """Every record file validated and every bundle verified before anything is written; the first bad one
    refuses the lot (exit 2 for an unusable file, 1 for a bundle whose numbers do not verify)."""
    from rich.console import Console

    from harness.errors import UsageError
    from harness.io.files import require_writable
    from harness.records import Record, RecordError, ResultsStore, default_results_url
    from harness.records.parse import MAX_FILE_BYTES

    url = args.results or default_results_url()
    require_writable(url, "--results")
    store = ResultsStore(url)
    records, verified = [], []
    for path in args.records:
        if not path.exists():
            raise UsageError(f"record file {path} does not exist")
        if _is_bundle(path):
            outcome, record = _verified_record(path, args.verify)
            if outcome is None:
                return 1
            records.append(record)
            verified.append((record, outcome))
            continue
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"record file {path} is not a regular file of at most {MAX_FILE_BYTES:,} bytes")
        try:
            records.append(Record.from_json(path.read_bytes(), str(path)))
        except RecordError as exc:
            raise UsageError(f"refused, nothing added: {exc}") from None
    console = Console(stderr=True)
    for record in records:
        console.print(f"added {record.entry_id} -> {store.add(record)}", highlight=False, markup=False, soft_wrap=True)
    for record, outcome in verified:
        _store_verification(url, record, outcome)
        console.print(f"{record.entry_id}: verified: {outcome.level} (bundle {outcome.bundle})", markup=False)
    return 0


def _verified_record(path: Path, level: str) -> tuple[Any, Any]:
    """(outcome, the bundle's record) when the bundle verifies to `level`, else (None, None) with the mismatches
    printed."""
    import tempfile

    from rich.console import Console

    from harness.bundle import RECORD
    from harness.bundle.read import open_bundle
    from harness.bundle.verify import verify_bundle
    from harness.display.progress import make_progress
    from harness.display.verification import render_outcome
    from harness.errors import UsageError
    from harness.records import Record, RecordError

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    with tempfile.TemporaryDirectory() as tmp, make_progress(console, transient=True) as progress:
        outcome, _ = verify_bundle(path, level, out=Path(tmp) / "verification.json", progress=progress)
    if not outcome.ok:
        render_outcome(outcome, console)
        console.print(f"refused, nothing added: bundle {path} does not verify to level {level}")
        return None, None
    with open_bundle(path) as bundle:
        try:
            return outcome, Record.from_json(bundle.path(RECORD).read_bytes(), f"{path}: {RECORD}")
        except RecordError as exc:
            raise UsageError(f"refused, nothing added: {exc}") from None


def _store_verification(url: str, record: Any, outcome: Any) -> None:
    from harness import __version__
    from harness.records import now_iso
    from harness.records.verified import Verification, add_verification, record_sha256

    add_verification(url, Verification(
        entry_id=record.entry_id, level=outcome.level, bundle=outcome.bundle,
        record_sha256=record_sha256(record.to_json().encode("utf-8")), verified_at=now_iso(),
        harness_version=__version__,
    ))  # fmt: skip
