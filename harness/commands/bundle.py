"""`harness bundle ENTRY OUT [--archive] [--checkpoint-url URL] [--with-shards]`: everything an entry was built
from in one content-addressed folder (harness.bundle.write); prints the bundle's hash (its manifest's sha256)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="pack a finished entry into one hashed folder that anyone can verify")
    p.add_argument("entry", help="entry folder runs/<track>/<entry-id> as `harness submit` prints it, or an entry id")
    p.add_argument("out", help="the bundle folder to write (must not exist, or be empty)")
    p.add_argument("--run-dir", default="runs", help="root of run folders, to find an entry id (default: runs)")
    p.add_argument("--results", help="results store holding the record, where the entry folder has none")
    p.add_argument("--archive", action="store_true", help="also write OUT.tar.gz (byte-identical for the same bundle)")
    p.add_argument(
        "--checkpoint-url",
        help="leave the checkpoint out of the bundle: it is written beside it as OUT.safetensors for you to upload "
        "to this URL, and the manifest records the URL with the file's sha256 (large tracks)",
    )
    p.add_argument("--with-shards", action="store_true", help="also include the tokenized shards (default: hashes)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.bundle.write import make_bundle

    result = make_bundle(
        args.entry, args.out, run_dir=args.run_dir, results=args.results, archive=args.archive,
        checkpoint_url=args.checkpoint_url, with_shards=args.with_shards,
    )  # fmt: skip
    if args.json:
        data = {k: str(v) if v is not None and not isinstance(v, int) else v for k, v in result.__dict__.items()}
        print(json.dumps(data, indent=2))
        return 0
    console = Console(highlight=False)
    console.print(f"bundled {result.entry_id}: {result.files} files, {result.bytes:,} bytes in {result.path}",
                  markup=False)  # fmt: skip
    if result.archive:
        console.print(f"archive: {result.archive}", markup=False)
    if result.checkpoint_file:
        console.print(f"upload {result.checkpoint_file} to {args.checkpoint_url} (its sha256 is in the manifest)",
                      markup=False)  # fmt: skip
    console.print(f"bundle {result.bundle_hash}", markup=False)
    return 0
