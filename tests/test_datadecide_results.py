"""The committed DataDecide experiment in miniature (experiments/results/datadecide/): its records answer
`harness reliability` and `harness transfer`, its report is what they print today, and the shipped signal
aggregate was derived from exactly those records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.evaluate.signal import load_signal_file, signal_dir
from harness.tracks import get_track

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "results" / "datadecide"
STORE, REPORT = EXPERIMENT / "results", EXPERIMENT / "report"
SMALL, TARGET = ("nano-v5", "nano-v5-0.5x", "nano-v5-0.25x"), "micro-v5"


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


@pytest.mark.parametrize("small", SMALL)
def test_the_committed_report_is_what_transfer_prints_from_the_committed_records(
    small: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["transfer", small, TARGET, "--results", str(STORE), "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)
    assert fresh == json.loads((REPORT / f"transfer-{small}.json").read_text())
    assert len(fresh["entries"]) >= 8 and all(s >= 3 and t >= 2 for s, t in fresh["seeds"])  # the minimum


@pytest.mark.parametrize("track", [*SMALL, TARGET])
def test_the_committed_reliability_tables_print_from_the_committed_records(
    track: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reliability", "--track", track, "--results", str(STORE), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((REPORT / f"reliability-{track}.json").read_text())
