"""`harness classifier train --pos FILE --neg FILE --out model.bin`: a fastText quality classifier, DCLM's recipe.

Positives and negatives are JSONL files with a `text` field (.gz/.zst too) or plain text, one document per line.
The recipe is DCLM's OH-2.5+ELI5 classifier (bigrams, fastText defaults otherwise); `--epoch` etc. override it.
Score a pool with it: `harness score sandbox --scorer fasttext --fasttext-model model.bin --out s/`.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classifier", help="train a fastText quality classifier (DCLM's recipe)")
    csub = p.add_subparsers(dest="classifier_command", metavar="COMMAND", required=True)
    t = csub.add_parser("train", help="train on positive and negative texts")
    t.add_argument(
        "--pos", action="append", required=True, help="positive texts (JSONL with text, or .txt), repeatable"
    )
    t.add_argument(
        "--neg", action="append", required=True, help="negative texts (JSONL with text, or .txt), repeatable"
    )
    t.add_argument("--out", required=True, help="model file to write (.bin); a card .bin.json is written beside it")
    for name, kind in (("lr", float), ("dim", int), ("ws", int), ("epoch", int), ("wordNgrams", int), ("minCount", int),
                       ("seed", int), ("thread", int)):  # fmt: skip
        t.add_argument(f"--{name}", type=kind, default=None, help=f"override DCLM's {name}")
    t.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import itertools
    import json
    from dataclasses import replace
    from pathlib import Path

    from rich.console import Console

    from harness.errors import UsageError
    from harness.scores.classifier import FastTextRecipe, read_texts, train_classifier

    overrides = {k: getattr(args, k) for k in ("lr", "dim", "ws", "epoch", "wordNgrams", "minCount", "seed", "thread")}
    try:
        recipe = replace(FastTextRecipe(), **{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    console = Console()
    with console.status("training the fastText classifier"):
        pos = itertools.chain.from_iterable(read_texts(p) for p in args.pos)
        neg = itertools.chain.from_iterable(read_texts(p) for p in args.neg)
        card = train_classifier(pos, neg, Path(args.out), recipe)
    console.print(json.dumps(card, indent=2))
    console.print(f"wrote {args.out}")
    return 0
