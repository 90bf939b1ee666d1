"""Validating a subset against a track's rules -> `ValidationReport`.

- Filtering track: every id must be in the track's pool; a given `text` must be the pool text with characters
  deleted only (harness.submit.edits).
- Mixing track: documents outside the pool need a `source` and a `text`.

Validation reads the subset once (harness.submit.scan), checks given texts and repeats in a second pass over the
pool shards touched (harness.submit.resolve), then assembles the report here: figures, warnings, the
order-independent subset hash. Every problem is reported with its file and line, never stopping at the first.
Writing the resolved subset is harness.submit.materialize; showing the report, harness.display.validation.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.display.progress import progress_bar
from harness.errors import HarnessError
from harness.io.reader import Expansion, InputError, expand
from harness.pools.index import NO_LABEL
from harness.submit.report import LISTED_PROBLEMS, Problem, SubsetStats, ValidationReport
from harness.submit.resolve import check_repeats, resolve
from harness.submit.scan import EDITED, EXTERNAL, Scan, short

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.pools import Pool
    from harness.tracks import Track

#: Passes over the data beyond which repetition is known to cost quality (Muennighoff et al., 2023).
MAX_GOOD_PASSES = 4.0


def _canonical_order(e: dict[str, np.ndarray], ok: np.ndarray) -> np.ndarray:
    """Indices of the valid entries sorted by (id, repeat, text digest).

    One argsort by the id's first half; only runs of equal first halves (duplicates, rare) are sorted by
    every key, which is several times faster than a full multi-key sort.
    """
    valid = np.flatnonzero(ok)
    order = valid[np.argsort(e["hi"][valid], kind="stable")]
    hi = e["hi"][order]
    tie = np.flatnonzero(hi[1:] == hi[:-1])
    if len(tie):
        in_run = np.zeros(len(order), bool)
        in_run[tie] = in_run[tie + 1] = True
        pos = np.flatnonzero(in_run)
        sub = order[pos]
        order[pos] = sub[np.lexsort(tuple(e[k][sub] for k in ("dlo", "dhi", "rep", "lo", "hi")))]
    return order


def _subset_hash(e: dict[str, np.ndarray], order: np.ndarray) -> str:
    """Order-independent hash: the sorted (id, repeat, text digest) records of the valid entries."""
    rec = np.zeros(len(order), [("hi", ">u8"), ("lo", ">u8"), ("rep", ">u8"), ("dhi", ">u8"), ("dlo", ">u8")])
    for name in rec.dtype.names or ():
        rec[name] = e[name][order]
    return hashlib.sha256(b"harness-subset-v1\n" + rec.tobytes()).hexdigest()


def _stats(
    scan: Scan, e: dict[str, np.ndarray], ok: np.ndarray, order: np.ndarray
) -> tuple[SubsetStats, list[Problem]]:
    rep = e["rep"][ok]
    hi, lo = e["hi"][order], e["lo"][order]
    new_id = np.ones(len(order), bool)
    new_id[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    first = np.flatnonzero(new_id)  # one entry per distinct id, as positions in `order`
    counts = np.diff(np.append(first, len(order)))
    tok = e["tok"][ok]
    counted = scan.tokenizer is not None and bool((tok >= 0).all())
    tokens = int(((tok + 1) * rep).sum()) if counted else None
    unique_tokens = int((e["tok"][order][first] + 1).sum()) if counted else None
    in_pool = (e["row"][order] >= 0) & (e["kind"][order] != EXTERNAL)
    unique_pool = int(np.count_nonzero(new_id & in_pool))  # the same id is the same pool row
    warnings = _duplicate_warnings(scan, e, ok) if (counts > 1).any() else []
    stats = SubsetStats(
        lines=scan.lines,
        documents=int(rep.sum()),
        unique_documents=len(first),
        tokens=tokens,
        unique_tokens=unique_tokens,
        pool_documents=len(scan.pool),
        pool_share=unique_pool / max(1, len(scan.pool)),
        budget_tokens=scan.track.tokens,
        passes=scan.track.tokens / tokens if tokens else None,
        duplicate_ids=int((counts > 1).sum()),
        edited_documents=int((e["kind"][ok] == EDITED).sum()),
        external_documents=int((e["kind"][ok] == EXTERNAL).sum()),
    )
    return stats, warnings


def _duplicate_warnings(scan: Scan, e: dict[str, np.ndarray], ok: np.ndarray) -> list[Problem]:
    """Lines repeating an id listed earlier (rare, so the slower exact np.unique is fine here)."""
    keys = np.stack([e["hi"][ok], e["lo"][ok]], axis=1)
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    dup = counts > 1
    loc = e["loc"][ok]
    firsts = np.zeros(len(loc), bool)
    firsts[first] = True
    later = np.sort(loc[~firsts])
    out = []
    for place in later[:LISTED_PROBLEMS]:
        p = int(place)
        out.append(
            Problem(scan.inputs[p >> 32], p & 0xFFFFFFFF, "duplicate-id", "id already listed on an earlier line")
        )
    out.append(
        Problem(
            scan.inputs[0], 0, "duplicate-id",
            f"{int(dup.sum())} ids appear on more than one line ({len(later)} extra lines); to upweight a "
            'document write it once with "repeat": k',
        )
    )  # fmt: skip
    return out


def _class_shares(scan: Scan, e: dict[str, np.ndarray], ok: np.ndarray) -> dict[str, dict[str, float]] | None:
    """Sandbox: the share of each hidden quality class, by documents and by tokens, beside the pool's share."""
    labels, classes = scan.pool.index.labels, scan.pool.index.classes
    if labels is None or not classes:
        return None
    sel = ok & (e["row"] >= 0) & (e["kind"] != EXTERNAL)
    lab = np.asarray(labels[e["row"][sel]]).astype(np.int64)
    rep = e["rep"][sel]
    tok = np.maximum(e["tok"][sel], 0) + 1
    pool_counts = np.bincount(np.asarray(labels)[np.asarray(labels) != NO_LABEL], minlength=len(classes))
    docs = np.bincount(lab[lab != NO_LABEL], weights=rep[lab != NO_LABEL], minlength=len(classes))
    toks = np.bincount(lab[lab != NO_LABEL], weights=(tok * rep)[lab != NO_LABEL], minlength=len(classes))
    out = {}
    for i, name in enumerate(classes):
        out[name] = {
            "documents": float(docs[i] / max(1, docs.sum())),
            "tokens": float(toks[i] / max(1, toks.sum())),
            "pool": float(pool_counts[i] / max(1, pool_counts.sum())),
        }
    return out


def _load_tokenizer(track: Track) -> tuple[Any, str | None]:
    try:
        from harness.tokenizer import load_tokenizer

        return load_tokenizer(track.tokenizer), None
    except (HarnessError, OSError, ImportError) as exc:
        return None, f"tokens not counted: the tokenizer {track.tokenizer.name} is unavailable ({exc})"


@contextlib.contextmanager
def scanned(
    track: Track | str, subset: str | Path, *, pool: Pool | None, tokenizer: Any, count: bool, progress: Progress | None
) -> Iterator[tuple[ValidationReport, Scan, dict[str, np.ndarray]]]:
    """Scan and resolve a subset; yields the report with the scan (its spool stays open inside the block)."""
    from harness.pools import ensure_pool
    from harness.tracks import get_track

    track = get_track(track) if isinstance(track, str) else track
    found = _expand(subset)
    inputs = [*found.files, *(e.url for e in found.unreadable)]
    pool = pool or ensure_pool(track.pool, progress=progress)
    note = None
    if count and tokenizer is None:
        tokenizer, note = _load_tokenizer(track)
    from rich.markup import escape

    with tempfile.TemporaryFile(prefix="harness-spool-") as spool, progress_bar(progress) as bar:
        scan = Scan(track, pool, tokenizer if count else None, spool, inputs)
        job = bar.add_task(f"validating {escape(Path(str(subset)).name)}", total=None)
        for number, url in enumerate(found.files):
            scan.read(number, url, bar, job)
        for number, error in enumerate(found.unreadable, len(found.files)):
            scan.problem(number << 32, "unreadable-input", error.message())
        scan.skipped = found.skipped
        bar.remove_task(job)
        e = scan.entries()
        resolve(scan, e, bar)
        yield _report(scan, e, str(subset), note), scan, e


def _expand(subset: str | Path) -> Expansion:
    """The subset's files; a store that cannot even be listed is one unreadable input (a problem, not a crash)."""
    try:
        return expand(subset)
    except InputError as exc:
        return Expansion((), (), (exc,))


def _report(scan: Scan, e: dict[str, np.ndarray], subset: str, note: str | None) -> ValidationReport:
    check_repeats(scan, e)
    ok = e["valid"].astype(bool)
    if not ok.any() and not scan.problem_counts:
        scan.problem(0, "empty-subset", "the subset has no documents")
    order = _canonical_order(e, ok)
    stats, warnings = _stats(scan, e, ok, order)
    if note:
        warnings.append(Problem(scan.inputs[0], 0, "tokens-not-counted", note))
    if stats.passes and stats.passes > MAX_GOOD_PASSES:
        warnings.append(
            Problem(
                scan.inputs[0], 0, "many-passes",
                f"the budget of {stats.budget_tokens:,} tokens repeats this subset {stats.passes:.1f} times; beyond "
                f"{MAX_GOOD_PASSES:g} passes repetition is known to cost quality: select more documents",
            )
        )  # fmt: skip
    if scan.skipped:
        names = ", ".join(scan.skipped[:3]) + (f" and {len(scan.skipped) - 3} more" if len(scan.skipped) > 3 else "")
        msg = (
            f"{len(scan.skipped)} files skipped: not .jsonl, .jsonl.gz or .jsonl.zst ({names}); rename or convert them"
        )
        warnings.append(Problem(subset, 0, "skipped-files", msg))
    if scan.blank_lines:
        warnings.append(Problem(scan.inputs[0], 0, "blank-lines", f"{scan.blank_lines} blank lines ignored"))
    for key, (loc, count) in sorted(scan.unknown_keys.items()):
        where = scan.inputs[loc >> 32]
        msg = f"unknown field {short(key)} ignored on {count} lines (known: id, text, repeat, source)"
        warnings.append(Problem(where, loc & 0xFFFFFFFF, "unknown-field", msg))
    return ValidationReport(
        track=scan.track.name,
        pool=scan.pool.id,
        subset=subset,
        inputs=tuple(scan.inputs),
        ok=not scan.problem_counts,
        problems=tuple(sorted(scan.problems)[:LISTED_PROBLEMS]),
        n_problems=sum(scan.problem_counts.values()),
        problem_counts=dict(sorted(scan.problem_counts.items())),
        warnings=tuple(warnings),
        stats=stats,
        subset_hash=_subset_hash(e, order),
        class_shares=_class_shares(scan, e, ok),
    )


def validate_subset(
    track: Track | str,
    subset: str | Path,
    *,
    progress: Progress | None = None,
    pool: Pool | None = None,
    tokenizer: Any = None,
) -> ValidationReport:
    """Check a subset against the track's rules and measure it; never stops at the first problem.

    `pool` and `tokenizer` default to the track's (the sandbox pool is created on first use).
    """
    with scanned(track, subset, pool=pool, tokenizer=tokenizer, count=True, progress=progress) as (report, _, _):
        return report
