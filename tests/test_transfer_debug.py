"""End to end on the debug track: submits with --checkpoint-scores and replicates, then `harness reliability` and
`harness transfer debug-0.5x debug` on the records they wrote (two random subsets: the mechanics, not a verdict)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
def test_checkpoint_scores_reliability_and_transfer_on_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    subsets = []
    for seed in (0, 1):
        out = tmp_path / f"random{seed}.jsonl"
        subprocess.run([sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--seed", str(seed),
                        "--out", str(out)], check=True, capture_output=True)  # fmt: skip
        subsets.append(out)
    common = ["--results", "results", "--run-dir", "runs"]
    for n, subset in enumerate(subsets):
        args = ["submit", str(subset), "--name", subset.stem, *common]
        replicates = ["--replicates", "2"] if n == 0 else []
        assert main([*args, "--track", "debug", "--checkpoint-scores", *replicates]) == 0
        assert main([*args, "--track", "debug", "--scale", "0.5"]) == 0  # the small rung: final scores only
    capsys.readouterr()

    (record_file,) = [p for p in (tmp_path / "results" / "debug").glob("*.json") if "random0" in p.read_text()]
    runs = json.loads(record_file.read_text())["replicates"]["runs"]
    assert len(runs) == 2
    for run in runs:  # debug saves 2 checkpoints: steps 32 and 64, each scored
        trajectory = run["trajectory"]
        assert trajectory["steps"] == [32, 64]
        assert trajectory["tasks"]["fact_cloze"]["acc_per_token"][-1] == run["tasks"]["fact_cloze"]
        assert len(trajectory["tasks"]["fact_cloze"]["norm_correct_prob"]) == 2
        assert trajectory["aggregates"]["Sandbox_v1"][-1] == pytest.approx(run["aggregates"]["Sandbox_v1"])
    scored = tmp_path / "runs" / "debug" / record_file.stem / "evaluate" / "checkpoints"
    assert sorted(p.name for p in scored.iterdir()) == ["epoch_1.json"]
    written = (scored / "epoch_1.json").stat().st_mtime_ns

    assert main(["reliability", "--track", "debug", "--results", "results", "--json"]) == 0
    units = {(u["task"], u["metric"]): u for u in json.loads(capsys.readouterr().out)["units"]}
    heldout = units[("heldout", "bits_per_byte")]
    assert heldout["seed_std"] > 0 and heldout["noise_from"] == "checkpoints"
    assert heldout["monotonicity"] == pytest.approx(1.0)  # held-out bits per byte falls from step 32 to 64

    assert main(["transfer", "debug-0.5x", "debug", "--results", "results", "--json", "--resamples", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["entries"]) == 2 and sorted(out["seeds"]) == [[1, 1], [1, 2]]
    primary = next(a for a in out["agreements"] if a["task"] == "Sandbox_v1")
    assert primary["pairs"] + primary["target_ties"] == 1

    # Resumable: a second submit reuses every stage, the checkpoint scores included.
    again = ["submit", str(subsets[0]), "--name", "random0", "--track", "debug", "--replicates", "2"]
    assert main([*again, "--checkpoint-scores", *common]) == 0
    assert "Reused finished stages: validate, tokenize, train, evaluate" in " ".join(capsys.readouterr().out.split())
    assert (scored / "epoch_1.json").stat().st_mtime_ns == written
