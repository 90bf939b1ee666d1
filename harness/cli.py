"""The `harness` command: a thin dispatcher over one module per subcommand in harness/commands/.

Each command module exposes `add_parser(subparsers)` (light imports only, so `harness tracks` starts fast)
and `run(args) -> int`. Heavy libraries (torch, lm_eval) are imported inside `run`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import HarnessError

#: Subcommand name -> module under harness.commands, in the order `harness --help` lists them.
COMMANDS: dict[str, str] = {
    "tracks": "tracks",
    "pool": "pool",
    "validate": "validate",
    "tokenize": "tokenize",
    "train": "train",
    "evaluate": "evaluate",
    "export": "export",
    "eval-data": "eval_data",
    "submit": "submit",
    "bundle": "bundle",
    "verify": "verify",
    "compare": "compare",
    "reliability": "reliability",
    "transfer": "transfer",
    "score": "score",
    "select": "select",
    "classifier": "classifier",
    "leaderboard": "leaderboard",
    "sweep": "sweep",
    "scaling": "scaling",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="A benchmark for language-model training data: curate a subset, we train and score it.",
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"harness.commands.{module}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Libraries' tqdm bars (lm-eval, datasets) would fight rich's display; tqdm reads this when first imported.
    os.environ.setdefault("TQDM_DISABLE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that has gone away is a broken pipe here, not at exit
        return code
    except BrokenPipeError:
        # `harness validate --json | head`: the reader stopped reading. End quietly with exit code 1 (as Python's
        # documentation does, and rich when its own output meets a closed pipe); stdout now points at /dev/null so
        # that the interpreter's own flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except HarnessError as exc:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted; everything finished so far is kept, re-run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
