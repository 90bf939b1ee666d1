"""Entries anyone can verify: a bundle holds everything an entry was built from, content-addressed.

- harness.bundle.write: `make_bundle(entry, out)`, an entry folder of `harness submit` -> a bundle folder (and
  optionally a deterministic .tar.gz), every file hashed in `manifest.json`; the bundle's id is that file's sha256;
- harness.bundle.weights: the final checkpoint as safetensors (tensors only) and the check of its shapes;
- harness.bundle.read: opening a bundle (a folder or its .tar.gz) without executing anything in it: JSON, JSONL
  and safetensors only, every file checked against the manifest;
- harness.bundle.outcome: the checks and the outcome (`verification.json`) the leaderboard reads;
- harness.bundle.verify: the levels `data`, `eval`, `train` (cumulative: each one runs the ones below it first).

Layout of a bundle (docs/reference/formats.md has the fields):

    manifest.json                  format, entry, track, checkpoint, and {path: {sha256, bytes}} of every file
    record.json                    the leaderboard record, as submitted
    subset/subset-NNNNN.jsonl.gz   the validated subset materialised ({"id", "text", "repeat"}), the tokenizer's input
    validation/report.json         the validation report; validation/contamination.json its decontamination check
    data/manifest.jsonl, data/stats.json   the tokenized data's manifest and statistics
    data/shards.json               {shard file: {sha256, bytes}} (data/shards/*.tar too with --with-shards)
    checkpoint/model.safetensors   the final weights (absent with --checkpoint-url: the manifest has url + sha256)
    checkpoint/params.json         the training run's parameters (its params.txt)
    train/train_log.jsonl          the training log
    eval/eval.json                 the evaluation outputs, per-example results included
    environment.json               package versions and hardware: the record's, and the bundling machine's
"""

from __future__ import annotations

from harness.errors import UsageError

#: The bundle format written and read by this harness.
FORMAT = "harness.bundle/1"
#: The verification outcome's format.
OUTCOME_FORMAT = "harness.verification/1"
MANIFEST = "manifest.json"
VERIFICATION = "verification.json"
CHECKPOINT = "checkpoint/model.safetensors"
RECORD = "record.json"
EVAL = "eval/eval.json"
SUBSET_DIR = "subset"
DATA_MANIFEST = "data/manifest.jsonl"
DATA_STATS = "data/stats.json"
SHARD_HASHES = "data/shards.json"
SHARDS_DIR = "data/shards"
ENVIRONMENT = "environment.json"

#: The levels, lowest first; a level reached means it and every level below it passed.
LEVELS = ("data", "eval", "train")
#: The outcome's level when nothing was verified (or a check failed at the first level).
SELF_REPORTED = "self-reported"


class BundleUnusable(UsageError):
    """A bundle that cannot be verified at all (a missing or unreadable file, a checkpoint of another shape, a
    track this harness does not have): exit code 2. A mismatch between the bundle and a re-run is exit code 1."""


__all__ = [
    "CHECKPOINT",
    "DATA_MANIFEST",
    "DATA_STATS",
    "ENVIRONMENT",
    "EVAL",
    "FORMAT",
    "LEVELS",
    "MANIFEST",
    "OUTCOME_FORMAT",
    "RECORD",
    "SELF_REPORTED",
    "SHARDS_DIR",
    "SHARD_HASHES",
    "SUBSET_DIR",
    "VERIFICATION",
    "BundleUnusable",
]
