"""Result records (one JSON file per leaderboard entry) and the results store they live in.

A record says everything needed to trust and reproduce a score: who submitted it, the track (name, version,
hash), the pool and the subset (hash and statistics), the tokenizer hash, the trainer and library versions, the
hardware, the seeds, tokens seen and passes over the data, a compact training curve, the raw per-task metrics and
the aggregates stamped with their versions.

The store keeps one file per entry at `<url>/<track>/<entry_id>.json` on any fsspec URL (a local folder or
`s3://bucket/prefix`). Writes are atomic: locally a temporary file renamed into place, on object stores a single
PUT (which readers see whole or not at all). Entries never share a file, so concurrent writers cannot lose each
other's records; re-adding an entry id replaces that entry (a re-run of the same subset on the same track).
"""

# No `from __future__ import annotations` here: real annotations keep `from_dict`'s one-time resolution of each
# dataclass's type hints cheap (string annotations made loading 10,000 records 3x slower when it was per call).

import gc
import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Literal

from harness.config import ConfigError, doc, from_dict, to_dict
from harness.errors import HarnessError, UsageError

#: The record format this harness writes. Bump it on any change; older versions it still reads are listed below.
SCHEMA_VERSION = 2
#: Versions this harness reads: 2 added `replicates` and `contamination` (both optional), so 1 is a subset of it.
READABLE_SCHEMA_VERSIONS = (1, 2)

#: Training curves are downsampled to at most this many points so the record stays small.
MAX_CURVE_POINTS = 200

#: Where records go when no --results URL is given: $HARNESS_RESULTS, else ./results.
RESULTS_ENV = "HARNESS_RESULTS"

_ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*-[0-9a-f]{12}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class RecordError(HarnessError):
    """A record file that cannot be read: bad JSON, an unknown schema version or a schema violation."""


def entry_id(track_name: str, subset_hash: str) -> str:
    """The entry id of a subset on a track: `<track>-<first 12 hex of sha256(track + subset_hash)>`.

    The same subset on the same track is the same entry, so a re-run replaces its record.
    """
    return f"{track_name}-{hashlib.sha256((track_name + subset_hash).encode()).hexdigest()[:12]}"


def default_results_url() -> str:
    return os.environ.get(RESULTS_ENV) or "results"


def downsample_curve(points: Sequence[Sequence[float]], max_points: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """At most `max_points` of a [step, tokens, loss] curve, evenly spaced by index, first and last kept.

    Points are kept as logged (not averaged) so every value in the record is one the trainer reported.
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    pts = [list(p) for p in points]
    if len(pts) <= max_points:
        return pts
    last = len(pts) - 1
    picks = sorted({round(i * last / (max_points - 1)) for i in range(max_points)})
    return [pts[i] for i in picks]


@dataclass(frozen=True, kw_only=True)
class Submission:
    """Who submitted the entry and what it is."""

    name: str = doc("Display name of the entry (any text; the site escapes it).")
    authors: tuple[str, ...] = doc("Author names.", default=())
    contact: str = doc("E-mail address or other contact.", default="")
    description: str = doc("What the curation does, in a sentence or a paragraph.", default="")
    link: str = doc("http(s) URL of the code or paper ('' = none).", default="")

    def __post_init__(self) -> None:
        from harness.fields import submission_problems

        problems = submission_problems(
            name=self.name, authors=self.authors, description=self.description, link=self.link, name_required=True
        )
        if problems:
            raise ValueError(f"'submission': {problems[0]}")


@dataclass(frozen=True, kw_only=True)
class TrackRef:
    """The track the entry ran on, pinned by version and hash."""

    name: str = doc("Track name (tracks/<name>.toml).")
    version: int = doc("Track version at the time of the run.")
    sha256: str = doc("Track.sha256: hash of the track's canonical JSON.")
    base: str = doc("The track this one multiplies ('nano' for nano-4x; '' = the track itself).", default="")
    scale: float = doc("Compute multiplier: the token budget over the base track's (DCLM's 1x, 2x, 5x).", default=1.0)

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or not _HEX64.fullmatch(self.sha256):
            raise ValueError(f"'track.sha256' must be 64 lowercase hex digits, got {self.sha256!r}")


@dataclass(frozen=True, kw_only=True)
class SubsetStats:
    """The canonical subset that was trained on."""

    sha256: str = doc("Hash of the canonical (validated) subset; with the track it defines the entry id.")
    documents: int = doc("Documents in the subset, repeats counted.")
    unique_documents: int = doc("Distinct documents in the subset.")
    tokens: int = doc("Tokens of the tokenized subset (one pass).")
    unique_tokens: int = doc("Tokens of its distinct documents, each counted once (0 = not recorded).", default=0)
    bytes: int = doc("UTF-8 bytes of the subset's text (one pass).", default=0)


@dataclass(frozen=True, kw_only=True)
class Versions:
    """Software that produced the result ('' = not used or unknown)."""

    harness: str = doc("harness package version.")
    git_commit: str = doc("git commit of the harness checkout ('' when installed from a wheel).", default="")
    python: str = doc("Python version.", default="")
    torch: str = doc("torch version.", default="")
    lm_eval: str = doc("lm-eval version.", default="")
    open_lm: str = doc("open_lm version or commit, when the open_lm trainer was used.", default="")


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """Where it ran (informational: tracks never depend on hardware)."""

    accelerator: str = doc("Device model, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu'.")
    count: int = doc("Devices used in total.", default=1)
    nodes: int = doc("Machines used.", default=1)
    cpu: str = doc("CPU model.", default="")


@dataclass(frozen=True, kw_only=True)
class Training:
    """What training did."""

    trainer: Literal["native", "open_lm"] = doc("Which trainer ran the recipe.")
    tokens_seen: int = doc("Tokens the model was trained on.")
    passes: float = doc("Passes over the subset: tokens_seen / subset tokens (repeats make it > 1).")
    unique_passes: float = doc(
        "Times each distinct document was seen on average: tokens_seen / subset.unique_tokens (0 = unknown).",
        default=0.0,
    )
    steps: int = doc("Optimizer steps taken.")
    final_loss: float = doc("Training loss at the last step.")
    wall_time_s: float = doc("Wall-clock training time in seconds.")
    # Typed Any for from_dict and checked (and made a tuple of tuples) in __post_init__: converting 600 numbers
    # one by one through from_dict would dominate the time to load 10,000 records.
    curve: Any = doc(f"[step, tokens, loss] points, at most {MAX_CURVE_POINTS} (see downsample_curve).", default=())

    def __post_init__(self) -> None:
        raw = self.curve
        if not isinstance(raw, list | tuple):
            raise ValueError(f"'training.curve' must be a list of [step, tokens, loss], got {raw!r}")
        if len(raw) > MAX_CURVE_POINTS:
            raise ValueError(f"'training.curve' has {len(raw)} points; at most {MAX_CURVE_POINTS} allowed")
        # The whole check in C-level passes (map, set): point by point in Python it was a third of the time to
        # load 10,000 records. Only bad data takes the slow search for the culprit.
        ok = set(map(type, raw)) <= {list, tuple}
        curve = tuple(map(tuple, raw)) if ok else ()
        if not ok or set(map(len, curve)) - {3} or not set(map(type, chain.from_iterable(curve))) <= {int, float}:
            for i, point in enumerate(raw):
                if (
                    not isinstance(point, list | tuple)
                    or len(point) != 3
                    or not {type(v) for v in point} <= {int, float}
                ):
                    raise ValueError(f"'training.curve[{i}]' must be [step, tokens, loss] numbers, got {point!r}")
        object.__setattr__(self, "curve", curve)
        if self.tokens_seen < 0 or self.steps < 0 or self.passes < 0 or self.wall_time_s < 0:
            raise ValueError("'training' counts and times must be non-negative")


def _check_numbers(where: str, mapping: dict[str, Any]) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"'{where}.{key}' must be a number, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """One evaluation task: the scored metric, its random baseline and every raw metric lm-eval reported."""

    metric: str = doc("Name of the scored metric in `metrics` (e.g. 'acc_norm', 'bits_per_byte').")
    value: float = doc("Raw value of the scored metric.")
    higher_is_better: bool = doc("Direction of the scored metric.", default=True)
    baseline: float | None = doc("Random-guess baseline of the metric (None when not an accuracy).", default=None)
    centered: float | None = doc(
        "(value - baseline) / (1 - baseline), unclipped; None without a baseline.", default=None
    )
    shots: int | None = doc("Few-shot examples in the prompt.", default=None)
    n_samples: int | None = doc("Examples evaluated.", default=None)
    metrics: dict[str, float] = doc("Every raw metric of the task.", default_factory=dict)
    stderr: dict[str, float] = doc("Standard errors of the raw metrics.", default_factory=dict)
    data_hash: str = doc("Revision or file hash of the task's data.", default="")

    def __post_init__(self) -> None:
        _check_numbers("metrics", self.metrics)
        _check_numbers("stderr", self.stderr)


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    """A summary score over tasks, stamped with its version. `value` is None when a task is missing."""

    value: float | None = doc("The score; None when any of its tasks is missing (never a mean over fewer).")
    version: int | str = doc("Version stamp of the aggregate's definition, e.g. 'core@1/v2' (suite@version/baselines).")
    n_tasks: int = doc("Tasks the aggregate is defined over.")
    missing: tuple[str, ...] = doc("Tasks without a result (then value is None).", default=())
    reason: str = doc("Why the value is absent, when it is.", default="")
    higher_is_better: bool = doc(
        "Sort direction: True for accuracies, False for losses and bits per byte.", default=True
    )
    description: str = doc("One line shown in the leaderboard header's tooltip.", default="")

    def __post_init__(self) -> None:
        if self.missing and self.value is not None:
            raise ValueError(f"an aggregate with missing tasks ({', '.join(self.missing)}) must have value null")


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The suite's results."""

    suite: str = doc("Suite id (evaluation/<id>.toml).")
    suite_version: int | str = doc("Suite version.")
    primary_aggregate: str = doc("Name of the aggregate the leaderboard ranks by (e.g. 'Core_v2').")
    tasks: dict[str, TaskResult] = doc("Per-task results by task name.", default_factory=dict)
    aggregates: dict[str, Aggregate] = doc("Aggregates by name.", default_factory=dict)
    heldout_lm: dict[str, float] = doc(
        "Language modelling on the suite's clean held-out text: loss (nats/token), accuracy (next token), "
        "perplexity (exp loss), tokens; empty when the suite has no held-out text.",
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        _check_numbers("heldout_lm", self.heldout_lm)
        if self.primary_aggregate not in self.aggregates:
            raise ValueError(
                f"'evaluation.primary_aggregate' {self.primary_aggregate!r} is not among the aggregates "
                f"({', '.join(sorted(self.aggregates)) or 'none'})"
            )


@dataclass(frozen=True, kw_only=True)
class ReplicateRun:
    """One replicate: the same subset trained with another seed (initialisation and data order)."""

    seed: int = doc("Seed of this replicate's initialisation and data order.")
    tokens_seen: int = doc("Tokens trained on.")
    final_loss: float = doc("Training loss at the last step.")
    wall_time_s: float = doc("Wall-clock training time in seconds.")
    tasks: dict[str, float] = doc("Scored metric of every task.", default_factory=dict)
    aggregates: dict[str, float | None] = doc("Every aggregate (None when a task is missing).", default_factory=dict)
    examples: dict[str, Any] = doc(
        "Per-example outcomes by task and subtask, packed (harness.analysis.stats.pack_examples), for paired comparisons.",
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        _check_numbers("tasks", self.tasks)
        _check_numbers("aggregates", {k: v for k, v in self.aggregates.items() if v is not None})


@dataclass(frozen=True, kw_only=True)
class Replicates:
    """The entry's replicates and, per aggregate, their mean, standard deviation and 95% interval."""

    seeds: tuple[int, ...] = doc("Seeds of the replicates, the official one first.")
    runs: tuple[ReplicateRun, ...] = doc("One per seed, in order.")
    aggregates: dict[str, Any] = doc(
        "Per aggregate: {n, mean, std (None with one replicate), low, high, example_stderr} (harness.analysis.stats.spread)."
    )
    note: str = doc("How to read the interval (e.g. that one replicate has no seed spread).", default="")

    def __post_init__(self) -> None:
        if (
            not self.seeds
            or len(self.seeds) != len(self.runs)
            or any(r.seed != s for r, s in zip(self.runs, self.seeds, strict=True))
        ):
            raise ValueError("'replicates.runs' must hold one run per seed of 'replicates.seeds', in order")
        for name, stat in self.aggregates.items():
            if not isinstance(stat, dict) or not {"n", "mean", "std", "low", "high"} <= set(stat):
                raise ValueError(f"'replicates.aggregates.{name}' needs n, mean, std, low and high")


@dataclass(frozen=True, kw_only=True)
class Contamination:
    """N-gram overlap between the subset and the suite's evaluation items (harness.submit.decontam)."""

    suite: str = doc("Suite whose items were checked.")
    ngram: int = doc("n of the word n-grams compared.")
    min_coverage: float = doc("Share of an item's n-grams a document must contain to contaminate it.")
    documents_scanned: int = doc("Subset documents read.")
    contaminated_documents: int = doc("Documents that contaminate at least one item.")
    contaminated_items: int = doc("Items contaminated, over all tasks.")
    items: int = doc("Items checked, over all tasks.")
    tasks: dict[str, Any] = doc("Per task: {items, contaminated, item_ids, documents} (see harness.submit.decontam).")
    rule: Literal["report", "reject"] = doc("The track's rule for contaminated subsets.", default="report")


@dataclass(frozen=True, kw_only=True)
class Record:
    """One leaderboard entry: a subset trained and evaluated on a track."""

    schema_version: int = doc(f"Record format version (this harness writes {SCHEMA_VERSION}).")
    entry_id: str = doc("entry_id(track.name, subset.sha256); also the file name.")
    created_at: str = doc("ISO 8601 time with offset, when the record was written.")
    submission: Submission = doc("Who and what.")
    track: TrackRef = doc("Track name, version and hash.")
    pool: str = doc("Pool id the subset was validated against.")
    subset: SubsetStats = doc("Subset hash and statistics.")
    tokenizer_sha256: str = doc("sha256 of the tokenizer.json used.")
    versions: Versions = doc("Software versions.")
    hardware: Hardware = doc("Hardware used.")
    seeds: dict[str, int] = doc("Every seed used, by purpose (e.g. train, shuffle, eval).", default_factory=dict)
    training: Training = doc("Training summary and curve.")
    evaluation: Evaluation = doc("Per-task metrics and aggregates (of the official seed, the track's first).")
    replicates: Replicates | None = doc(
        "Every replicate's metrics and their spread (schema 2; None before).", default=None
    )
    contamination: Contamination | None = doc(
        "Overlap of the subset with the suite's items (harness.submit.decontam; schema 2; None before).", default=None
    )

    def __post_init__(self) -> None:
        if self.schema_version not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(f"'schema_version' must be one of {READABLE_SCHEMA_VERSIONS}, got {self.schema_version}")
        expected = entry_id(self.track.name, self.subset.sha256)
        if self.entry_id != expected or not _ENTRY_ID.fullmatch(self.entry_id):
            raise ValueError(f"'entry_id' is {self.entry_id!r} but track and subset hash give {expected!r}")
        for key, value in (("subset.sha256", self.subset.sha256), ("tokenizer_sha256", self.tokenizer_sha256)):
            if not isinstance(value, str) or not _HEX64.fullmatch(value):  # fullmatch: `$` would allow a newline
                raise ValueError(f"{key!r} must be 64 lowercase hex digits, got {value!r}")
        try:
            stamp = datetime.fromisoformat(self.created_at)
        except ValueError:
            raise ValueError(f"'created_at' is not an ISO 8601 time: {self.created_at!r}") from None
        if stamp.tzinfo is None:
            raise ValueError(f"'created_at' needs a UTC offset (e.g. +00:00): {self.created_at!r}")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in self.seeds.values()):
            raise ValueError(f"'seeds' values must be integers, got {self.seeds!r}")

    @property
    def record_id(self) -> str:
        """The store key: the entry id (one record per entry; a re-run replaces it)."""
        return self.entry_id

    @property
    def primary(self) -> Aggregate:
        return self.evaluation.aggregates[self.evaluation.primary_aggregate]

    def to_data(self) -> dict[str, Any]:
        """The record as JSON data. The curve is copied directly: walking its 600 numbers through `to_dict`
        would make writing a 10,000-entry site several times slower."""
        data = {f.name: to_dict(getattr(self, f.name)) for f in fields(self) if f.name != "training"}
        training = {f.name: to_dict(getattr(self.training, f.name)) for f in fields(Training) if f.name != "curve"}
        training["curve"] = [list(p) for p in self.training.curve]
        data["training"] = training
        return {f.name: data[f.name] for f in fields(self)}  # field order, as to_dict writes it

    def to_json(self, *, compact: bool = False) -> str:
        """Indented JSON, with the training curve on one line (200 points would otherwise take 800 lines).

        `compact`: one line, about 5x faster to write (the C encoder), for bulk copies such as the site's.
        """
        data = self.to_data()
        if compact:
            return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        curve = json.dumps(data["training"]["curve"], separators=(",", ":"), allow_nan=False)
        data["training"]["curve"] = marker = f"@curve-{uuid.uuid4().hex}@"
        text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
        return text.replace(json.dumps(marker), curve, 1) + "\n"

    @classmethod
    def from_data(cls, data: Any, source: str) -> "Record":
        """Strictly load a record; an unknown schema version is an error that says which versions are read."""
        if not isinstance(data, dict):
            raise RecordError(f"{source}: a record must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise RecordError(
                f"{source}: record schema_version {version!r} is not supported; this harness reads versions "
                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}. Upgrade harness to read newer records, or "
                "re-create the record."
            )
        try:
            return from_dict(cls, _typed_mappings(data, source), source)
        except ConfigError as exc:
            raise RecordError(str(exc)) from exc

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<record>") -> "Record":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordError(f"{source}: not valid JSON: {exc}") from exc
        except RecursionError:
            raise RecordError(f"{source}: not valid JSON: nested too deeply to parse") from None
        return cls.from_data(data, source)


def _typed_mappings(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Convert the name -> dataclass mappings that `from_dict` leaves as plain dicts."""
    ev = data.get("evaluation")
    if not isinstance(ev, dict):
        return data
    ev = dict(ev)
    for key, cls in (("tasks", TaskResult), ("aggregates", Aggregate)):
        raw = ev.get(key)
        if isinstance(raw, dict):
            ev[key] = {name: from_dict(cls, value, source, f"evaluation.{key}.{name}") for name, value in raw.items()}
    return {**data, "evaluation": ev}


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work on records. Loading 10,000 records allocates millions
    of objects that all stay alive, and each collection walks them again: 28% of a serial load and 3/4 of
    unpickling, measured. Records hold no reference cycles; anything cyclic made meanwhile is collected once the
    pause ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def now_iso() -> str:
    """The current UTC time as `created_at` wants it (second resolution)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class StoreProblem:
    """A file in the store that was skipped, and why."""

    path: str
    message: str


@dataclass(frozen=True)
class Stored:
    """A record's bytes as they were read from a store, and the local file they were read from (None for object
    stores). The file may have been replaced since; compare before trusting it to hold `data`."""

    data: bytes
    path: str | None


@dataclass
class ResultsStore:
    """Records on any fsspec URL: `<url>/<track>/<entry_id>.json`."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import fsspec

        self.url = self.url.rstrip("/") or "/"
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = self.root.rstrip("/")
        self._local = "file" in _protocols(self.fs)

    def path_of(self, entry: str) -> str:
        return _path_in(self.root, entry)

    def add(self, record: Record) -> str:
        """Write `record` atomically (replacing an earlier record of the same entry); returns its path."""
        final = self.path_of(record.entry_id)
        blob = record.to_json().encode("utf-8")
        if self._local:
            # A unique temporary name in the same folder, then a rename: readers never see a partial file and
            # concurrent writers of different entries never touch the same name.
            from pathlib import Path

            from harness.io.leftovers import owner_tag, sweep

            os.makedirs(os.path.dirname(final), exist_ok=True)
            sweep(Path(os.path.dirname(final)), ".*.tmp")  # what killed writers left; live writers' files stay
            tmp = f"{os.path.dirname(final)}/.{record.entry_id}.{owner_tag()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        else:
            # Object stores have no rename; a single PUT is atomic (old or new object, never a partial one).
            self.fs.pipe_file(final, blob)
        return final

    def _files(self, track: str | None) -> list[str]:
        pattern = f"{self.root}/{track or '*'}/*.json"
        try:
            paths = self.fs.glob(pattern)
        except FileNotFoundError:
            return []
        # Temporary files start with a dot; glob's '*' does not match them on every filesystem, so be explicit.
        return sorted(p for p in paths if not p.rsplit("/", 1)[-1].startswith("."))

    def load(self, track: str | None = None) -> tuple[list[Record], list[StoreProblem], dict[str, Stored]]:
        """As `list`, plus each valid record's stored bytes (and local file) by entry id: the leaderboard's copies
        of the records are these bytes, not the records serialized again."""
        paths = self._files(track)
        with paused_gc():
            if self._local and _parse_workers(len(paths)) > 1:  # each worker reads its own files
                items = [(path, path, _UNREAD) for path in paths]
            else:  # one concurrent fetch (object stores), or small stores
                blobs = self.fs.cat(paths, on_error="return") if paths else {}
                items = [(p, p if self._local else self.fs.unstrip_protocol(p), blobs.get(p)) for p in paths]
            results = _parse_items(items, self.root)
            records = [r for r, _ in results if isinstance(r, Record)]
            sources = {
                r.entry_id: Stored(blob, path if self._local else None)
                for (path, _, _), (r, blob) in zip(items, results, strict=True)
                if isinstance(r, Record) and blob is not None
            }
        return records, [r for r, _ in results if isinstance(r, StoreProblem)], sources

    def list(self, track: str | None = None) -> tuple[list[Record], list[StoreProblem]]:
        """Every valid record (of `track`, or all), and the files skipped with the reason."""
        records, problems, _ = self.load(track)
        return records, problems

    def get(self, entry: str) -> Record:
        """The record of entry id `entry`; a clear error when absent or invalid."""
        path = self.path_of(entry)
        try:
            blob = self.fs.cat_file(path)
        except FileNotFoundError:
            raise UsageError(f"no record {entry!r} in results store {self.url} (looked for {path})") from None
        return Record.from_json(blob, path)


def _path_in(root: str, entry: str) -> str:
    return f"{root}/{entry.rsplit('-', 1)[0]}/{entry}.json"


#: In place of a local file's bytes: the worker that parses the file reads it (in parallel, not all in the parent).
_UNREAD = object()
_Parsed = tuple["Record | StoreProblem", bytes | None]


def _parse_one(path: str, shown: str, blob: Any, root: str) -> _Parsed:
    """The record in `blob` (or the problem), with its bytes."""
    if blob is _UNREAD:
        try:
            with open(path, "rb") as fh:
                blob = fh.read()
        except OSError as exc:
            blob = exc
    if isinstance(blob, BaseException) or blob is None:
        return StoreProblem(shown, f"cannot read: {blob}"), None
    try:
        record = Record.from_json(blob, shown)
    except RecordError as exc:
        return StoreProblem(shown, str(exc)), None
    if _path_in(root, record.entry_id) != path:
        where = f"{record.entry_id}.json in folder {record.track.name}/"
        return StoreProblem(shown, f"holds entry {record.entry_id!r}; expected at {where}"), None
    return record, blob


#: Stores with at least this many files are parsed in forked worker processes (validation is the slow part).
PARALLEL_PARSE_ABOVE = 2000
_PARSE_STATE: tuple[list[tuple[str, str, Any]], str] | None = None


def _parse_span(span: tuple[int, int]) -> list[_Parsed]:
    items, root = _PARSE_STATE  # type: ignore[misc]  # inherited from the parent by fork, never pickled
    return [_parse_one(*item, root) for item in items[span[0] : span[1]]]


def _parse_workers(n: int) -> int:
    """Processes to parse `n` files: one per CPU (at most 8) for large stores where fork is available, else one."""
    if n < PARALLEL_PARSE_ABOVE or sys.platform != "linux":
        return 1
    return min(8, os.cpu_count() or 1)


def _parse_items(items: list[tuple[str, str, Any]], root: str) -> list[_Parsed]:
    global _PARSE_STATE
    workers = _parse_workers(len(items))
    if workers == 1:
        return [_parse_one(*item, root) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(100, len(items) // (workers * 4))
    spans = [(i, min(i + chunk, len(items))) for i in range(0, len(items), chunk)]
    _PARSE_STATE = (items, root)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return [result for part in pool.map(_parse_span, spans) for result in part]
    finally:
        _PARSE_STATE = None


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
