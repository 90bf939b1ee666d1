"""The second pass of validation, over the entries the scan collected (harness.submit.scan).

Given texts are compared with their pool texts in a pass that reads each pool shard touched once, in order
(harness.submit.edits holds the deletion rule); id-only documents get their token counts there when the pool has
none stored. Then the repeats are checked against the track's token budget, which needs every token count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.pools.index import count_tokens
from harness.submit.edits import first_difference, is_deletion
from harness.submit.scan import EDITED, POOL, spooled

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.submit.scan import Scan


def resolve(scan: Scan, e: dict[str, np.ndarray], progress: Progress) -> None:
    """Second pass over the pool shards touched: deletion checks of given texts, tokens of id-only documents."""
    need_text = (e["kind"] == EDITED) & e["valid"]
    need_tokens = (e["tok"] < 0) & e["valid"] & (e["kind"] == POOL) & (scan.tokenizer is not None)
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
            if e["kind"][k] == POOL:
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


def _check_edit(scan: Scan, e: dict[str, np.ndarray], k: int, original: str) -> str | None:
    """Check a given text against its pool text; returns the text when it is accepted."""
    text = spooled(scan.spool, int(e["soff"][k]), int(e["slen"][k]))
    loc = int(e["loc"][k])
    if text == original:
        e["kind"][k], e["dhi"][k], e["dlo"][k] = POOL, 0, 0  # the pool text as is: not an edit
    elif not scan.track.rules.text_edits:
        scan.problem(loc, "edits-not-allowed", f"track {scan.track.name} takes pool texts unchanged")
        e["valid"][k] = False
    elif not is_deletion(original, text):
        scan.problem(loc, "not-a-deletion", first_difference(original, text))
        e["valid"][k] = False
    return text if e["valid"][k] else None


def _count_pending(scan: Scan, e: dict[str, np.ndarray], pending: list[tuple[int, str]]) -> None:
    if pending:
        e["tok"][[k for k, _ in pending]] = count_tokens(scan.tokenizer, [t for _, t in pending])
        pending.clear()


def check_repeats(scan: Scan, e: dict[str, np.ndarray]) -> None:
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
