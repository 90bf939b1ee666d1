"""How an entry was checked: `<store>/_verified/<entry-id>/verification.json`, written when `harness leaderboard
add BUNDLE` verified the entry's bundle (harness.bundle), read by the leaderboard.

An entry without one is self-reported. A verification counts only for the record it verified: it carries the
sha256 of that record's stored bytes, and a record replaced later (a re-run of the same entry) is self-reported
again until its bundle is verified again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from harness.fields import data_problem, name_problem
from harness.records.parse import StoreProblem
from harness.records.sidecars import read_sidecars, write_sidecar

FOLDER = "_verified"
FILE = "verification.json"
#: Verification levels, lowest first (harness verify --level); an entry shows the level its bundle reached.
LEVELS = ("data", "eval", "train")
SELF_REPORTED = "self-reported"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class Verification:
    """One verified entry: the level its bundle reached and what exactly was verified."""

    entry_id: str
    level: str
    bundle: str  # sha256 of the bundle's manifest.json
    record_sha256: str  # sha256 of the record's stored bytes
    verified_at: str
    harness_version: str

    @property
    def label(self) -> str:
        return f"verified: {self.level}"


def record_sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def verification_problem(data: Any, folder: str | None = None) -> str | None:
    """Why `data` is not a verification outcome the leaderboard can show (None when it is)."""
    if not isinstance(data, dict) or set(data) != {f for f in Verification.__dataclass_fields__}:
        return f"must be an object with exactly the keys {', '.join(Verification.__dataclass_fields__)}"
    if problem := data_problem(data) or name_problem("'entry_id'", data["entry_id"]):
        return problem
    if folder is not None and data["entry_id"] != folder:
        return f"'entry_id' {data['entry_id']!r} differs from its folder's name {folder!r}"
    if data["level"] not in LEVELS:
        return f"'level' must be one of {', '.join(LEVELS)}, got {data['level']!r}"
    for key in ("bundle", "record_sha256"):
        if not isinstance(data[key], str) or not _HEX64.fullmatch(data[key]):
            return f"'{key}' must be 64 lower-case hex digits"
    if not all(isinstance(data[k], str) for k in ("verified_at", "harness_version")):
        return "'verified_at' and 'harness_version' must be text"
    return None


def add_verification(
    results_url: str, verification: Verification, storage_options: dict[str, Any] | None = None
) -> str:
    """Store the verification of an entry (replacing an earlier one); returns its path."""
    import json

    data = asdict(verification)
    if problem := verification_problem(data):
        raise ValueError(f"not a valid verification: {problem}")
    blob = (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()
    return write_sidecar(results_url, FOLDER, verification.entry_id, FILE, blob, storage_options)


def read_verifications(
    results_url: str, storage_options: dict[str, Any] | None = None
) -> tuple[dict[str, Verification], list[StoreProblem]]:
    """Every valid verification in the store by entry id, and each skipped file with the reason."""
    found, problems = read_sidecars(results_url, FOLDER, FILE, "verification", storage_options)
    out = {}
    for folder, shown, data in found:
        if problem := verification_problem(data, folder):
            problems.append(StoreProblem(shown, f"not a valid verification: {problem}"))
        else:
            out[folder] = Verification(**data)
    return out, problems


def status_of(verifications: dict[str, Verification], entry_id: str, stored: bytes | None) -> str:
    """'verified: <level>' when the entry's stored record is the one verified, else 'self-reported'."""
    v = verifications.get(entry_id)
    if v is None or stored is None or record_sha256(stored) != v.record_sha256:
        return SELF_REPORTED
    return v.label
