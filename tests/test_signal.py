"""The derived signal aggregate (harness.analysis.signal, harness.evaluate.signal): which tasks and metric pass the
criteria, the evidence stamped into the file, versions, the aggregate beside (never instead of) the suite's, and the
same number computed after the fact from records."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from reliability_fixtures import store

import harness.evaluate.signal as signal_mod
from harness.analysis.scoretable import AGGREGATE, load_records, track_scores
from harness.analysis.signal import signal_toml, write_signal
from harness.analysis.transfer import transfer
from harness.cli import main
from harness.evaluate.signal import load_signal_file, signal_aggregate, signal_for_track


@pytest.fixture
def signal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty evaluation/signal/ folder in place of the shipped one."""
    folder = tmp_path / "signal"
    folder.mkdir()
    monkeypatch.setattr(signal_mod, "signal_dir", lambda: folder)
    return folder


def _derive(results: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["reliability", "--track", "nano", "--results", str(results), "--derive-signal", str(out)]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_derive_keeps_the_passing_tasks_of_one_metric_and_stamps_the_evidence(
    tmp_path: Path, signal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = store(tmp_path / "results", {"nano": 3})
    out = signal_dir / "nano.toml"
    said = _derive(results, out, capsys)
    assert "signal Signal_nano_v1 (new): mean bits_per_byte of fact_cloze, heldout, next_sentence" in said
    d = load_signal_file(out)
    # bits per byte passes on three tasks (fact cloze and next sentence continuous, held-out scored); accuracy on
    # fact cloze alone: next sentence is noise around one value, last word the same on every seed
    assert (d.metric, d.tasks, d.higher_is_better, d.version) == (
        "bits_per_byte", ("fact_cloze", "heldout", "next_sentence"), False, 1
    )  # fmt: skip
    verdicts = {(c.task, c.metric): c for c in d.candidates}
    assert verdicts[("fact_cloze", "acc")].passed and verdicts[("fact_cloze", "norm_correct_prob")].passed
    assert not verdicts[("next_sentence", "acc_norm")].passed and "SNR" in verdicts[("next_sentence", "acc_norm")].why
    assert verdicts[("last_word", "acc")].why.startswith("no seed std")
    assert d.criteria.unmeasured == ("monotonicity",)  # no checkpoint scores in these records
    files = {p.name.removesuffix(".json"): hashlib.sha256(p.read_bytes()).hexdigest() for p in results.rglob("*.json")}
    assert {(x.entry_id, x.sha256, x.seeds) for x in d.evidence} == {(k, v, 3) for k, v in files.items()}
    assert d.suite == "sandbox" and d.harness_version and d.derived_at


def test_the_same_definition_keeps_its_version_and_a_changed_one_gets_the_next(
    tmp_path: Path, signal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = signal_dir / "nano.toml"
    _derive(store(tmp_path / "a", {"nano": 3}), out, capsys)
    assert "(unchanged definition, evidence renewed)" in _derive(
        store(tmp_path / "b", {"nano": 3}, seed=5), out, capsys
    )
    assert load_signal_file(out).version == 1
    # next sentence's bits per byte is now noise: the definition drops it and becomes version 2
    said = _derive(store(tmp_path / "c", {"nano": 3}, noisy=["next_sentence"]), out, capsys)
    assert "signal Signal_nano_v2 (changed from version 1): mean bits_per_byte of fact_cloze, heldout" in said
    assert load_signal_file(out).tasks == ("fact_cloze", "heldout")
    # the shipped file is what a new file elsewhere replaces: a copy elsewhere continues its numbering
    said = _derive(store(tmp_path / "d", {"nano": 3}), tmp_path / "elsewhere.toml", capsys)
    assert "Signal_nano_v3 (changed from version 2)" in said and f"once the file is at {out}" in said


def test_derive_refuses_what_it_cannot_answer(
    tmp_path: Path, signal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = store(tmp_path / "single", {"nano": 1})
    assert (
        main(["reliability", "--track", "nano", "--results", str(single), "--derive-signal", str(tmp_path / "s.toml")])
        == 1
    )
    assert "each of the 4 entries has one seed" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "s.toml").exists()
    results = store(tmp_path / "r", {"nano": 3})
    assert main(["reliability", "--track", "nano", "--results", str(results), "--derive-signal", str(tmp_path)]) == 2
    assert "is a folder; give a file" in " ".join(capsys.readouterr().err.split())
    other = tmp_path / "micro.toml"
    _derive(results, other, capsys)
    other.write_text(other.read_text().replace('track = "nano"', 'track = "micro"'))
    assert main(["reliability", "--track", "nano", "--results", str(results), "--derive-signal", str(other)]) == 2
    assert "is track micro's, not nano's" in " ".join(capsys.readouterr().err.split())


def test_the_file_round_trips_any_text(tmp_path: Path, signal_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _derive(store(tmp_path / "r", {"nano": 3}), signal_dir / "nano.toml", capsys)
    d = load_signal_file(signal_dir / "nano.toml")
    odd = replace(d, notes='quote " backslash \\ newline \n tab \t DEL \x7f bell \x07 é 🙂', tasks=('a"b', "c\nd"))
    write_signal(odd, tmp_path / "odd.toml")
    assert load_signal_file(tmp_path / "odd.toml") == odd
    assert tomllib.loads(signal_toml(odd))["notes"] == odd.notes


def _eval_json(tasks: dict[str, tuple[str, float, dict[str, float]]], track: str | None) -> dict:
    """An eval.json as `evaluate_checkpoint` writes it, for the sandbox suite."""
    from harness.evaluate.aggregate import compute_aggregates
    from harness.evaluate.suites import get_suite

    suite = get_suite("sandbox")
    aggregates = compute_aggregates(suite, {t: v for t, (_, v, _) in tasks.items()})
    aggregates.update(signal_for_track(track, suite.name, suite.version, tasks))
    return {
        "suite": "sandbox", "suite_version": 1, "primary": "Sandbox_v1", "heldout_lm": None,
        "aggregates": {n: a.to_dict() for n, a in aggregates.items()},
        "tasks": {t: {"accuracy": v, "metric": m, "shots": 0, "n_samples": 10, "metrics": {m: v}, "stderr": {},
                      "data": {"files": t}, "continuous": c} for t, (m, v, c) in tasks.items()},
    }  # fmt: skip


def test_evaluation_adds_the_aggregate_beside_the_suites_never_instead(
    tmp_path: Path, signal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.submit.record import evaluation_for_record

    _derive(store(tmp_path / "r", {"nano": 3}), signal_dir / "nano.toml", capsys)
    tasks = {
        "fact_cloze": ("acc_per_token", 0.6, {"bits_per_byte": 2.5, "norm_correct_prob": 0.3}),
        "next_sentence": ("acc_per_token", 0.4, {"bits_per_byte": 2.0}),
        "last_word": ("acc", 0.1, {"bits_per_byte": 4.0}),
        "heldout": ("bits_per_byte", 1.5, {}),
    }
    plain = evaluation_for_record(_eval_json(tasks, None))
    with_signal = evaluation_for_record(_eval_json(tasks, "nano"))
    assert with_signal["primary_aggregate"] == plain["primary_aggregate"] == "Sandbox_v1"
    assert {k: v for k, v in with_signal["aggregates"].items() if k != "Signal_nano_v1"} == plain["aggregates"]
    agg = with_signal["aggregates"]["Signal_nano_v1"]
    assert agg["value"] == pytest.approx((2.5 + 2.0 + 1.5) / 3) and agg["higher_is_better"] is False
    assert agg["version"] == "signal:nano@1/sandbox@1" and "never ranked by" in agg["description"]
    assert evaluation_for_record(_eval_json(tasks, "micro")) == plain  # no definition for micro: nothing added
    del tasks["heldout"]  # a task without the metric: absent, named, never a mean over fewer
    absent = evaluation_for_record(_eval_json(tasks, "nano"))["aggregates"]["Signal_nano_v1"]
    assert absent["value"] is None and absent["missing"] == ["heldout"]


def test_another_suite_version_gets_no_value() -> None:
    from harness.evaluate.signal import Criteria, Evidence, SignalDefinition

    d = SignalDefinition(
        track="nano", version=2, suite="sandbox", suite_version=1, metric="acc", higher_is_better=True,
        tasks=("fact_cloze",), criteria=Criteria(min_monotonicity=0.5, min_snr=20, min_chance_margin=3),
        derived_at="2026-01-01T00:00:00+00:00", harness_version="0", evidence=(Evidence(entry_id="x", sha256="0" * 64, seeds=3),),
    )  # fmt: skip
    assert signal_aggregate(d, "sandbox", 1, {"fact_cloze": 0.5}).value == 0.5
    other = signal_aggregate(d, "sandbox", 2, {"fact_cloze": 0.5})
    assert other.value is None and "derived on suite sandbox v1" in other.reason and other.name == "Signal_nano_v2"


def test_computed_after_the_fact_from_records_and_measured_against_the_next_rung(
    tmp_path: Path, signal_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = store(tmp_path / "r", {"nano": 3, "micro": 2})
    _derive(results, signal_dir / "nano.toml", capsys)
    records, sources = load_records([], track="nano", results=str(results))
    scores = track_scores(records, sources)
    unit = ("Signal_nano_v1", AGGREGATE)
    assert scores.infos[unit].higher_is_better is False and scores.primary == "Sandbox_v1"
    entry = scores.entries[0]
    runs = json.loads(Path(sources[0]).read_text())["replicates"]["runs"]
    expected = [(r["continuous"]["fact_cloze"]["bits_per_byte"] + r["continuous"]["next_sentence"]["bits_per_byte"]
                 + r["tasks"]["heldout"]) / 3 for r in runs]  # fmt: skip
    assert entry.values[unit] == pytest.approx(expected)
    micro = track_scores(*load_records([], track="micro", results=str(results)))
    assert ("Signal_nano_v1", AGGREGATE) not in micro.infos  # the definition is nano's only
    rows = {(a.task, a.target_task): a for a in transfer(scores, micro, resamples=50).agreements}
    signal = rows[("Signal_nano_v1", "Sandbox_v1")]  # lower bits per byte on nano predicts higher Sandbox on micro
    assert signal.decision_accuracy == 1.0 and signal.pairs == 6 and math.isclose(signal.kendall_tau, 1.0)
    assert main(["transfer", "nano", "micro", "--results", str(results), "--scored-only", "--resamples", "20"]) == 0
    assert "Signal_nano_v1 → Sandbox_v1" in capsys.readouterr().out


def test_evaluate_writes_the_aggregate_of_the_tracks_definition(tmp_path: Path, signal_dir: Path) -> None:
    """`harness evaluate` on a debug checkpoint, with a definition for debug: the aggregate in eval.json is the mean
    of the tasks' metric, and the suite's aggregates and primary are what they are without it."""
    from evaluate_fixtures import write_checkpoint, write_eval_folder

    from harness.evaluate.signal import Criteria, Evidence, SignalDefinition

    definition = SignalDefinition(
        track="debug", version=4, suite="sandbox", suite_version=1, metric="bits_per_byte", higher_is_better=False,
        tasks=("fact_cloze", "heldout"), criteria=Criteria(min_monotonicity=0.5, min_snr=20, min_chance_margin=3),
        derived_at="2026-01-01T00:00:00+00:00", harness_version="0",
        evidence=(Evidence(entry_id="debug-0", sha256="0" * 64, seeds=3),),
    )  # fmt: skip
    write_signal(definition, signal_dir / "debug.toml")
    run, evald = write_checkpoint(tmp_path / "run", "debug"), write_eval_folder(tmp_path / "eval", n=6)
    assert main(["evaluate", str(run), "--mirror", str(evald), "--out", str(tmp_path / "eval.json")]) == 0
    data = json.loads((tmp_path / "eval.json").read_text())
    tasks, aggregates = data["tasks"], data["aggregates"]
    assert data["primary"] == "Sandbox_v1" and data["primary_value"] == aggregates["Sandbox_v1"]["value"]
    accs = [tasks[t]["accuracy"] for t in ("fact_cloze", "next_sentence", "last_word")]
    assert aggregates["Sandbox_v1"]["value"] == pytest.approx(
        ((accs[0] - 0.25) / 0.75 + (accs[1] - 0.25) / 0.75 + accs[2]) / 3
    )
    signal = aggregates["Signal_debug_v4"]
    want = (tasks["fact_cloze"]["continuous"]["bits_per_byte"] + tasks["heldout"]["accuracy"]) / 2
    assert signal["value"] == pytest.approx(want) and signal["higher_is_better"] is False
    assert signal["stamp"] == "signal:debug@4/sandbox@1" and signal["tasks"] == ["fact_cloze", "heldout"]
