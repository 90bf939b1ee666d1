"""`harness tracks` and `harness tracks show NAME [--json]`."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tracks", help="list the tracks, their budgets and recipes")
    p.add_argument("--json", action="store_true", help="print every track as JSON")
    p.set_defaults(run=run)
    tsub = p.add_subparsers(dest="tracks_command", metavar="SUBCOMMAND")
    show = tsub.add_parser("show", help="everything about one track")
    show.add_argument("name", help="track name, e.g. 412m or nano")
    show.add_argument("--json", action="store_true", help="machine-readable output (round-trips into Track)")
    show.set_defaults(run=run_show)


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.tracks import all_tracks

    tracks = sorted(all_tracks(), key=lambda t: t.flops)
    if args.json:
        print(json.dumps([t.to_dict() for t in tracks], indent=2))
        return 0
    table = Table(title="harness tracks")
    for col in ("track", "params", "tokens", "tok/param", "FLOPs", "pool", "suite"):
        table.add_column(col, justify="left" if col in {"track", "pool", "suite"} else "right", no_wrap=True)
    for t in tracks:
        table.add_row(
            t.name, _human(t.n_params), _human(t.tokens), f"{t.tokens / t.n_params:.3g}", f"{t.flops:.1e}",
            t.pool, t.suite,
        )  # fmt: skip
    Console().print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from harness.tracks import get_track

    track = get_track(args.name)
    data = track.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"track {track.name} (version {track.version})", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for section, values in data.items():
        if isinstance(values, dict):
            for key, value in values.items():
                table.add_row(f"{section}.{key}", f"{value:,}" if isinstance(value, int) else str(value))
        else:
            table.add_row(section, str(values))
    Console().print(table)
    return 0
