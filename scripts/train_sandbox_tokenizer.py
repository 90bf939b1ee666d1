"""Train the sandbox tracks' tokenizer: a byte-level BPE of exactly 2048 ids, written to harness/assets.

    python scripts/train_sandbox_tokenizer.py            # writes harness/assets/sandbox-bpe-2k.json, prints sha256
    python scripts/train_sandbox_tokenizer.py --check    # retrains in a temp file; fails unless identical

Ids 0 and 1 are `<|endoftext|>` (eot) and `<|padding|>` (pad), then the 256 byte symbols, then merges. Like
GPT-NeoX-20B's: byte-level pre-tokenization, no normaliser (so every text round-trips exactly).

Trained on clean documents only, drawn from the sandbox's clean distribution with a seed of their own (so not the
pool's documents): as GPT-NeoX's vocabulary was learnt from curated text (the Pile), the vocabulary is spent on
the language the sandbox suite measures, not on spam phrases, random-character blobs or the duplicated texts
that dominate parts of the pool. Other classes still encode (byte-level), just in more ids per byte.
Training is deterministic (single-threaded, sorted input); the result is pinned by sha256 in tracks/debug.toml
and tracks/nano.toml, so retraining after the pin is a track change (a new version), never a silent one.

The shipped file was trained on the sandbox generator of commit 0c6b1ed; the generator has changed since (the
tokenizer is byte-level, so it still encodes everything). To reproduce it byte for byte:

    git archive 0c6b1ed harness | tar -x -C /tmp/h && PYTHONPATH=/tmp/h \
        python scripts/train_sandbox_tokenizer.py --check --out harness/assets/sandbox-bpe-2k.json
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

NAME = "sandbox-bpe-2k"
VOCAB_SIZE = 2048
SPECIALS = ["<|endoftext|>", "<|padding|>"]  # ids 0 and 1, as the tracks' eot_id and pad_id say
DOCS = 40_000
SEED = 4242  # not the pool's seed: the tokenizer never sees the pool's own documents


def train(docs: int, seed: int) -> str:
    """The tokenizer JSON trained on `docs` clean sandbox documents."""
    os.environ["RAYON_NUM_THREADS"] = "1"  # one thread: merge ties can never depend on scheduling
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from harness.sandbox import iter_clean_text

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter_clean_text(docs, seed), trainer=trainer, length=docs)
    if tok.get_vocab_size() != VOCAB_SIZE:
        raise SystemExit(f"trained {tok.get_vocab_size()} ids, expected {VOCAB_SIZE}: use more documents")
    for i, special in enumerate(SPECIALS):
        assert tok.token_to_id(special) == i, f"{special} must be id {i}"
    return tok.to_str(pretty=True)


def main(argv: list[str] | None = None) -> int:
    from harness.resources import asset_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=DOCS, help=f"clean documents to train on (default {DOCS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the training sample (default {SEED})")
    parser.add_argument("--out", type=Path, default=asset_path(f"{NAME}.json"), help="where to write the JSON")
    parser.add_argument("--check", action="store_true", help="retrain and compare with --out; write nothing")
    args = parser.parse_args(argv)

    blob = train(args.docs, args.seed).encode("utf-8")
    sha = hashlib.sha256(blob).hexdigest()
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == blob
        print(f"{args.out}: {'identical' if same else 'DIFFERENT'} (retrained sha256 {sha})")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=args.out.parent, delete=False) as fh:
        fh.write(blob)
    os.replace(fh.name, args.out)
    print(
        f'wrote {args.out} ({len(blob):,} bytes)\nsha256 = "{sha}"  # pin in [tokenizer] of tracks/debug.toml, nano.toml'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
