"""Synthetic sandbox records with replicate seeds and continuous metrics of known signal and noise, for the signal
aggregate's and the leaderboard's reliability tests."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.leaderboard.sample import synthetic_record
from harness.records import entry_id


def record(track: str, subset: int, quality: float, seeds: int, rng: random.Random, *,
           noisy: Iterable[str] = (), name: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A record of `subset` on `track` whose runs' scores follow `quality` with small seed noise, except:
    next_sentence's accuracy and norm_correct_prob are noise around one value for every recipe (they fail the
    criteria), last_word is the same on every seed (no seed std), and every task in `noisy` gets large noise on
    its continuous bits per byte."""
    noisy = set(noisy)
    data = synthetic_record(track, subset, name=name).to_data()
    data["subset"]["sha256"] = hashlib.sha256(f"subset {subset}".encode()).hexdigest()
    data["entry_id"] = entry_id(track, data["subset"]["sha256"])
    runs = []
    for n in range(seeds):
        acc = quality + rng.gauss(0, 0.005)
        bpb = {t: base - quality + rng.gauss(0, 0.5 if t in noisy else 0.004)
               for t, base in (("fact_cloze", 3.0), ("next_sentence", 2.5))}  # fmt: skip
        heldout = 2.0 - quality + rng.gauss(0, 0.004)
        runs.append({
            "seed": 124 + n, "tokens_seen": 1000, "final_loss": 3.0, "wall_time_s": 1.0,
            "tasks": {"fact_cloze": acc, "next_sentence": 0.5 + rng.gauss(0, 0.05), "last_word": 0.1,
                      "heldout": heldout},
            "aggregates": {"Sandbox_v1": (acc - 0.25) / 0.75, "heldout_bpb": heldout},
            "continuous": {
                "fact_cloze": {"norm_correct_prob": acc / 2, "bits_per_byte": bpb["fact_cloze"]},
                "next_sentence": {"norm_correct_prob": 0.3 + rng.gauss(0, 0.05), "bits_per_byte": bpb["next_sentence"]},
            },
        })  # fmt: skip
    values = [r["aggregates"]["Sandbox_v1"] for r in runs]
    mean = sum(values) / len(values)
    data["replicates"] = {
        "seeds": [r["seed"] for r in runs], "runs": runs, "note": "synthetic",
        "aggregates": {"Sandbox_v1": {"n": seeds, "mean": mean, "std": None, "low": mean, "high": mean}},
    }  # fmt: skip
    for task, metrics in runs[0]["continuous"].items():
        data["evaluation"]["tasks"][task]["continuous"] = metrics
    data["evaluation"]["tasks"]["fact_cloze"]["value"] = runs[0]["tasks"]["fact_cloze"]
    data["evaluation"]["aggregates"]["Sandbox_v1"]["value"] = values[0]
    return data


def store(root: Path, tracks: dict[str, int], qualities: Iterable[float] = (0.3, 0.4, 0.5, 0.6), *,
          seed: int = 11, noisy: Iterable[str] = (), names: dict[int, str] | None = None) -> Path:  # fmt: skip
    """A results store at `root` with one record per quality (subset number = position) on each track, with the
    given seeds per entry."""
    rng = random.Random(seed)
    for track, seeds in tracks.items():
        (root / track).mkdir(parents=True, exist_ok=True)
        for s, q in enumerate(qualities):
            data = record(track, s, q, seeds, rng, noisy=noisy, name=(names or {}).get(s))
            (root / track / f"{data['entry_id']}.json").write_text(json.dumps(data))
    return root
