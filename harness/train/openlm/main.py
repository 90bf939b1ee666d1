"""torchrun's entry into open_lm: `python -m torch.distributed.run ... -m harness.train.openlm.main ARGS.json`.

torchrun (torch 2.3 and later) matches every option on its command line against its own by prefix, the script's
options included, so `-m open_lm.main ... --logs DIR` stops with "ambiguous option: --logs could match --logs-specs,
--logs_specs" before open_lm starts; `--logs=DIR` and a `--` separator do not help. This module takes one
argument, a JSON file holding open_lm's argument list, and hands that list to `open_lm.main.main` unchanged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_args(path: str) -> list[str]:
    """open_lm's argument list from the JSON file the harness wrote (a list of strings)."""
    args = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SystemExit(f"{path}: expected a JSON list of open_lm arguments")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m harness.train.openlm.main ARGS.json (a JSON list of open_lm's arguments)")
    from open_lm.main import main as open_lm_main

    open_lm_main(read_args(argv[0]))


if __name__ == "__main__":
    main()
