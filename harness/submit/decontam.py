"""Decontamination: which evaluation items of a track's suite a subset quotes, and in which documents.

Items are the suite's own data rendered as the evaluator renders them (lm-eval: the zero-shot prompt followed by
the gold answer), from the sandbox's eval files, the offline mirror or the hub. Text is normalised to words
(case-folded runs of letters and digits: punctuation, case and spacing do not matter) and compared as hashed word
n-grams, 13-grams by default as GPT-3 and its successors report; an item shorter than n words is one n-gram of
its own length, and items under `MIN_ITEM_WORDS` words are too short to check (they match everywhere).

A document contaminates an item when the item's n-grams found in the document cover at least `min_coverage` of
the item's words (95%). Any single shared 13-gram (GPT-3's rule) raises false alarms on templated text, where a
13-word stretch of a story template recurs in unrelated documents (on the sandbox at scale 0.01: 430 of 2,800
documents, 426 of them not leaks); partial overlaps of story templates cover up to about 90% of an item, and a
copy with case, punctuation and spacing changed and one word dropped covers 97.5% or more of an item of 40 words
(measured in docs/results.md). Text that repeats an item with a single word changed is caught
too: it is a near-duplicate of the item, whatever its origin.

Memory is bounded by the suite: its n-gram hashes sit in sorted numpy arrays; the subset streams through in
batches of documents, each batch's n-grams looked up at once. A bit table of the items' n-gram prefixes (their
first `prefix` words, the shortest n-gram length) drops almost every window in one gather; the windows left are
hashed at each n-gram length and looked up in a hash table of the suite's n-grams, and coverage is counted with
sorts: no Python loop per word, window or n-gram.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import HarnessError
from harness.submit.decontam_hash import (
    flag,
    flag_type,
    gram_sums,
    grams,
    slot_find,
    slot_table,
    sorted_unique,
    window,
    window_slots,
    word_hashes,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.evaluate.suites import Suite
    from harness.tracks import Track

NGRAM = 13
MIN_ITEM_WORDS = 8
MIN_COVERAGE = 0.95
#: Documents per lookup batch (the batch's words and n-grams are the only per-subset memory).
BATCH_DOCUMENTS = 2048
#: Document ids kept per contaminated item, and contaminated document ids kept in all (the counts stay exact).
MAX_DOCS_PER_ITEM = 20
MAX_DOCUMENTS_LISTED = 10_000

_BLOOM_BITS_PER_GRAM = 64  # bits of the prefix table per n-gram of the suite (about 1.5% false passes)


class SuiteDataMissing(HarnessError):
    """The suite's data is not available for the contamination check."""


@dataclass(frozen=True)
class Item:
    """One evaluation item: its task, its id (the data's `id` field, else its position) and prompt + gold."""

    task: str
    item_id: str
    text: str


@dataclass
class _Table:
    """Sorted unique n-gram hashes of one length, each with the items it occurs in (CSR)."""

    grams: np.ndarray
    starts: np.ndarray
    items: np.ndarray
    positions: np.ndarray  # first word position of the n-gram in that item
    slots: np.ndarray  # `slot_table(grams)`: a hash table of the n-grams, for lookups


@dataclass
class NgramIndex:
    """The suite's items as hashed n-grams, grouped by n-gram length."""

    items: list[Item]
    n: int
    words_per_item: np.ndarray  # normalised words of each item (0 = too short, not checked)
    tables: dict[int, _Table] = field(default_factory=dict)
    prefix: int = 0  # words of the n-gram prefixes in `bloom` (the shortest n-gram length)
    # uint[2**k] by the top k bits of an n-gram prefix's hash: bit j set when the j-th table has an n-gram with it
    bloom: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.uint8))

    @property
    def max_words(self) -> int:
        return int(self.words_per_item.max(initial=0))

    @classmethod
    def build(cls, items: list[Item], n: int = NGRAM, min_words: int = MIN_ITEM_WORDS) -> NgramIndex:
        per_len: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        counts = np.zeros(len(items), dtype=np.int64)
        item_hashes = {}
        for k, item in enumerate(items):
            hashes, _ = word_hashes([item.text])
            if len(hashes) < min_words:
                continue
            length = min(n, len(hashes))
            g, first = np.unique(grams(hashes, length), return_index=True)
            counts[k], item_hashes[k] = len(hashes), hashes
            per_len.setdefault(length, []).append((g, np.full(len(g), k, dtype=np.int64), first))
        tables = {}
        for length, parts in per_len.items():
            g, o, p = (np.concatenate(x) for x in zip(*parts, strict=True))
            order = np.lexsort((p, o, g))
            g, o, p = g[order], o[order], p[order]
            uniq, starts = np.unique(g, return_index=True)
            tables[length] = _Table(uniq, np.append(starts, len(g)), o, p, slot_table(uniq))
        prefix = min(tables, default=0)
        entries = sum(len(t.items) for t in tables.values())
        slot_bits = min(24, max(16, int(entries * _BLOOM_BITS_PER_GRAM).bit_length()))  # 16 MiB at most
        bloom = np.zeros(1 << slot_bits, dtype=flag_type(len(tables)))
        bits = {length: flag(bloom, j) for j, length in enumerate(tables)}
        for hashes in item_hashes.values():  # the first `prefix` words of every n-gram of every item
            length = min(n, len(hashes))
            at = grams(hashes, prefix)[: len(hashes) - length + 1] >> np.uint64(64 - slot_bits)
            bloom[at.astype(np.int64)] |= bits[length]
        return cls(items, n, counts, tables, prefix, bloom)


@dataclass
class Scanner:
    """Streams documents against an `NgramIndex`; `add` them, then `result()`."""

    index: NgramIndex
    min_coverage: float = MIN_COVERAGE
    documents: int = 0
    bytes: int = 0
    _batch: list[tuple[str, str]] = field(default_factory=list)
    _item_docs: dict[int, list[str]] = field(default_factory=dict)
    _item_hits: dict[int, int] = field(default_factory=dict)
    _docs: list[str] = field(default_factory=list)
    _n_docs: int = 0
    #: When given, CPU seconds are added here per phase of the check ("words": normalising and hashing words;
    #: "windows": n-gram hashes and the prefix table; "lookups": hash-table lookups and coverage; `scan_documents`
    #: adds "read", the time its input took to yield the documents), for benchmarks/decontam_bench.py.
    timings: dict[str, float] | None = None

    def _lap(self, phase: str, since: float) -> float:
        now = time.process_time()
        if self.timings is not None:
            self.timings[phase] = self.timings.get(phase, 0.0) + now - since
        return now

    def add(self, doc_id: str, text: str) -> None:
        self._batch.append((doc_id, text))
        self.documents += 1
        self.bytes += len(text) if text.isascii() else len(text.encode("utf-8"))  # isascii costs nothing
        if len(self._batch) >= BATCH_DOCUMENTS:
            self.flush()

    def add_many(self, pairs: list[tuple[str, str]]) -> None:
        """`add` each (id, text) pair, in fewer Python steps per document (the same lookup batches)."""
        self.documents += len(pairs)
        self.bytes += sum(len(text) if text.isascii() else len(text.encode("utf-8")) for _, text in pairs)
        at = 0
        while at < len(pairs):
            take = pairs[at : at + BATCH_DOCUMENTS - len(self._batch)]
            self._batch += take
            at += len(take)
            if len(self._batch) >= BATCH_DOCUMENTS:
                self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        pairs = self.match([text for _, text in self._batch])
        batch = self._batch
        self._record(np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64), lambda d: batch[d][0])
        self._batch.clear()

    def match(self, texts: list[str]) -> list[np.ndarray]:
        """Per table of the index (in its order): the (text, item) pairs where the text holds the item, sorted.
        A text's pairs depend on that text alone, whatever else is in the list."""
        index, clock = self.index, time.process_time()
        h, counts = word_hashes(texts)
        clock = self._lap("words", clock)
        ends = np.cumsum(counts)  # one past each text's last word
        found: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {length: [] for length in index.tables}
        slot_bits = len(index.bloom).bit_length() - 1
        for offset, span, sums in gram_sums(h, max(index.tables, default=1)):
            # Every window of `prefix` words starting in this span: one gather in the prefix table drops most.
            starting = min(span, len(sums) - index.prefix)
            if starting <= 0 or not index.tables:
                break
            flags = np.take(index.bloom, window_slots(sums, starting, index.prefix, slot_bits), mode="clip")
            cand = np.flatnonzero(flags)
            flags = flags[cand]
            doc = np.searchsorted(ends, cand + offset, side="right")
            room = ends[doc] - offset - cand  # words from the window's start to its text's end
            for j, (length, table) in enumerate(index.tables.items()):
                # The window's prefix starts an n-gram of this table, and it does not cross into the next text.
                keep = ((flags & flag(flags, j)) != 0) & (room >= length)
                g = window(sums, cand[keep], length)
                clock = self._lap("windows", clock)
                pos = slot_find(table.slots, table.grams, g)
                hit = pos >= 0
                found[length].append((doc[keep][hit], pos[hit]))
                clock = self._lap("lookups", clock)
        clock = self._lap("windows", clock)
        pairs = [self._hits(found[length], length, table) for length, table in index.tables.items()]
        self._lap("lookups", clock)
        return pairs

    def _hits(self, found: list[tuple[np.ndarray, np.ndarray]], length: int, table: _Table) -> np.ndarray:
        """(text, item) pairs where the text holds at least min_coverage of the item, from the (text, n-gram)
        pairs of the windows found in the table."""
        docs = np.concatenate([d for d, _ in found]) if found else np.empty(0, dtype=np.int64)
        if not len(docs):
            return np.empty((0, 2), dtype=np.int64)
        pos = np.concatenate([p for _, p in found])
        # Each distinct n-gram once per text (sorted 1-d keys: np.unique is many times slower than a sort).
        key = sorted_unique(docs.astype(np.int64) * len(table.grams) + pos)
        doc, gram = np.divmod(key, len(table.grams))
        starts, sizes = table.starts[gram], table.starts[gram + 1] - table.starts[gram]
        entry = np.repeat(starts, sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        n_items, width = len(self.index.items), self.index.max_words + 1
        triple = sorted_unique((np.repeat(doc, sizes) * n_items + table.items[entry]) * width + table.positions[entry])
        pair, position = np.divmod(triple, width)  # sorted by text, item, position
        return self._covering(pair, position, length)

    def _covering(self, pair: np.ndarray, position: np.ndarray, length: int) -> np.ndarray:
        """(text, item) pairs whose matched n-grams (at their item positions) cover min_coverage of the item."""
        same = pair[1:] == pair[:-1]
        # Union of the windows [p, p + length) of one pair: each window adds the words up to the next one.
        gain = np.append(np.where(same, np.minimum(length, np.diff(position)), length), length)
        first = np.flatnonzero(np.append(True, ~same))
        covered = np.add.reduceat(gain, first)
        doc, item = np.divmod(pair[first], len(self.index.items))
        keep = covered >= self.min_coverage * self.index.words_per_item[item] - 1e-9
        return np.stack([doc[keep], item[keep]], axis=1)

    def _record(self, pairs: np.ndarray, doc_id_of: Callable[[int], str]) -> None:
        """Count (document, item) pairs in the order given (the lists keep the first ones)."""
        seen_docs: set[int] = set()
        for d, k in pairs.tolist():
            doc_id = doc_id_of(d)
            self._item_hits[k] = self._item_hits.get(k, 0) + 1
            listed = self._item_docs.setdefault(k, [])
            if len(listed) < MAX_DOCS_PER_ITEM:
                listed.append(doc_id)
            if d not in seen_docs:
                seen_docs.add(d)
                self._n_docs += 1
                if len(self._docs) < MAX_DOCUMENTS_LISTED:
                    self._docs.append(doc_id)

    def result(self, suite: str) -> ContaminationReport:
        self.flush()
        tasks: dict[str, dict[str, Any]] = {}
        for k, item in enumerate(self.index.items):
            t = tasks.setdefault(item.task, {"items": 0, "too_short": 0, "contaminated": 0, "item_ids": [],
                                             "documents": {}})  # fmt: skip
            t["items"] += 1
            t["too_short"] += int(self.index.words_per_item[k] == 0)
            if k in self._item_hits:
                t["contaminated"] += 1
                t["item_ids"].append(item.item_id)
                t["documents"][item.item_id] = sorted(self._item_docs[k])
        return ContaminationReport(
            suite=suite, ngram=self.index.n, min_coverage=self.min_coverage, documents_scanned=self.documents,
            bytes_scanned=self.bytes, contaminated_documents=self._n_docs,
            contaminated_document_ids=tuple(sorted(self._docs)), contaminated_items=len(self._item_hits),
            items=len(self.index.items), tasks=tasks,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ContaminationReport:
    """Per task: items checked, too short to check, contaminated, their ids and the documents quoting each."""

    suite: str
    ngram: int
    min_coverage: float
    documents_scanned: int
    bytes_scanned: int
    contaminated_documents: int
    contaminated_document_ids: tuple[str, ...]
    contaminated_items: int
    items: int
    tasks: dict[str, dict[str, Any]]

    @property
    def contaminated(self) -> bool:
        return self.contaminated_items > 0

    def to_dict(self) -> dict[str, Any]:
        from harness.config import to_dict

        return to_dict(self)

    def for_record(self, rule: str) -> dict[str, Any]:
        """The record's `contamination` block (harness.records.Contamination)."""
        keep = ("suite", "ngram", "min_coverage", "documents_scanned", "contaminated_documents",
                "contaminated_items", "items", "tasks")  # fmt: skip
        return {**{k: getattr(self, k) for k in keep}, "rule": rule}

    def summary(self) -> str:
        if not self.contaminated:
            return (f"no contamination: {self.documents_scanned:,} documents against {self.items:,} items of suite "
                    f"{self.suite} ({self.ngram}-grams)")  # fmt: skip
        per_task = ", ".join(
            f"{name} {t['contaminated']}/{t['items']}" for name, t in self.tasks.items() if t["contaminated"]
        )
        return (f"CONTAMINATED: {self.contaminated_documents:,} documents quote {self.contaminated_items:,} items "
                f"of suite {self.suite} ({per_task})")  # fmt: skip


# ------------------------------------------------------------------------------------------- suite items


def suite_items(suite: Suite, data_root: Path | None) -> list[Item]:
    """Every item of every task of the suite: the zero-shot prompt followed by the gold answer, as lm-eval
    renders them. Raises SuiteDataMissing naming the task and how to get its data."""
    from harness.evaluate.data import MissingData
    from harness.evaluate.run import SEEDS
    from harness.evaluate.tasks import build_tasks

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # lm-eval logs every task's config choices
    items: list[Item] = []
    for spec in suite.tasks:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                built = build_tasks(spec, data_root=data_root, fewshot_seed=SEEDS["fewshot"])
        except MissingData as exc:
            raise SuiteDataMissing(f"the contamination check needs every task of suite {suite.name!r}: {exc}") from None
        for b in built:
            items.extend(_task_items(spec.name, b))
    return items


def _task_items(task_name: str, built: Any) -> Iterator[Item]:
    task = built.task
    prefix = f"{built.subtask}/" if built.subtask else ""
    delimiter = task.config.target_delimiter or ""
    for k, doc in enumerate(task.eval_docs):
        prompt = task.doc_to_text(doc)
        prompt = prompt if isinstance(prompt, str) else ""
        target = task.doc_to_target(doc)
        if task.OUTPUT_TYPE == "multiple_choice":
            choices = task.doc_to_choice(doc)
            gold = target[0] if isinstance(target, list) else target
            answer = choices[gold] if isinstance(gold, int) else str(gold)
        else:
            answer = target[0] if isinstance(target, list) else str(target)
        item_id = doc.get("id") if isinstance(doc, dict) else None
        text = f"{prompt}{delimiter}{answer}" if prompt else answer
        yield Item(task_name, prefix + str(item_id if item_id is not None else k), text)


def track_index(track: Track, *, mirror: str | None = None, n: int = NGRAM) -> tuple[str, NgramIndex]:
    """The n-gram index of the track's suite (its data from the pool's eval folder, the mirror or the hub)."""
    from harness.evaluate.data import suite_data_root
    from harness.evaluate.suites import get_suite

    suite = get_suite(track.suite)
    try:
        root = suite_data_root(suite, track, mirror)
    except HarnessError as exc:
        raise SuiteDataMissing(f"the contamination check cannot find suite {suite.name!r}'s data: {exc}") from None
    return suite.name, NgramIndex.build(suite_items(suite, root), n=n)


def scan_documents(
    docs: Iterable[tuple[str, str]],
    suite: str,
    index: NgramIndex,
    *,
    min_coverage: float = MIN_COVERAGE,
    timings: dict[str, float] | None = None,
) -> ContaminationReport:
    """Stream (id, text) pairs through the check (`timings`: see `Scanner.timings`)."""
    scanner = Scanner(index, min_coverage, timings=timings)
    stream = iter(docs)
    while True:
        clock = time.process_time()
        batch = list(itertools.islice(stream, BATCH_DOCUMENTS))
        scanner._lap("read", clock)
        if not batch:
            return scanner.result(suite)
        scanner.add_many(batch)


def iter_jsonl_documents(paths: Iterable[str], progress: Progress | None = None) -> Iterator[tuple[str, str]]:
    """(id, text) of every line of resolved subset files (`{"id", "text", ...}` per line)."""
    import json

    from harness.io.files import open_binary

    for path in paths:
        with open_binary(str(path)) as fh:
            for line in fh:
                if line.strip():
                    doc = json.loads(line)
                    yield str(doc["id"]), doc["text"]


def check_files(track: Track, paths: Iterable[str], *, mirror: str | None = None) -> ContaminationReport:
    """The contamination report of resolved subset files (what `submit`'s validate stage writes)."""
    suite, index = track_index(track, mirror=mirror)
    return scan_documents(iter_jsonl_documents(paths), suite, index)


class SubsetContaminated(HarnessError):
    """The track rejects subsets that quote its evaluation items."""


def enforce(track: Track, report: ContaminationReport | dict[str, Any]) -> None:
    """Raise SubsetContaminated when the track's rule is 'reject' and the subset quotes any item."""
    data = report if isinstance(report, dict) else report.to_dict()
    if track.rules.contamination != "reject" or not data["contaminated_items"]:
        return
    named = "; ".join(
        f"{task}: {', '.join(t['item_ids'][:5])}{' ...' if len(t['item_ids']) > 5 else ''}"
        for task, t in data["tasks"].items() if t["contaminated"]
    )  # fmt: skip
    raise SubsetContaminated(
        f"track {track.name} rejects subsets that quote its evaluation items: {data['contaminated_documents']} "
        f"documents quote {data['contaminated_items']} items ({named}). Remove those documents (their ids are in "
        "the contamination report of `harness validate --json`) and submit again."
    )
