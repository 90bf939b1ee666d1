"""`harness export CHECKPOINT --format hf OUT [--force] [--dtype float32] [--no-verify]`."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a checkpoint as a Hugging Face model folder (transformers, lm-eval)")
    p.add_argument("checkpoint", help="what `harness evaluate` accepts: entry folder, run folder, epoch_N.pt, ...")
    p.add_argument("out", help="folder to write (must be empty or absent unless --force)")
    p.add_argument("--format", default="hf", choices=("hf",), help="output format (default: hf)")
    p.add_argument("--track", help="track whose model shape and tokenizer to use (default: from params.txt)")
    p.add_argument("--tokenizer-file", help="tokenizer.json to use instead of downloading the track's")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="weights' dtype in model.safetensors (default: float32, as trained)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT, replacing an earlier export")
    p.add_argument("--no-verify", action="store_true",
                   help="skip loading the folder with transformers to compare logits (needs no transformers)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.export.hf import TOLERANCE, export_hf
    from harness.tracks import get_track

    track = get_track(args.track) if args.track else None
    result = export_hf(args.checkpoint, args.out, track=track, tokenizer_file=args.tokenizer_file, force=args.force,
                       dtype=args.dtype, verify=not args.no_verify)  # fmt: skip
    console = Console()
    console.print(f"exported {result.source} ({result.track or 'no track'}) to {result.out}", markup=False)
    if result.max_abs_diff is not None:
        console.print(f"checked: transformers loads it; max abs logit difference {result.max_abs_diff:.2e} "
                      f"(tolerance {TOLERANCE:g})", markup=False)  # fmt: skip
    console.print(
        f'load it with AutoModelForCausalLM.from_pretrained("{result.out}", trust_remote_code=True); '
        f"lm_eval --model hf --model_args pretrained={result.out},trust_remote_code=True",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    return 0
