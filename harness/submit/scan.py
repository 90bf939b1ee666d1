"""The first pass of validation: every line of a subset read once, checked, and batched into per-entry arrays.

A subset is JSONL (plain, `.gz`, `.zst`; a file, a directory or a glob; local or any fsspec URL), one document
per line: `{"id": 32-hex, "text"?: str, "repeat"?: int >= 1, "source"?: str}`.

Every problem is recorded with its file and line, never stopping at the first. Id-only lines (nearly all of a
filtering subset) are recognised without a JSON parser. Ids are looked up in batches against the pool's
memory-mapped index; given texts are set aside in a spool file, by offset, for the second pass
(harness.submit.resolve). Entries live in per-entry numpy arrays (`new_chunk`), never as Python objects.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from harness.io.reader import InputError, loads, open_stream
from harness.pools.ids import ids_to_u64, is_id, u64_to_id
from harness.pools.index import count_tokens
from harness.submit.report import LISTED_PROBLEMS, Problem

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.pools import Pool
    from harness.tracks import Track

_BATCH = 32768
_KNOWN_KEYS = frozenset({"id", "text", "repeat", "source"})
_BOM = b"\xef\xbb\xbf"
#: The canonical id-only line, `{"id": "<32 hex>"}` (json.dumps spacing or compact), recognised without parsing.
_ID_ONLY = re.compile(rb'\{"id": ?"([0-9a-f]{32})"\}\r?\n?')
#: Entry kinds: a pool document as is, a pool document with a given text (checked as a deletion), an outside one.
POOL, EDITED, EXTERNAL = 0, 1, 2


class Scan:
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
        except InputError as exc:  # unreadable, truncated, corrupt or over a bound: a problem of this file
            self.lines += done[0]
            if exc.line:  # a line over the bound, or a bomb: at the line the reader names
                self.problem((file_no << 32) + exc.line, exc.code, exc.message())
            else:
                where = f"after line {done[0]}: " if done[0] else ""
                self.problem((file_no << 32) + done[0], exc.code, where + exc.message())
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
                    if raw.isspace():  # a blank line: no parser (its exception costs microseconds)
                        self.blank_lines += 1
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
            bad.append(("wrong-type", f'"repeat" must be a positive integer, got {short(repeat)}'))
        elif repeat > self.track.tokens:  # every copy costs at least its end-of-document token
            bad.append(("repeat-over-budget", f'"repeat" {short(repeat)} is more copies than the budget of '
                        f"{self.track.tokens:,} tokens can train on; repeats only matter up to the budget"))  # fmt: skip
        if text is not None and not isinstance(text, str):
            bad.append(("wrong-type", f'"text" must be a string, got {type(text).__name__}'))
        elif text is not None and not text.strip():
            bad.append(("empty-text", '"text" is empty; leave the document out instead'))
        if source is not None and (not isinstance(source, str) or not source.strip()):
            bad.append(("wrong-type", f'"source" must be a non-empty string, got {short(source)}'))
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
        kind = EXTERNAL if source is not None else (EDITED if text is not None else POOL)
        self.b_ids.append(doc_id)
        self.b_loc.append(loc)
        self.b_extra[pos] = (repeat, kind, digest, *spool_at)
        if kind == EXTERNAL and self.tokenizer is not None:  # an edited text is counted once it is known to
            self.b_texts.append((pos, text))  # be a deletion (so never longer than its pool document)
            self.b_text_bytes += len(text)
        return None

    def flush(self) -> None:
        """The batch becomes one chunk of per-entry arrays (the per-chunk checks: `_chunk`)."""
        if self.b_ids:
            self.chunks.append(_chunk(self))
            self._reset_batch()

    def entries(self) -> dict[str, np.ndarray]:
        """All chunks concatenated."""
        if not self.chunks:
            return {**new_chunk(0), "row": np.zeros(0, np.int64)}
        return {k: np.concatenate([c[k] for c in self.chunks]) for k in self.chunks[0]}


def _chunk(scan: Scan) -> dict[str, np.ndarray]:
    """Per-entry arrays of the batch: ids checked and looked up in the pool, extras filled in, tokens where known."""
    n = len(scan.b_ids)
    ids, loc = scan.b_ids, np.array(scan.b_loc, np.int64)
    valid = np.ones(n, bool)
    try:
        hi, lo = ids_to_u64(ids)
    except ValueError:
        good = [is_id(i) for i in ids]
        for k in np.flatnonzero(~np.array(good)):
            scan.problem(int(loc[k]), "invalid-id", f'"id" must be 32 lowercase hex digits, got {ids[k][:40]!r}')
        valid[:] = good
        hi, lo = ids_to_u64([i if g else "0" * 32 for i, g in zip(ids, good, strict=True)])
    chunk = new_chunk(n)
    chunk.update(hi=hi, lo=lo, loc=loc, valid=valid)
    _fill_extras(chunk, scan.b_extra)
    chunk["row"] = scan.pool.index.lookup(hi, lo)
    _check_membership(scan, chunk)
    if scan.pool_tokens is not None:
        known = (chunk["row"] >= 0) & (chunk["kind"] == POOL)
        chunk["tok"][known] = scan.pool_tokens[chunk["row"][known]]
    if scan.b_texts:
        counts = count_tokens(scan.tokenizer, [t for _, t in scan.b_texts])
        chunk["tok"][[p for p, _ in scan.b_texts]] = counts
    return chunk


def _fill_extras(chunk: dict[str, np.ndarray], extra: dict[int, tuple[int, int, bytes, int, int]]) -> None:
    if not extra:
        return
    pos = np.fromiter(extra, np.int64, len(extra))
    values = list(extra.values())
    chunk["rep"][pos] = [v[0] for v in values]
    chunk["kind"][pos] = [v[1] for v in values]
    digests = [v[2] or bytes(16) for v in values]
    pairs = np.frombuffer(b"".join(digests), ">u8").reshape(-1, 2)
    chunk["dhi"][pos], chunk["dlo"][pos] = pairs[:, 0], pairs[:, 1]
    chunk["soff"][pos] = [v[3] for v in values]
    chunk["slen"][pos] = [v[4] for v in values]


def _check_membership(scan: Scan, chunk: dict[str, np.ndarray]) -> None:
    missing = np.flatnonzero((chunk["row"] < 0) & chunk["valid"] & (chunk["kind"] != EXTERNAL))
    hint = ' (documents from outside the pool need a "source" and a "text")' if scan.mixing else ""
    for k in missing:
        doc_id = u64_to_id(chunk["hi"][k], chunk["lo"][k])
        scan.problem(int(chunk["loc"][k]), "unknown-id", f"id {doc_id} is not in pool {scan.pool.id}{hint}")
    chunk["valid"][missing] = False


def new_chunk(n: int) -> dict[str, np.ndarray]:
    """Per-entry arrays with their defaults: an id-only pool document, repeat 1, no text, tokens unknown."""
    return {
        "hi": np.zeros(n, np.uint64), "lo": np.zeros(n, np.uint64), "loc": np.zeros(n, np.int64),
        "valid": np.ones(n, bool), "rep": np.ones(n, np.int64), "kind": np.zeros(n, np.uint8),
        "dhi": np.zeros(n, np.uint64), "dlo": np.zeros(n, np.uint64), "soff": np.full(n, -1, np.int64),
        "slen": np.zeros(n, np.int64), "tok": np.full(n, -1, np.int64),
    }  # fmt: skip


def short(value: Any) -> str:
    """A value for a message, cut short (a hostile line may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def spooled(spool: IO[bytes], offset: int, length: int) -> str:
    spool.seek(offset)
    return spool.read(length).decode("utf-8")
