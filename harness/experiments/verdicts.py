"""The verdicts of `harness sweep report`: every pair of finished cells on one track (the same model and compute),
each aggregate's difference A - B with its 95% interval and verdict, exactly as `harness compare` gives them.

A sweep's conclusions come from these verdicts, never from the table's means: a cell with one seed has no seed
spread, and against another such cell `compare` answers "no verdict" and says how many seeds would decide it.
Cells on different tracks (compute multipliers) are never paired as rivals: they had different budgets. Where the
experiment varies the compute multiplier, each cell is instead compared with the same cell one budget lower
(`compare --across-budgets`, the "budget steps"): whether more compute on the same subset helped, or, once its
documents repeat too often, hurt.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

from harness.analysis.compare import NotComparable, compare_records
from harness.records import Record

#: Aggregates shown in verdicts.md beside the primary one (all of them are in verdicts.json).
SHOWN = ("heldout_bpb",)


def cell_pairs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every pair of cells on the same track, in the order of the experiment's cells."""
    return [(a, b) for a, b in combinations(rows, 2) if a["track"] == b["track"]]


def cell_verdicts(rows: list[dict[str, Any]], records: dict[str, Record]) -> list[dict[str, Any]]:
    """One entry per pair: the cells, their seeds and every shared aggregate's difference (or why none)."""
    return [_verdict(a, b, records, a["track"]) for a, b in cell_pairs(rows)]


def budget_steps(rows: list[dict[str, Any]], records: dict[str, Record], factors: list[str]) -> list[dict[str, Any]]:
    """Each cell against the same cell (every other level equal) at the next smaller compute multiplier: A is the
    larger budget, so "A better" says the extra compute helped. Empty when the experiment does not vary the scale."""
    if "scale" not in factors:
        return []
    fixed = [f for f in factors if f not in ("scale", "seed")]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[f] for f in fixed), []).append(row)
    return [_verdict(high, low, records, f"{high['track']} vs {low['track']}", across_budgets=True)
            for group in groups.values() for low, high in pairwise(sorted(group, key=lambda r: r["scale"]))]  # fmt: skip


def _verdict(
    a: dict[str, Any], b: dict[str, Any], records: dict[str, Record], track: str, across_budgets: bool = False
) -> dict[str, Any]:
    """`harness compare` of two cells' records: the cells, their seeds, and the differences or why there are none."""
    entry: dict[str, Any] = {"a": a["cell"], "b": b["cell"], "track": track, "seeds": [a["seeds"], b["seeds"]]}
    try:
        comparison = compare_records(records[a["entry_id"]], records[b["entry_id"]], a["cell"], b["cell"],
                                     across_budgets=across_budgets)  # fmt: skip
    except NotComparable as exc:
        entry["not_comparable"] = str(exc)
    else:
        entry["differences"] = [asdict(d) for d in comparison.differences]
    return entry


def markdown(
    experiment_name: str, verdicts: list[dict[str, Any]], primary: str, steps: list[dict[str, Any]] | None = None
) -> str:
    shown = [primary, *(s for s in SHOWN if s != primary)]
    head = ["A", "B", "track", "seeds A/B", *(f"{s} A - B [95%] verdict" for s in shown)]
    lines = [f"# {experiment_name}: verdicts", "",
             "Every pair of finished cells on one track through `harness compare` (seed and paired evaluation-example "
             "noise; a verdict is wrong at most 5% of the time at equal means).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    lines += [_row(v, shown) for v in verdicts]
    lines += _leaders(verdicts, shown)
    if steps:
        lines += ["", "Budget steps: each cell against the same subset one compute multiplier lower (`harness compare "
                  "--across-budgets`; A the larger budget, so \"A better\" means the extra compute helped):", "",
                  "| A | B | tracks | seeds A/B | " + " | ".join(f"{s} A - B [95%] verdict" for s in shown) + " |",
                  "|" + "---|" * (4 + len(shown)), *(_row(v, shown) for v in steps)]  # fmt: skip
    notes = sorted({d["note"] for v in [*verdicts, *(steps or [])] for d in v.get("differences", []) if d.get("note")})
    lines += ["", *(f"Note: {n}" for n in notes)] if notes else []
    return "\n".join(lines) + "\n"


def _leaders(verdicts: list[dict[str, Any]], shown: list[str]) -> list[str]:
    """Per track and aggregate: the cell with the best mean over its seeds, and which cells it beats by a verdict
    and which it does not (the rest of the pairs are in the table above)."""
    means: dict[tuple[str, str], dict[str, float]] = {}
    better: dict[tuple[str, str], bool] = {}
    decided: dict[tuple[str, str, str, str], str] = {}
    for v in verdicts:
        for d in v.get("differences", []):
            key = (v["track"], d["aggregate"])
            means.setdefault(key, {}).update({v["a"]: d["a"]["mean"], v["b"]: d["b"]["mean"]})
            better[key] = d["higher_is_better"]
            winner = v["a"] if d["verdict"] == "A better" else v["b"] if d["verdict"] == "B better" else ""
            decided[(*key, v["a"], v["b"])] = decided[(*key, v["b"], v["a"])] = winner
    out = []
    for (track, aggregate), by_cell in sorted(means.items()):
        if aggregate not in shown or len(by_cell) < 2:
            continue
        pick = max if better[(track, aggregate)] else min
        best = pick(by_cell, key=lambda c: by_cell[c])
        beaten = [c for c in by_cell if c != best and decided[(track, aggregate, best, c)] == best]
        open_ = [c for c in by_cell if c != best and c not in beaten]
        out.append(f"- {track}, {aggregate}: best mean {best} ({by_cell[best]:.4f}); beats by a verdict: "
                   f"{', '.join(beaten) or 'none'}; not decided against: {', '.join(open_) or 'none'}")  # fmt: skip
    return ["", "Leaders (best mean over the seeds on each track; a lead only counts where its verdict says so):", "",
            *out] if out else []  # fmt: skip


def _row(v: dict[str, Any], shown: list[str]) -> str:
    """One table row: the cells, track(s), seeds, and each shown aggregate's difference and verdict."""
    by_name = {d["aggregate"]: d for d in v.get("differences", [])}
    cells = [_cell(by_name.get(s), v.get("not_comparable")) for s in shown]
    return "| " + " | ".join([v["a"], v["b"], v["track"], "/".join(map(str, v["seeds"])), *cells]) + " |"


def _cell(d: dict[str, Any] | None, why: str | None) -> str:
    if d is None:
        return "not comparable" if why else "–"
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] {d['verdict']}"


def write_verdicts(
    out: Path,
    experiment_name: str,
    rows: list[dict[str, Any]],
    records: dict[str, Record],
    primary: str,
    factors: list[str] | None = None,
) -> dict[str, Path]:
    """report/verdicts.md and report/verdicts.json (the pairs on one track, and the budget steps)."""
    verdicts, steps = cell_verdicts(rows, records), budget_steps(rows, records, factors or [])
    files = {"verdicts_md": out / "verdicts.md", "verdicts_json": out / "verdicts.json"}
    files["verdicts_md"].write_text(markdown(experiment_name, verdicts, primary, steps), encoding="utf-8")
    blob = {"experiment": experiment_name, "pairs": verdicts, "budget_steps": steps}
    files["verdicts_json"].write_text(json.dumps(blob, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return files
