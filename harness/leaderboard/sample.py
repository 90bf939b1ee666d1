"""Synthetic records for the leaderboard's tests, fixtures and benchmark (never published as results).

They have the shape of real sandbox-suite records: a few tasks with baselines, a primary accuracy aggregate and a
lower-is-better bits-per-byte aggregate, and a plausible decreasing loss curve. Deterministic in `seed`.
"""

from __future__ import annotations

import hashlib
import math
import random

from harness import __version__
from harness.records import SCHEMA_VERSION, Record, downsample_curve, entry_id

#: (task, metric, baseline, shots) of the synthetic suite.
TASKS = (
    ("fact_cloze", "acc", 0.25, 0),
    ("next_sentence", "acc_norm", 0.25, 0),
    ("last_word", "acc", 0.0, 0),
)


def synthetic_record(
    track: str,
    seed: int,
    *,
    name: str | None = None,
    track_version: int = 1,
    track_sha256: str = "0" * 64,
    curve_points: int = 400,
    created_at: str = "2026-01-01T00:00:00+00:00",
    tokens_seen: int = 5_000_000,
) -> Record:
    """A valid record for `track` whose subset hash (and so entry id) is a function of `seed`."""
    rng = random.Random(f"{track}/{seed}")
    subset_hash = hashlib.sha256(f"subset/{track}/{seed}".encode()).hexdigest()
    quality = rng.random()
    subset_tokens = int(tokens_seen * 10 ** rng.uniform(-1.0, 0.7))
    tasks = {}
    for task, metric, baseline, shots in TASKS:
        value = min(1.0, baseline + (1 - baseline) * (0.1 + 0.6 * quality) + rng.uniform(-0.03, 0.03))
        tasks[task] = {
            "metric": metric,
            "value": value,
            "baseline": baseline,
            "centered": (value - baseline) / (1 - baseline),
            "shots": shots,
            "n_samples": 500,
            "metrics": {metric: value},
            "stderr": {metric: 0.02},
            "data_hash": hashlib.sha256(task.encode()).hexdigest(),
        }
    bpb = 2.5 - 1.2 * quality + rng.uniform(-0.05, 0.05)
    tasks["heldout"] = {
        "metric": "bits_per_byte",
        "value": bpb,
        "higher_is_better": False,
        "metrics": {"bits_per_byte": bpb},
        "n_samples": 200,
    }
    centered = [t["centered"] for t in tasks.values() if t.get("centered") is not None]
    steps = 1200
    final = 2.0 + 2.0 * (1 - quality)
    curve = [
        [s, s * tokens_seen // steps, round(final + 6.0 * math.exp(-s / 150) + rng.uniform(-0.05, 0.05), 4)]
        for s in range(0, steps + 1, max(1, steps // curve_points))
    ]
    data = {
        "schema_version": SCHEMA_VERSION,
        "entry_id": entry_id(track, subset_hash),
        "created_at": created_at,
        "submission": {
            "name": name or f"{track} subset {seed}",
            "authors": [f"Author {seed % 7}", "Team Sandbox"],
            "contact": f"author{seed % 7}@example.org",
            "description": "A synthetic entry for tests.",
            "link": "https://example.org/curation",
        },
        "track": {"name": track, "version": track_version, "sha256": track_sha256},
        "pool": "sandbox-v1",
        "subset": {
            "sha256": subset_hash,
            "documents": subset_tokens // 300,
            "unique_documents": subset_tokens // 330,
            "tokens": subset_tokens,
            "bytes": subset_tokens * 4,
        },
        "tokenizer_sha256": hashlib.sha256(b"sandbox-bpe-2k").hexdigest(),
        "versions": {
            "harness": __version__,
            "git_commit": "0" * 40,
            "python": "3.11",
            "torch": "2.13.0",
            "lm_eval": "0.4.13",
        },
        "hardware": {"accelerator": "cpu", "count": 1, "nodes": 1},
        "seeds": {"train": 124, "shuffle": 124, "eval": 1234},
        "training": {
            "trainer": "native",
            "tokens_seen": tokens_seen,
            "passes": tokens_seen / subset_tokens,
            "steps": steps,
            "final_loss": curve[-1][2],
            "wall_time_s": 60.0 + seed % 30,
            "curve": downsample_curve(curve),
        },
        "evaluation": {
            "suite": "sandbox",
            "suite_version": 1,
            "primary_aggregate": "Sandbox_v1",
            "tasks": tasks,
            "aggregates": {
                "Sandbox_v1": {
                    "value": sum(centered) / len(centered),
                    "version": "sandbox@1/v1",
                    "n_tasks": len(centered),
                    "description": "Mean centered accuracy of the sandbox choice and cloze tasks.",
                },
                "heldout_bpb": {
                    "value": bpb,
                    "version": "sandbox@1",
                    "n_tasks": 1,
                    "higher_is_better": False,
                    "description": "Held-out bits per byte.",
                },
            },
        },
    }
    return Record.from_data(data, f"<synthetic {track}/{seed}>")
