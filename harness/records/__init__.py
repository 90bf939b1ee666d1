"""Result records (one JSON file per leaderboard entry) and the results store they live in.

- harness.records.schema: the record (frozen dataclasses), its strict JSON loading and writing, entry ids;
- harness.records.evaluation: the record's evaluation blocks (task results, aggregates, replicates, contamination);
- harness.records.store: `ResultsStore`, records on any fsspec URL at `<url>/<track>/<entry_id>.json`, atomic writes;
- harness.records.parse: reading a store's files into records, in forked workers for large stores.

The rest of the harness imports the names below from here: `from harness.records import Record, ResultsStore`.
"""

from harness.records.evaluation import Aggregate, Contamination, Evaluation, ReplicateRun, Replicates, TaskResult
from harness.records.parse import StoreProblem
from harness.records.schema import (
    MAX_CURVE_POINTS,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    Hardware,
    Record,
    RecordError,
    Submission,
    SubsetStats,
    TrackRef,
    Training,
    Versions,
    downsample_curve,
    entry_id,
    now_iso,
)
from harness.records.store import RESULTS_ENV, ResultsStore, Stored, default_results_url, paused_gc

__all__ = [
    "MAX_CURVE_POINTS",
    "READABLE_SCHEMA_VERSIONS",
    "RESULTS_ENV",
    "SCHEMA_VERSION",
    "Aggregate",
    "Contamination",
    "Evaluation",
    "Hardware",
    "Record",
    "RecordError",
    "ReplicateRun",
    "Replicates",
    "ResultsStore",
    "StoreProblem",
    "Stored",
    "Submission",
    "SubsetStats",
    "TaskResult",
    "TrackRef",
    "Training",
    "Versions",
    "default_results_url",
    "downsample_curve",
    "entry_id",
    "now_iso",
    "paused_gc",
]
