"""Small fixtures for the evaluation tests: a debug-shaped checkpoint with random weights, a BPE tokenizer trained
on the fixture text, and an eval folder in the sandbox generator's schema."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "the",
    "a",
    "river",
    "stone",
    "city",
    "king",
    "queen",
    "north",
    "south",
    "gold",
    "silver",
    "bread",
    "ship",
    "horse",
    "cat",
    "dog",
    "sings",
    "runs",
    "sleeps",
]


def write_eval_folder(folder: Path, n: int = 12, seed: int = 0) -> Path:
    """fact_cloze / next_sentence / last_word / heldout jsonl files with the sandbox schema (4 choices)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def sentence(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    def choice_rows(prefix: str) -> list[dict]:
        rows = []
        for i in range(n):
            choices = [" " + sentence(rng.randint(1, 4)) for _ in range(4)]
            rows.append({"id": f"{prefix}-{i}", "context": sentence(8), "choices": choices, "gold": rng.randrange(4)})
        return rows

    files = {
        "fact_cloze.jsonl": choice_rows("fact"),
        "next_sentence.jsonl": choice_rows("next"),
        "last_word.jsonl": [
            {"id": f"lw-{i}", "context": sentence(10), "target": " " + rng.choice(WORDS)} for i in range(n)
        ],
        "heldout.jsonl": [{"id": f"h-{i}", "text": sentence(rng.randint(20, 300))} for i in range(n // 2)],
    }
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def write_tokenizer(path: Path, vocab_size: int = 300) -> Path:
    """A small byte-level BPE tokenizer; id 0 = <|endoftext|> (eot), 1 = <|pad|>, as the sandbox track expects."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    tok.train_from_iterator([" ".join(WORDS)] * 50, trainer)
    tok.save(str(path))
    return path


def write_checkpoint(run_dir: Path, track_name: str = "debug", seed: int = 0) -> Path:
    """A run folder as the trainer writes it: checkpoints/epoch_1.pt ({"state_dict", "step", ...}) + params.txt."""
    import torch

    from harness.model import build_model, open_lm_model_config
    from harness.tracks import get_track

    track = get_track(track_name)
    torch.manual_seed(seed)
    model = build_model(track)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "step": 1, "samples_seen": 0, "epoch": 1},
               run_dir / "checkpoints" / "epoch_1.pt")  # fmt: skip
    (run_dir / "model.json").write_text(json.dumps(open_lm_model_config(track.model)))
    (run_dir / "params.txt").write_text(f"model: {run_dir / 'model.json'}\ntrack: {track_name}\ntokenizer: x\n")
    return run_dir
