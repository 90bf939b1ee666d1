"""`harness pool list|create|index`: the standard pools and their membership indexes."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pool", help="list, create (sandbox) and index the document pools")
    p.set_defaults(run=lambda args: p.print_help() or 2)
    psub = p.add_subparsers(dest="pool_command", metavar="SUBCOMMAND")
    ls = psub.add_parser("list", help="the pools, where their data lives and whether they are indexed")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=run_list)
    create = psub.add_parser("create", help="generate a local pool (the sandbox) and index it")
    create.add_argument("pool", help="pool id: sandbox or sandbox-v5")
    create.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    create.set_defaults(run=run_create)
    index = psub.add_parser("index", help="build the membership index of a pool (resumable per shard)")
    index.add_argument("pool", help="pool id, e.g. dclm-pool-400m-1x")
    index.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    index.add_argument("--no-tokens", action="store_true", help="skip counting tokens per document")
    index.add_argument(
        "--contamination", action="store_true",
        help="also check every document against the suites of the pool's tracks (then validation only looks up)",
    )  # fmt: skip
    index.set_defaults(run=run_index)


def run_list(args: argparse.Namespace) -> int:
    import json

    from harness.pools import get_pool_spec, pool_names
    from harness.pools.pool import index_dir

    rows = []
    for name in pool_names():
        spec = get_pool_spec(name)
        meta = index_dir(spec) / "meta.json"
        documents = json.loads(meta.read_text())["documents"] if meta.is_file() else None
        rows.append({"id": name, "version": spec.version, "source": spec.source, "home": str(spec.home),
                     "indexed_documents": documents, "description": spec.description,
                     "unavailable": spec.unavailable.strip() or None})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="harness pools")
    for col in ("pool", "source", "indexed documents", "description"):
        table.add_column(col)
    for r in rows:
        docs = "not indexed" if r["indexed_documents"] is None else f"{r['indexed_documents']:,}"
        docs = "unavailable (`harness pool index` says why)" if r["unavailable"] else docs
        table.add_row(r["id"], r["source"], docs, r["description"])
    Console().print(table)
    return 0


def _summary(pool) -> None:
    from rich.console import Console

    Console().print(
        f"pool [bold]{pool.id}[/]: {len(pool):,} documents in {len(pool.shards())} shards, "
        f"index at {pool.index.directory}"
    )


def run_create(args: argparse.Namespace) -> int:
    from harness.pools import create_sandbox

    pool = create_sandbox(args.pool, workers=args.workers)
    _summary(pool)
    _prefill(pool)  # part of building a local pool: validating a subset of it then costs lookups
    return 0


def run_index(args: argparse.Namespace) -> int:
    from harness.pools import index_pool

    pool = index_pool(args.pool, workers=args.workers, tokens=not args.no_tokens)
    _summary(pool)
    if args.contamination:
        _prefill(pool)
    return 0


def _prefill(pool) -> None:
    from rich.console import Console

    from harness.display.progress import make_progress
    from harness.submit.decontam_subset import prefill_pool_suites

    console = Console()
    with make_progress(console) as progress:
        said = prefill_pool_suites(pool, progress=progress)
    for line in said:
        console.print(line, highlight=False)
