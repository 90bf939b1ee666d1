"""What `harness validate` says about a subset: its problems and warnings with their places, its figures, its hash.

The types here are plain frozen data (`ValidationReport.to_dict` is the `--json` output); the scan fills them
(harness.submit.scan), harness.submit.validate assembles them, harness.display.validation shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config import to_dict

#: Problems listed in full in a report; the rest are counted by code.
LISTED_PROBLEMS = 20


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
