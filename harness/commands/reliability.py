"""`harness reliability`: per task and metric of a track, the seed std, FineWeb's and AI2's signal-to-noise ratios,
monotonicity, the distance from chance and the minimum detectable difference (harness.analysis.reliability).

Records: `--track T` (its records in the results store) or record files / folders of them. `--derive-signal FILE`
also writes the track's signal aggregate definition (harness.analysis.signal) to FILE. Exit code 0 when the
table is printed, 1 when the records cannot answer (one seed per entry, one entry, several suite versions), 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reliability", help="how much signal each task and metric of a track carries (seeds, SNR, MDE)")
    p.add_argument(
        "records", nargs="*", help="record files or folders of them (default: --track's records in the store)"
    )
    p.add_argument("--track", default=None, help="track whose records to read (with files: keep only this track's)")
    p.add_argument(
        "--results", default=None, help="results store URL for --track (default: $HARNESS_RESULTS or ./results)"
    )
    p.add_argument(
        "--k", type=int, nargs="+", default=[1, 3, 5], metavar="K",
        help="seed counts for the minimum detectable difference (default: 1 3 5)",
    )  # fmt: skip
    p.add_argument("--scored-only", action="store_true", help="only scored metrics and aggregates, no continuous ones")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument(
        "--derive-signal", default=None, metavar="FILE",
        help="also write the track's signal aggregate (the tasks and metric that pass the criteria) to FILE "
        "(evaluation/signal/<track>.toml is where evaluation reads it)",
    )  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from harness.analysis.reliability import reliability
    from harness.analysis.scoretable import load_records, track_scores
    from harness.display.reliability import render_reliability
    from harness.errors import UsageError
    from harness.io.files import require_writable
    from harness.records import default_results_url

    records, sources = load_records(args.records, track=args.track, results=args.results or default_results_url())
    if args.derive_signal:  # checked before any work
        if Path(args.derive_signal).is_dir():
            raise UsageError(f"--derive-signal {args.derive_signal} is a folder; give a file, e.g. "
                             f"{Path(args.derive_signal) / f'{args.track or records[0].track.name}.toml'}")  # fmt: skip
        require_writable(Path(args.derive_signal).absolute().parent, "--derive-signal")
    result = reliability(track_scores(records, sources), k=tuple(args.k))
    console = Console()
    console = console if console.is_terminal else Console(width=160)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render_reliability(result, console, scored_only=args.scored_only)
    if args.derive_signal:
        _derive(result, records, sources, Path(args.derive_signal), console if not args.json else Console(stderr=True))
    return 0


def _derive(result: Any, records: Any, sources: Any, out: Path, console: Any) -> None:
    from harness.analysis.signal import derive_signal, previous_definition, write_signal
    from harness.evaluate.signal import signal_dir

    previous = previous_definition(out, result.track)
    definition = derive_signal(result, records, sources, previous)
    write_signal(definition, out)
    change = (
        "new" if previous is None
        else "unchanged definition, evidence renewed" if previous.version == definition.version
        else f"changed from version {previous.version}"
    )  # fmt: skip
    console.print(
        f"signal {definition.name} ({change}): mean {definition.metric} of {', '.join(definition.tasks)}; "
        f"{len(definition.evidence)} records as evidence; written to {out}",
        highlight=False, markup=False,
    )  # fmt: skip
    shipped = signal_dir() / f"{result.track}.toml"
    if out.resolve() != shipped.resolve():
        console.print(f"evaluation computes it once the file is at {shipped}", highlight=False, markup=False)
