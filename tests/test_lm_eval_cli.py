"""`harness-lm-eval`: lm-eval's own command line, with its own arguments, finds and runs the `harness` model."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from evaluate_fixtures import write_checkpoint, write_eval_folder

ROOT = Path(__file__).resolve().parent.parent

TASK = """task: tiny_last_word
dataset_path: json
dataset_kwargs:
  data_files: {path}
test_split: train
output_type: loglikelihood
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{target}}}}"
metric_list:
  - metric: acc
"""


def test_console_script_is_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["harness-lm-eval"] == "harness.evaluate.__main__:main"


def test_lm_evals_own_arguments_run_the_harness_model(tmp_path: Path) -> None:
    run = write_checkpoint(tmp_path / "run", "debug")
    data = write_eval_folder(tmp_path / "eval", n=6) / "last_word.jsonl"
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "tiny_last_word.yaml").write_text(TASK.format(path=data))
    out = tmp_path / "out"
    argv = ["harness-lm-eval", "--model", "harness", "--model_args", f"checkpoint={run}", "--batch_size", "auto",
            "--tasks", "tiny_last_word", "--include_path", str(tasks), "--output_path", str(out), "--device", "cpu"]  # fmt: skip
    code = f"import sys; sys.argv = {argv!r}; from harness.evaluate.__main__ import main; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = out.rglob("results_*.json")
    metrics = json.loads(result.read_text())["results"]["tiny_last_word"]
    assert 0.0 <= metrics["acc,none"] <= 1.0
    assert json.loads(result.read_text())["config"]["model"] == "harness"
