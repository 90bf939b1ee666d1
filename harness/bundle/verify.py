"""`verify_bundle`: re-derive a bundle's claims at a level and say what matched and what did not.

The levels are cumulative: `eval` runs the `data` checks first and `train` runs both; a level whose checks fail
stops there (the levels above it are not run, and the outcome's `level` is the highest one that passed).

- data: every file matches the manifest; the record agrees with the manifest, the evaluation outputs and the data
  statistics; the subset validates against the track with the recorded subset hash; it re-tokenizes to the
  recorded data manifest, statistics and shard sha256s;
- eval (harness.bundle.rerun): the checkpoint re-evaluates to the recorded per-task scores and aggregates;
- train (harness.bundle.rerun, CPU tracks only): the re-tokenized data trains to the recorded loss, tokens and
  bit-identical weights, whose scores are the recorded ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bundle import (
    DATA_MANIFEST,
    DATA_STATS,
    EVAL,
    LEVELS,
    RECORD,
    SHARD_HASHES,
    SUBSET_DIR,
    BundleUnusable,
)
from harness.bundle.outcome import Outcome
from harness.bundle.read import Bundle, check_files, open_bundle
from harness.errors import UsageError

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.tracks import Track

#: Stats of the tokenized data that re-tokenizing must reproduce (the fingerprint names input paths: left out).
STATS_COMPARED = ("sequences", "tokens", "text_tokens", "eot_tokens", "padding_tokens", "documents",
                  "documents_expanded", "text_bytes", "shards", "shard_sequences", "context", "seed",
                  "tokenizer_sha256", "eot_id", "pad_id", "subset_hash", "format_version")  # fmt: skip


def verify_bundle(
    source: str | Path,
    level: str = "data",
    *,
    out: str | Path | None = None,
    device: str | None = None,
    tolerance: float | None = None,
    work_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[Outcome, Path]:
    """Verify the bundle `source` (a folder or its .tar.gz) up to `level`; write the outcome (default:
    verification.json beside the manifest) and return it with its path. Raises BundleUnusable (exit 2) for a
    bundle that cannot be verified; mismatches are in the outcome (`outcome.ok` False: exit 1)."""
    from harness.bundle.rerun import default_tolerance, is_cpu_track, verify_eval, verify_train

    if level not in LEVELS:
        raise UsageError(f"unknown level {level!r}: choose one of {', '.join(LEVELS)}")
    with open_bundle(source) as bundle:
        track = _track(bundle)
        if level == "train" and not is_cpu_track(track):
            raise BundleUnusable(
                f"track {track.name} trains on GPUs: the train level re-runs whole entries of CPU tracks only (debug, "
                "nano); a GPU track's training is checked by a spot check of its first steps, which this harness does "
                "not implement. Verify --level eval instead"
            )
        record = _record(bundle)
        dev = device or ("cpu" if record["hardware"].get("accelerator", "cpu") == "cpu" else "cuda")
        tol = default_tolerance(track, record, dev) if tolerance is None else tolerance
        outcome = Outcome(bundle.bundle_hash, record["entry_id"], track.name, level, dev, tol)
        with tempfile.TemporaryDirectory(prefix="harness-verify-", dir=work_dir) as tmp:
            shards = verify_data(bundle, track, record, outcome, Path(tmp), progress)
            if level != "data":
                if outcome.failed():
                    outcome.notes.append("the data level failed: the eval level was not run")
                else:
                    verify_eval(bundle, track, record, outcome, Path(tmp), progress)
            if level == "train":
                if outcome.failed():
                    outcome.notes.append("a lower level failed: the train level was not run")
                else:
                    verify_train(bundle, track, record, outcome, shards, Path(tmp), progress)
        path = outcome.write(out or bundle.default_outcome_path())
    return outcome, path


def _track(bundle: Bundle) -> Track:
    from harness.tracks import get_track

    ref = bundle.manifest["track"]
    name = ref.get("name") if isinstance(ref, dict) else None
    try:
        track = get_track(str(name))
    except UsageError as exc:
        raise BundleUnusable(f"{bundle.source}: the bundle's track: {exc}") from None
    if track.sha256 != ref.get("sha256"):
        raise BundleUnusable(
            f"{bundle.source}: made under track {track.name} version {ref.get('version')} (sha256 "
            f"{str(ref.get('sha256'))[:16]}...); this harness has version {track.version} ({track.sha256[:16]}...): "
            f"verify it with harness {bundle.manifest.get('harness_version', '?')}, which made it"
        )
    return track


def _record(bundle: Bundle) -> dict[str, Any]:
    """The record's data, loaded strictly (a record that does not load is unusable)."""
    from harness.records import Record, RecordError

    data = bundle.json(RECORD)
    try:
        Record.from_data(data, str(bundle.path(RECORD)))
    except (RecordError, ValueError) as exc:
        raise BundleUnusable(f"{bundle.path(RECORD)}: not a valid record: {exc}") from None
    return data


# ---------------------------------------------------------------------------------------------------- data


def verify_data(
    bundle: Bundle, track: Track, record: dict[str, Any], outcome: Outcome, work: Path, progress: Progress | None
) -> Path | None:
    """The data level; returns the folder of the re-tokenized shards (None when the subset did not validate)."""
    check_files(bundle, outcome)
    _check_record(bundle, track, record, outcome)
    if not _check_subset(bundle, track, record, outcome, progress):
        outcome.add("data", "tokenization", False, "not re-tokenized: the subset does not validate")
        return None
    return _check_tokens(bundle, track, record, outcome, work, progress)


def _check_record(bundle: Bundle, track: Track, record: dict[str, Any], outcome: Outcome) -> None:
    """The record agrees with the manifest, the evaluation outputs (eval.json) and the data statistics."""
    from harness.evaluate.signal import PREFIX as SIGNAL_PREFIX
    from harness.submit.record import evaluation_for_record

    m = bundle.manifest
    rec = RECORD
    pairs = [
        ("entry_id", record["entry_id"], m["entry_id"]),
        ("track", record["track"]["name"], track.name),
        ("track sha256", record["track"]["sha256"], track.sha256),
        ("subset sha256", record["subset"]["sha256"], m.get("subset_sha256")),
    ]
    stats = bundle.json(DATA_STATS)
    pairs += [
        ("subset sha256 of the tokenized data", record["subset"]["sha256"], stats.get("subset_hash")),
        ("tokenizer sha256", record["tokenizer_sha256"], stats.get("tokenizer_sha256")),
        ("subset tokens", record["subset"]["tokens"], stats.get("tokens", 0) - stats.get("padding_tokens", 0)),
    ]
    evaluation = bundle.json(EVAL)
    try:
        derived = evaluation_for_record(evaluation)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleUnusable(f"{bundle.path(EVAL)}: not an evaluation output of `harness evaluate` ({exc})") from None
    recorded = record["evaluation"]
    for name in sorted(set(recorded["tasks"]) | set(derived["tasks"])):
        value = recorded["tasks"].get(name, {}).get("value")
        pairs.append((f"task {name}", value, derived["tasks"].get(name, {}).get("value")))
    for name in sorted(set(recorded["aggregates"]) | set(derived["aggregates"])):
        if name.startswith(SIGNAL_PREFIX) and name not in recorded["aggregates"]:
            continue  # a signal aggregate derived after the record was made (harness.evaluate.signal)
        value = recorded["aggregates"].get(name, {}).get("value")
        pairs.append((f"aggregate {name}", value, derived["aggregates"].get(name, {}).get("value")))
    bad = [(what, a, b) for what, a, b in pairs if a != b]
    for what, a, b in bad:
        source = EVAL if what.startswith(("task", "aggregate")) else DATA_STATS if "tokeni" in what else "the bundle"
        diff = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
        outcome.add("data", f"{rec}: {what}", False, f"the record says {a!r}, {source} says {b!r}", diff)
    if not bad:
        outcome.add("data", "record", True, f"{rec} agrees with the manifest, {EVAL} and {DATA_STATS} ({len(pairs)} "
                    "values)")  # fmt: skip


def _check_subset(
    bundle: Bundle, track: Track, record: dict[str, Any], outcome: Outcome, progress: Progress | None
) -> bool:
    from harness.submit.validate import validate_subset

    folder = bundle.root / SUBSET_DIR
    if not any(rel.startswith(SUBSET_DIR + "/") for rel in bundle.files):
        raise BundleUnusable(f"{bundle.source}: the manifest lists no subset files ({SUBSET_DIR}/*.jsonl.gz)")
    report = validate_subset(track, folder, progress=progress)
    if not report.ok:
        first = report.problems[0] if report.problems else None
        where = f" (first: {Path(first.file).name} line {first.line}: {first.code}: {first.message})" if first else ""
        outcome.add("data", "subset", False, f"does not validate against track {track.name}: {report.n_problems:,} "
                    f"problems{where}")  # fmt: skip
        return False
    want = record["subset"]["sha256"]
    same = report.subset_hash == want
    detail = (
        f"validates against track {track.name}: {report.stats.documents:,} documents, subset hash {want[:16]}..."
        if same
        else f"validates, but its subset hash is {report.subset_hash[:16]}..., the record's {want[:16]}...: the "
        "documents, repeats or texts differ from those submitted"
    )
    outcome.add("data", "subset", same, detail)
    return True


def _check_tokens(
    bundle: Bundle, track: Track, record: dict[str, Any], outcome: Outcome, work: Path, progress: Progress | None
) -> Path:
    from harness.data.tokenize import tokenize_for_track
    from harness.io.files import file_sha256
    from harness.submit.materialize import materialize_subset

    # materialised again as the validate stage does (pool texts resolved, canonical order): an honest bundle's
    # subset files come back byte for byte, and whatever was edited into them is tokenized as a submit would
    files = materialize_subset(bundle.root / SUBSET_DIR, track, work / "subset", progress=progress)
    bundled = sorted(rel for rel in bundle.files if rel.startswith(SUBSET_DIR + "/"))
    same = [f"{SUBSET_DIR}/{f.name}" for f in files] == bundled and all(
        f.read_bytes() == (bundle.root / rel).read_bytes() for f, rel in zip(files, bundled, strict=True)
    )
    if not same:
        outcome.add("data", f"{SUBSET_DIR}/", False, "materialising the subset again gives other files: they are not "
                    "the validated subset as the submit wrote it")  # fmt: skip
    shards = work / "shards"
    stats = tokenize_for_track(
        track, [str(f) for f in files], str(shards), progress=progress, subset_hash=record["subset"]["sha256"]
    )
    fresh, recorded = stats.to_dict(), bundle.json(DATA_STATS)
    differ = [k for k in STATS_COMPARED if fresh.get(k) != recorded.get(k)]
    for k in differ:
        outcome.add("data", f"{DATA_STATS}: {k}", False, f"recorded {recorded.get(k)!r}, re-tokenized {fresh.get(k)!r}")
    same_manifest = (shards / "manifest.jsonl").read_bytes() == bundle.path(DATA_MANIFEST).read_bytes()
    if not same_manifest:
        outcome.add("data", DATA_MANIFEST, False, "re-tokenizing gives another data manifest (shard sizes differ)")
    want = bundle.json(SHARD_HASHES)
    got = {p.name: file_sha256(p) for p in sorted(shards.glob("shard_*.tar"))}
    bad_shards = [n for n in sorted(set(want) | set(got)) if want.get(n, {}).get("sha256") != got.get(n)]
    for name in bad_shards[:10]:
        detail = (
            "absent from the re-tokenized data" if name not in got
            else "not in the bundle's shard list" if name not in want
            else f"sha256 {got[name][:16]}..., recorded {want[name]['sha256'][:16]}..."
        )  # fmt: skip
        outcome.add("data", f"shard {name}", False, detail)
    if len(bad_shards) > 10:
        outcome.add("data", "shards", False, f"{len(bad_shards) - 10} more shards differ")
    if not (differ or bad_shards or not same_manifest):
        outcome.add("data", "tokenization", True, f"re-tokenized to the recorded {len(got)} shards (sha256 each), "
                    f"{fresh['tokens']:,} tokens and manifest")  # fmt: skip
    return shards
