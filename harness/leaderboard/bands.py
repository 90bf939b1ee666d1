"""Uncertainty on the leaderboard: each entry's mean ± 95% interval, marks where adjacent ranks are not
distinguishable, contamination flags, and each track's noise floor (the seed spread of its random baseline).

Adjacent ranks are compared from the records' intervals alone (unpaired: the two standard errors, each read off
its 95% interval, added in quadrature), which is conservative next to `harness compare`'s paired test: a pair
marked distinguishable here is distinguishable there too.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from harness.records import Record

#: Entries whose name says they are the random baseline define a track's noise floor.
RANDOM_BASELINE = re.compile(r"\brandom\b", re.IGNORECASE)
_Z = 1.959963984540054


def value_of(record: Record, name: str, fallback: float | None) -> float | None:
    """An aggregate's value for ranking: the replicates' mean when the record has one, else the official run's."""
    stat = record.replicates.aggregates.get(name) if record.replicates else None
    return stat["mean"] if stat else fallback


def _stat(record: Record, name: str) -> dict[str, Any] | None:
    return record.replicates.aggregates.get(name) if record.replicates else None


def band_text(record: Record, name: str) -> str:
    """'± 0.012 (3 seeds)': the half-width of the 95% interval of the entry's mean."""
    stat = _stat(record, name)
    if stat is None:
        return "–"
    half = (stat["high"] - stat["low"]) / 2
    seeds = f"{stat['n']} seed{'s' if stat['n'] != 1 else ''}"
    return f"± {half:.3f} ({seeds})"


def contamination_flag(record: Record) -> str:
    c = record.contamination
    if c is None or not c.contaminated_items:
        return ""
    return f"contaminated: {c.contaminated_items} items in {c.contaminated_documents} documents"


def _stderr(record: Record, name: str) -> float | None:
    stat = _stat(record, name)
    return None if stat is None else (stat["high"] - stat["low"]) / (2 * _Z)


def distinguishable(a: Record, b: Record, name: str) -> bool | None:
    """Whether two entries' means differ at 95% (unpaired, normal); None without intervals on both."""
    sa, sb = _stderr(a, name), _stderr(b, name)
    va, vb = value_of(a, name, None), value_of(b, name, None)
    if sa is None or sb is None or va is None or vb is None:
        return None
    return abs(va - vb) > _Z * math.hypot(sa, sb)


def mark_rows(rows: list[dict[str, Any]], records: dict[str, Record], primary_name: str) -> None:
    """Fill each row's `band` and `flags`: ≈ where the entry cannot be told apart from the next ranked one."""
    for row in rows:
        record = records[row["id"]]
        row["band"] = band_text(record, primary_name)
        row["flags"] = contamination_flag(record)
    ranked = [r for r in rows if r.get("rank") is not None]
    for upper, lower in itertools.pairwise(ranked):
        same = distinguishable(records[upper["id"]], records[lower["id"]], primary_name)
        if same is False:
            note = f"≈ rank {lower['rank']} (not distinguishable at 95%)"
            upper["flags"] = "; ".join(f for f in (note, upper["flags"]) if f)


@dataclass(frozen=True)
class NoiseFloor:
    """A track's noise floor: the seed standard deviation of its random baseline's primary aggregate."""

    std: float | None
    entry: str
    seeds: int

    def text(self, primary_name: str) -> str:
        if self.std is None:
            return (
                f"Noise floor: not measured yet (submit a random baseline with --replicates 3 or more to measure the "
                f"seed spread of {primary_name})."
            )
        return (
            f"Noise floor: seed standard deviation {self.std:.4f} of {primary_name} for {self.entry} "
            f"({self.seeds} seeds); differences smaller than about {2 * self.std:.3f} are within seed noise."
        )


def noise_floor(records: list[Record], primary_name: str) -> NoiseFloor:
    """From the random-baseline entry (by name) with the most replicates (at least 2)."""
    best: tuple[int, float, str] | None = None
    for r in records:
        stat = _stat(r, primary_name)
        usable = stat and stat["n"] >= 2 and stat["std"] is not None and RANDOM_BASELINE.search(r.submission.name)
        if usable and (best is None or stat["n"] > best[0]):  # type: ignore[index]
            best = (stat["n"], stat["std"], r.submission.name)  # type: ignore[index]
    return NoiseFloor(None, "", 0) if best is None else NoiseFloor(best[1], best[2], best[0])
