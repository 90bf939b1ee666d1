"""The committed DataDecide experiment in miniature (experiments/results/datadecide/): its records answer
`harness reliability` and `harness transfer`, its report is what they print today, and the shipped signal
aggregate was derived from exactly those records."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.evaluate.signal import load_signal_file, signal_dir
from harness.tracks import get_track

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "results" / "datadecide"
STORE, REPORT = EXPERIMENT / "results", EXPERIMENT / "report"
SMALL, TARGET = ("nano-v5", "nano-v5-0.25x"), "micro-v5"


def test_every_shipped_signal_definition_loads_and_belongs_to_a_shipped_track() -> None:
    files = sorted(signal_dir().glob("*.toml"))
    assert files, "no shipped signal aggregate"
    for path in files:
        d = load_signal_file(path)
        assert d.track == path.stem and d.suite == get_track(d.track).suite  # an unknown track raises


def test_the_nano_v5_signal_was_derived_from_the_committed_records() -> None:
    d = load_signal_file(signal_dir() / "nano-v5.toml")
    committed = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in (STORE / "nano-v5").glob("*.json")}
    assert {e.entry_id: e.sha256 for e in d.evidence} == committed
