"""Reading subsets and validating them against a track's rules -> `ValidationReport`; writing the resolved subset.

A subset is JSONL (plain, `.gz`, `.zst`; a file, a directory or a glob; local or any fsspec URL), one document
per line: `{"id": 32-hex, "text"?: str, "repeat"?: int >= 1, "source"?: str}`.

- Filtering track: every id must be in the track's pool; a given `text` must be the pool text with characters
  deleted only (a subsequence: every line or substring filter passes, nothing invented does).
- Mixing track: documents outside the pool need a `source` and a `text`.

Validation reads the subset once and reports every problem (with file and line), never stopping at the first.
Ids are looked up in batches against the pool's memory-mapped index; edited texts are set aside in a spool file
and compared with the pool text in a second pass that reads each pool shard touched once, in order.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from harness.config import to_dict
from harness.display.progress import progress_bar
from harness.errors import HarnessError
from harness.io.reader import Expansion, InputError, expand, loads, open_stream
from harness.pools.ids import ids_to_u64, is_id, u64_to_id
from harness.pools.index import NO_LABEL, count_tokens

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from harness.pools import Pool
    from harness.tracks import Track

#: Problems listed in full in a report; the rest are counted by code.
LISTED_PROBLEMS = 20
#: Passes over the data beyond which repetition is known to cost quality (Muennighoff et al., 2023).
MAX_GOOD_PASSES = 4.0
_BATCH = 32768
_KNOWN_KEYS = frozenset({"id", "text", "repeat", "source"})
_BOM = b"\xef\xbb\xbf"
#: The canonical id-only line, `{"id": "<32 hex>"}` (json.dumps spacing or compact), recognised without parsing.
_ID_ONLY = re.compile(rb'\{"id": ?"([0-9a-f]{32})"\}\r?\n?')
# Entry kinds: a pool document as is, a pool document with a given text (checked as a deletion), an outside one.
_POOL, _EDITED, _EXTERNAL = 0, 1, 2


@dataclass(frozen=True, order=True)
class Problem:
    """One problem (or warning) at a place in the subset; line 0 = the subset as a whole."""

    file: str
    line: int
    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class SubsetStats:
    """Figures of the valid part of a subset."""

    lines: int
    documents: int
    unique_documents: int
    tokens: int | None
    unique_tokens: int | None
    pool_documents: int
    pool_share: float
    budget_tokens: int
    passes: float | None
    duplicate_ids: int
    edited_documents: int
    external_documents: int


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """Everything `harness validate` says about a subset. `tokens` include one end-of-document token per document."""

    track: str
    pool: str
    subset: str
    inputs: tuple[str, ...]
    ok: bool
    problems: tuple[Problem, ...]
    n_problems: int
    problem_counts: dict[str, int]
    warnings: tuple[Problem, ...]
    stats: SubsetStats
    subset_hash: str
    class_shares: dict[str, dict[str, float]] | None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def is_deletion(original: str, edited: str) -> bool:
    """Whether `edited` is `original` with characters deleted (a subsequence); linear time.

    The greedy subsequence match (each character at its earliest possible place) is exact; long runs that
    match in place are consumed with slice comparisons, so line and substring deletions cost a few C calls.
    """
    return len(edited) <= len(original) and _not_deleted_at(original, edited) is None


def _not_deleted_at(original: str, edited: str) -> int | None:
    """The first character of `edited` that the greedy match cannot place in `original` (None: all placed).
    At most len(original) + 1 steps, whatever the length of `edited`."""
    n = len(edited)
    i = j = 0
    while i < n:
        run = _common_run(edited, i, original, j)
        i, j = i + run, j + run
        if i == n:
            return None
        j = original.find(edited[i], j)
        if j < 0:
            return i
        j += 1
        i += 1
    return None


def _common_run(a: str, i: int, b: str, j: int) -> int:
    """Length of the longest common prefix of a[i:] and b[j:] (doubling, then halving)."""
    run, size = 0, 1
    while True:
        chunk = a[i + run : i + run + size]
        if not chunk or not b.startswith(chunk, j + run):
            break
        run += len(chunk)
        size *= 2
    while size > 1:
        size //= 2
        chunk = a[i + run : i + run + size]
        if chunk and b.startswith(chunk, j + run):
            run += len(chunk)
    return run


class _Scan:
    """One pass over the subset's lines: per-entry arrays, problems, warnings, spooled texts."""

    def __init__(self, track: Track, pool: Pool, tokenizer: Any, spool: IO[bytes], inputs: list[str]) -> None:
        self.track, self.pool, self.tokenizer, self.spool, self.inputs = track, pool, tokenizer, spool, inputs
        self.mixing = track.rules.kind == "mixing"
        self.pool_tokens = pool.token_counts(track.tokenizer) if tokenizer is not None else None
        self.chunks: list[dict[str, np.ndarray]] = []
        self.problems: list[Problem] = []
        self.problem_counts: Counter[str] = Counter()
        self.warnings: list[Problem] = []
        self.unknown_keys: dict[str, tuple[int, int]] = {}
        self.blank_lines, self.lines, self.spool_end = 0, 0, 0
        self.skipped: tuple[str, ...] = ()
        self._reset_batch()

    def _reset_batch(self) -> None:
        """Empty the batch in place (the read loop holds bound methods of these lists)."""
        if not hasattr(self, "b_ids"):
            self.b_ids: list[str] = []
            self.b_loc: list[int] = []
            self.b_extra: dict[int, tuple[int, int, bytes, int, int]] = {}  # pos -> repeat, kind, digest, spool
            self.b_texts: list[tuple[int, str]] = []
        self.b_ids.clear()
        self.b_loc.clear()
        self.b_extra.clear()
        self.b_texts.clear()
        self.b_text_bytes = 0

    def problem(self, loc: int, code: str, message: str) -> None:
        self.problem_counts[code] += 1
        self.problems.append(Problem(self.inputs[loc >> 32], loc & 0xFFFFFFFF, code, message))
        if len(self.problems) > 50 * LISTED_PROBLEMS:  # keep the earliest by position, memory bounded
            self.problems = sorted(self.problems)[:LISTED_PROBLEMS]

    def read(self, file_no: int, url: str, bar: Progress, job: Any) -> None:
        """Every line of one input file; a file that cannot be read (or stops decoding) is one problem of its own."""
        done = [0]  # lines read before a failure, for the report
        try:
            self._read_lines(file_no, url, bar, job, done)
        except InputError as exc:  # unreadable, truncated or corrupt: a problem of this file, after its last line
            self.lines += done[0]
            where = f"after line {done[0]}: " if done[0] else ""
            self.problem((file_no << 32) + done[0], "unreadable-input", where + exc.message())
        bar.update(job, advance=len(self.b_ids))
        self.flush()

    def _read_lines(self, file_no: int, url: str, bar: Progress, job: Any, done: list[int]) -> None:
        # The hot loop: locals instead of attribute lookups; id-only lines skip every other check.
        parse, add_id, add_loc, ids = loads, self.b_ids.append, self.b_loc.append, self.b_ids
        id_only = _ID_ONLY.fullmatch
        base, lineno = file_no << 32, 0
        try:
            with open_stream(url) as fh:
                for lineno, raw in enumerate(fh, 1):
                    match = id_only(raw)  # a strict subset of valid JSON: no parser needed
                    if match:
                        add_id(match[1].decode("ascii"))
                        add_loc(base + lineno)
                        if len(ids) >= _BATCH:
                            bar.update(job, advance=len(ids))
                            self.flush()
                        continue
                    if lineno == 1 and raw.startswith(_BOM):
                        raw = raw[len(_BOM) :]
                    try:
                        doc = parse(raw.decode("utf-8"))
                    except UnicodeDecodeError as exc:
                        self.problem(base + lineno, "invalid-utf8", f"not valid UTF-8 at byte {exc.start}")
                        continue
                    except ValueError as exc:
                        if raw.strip():
                            self.problem(base + lineno, "malformed-json", f"not a JSON line: {exc}")
                        else:
                            self.blank_lines += 1
                        continue
                    if type(doc) is dict and len(doc) == 1:  # the common case: {"id": ...}
                        doc_id = doc.get("id")
                        if type(doc_id) is str and len(doc_id) == 32:
                            add_id(doc_id)
                            add_loc(base + lineno)
                            if len(ids) >= _BATCH:
                                bar.update(job, advance=len(ids))
                                self.flush()
                            continue
                    self.general(doc, base + lineno)
                    if len(ids) >= _BATCH or self.b_text_bytes > 1 << 25:
                        bar.update(job, advance=len(ids))
                        self.flush()
        except InputError:
            done[0] = lineno
            raise
        self.lines += lineno

    def general(self, doc: Any, loc: int) -> None:
        """Every check of one parsed line; a valid entry joins the batch."""
        if not isinstance(doc, dict):
            return self.problem(loc, "not-an-object", f"expected a JSON object, got {type(doc).__name__}")
        for key in doc.keys() - _KNOWN_KEYS:
            if key not in self.unknown_keys and len(self.unknown_keys) >= LISTED_PROBLEMS:
                continue  # memory stays bounded whatever the lines hold; the first ones are reported
            self.unknown_keys.setdefault(key, (loc, 0))
            first, count = self.unknown_keys[key]
            self.unknown_keys[key] = (first, count + 1)
        doc_id, text, repeat, source = doc.get("id"), doc.get("text"), doc.get("repeat", 1), doc.get("source")
        bad = []
        if doc_id is None:
            bad.append(("missing-id", 'no "id"'))
        elif not isinstance(doc_id, str):
            bad.append(("wrong-type", f'"id" must be a string, got {type(doc_id).__name__}'))
        elif not is_id(doc_id):
            bad.append(("invalid-id", f'"id" must be 32 lowercase hex digits, got {doc_id[:40]!r}'))
        if type(repeat) is not int or repeat < 1:
            bad.append(("wrong-type", f'"repeat" must be a positive integer, got {_short(repeat)}'))
        elif repeat > self.track.tokens:  # every copy costs at least its end-of-document token
            bad.append(("repeat-over-budget", f'"repeat" {_short(repeat)} is more copies than the budget of '
                        f"{self.track.tokens:,} tokens can train on; repeats only matter up to the budget"))  # fmt: skip
        if text is not None and not isinstance(text, str):
            bad.append(("wrong-type", f'"text" must be a string, got {type(text).__name__}'))
        elif text is not None and not text.strip():
            bad.append(("empty-text", '"text" is empty; leave the document out instead'))
        if source is not None and (not isinstance(source, str) or not source.strip()):
            bad.append(("wrong-type", f'"source" must be a non-empty string, got {_short(source)}'))
        elif source is not None and not self.mixing:
            bad.append(("source-not-allowed", f'"source" is for mixing tracks; track {self.track.name} is filtering'))
        elif source is not None and text is None:
            bad.append(("missing-text", 'a document with a "source" needs its "text"'))
        digest, spool_at = b"", (-1, 0)
        if isinstance(text, str) and not bad:
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad.append(("invalid-utf8", f'"text" holds an unpaired surrogate escape at character {exc.start}'))
            else:
                digest = hashlib.blake2b(data, digest_size=16).digest()
                spool_at = (self.spool_end, len(data))
                self.spool.write(data)
                self.spool_end += len(data)
        for code, message in bad:
            self.problem(loc, code, message)
        if bad:
            return None
        pos = len(self.b_ids)
        kind = _EXTERNAL if source is not None else (_EDITED if text is not None else _POOL)
        self.b_ids.append(doc_id)
        self.b_loc.append(loc)
        self.b_extra[pos] = (repeat, kind, digest, *spool_at)
        if kind == _EXTERNAL and self.tokenizer is not None:  # an edited text is counted once it is known to
            self.b_texts.append((pos, text))  # be a deletion (so never longer than its pool document)
            self.b_text_bytes += len(text)
        return None

    def flush(self) -> None:
        n = len(self.b_ids)
        if not n:
            return
        ids, loc = self.b_ids, np.array(self.b_loc, np.int64)
        valid = np.ones(n, bool)
        try:
            hi, lo = ids_to_u64(ids)
        except ValueError:
            good = [is_id(i) for i in ids]
            for k in np.flatnonzero(~np.array(good)):
                self.problem(int(loc[k]), "invalid-id", f'"id" must be 32 lowercase hex digits, got {ids[k][:40]!r}')
            valid[:] = good
            hi, lo = ids_to_u64([i if g else "0" * 32 for i, g in zip(ids, good, strict=True)])
        chunk = _new_chunk(n)
        chunk.update(hi=hi, lo=lo, loc=loc, valid=valid)
        self._fill_extras(chunk)
        chunk["row"] = self.pool.index.lookup(hi, lo)
        self._check_membership(chunk)
        if self.pool_tokens is not None:
            known = (chunk["row"] >= 0) & (chunk["kind"] == _POOL)
            chunk["tok"][known] = self.pool_tokens[chunk["row"][known]]
        if self.b_texts:
            counts = count_tokens(self.tokenizer, [t for _, t in self.b_texts])
            chunk["tok"][[p for p, _ in self.b_texts]] = counts
        self.chunks.append(chunk)
        self._reset_batch()

    def _fill_extras(self, chunk: dict[str, np.ndarray]) -> None:
        if not self.b_extra:
            return
        pos = np.fromiter(self.b_extra, np.int64, len(self.b_extra))
        values = list(self.b_extra.values())
        chunk["rep"][pos] = [v[0] for v in values]
        chunk["kind"][pos] = [v[1] for v in values]
        digests = [v[2] or bytes(16) for v in values]
        pairs = np.frombuffer(b"".join(digests), ">u8").reshape(-1, 2)
        chunk["dhi"][pos], chunk["dlo"][pos] = pairs[:, 0], pairs[:, 1]
        chunk["soff"][pos] = [v[3] for v in values]
        chunk["slen"][pos] = [v[4] for v in values]

    def _check_membership(self, chunk: dict[str, np.ndarray]) -> None:
        missing = np.flatnonzero((chunk["row"] < 0) & chunk["valid"] & (chunk["kind"] != _EXTERNAL))
        hint = ' (documents from outside the pool need a "source" and a "text")' if self.mixing else ""
        for k in missing:
            doc_id = u64_to_id(chunk["hi"][k], chunk["lo"][k])
            self.problem(int(chunk["loc"][k]), "unknown-id", f"id {doc_id} is not in pool {self.pool.id}{hint}")
        chunk["valid"][missing] = False

    def entries(self) -> dict[str, np.ndarray]:
        """All chunks concatenated."""
        if not self.chunks:
            return {**_new_chunk(0), "row": np.zeros(0, np.int64)}
        return {k: np.concatenate([c[k] for c in self.chunks]) for k in self.chunks[0]}


def _short(value: Any) -> str:
    """A value for a message, cut short (a hostile line may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_repeats(scan: _Scan, e: dict[str, np.ndarray]) -> None:
    """Repeats only matter up to the budget: a document's copies may fill the budget, never pass it, and the
    copies of the whole subset may add at most one budget of tokens to the larger of the budget and the subset's
    own size (so upweighting stays possible in a subset larger than the budget, and a duplication that matches
    the budget to within a document passes). Tokenization materialises every copy, so this bounds what it writes
    by what training can consume."""
    budget = scan.track.tokens
    sel = np.flatnonzero(e["valid"] & (e["rep"] > 1) & (e["tok"] >= 0))
    size = e["tok"][sel] + 1
    over = sel[(e["rep"][sel] - 1).astype(np.float64) * size >= budget]  # copies past the ceil(budget/size)-th
    for k in over:
        cap = -(-budget // int(e["tok"][k] + 1))
        scan.problem(int(e["loc"][k]), "repeat-over-budget",
                     f'"repeat" {int(e["rep"][k]):,} of a document of {int(e["tok"][k]) + 1:,} tokens is more than the '
                     f'budget of {budget:,} tokens can train on: write "repeat": {cap:,} or less')  # fmt: skip
    e["valid"][over] = False
    ok = e["valid"].astype(bool)
    tok = e["tok"][ok].astype(np.float64) + 1
    if not len(tok) or (tok <= 0).any():
        return
    total, unique = float((tok * e["rep"][ok]).sum()), float(tok.sum())
    if total > max(budget, unique) + budget and (e["rep"][ok] > 1).any():
        scan.problem(
            0,
            "repeats-over-budget",
            f"with its repeats the subset is {total:,.0f} tokens, more than one budget ({budget:,}) past the "
            f"larger of the budget and its own {unique:,.0f} tokens: such copies are never trained on; lower the "
            "repeats",
        )


def _new_chunk(n: int) -> dict[str, np.ndarray]:
    """Per-entry arrays with their defaults: an id-only pool document, repeat 1, no text, tokens unknown."""
    return {
        "hi": np.zeros(n, np.uint64), "lo": np.zeros(n, np.uint64), "loc": np.zeros(n, np.int64),
        "valid": np.ones(n, bool), "rep": np.ones(n, np.int64), "kind": np.zeros(n, np.uint8),
        "dhi": np.zeros(n, np.uint64), "dlo": np.zeros(n, np.uint64), "soff": np.full(n, -1, np.int64),
        "slen": np.zeros(n, np.int64), "tok": np.full(n, -1, np.int64),
    }  # fmt: skip


def _spooled(spool: IO[bytes], offset: int, length: int) -> str:
    spool.seek(offset)
    return spool.read(length).decode("utf-8")


def _resolve(scan: _Scan, e: dict[str, np.ndarray], progress: Progress) -> None:
    """Second pass over the pool shards touched: deletion checks of given texts, tokens of id-only documents."""
    need_text = (e["kind"] == _EDITED) & e["valid"]
    need_tokens = (e["tok"] < 0) & e["valid"] & (e["kind"] == _POOL) & (scan.tokenizer is not None)
    todo = np.flatnonzero(need_text | need_tokens)
    if not len(todo):
        return
    todo = todo[np.argsort(e["row"][todo], kind="stable")]
    rows, starts = np.unique(e["row"][todo], return_index=True)
    where = dict(zip(rows.tolist(), zip(starts.tolist(), [*starts[1:].tolist(), len(todo)], strict=True), strict=True))
    pending: list[tuple[int, str]] = []
    job = progress.add_task("checking texts against the pool", total=len(rows))
    for row, doc in scan.pool.read_rows(rows):
        original = scan.pool.text_of(doc)
        start, stop = where[row]
        for k in todo[start:stop]:
            if e["kind"][k] == _POOL:
                pending.append((int(k), original))
                continue
            text = _check_edit(scan, e, int(k), original)
            if text is not None and scan.tokenizer is not None:
                pending.append((int(k), text))
        if len(pending) >= 1024:
            _count_pending(scan, e, pending)
        progress.advance(job)
    _count_pending(scan, e, pending)
    progress.remove_task(job)


def _check_edit(scan: _Scan, e: dict[str, np.ndarray], k: int, original: str) -> str | None:
    """Check a given text against its pool text; returns the text when it is accepted."""
    text = _spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k]))
    loc = int(e["loc"][k])
    if text == original:
        e["kind"][k], e["dhi"][k], e["dlo"][k] = _POOL, 0, 0  # the pool text as is: not an edit
    elif not scan.track.rules.text_edits:
        scan.problem(loc, "edits-not-allowed", f"track {scan.track.name} takes pool texts unchanged")
        e["valid"][k] = False
    elif not is_deletion(original, text):
        scan.problem(loc, "not-a-deletion", _first_difference(original, text))
        e["valid"][k] = False
    return text if e["valid"][k] else None


def _first_difference(original: str, text: str) -> str:
    """Where a text stops being a deletion of the original, for the report."""
    i = _not_deleted_at(original, text)
    if i is None:
        return '"text" is not the pool text with characters deleted'
    snippet = text[max(0, i - 20) : i + 20]
    return (f'"text" is not the pool text with characters deleted: {text[i]!r} at character {i} ({snippet!r}) is '
            "added or moved")  # fmt: skip


def _count_pending(scan: _Scan, e: dict[str, np.ndarray], pending: list[tuple[int, str]]) -> None:
    if pending:
        e["tok"][[k for k, _ in pending]] = count_tokens(scan.tokenizer, [t for _, t in pending])
        pending.clear()


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
    scan: _Scan, e: dict[str, np.ndarray], ok: np.ndarray, order: np.ndarray
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
    in_pool = (e["row"][order] >= 0) & (e["kind"][order] != _EXTERNAL)
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
        edited_documents=int((e["kind"][ok] == _EDITED).sum()),
        external_documents=int((e["kind"][ok] == _EXTERNAL).sum()),
    )
    return stats, warnings


def _duplicate_warnings(scan: _Scan, e: dict[str, np.ndarray], ok: np.ndarray) -> list[Problem]:
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


def _class_shares(scan: _Scan, e: dict[str, np.ndarray], ok: np.ndarray) -> dict[str, dict[str, float]] | None:
    """Sandbox: the share of each hidden quality class, by documents and by tokens, beside the pool's share."""
    labels, classes = scan.pool.index.labels, scan.pool.index.classes
    if labels is None or not classes:
        return None
    sel = ok & (e["row"] >= 0) & (e["kind"] != _EXTERNAL)
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
def _scanned(
    track: Track | str, subset: str | Path, *, pool: Pool | None, tokenizer: Any, count: bool, progress: Progress | None
) -> Iterator[tuple[ValidationReport, _Scan, dict[str, np.ndarray]]]:
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
        scan = _Scan(track, pool, tokenizer if count else None, spool, inputs)
        job = bar.add_task(f"validating {escape(Path(str(subset)).name)}", total=None)
        for number, url in enumerate(found.files):
            scan.read(number, url, bar, job)
        for number, error in enumerate(found.unreadable, len(found.files)):
            scan.problem(number << 32, "unreadable-input", error.message())
        scan.skipped = found.skipped
        bar.remove_task(job)
        e = scan.entries()
        _resolve(scan, e, bar)
        yield _report(scan, e, str(subset), note), scan, e


def _expand(subset: str | Path) -> Expansion:
    """The subset's files; a store that cannot even be listed is one unreadable input (a problem, not a crash)."""
    try:
        return expand(subset)
    except InputError as exc:
        return Expansion((), (), (exc,))


def _report(scan: _Scan, e: dict[str, np.ndarray], subset: str, note: str | None) -> ValidationReport:
    _check_repeats(scan, e)
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
        msg = f"unknown field {_short(key)} ignored on {count} lines (known: id, text, repeat, source)"
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
    with _scanned(track, subset, pool=pool, tokenizer=tokenizer, count=True, progress=progress) as (report, _, _):
        return report


class _ShardWriter:
    """Rotating `.jsonl.gz` writer: each file appears under its final name only when complete."""

    def __init__(self, out_dir: Path, shard_docs: int) -> None:
        self.out_dir, self.shard_docs = out_dir, shard_docs
        self.paths: list[Path] = []
        self.fh: gzip.GzipFile | None = None
        self.count = 0

    def write(self, doc_id: str, text: str, repeat: int) -> None:
        if self.fh is None or self.count >= self.shard_docs:
            self.close()
            path = self.out_dir / f"subset-{len(self.paths):05d}.jsonl.gz"
            self.paths.append(path)
            self.fh = gzip.GzipFile(path.with_name(path.name + ".tmp"), "wb", compresslevel=3, mtime=0)
            self.count = 0
        line = json.dumps({"id": doc_id, "text": text, "repeat": repeat}, ensure_ascii=False)
        self.fh.write(line.encode("utf-8") + b"\n")
        self.count += 1

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            path = self.paths[-1]
            path.with_name(path.name + ".tmp").replace(path)
            self.fh = None


def materialize_subset(
    report_or_subset: ValidationReport | str | Path,
    track: Track | str,
    out_dir: str | Path,
    *,
    shard_docs: int = 50_000,
    pool: Pool | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the resolved subset as `.jsonl.gz` files of `{"id", "text", "repeat"}` lines; returns their paths.

    Each text is the pool's, or the given edited/mixing text. The order is canonical (pool documents by shard
    and offset, then outside documents by id), so the same subset in any line order gives the same files.
    Memory holds the per-entry arrays, never the texts. An invalid subset raises HarnessError.
    """
    subset = report_or_subset.subset if isinstance(report_or_subset, ValidationReport) else report_or_subset
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("subset-*.jsonl.gz*"):
        stale.unlink()
    with _scanned(track, subset, pool=pool, tokenizer=None, count=False, progress=progress) as (report, scan, e):
        if not report.ok:
            raise HarnessError(
                f"{subset}: the subset is invalid ({report.n_problems} problems); see `harness validate`"
            )
        if isinstance(report_or_subset, ValidationReport) and report_or_subset.subset_hash != report.subset_hash:
            raise HarnessError(f"{subset}: the subset changed since it was validated; validate it again")
        writer = _ShardWriter(out, shard_docs)
        try:
            _write_pool_entries(scan, e, writer)
            _write_external_entries(scan, e, writer)
        finally:
            writer.close()
    return writer.paths


def _write_pool_entries(scan: _Scan, e: dict[str, np.ndarray], writer: _ShardWriter) -> None:
    sel = np.flatnonzero(e["valid"].astype(bool) & (e["kind"] != _EXTERNAL))
    sel = sel[np.lexsort((e["dlo"][sel], e["dhi"][sel], e["rep"][sel], e["row"][sel]))]
    rows, starts = np.unique(e["row"][sel], return_index=True)
    stops = [*starts[1:].tolist(), len(sel)]
    where = dict(zip(rows.tolist(), zip(starts.tolist(), stops, strict=True), strict=True))
    for row, doc in scan.pool.read_rows(rows):
        start, stop = where[row]
        for k in sel[start:stop]:
            edited = e["kind"][k] == _EDITED
            text = _spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k])) if edited else scan.pool.text_of(doc)
            writer.write(scan.pool.id_of_row(row), text, int(e["rep"][k]))


def _write_external_entries(scan: _Scan, e: dict[str, np.ndarray], writer: _ShardWriter) -> None:
    sel = np.flatnonzero(e["valid"].astype(bool) & (e["kind"] == _EXTERNAL))
    sel = sel[np.lexsort((e["rep"][sel], e["dlo"][sel], e["dhi"][sel], e["lo"][sel], e["hi"][sel]))]
    for k in sel:
        text = _spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k]))
        writer.write(u64_to_id(e["hi"][k], e["lo"][k]), text, int(e["rep"][k]))


def render_report(report: ValidationReport, console: Console) -> None:
    """The report for people: verdict, figures, class shares (sandbox), problems with their places, warnings."""
    from rich.markup import escape
    from rich.table import Table

    s = report.stats
    verdict = "[bold green]VALID[/]" if report.ok else f"[bold red]INVALID[/] ({report.n_problems} problems)"
    console.print(f"{verdict}  subset {escape(report.subset)} on track [bold]{report.track}[/] (pool {report.pool})")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right", overflow="fold")
    fmt = lambda v: "unknown" if v is None else f"{v:,}"  # noqa: E731
    rows = [
        ("lines read", fmt(s.lines)),
        ("documents (with repeats)", fmt(s.documents)),
        ("unique documents", fmt(s.unique_documents)),
        ("tokens (with repeats, +1 end-of-document each)", fmt(s.tokens)),
        ("unique tokens", fmt(s.unique_tokens)),
        ("share of the pool", f"{s.pool_share:.2%} of {s.pool_documents:,}"),
        ("passes over the subset", "unknown" if s.passes is None else f"{s.passes:.2f} (budget {s.budget_tokens:,})"),
        ("duplicated ids", fmt(s.duplicate_ids)),
        ("edited / outside documents", f"{s.edited_documents:,} / {s.external_documents:,}"),
        ("subset hash", report.subset_hash),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if report.class_shares:
        shares = Table(title="hidden quality classes (sandbox)")
        for col in ("class", "documents", "tokens", "pool"):
            shares.add_column(col, justify="left" if col == "class" else "right")
        for name, v in report.class_shares.items():
            shares.add_row(name, f"{v['documents']:.1%}", f"{v['tokens']:.1%}", f"{v['pool']:.1%}")
        console.print(shares)
    for p in report.problems:
        console.print(f"[red]{escape(p.file)}:{p.line}[/] [bold]{p.code}[/] {escape(p.message)}", highlight=False)
    if report.n_problems > len(report.problems):
        counts = ", ".join(f"{k} {v}" for k, v in report.problem_counts.items())
        console.print(f"... and {report.n_problems - len(report.problems)} more problems ({counts})")
    for w in report.warnings:
        place = f"{w.file}:{w.line}" if w.line else w.file
        console.print(f"[yellow]warning[/] {escape(place)} [bold]{w.code}[/] {escape(w.message)}", highlight=False)
