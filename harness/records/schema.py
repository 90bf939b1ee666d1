"""The record schema: one leaderboard entry as frozen dataclasses, strictly loaded from and written to JSON.

A record says everything needed to trust and reproduce a score: who submitted it, the track (name, version,
hash), the pool and the subset (hash and statistics), the tokenizer hash, the trainer and library versions, the
hardware, the seeds, tokens seen and passes over the data, a compact training curve, the raw per-task metrics and
the aggregates stamped with their versions (those blocks are in harness.records.evaluation).
"""

# No `from __future__ import annotations` here: real annotations keep `from_dict`'s one-time resolution of each
# dataclass's type hints cheap (string annotations made loading 10,000 records 3x slower when it was per call).

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Literal

from harness.config import ConfigError, doc, from_dict, to_dict
from harness.errors import HarnessError
from harness.fields import MAX_INT, data_problem, submission_problems
from harness.records.evaluation import Aggregate, Contamination, Evaluation, Replicates, TaskResult

#: The record format this harness writes. Bump it on any change; older versions it still reads are listed below.
SCHEMA_VERSION = 3
#: Versions this harness reads: 2 added `replicates` and `contamination` (both optional), 3 the tasks' and
#: replicate runs' `continuous` metrics (optional), so each is a subset of the next.
READABLE_SCHEMA_VERSIONS = (1, 2, 3)

#: Training curves are downsampled to at most this many points so the record stays small.
MAX_CURVE_POINTS = 200

#: Most seeds (by purpose) a record names.
MAX_SEEDS = 64

_ENTRY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*-[0-9a-f]{12}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class RecordError(HarnessError):
    """A record file that cannot be read: bad JSON, an unknown schema version or a schema violation."""


def entry_id(track_name: str, subset_hash: str) -> str:
    """The entry id of a subset on a track: `<track>-<first 12 hex of sha256(track + subset_hash)>`.

    The same subset on the same track is the same entry, so a re-run replaces its record.
    """
    return f"{track_name}-{hashlib.sha256((track_name + subset_hash).encode()).hexdigest()[:12]}"


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
        problems = submission_problems(
            name=self.name, authors=self.authors, description=self.description, link=self.link, name_required=True,
            contact=self.contact,
        )  # fmt: skip
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
    threads: int = doc(
        "CPU threads of the training process (0: not recorded); a CPU run re-trains bit for bit only with as many.",
        default=0,
    )


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
    compiled: bool = doc(
        "Whether the native trainer ran its step under torch.compile (a re-training matches bit for bit only when "
        "compiled, or eager, as this one was).",
        default=False,
    )
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
        if len(self.seeds) > MAX_SEEDS:
            raise ValueError(f"'seeds' holds {len(self.seeds)} seeds; at most {MAX_SEEDS} are allowed")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in self.seeds.values()):
            raise ValueError(f"'seeds' values must be integers, got {self.seeds!r}")

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
        problem = data_problem(data)  # every string and number, whatever field holds it (harness.fields)
        if problem:
            raise RecordError(f"{source}: {problem}")
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
        except ValueError as exc:  # an integer literal of more than 4,300 digits (sys.get_int_max_str_digits)
            raise RecordError(
                f"{source}: holds an integer too long to read ({exc}); integers must lie within +-{MAX_INT:,}"
            ) from None
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


def now_iso() -> str:
    """The current UTC time as `created_at` wants it (second resolution)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()
