"""What a verification found: one `Check` per comparison, and the outcome file the leaderboard reads.

verification.json (docs/reference/formats.md):

    {"format": "harness.verification/1", "level": "train" | "eval" | "data" | "self-reported",
     "requested": "eval", "ok": true, "bundle": "<sha256 of manifest.json>", "entry_id": ..., "track": ...,
     "harness_version": ..., "device": "cpu", "tolerance": 0.0, "verified_at": ..., "checks": [...]}

`level` is the highest level whose checks, and those of every level below it, all passed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.bundle import LEVELS, OUTCOME_FORMAT, SELF_REPORTED


@dataclass(frozen=True)
class Check:
    """One comparison: at which level, of what (a file, a task, a shard ...), whether it matched, and how."""

    level: str
    what: str
    ok: bool
    detail: str
    difference: float | None = None  # by how much, where a number was compared

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Outcome:
    """The checks of one verification, in the order they ran."""

    bundle: str
    entry_id: str
    track: str
    requested: str
    device: str = "cpu"
    tolerance: float = 0.0
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, level: str, what: str, ok: bool, detail: str, difference: float | None = None) -> Check:
        check = Check(level, what, bool(ok), detail, difference)
        self.checks.append(check)
        return check

    def failed(self, level: str | None = None) -> list[Check]:
        return [c for c in self.checks if not c.ok and (level is None or c.level == level)]

    @property
    def level(self) -> str:
        """The highest level reached: its checks and those below it ran and all passed."""
        reached = SELF_REPORTED
        for level in LEVELS:
            ran = [c for c in self.checks if c.level == level]
            if not ran or any(not c.ok for c in ran):
                break
            reached = level
            if level == self.requested:
                break
        return reached

    @property
    def ok(self) -> bool:
        return self.level == self.requested

    def to_json(self) -> dict[str, Any]:
        from harness.records import now_iso

        return {
            "format": OUTCOME_FORMAT,
            "level": self.level,
            "requested": self.requested,
            "ok": self.ok,
            "bundle": self.bundle,
            "entry_id": self.entry_id,
            "track": self.track,
            "harness_version": __version__,
            "device": self.device,
            "tolerance": self.tolerance,
            "verified_at": now_iso(),
            "checks": [c.to_dict() for c in self.checks],
            "mismatches": len(self.failed()),
            "notes": self.notes,
        }

    def write(self, path: str | Path) -> Path:
        from harness.io.files import write_text_atomic

        out = Path(path)
        write_text_atomic(out, json.dumps(self.to_json(), indent=1, sort_keys=False, allow_nan=False) + "\n")
        return out
