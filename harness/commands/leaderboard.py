"""`harness leaderboard build|publish|add`: the static website from result records, and its upload."""

from __future__ import annotations

import argparse
from pathlib import Path


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

    add = lsub.add_parser("add", help="validate record JSON files and add them to a results store")
    add.add_argument("records", nargs="+", type=Path, metavar="RECORD.json", help="record files")
    add.add_argument(
        "--results", metavar="URL", default=None, help="results store (default: $HARNESS_RESULTS or ./results)"
    )
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


def run_add(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.errors import UsageError
    from harness.io.files import require_writable
    from harness.records import Record, RecordError, ResultsStore, default_results_url
    from harness.records.parse import MAX_FILE_BYTES

    require_writable(args.results or default_results_url(), "--results")
    store = ResultsStore(args.results or default_results_url())
    records = []
    for path in args.records:  # all validated before any is written; the first bad one refuses the lot
        if not path.exists():
            raise UsageError(f"record file {path} does not exist")
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"record file {path} is not a regular file of at most {MAX_FILE_BYTES:,} bytes")
        try:
            records.append(Record.from_json(path.read_bytes(), str(path)))
        except RecordError as exc:
            raise UsageError(f"refused, nothing added: {exc}") from None
    for record in records:
        Console(stderr=True).print(
            f"added {record.entry_id} -> {store.add(record)}", highlight=False, markup=False, soft_wrap=True
        )
    return 0
