"""`harness sweep run|report` and `harness scaling fit` end to end on the shipped debug experiments: every cell is an
ordinary entry; a sweep killed during a cell resumes without redoing finished cells; the report's files hold the
records' numbers; the leaderboard groups multipliers and has an experiment page."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def _harness(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip


def _run(*args: str, cwd: Path) -> tuple[int, str]:
    proc = _harness(*args, cwd=cwd)
    out, _ = proc.communicate(timeout=900)
    return proc.returncode, out


def _oracle_scores(folder: Path) -> None:
    """A `harness score`-shaped Parquet file: pool id + an 'oracle' column from the sandbox's hidden labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.pools import ensure_pool
    from harness.pools.ids import u64_to_id

    pool = ensure_pool("sandbox")
    index = pool.index
    clean = index.classes.index("clean")
    jitter = np.random.default_rng(0).random(len(pool)) * 0.1
    scores = (np.asarray(index.labels) == clean) + jitter
    ids = [u64_to_id(h, lo) for h, lo in zip(index.hi, index.lo, strict=True)]
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": ids, "oracle": scores}), folder / "part-00000.parquet")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The debug compute-aware experiment, killed while its second cell trains, then resumed to the end."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "experiments").mkdir()
    exp = root / "experiments" / "debug-compute-aware-filtering.toml"
    shutil.copy(EXPERIMENTS / exp.name, exp)
    _oracle_scores(root / "scores" / "debug-oracle")
    proc = _harness("sweep", "run", str(exp), "--out", "sw", "--jobs", "1", cwd=root)
    deadline = time.monotonic() + 600
    while True:  # stop once a cell is finished and another one is past its first checkpoint
        done = list((root / "sw" / "cells").glob("*/DONE.json"))
        started = list((root / "sw" / "runs").glob("*/*/train/checkpoints/stats_1.pt"))
        if (done and len(started) > len(done)) or len(done) >= 3:
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its running cell, as a lost machine would
    proc.wait()
    first = sorted((root / "sw" / "cells").glob("*/DONE.json"))
    stamps = {p: p.stat().st_mtime_ns for p in first}
    assert len(first) < 4
    code, out = _run("sweep", "run", str(exp), "--out", "sw", "--jobs", "2", cwd=root)
    assert code == 0, out
    assert f"4 cells, {len(first)} finished" in " ".join(out.split())
    assert all(p.stat().st_mtime_ns == stamps[p] for p in first)  # finished cells were not redone
    return root


@pytest.mark.slow
def test_every_cell_is_an_ordinary_entry_with_multiplier_and_token_counts(sweep: Path) -> None:
    from harness.records import ResultsStore

    records = {r.track.name: r for r in ResultsStore(str(sweep / "sw" / "results")).list()[0]}
    assert len(ResultsStore(str(sweep / "sw" / "results")).list()[0]) == 4
    assert set(records) == {"debug-0.25x", "debug-0.5x"}
    for key in ("filter0.5-scale0.25x", "filter1-scale0.5x"):
        done = json.loads((sweep / "sw" / "cells" / key / "DONE.json").read_text())
        cell = json.loads((sweep / "sw" / "cells" / key / "cell.json").read_text())
        (record,) = [r for r in ResultsStore(str(sweep / "sw" / "results")).list()[0] if r.entry_id == done["entry_id"]]
        assert record.track.base == "debug" and record.track.scale == float(key.split("scale")[1][:-1])
        assert record.subset.unique_tokens == cell["unique_tokens"] and record.subset.unique_documents == cell[
            "unique_documents"]  # fmt: skip
        assert record.training.unique_passes == pytest.approx(record.training.tokens_seen / cell["unique_tokens"])
        lm = record.evaluation.heldout_lm
        assert lm["perplexity"] == pytest.approx(np.exp(lm["loss"])) and 0 < lm["accuracy"] < 1
    half = json.loads((sweep / "sw" / "cells" / "filter0.5-scale0.25x" / "cell.json").read_text())
    assert half["unique_documents"] == round(0.5 * half["base_documents"])


@pytest.mark.slow
def test_report_files_hold_the_records_numbers_and_the_leaderboard_shows_the_experiment(sweep: Path) -> None:
    from harness.records import ResultsStore

    code, out = _run("sweep", "report", "experiments/debug-compute-aware-filtering.toml", "--out", "sw", cwd=sweep)
    assert code == 0, out
    report = sweep / "sw" / "report"
    for name in ("results.md", "results.csv", "results.json", "cells.csv"):
        assert (report / name).stat().st_size > 100
    for metric in ("loss", "accuracy", "perplexity", "primary"):
        assert (report / f"{metric}.png").stat().st_size > 5000 and (report / f"{metric}.svg").is_file()
    records = {r.entry_id: r for r in ResultsStore(str(sweep / "sw" / "results")).list()[0]}
    rows = list(csv.DictReader((report / "cells.csv").open()))
    assert len(rows) == 4
    for row in rows:
        record = records[row["entry_id"]]
        assert float(row["loss"]) == record.evaluation.heldout_lm["loss"]
        assert float(row["primary"]) == record.primary.value
        assert int(row["tokens_seen"]) == record.training.tokens_seen
    md = (report / "results.md").read_text()
    assert f"{records[rows[0]['entry_id']].evaluation.heldout_lm['loss']:,.4f}" in md
    pairs = json.loads((report / "verdicts.json").read_text())["pairs"]  # one filter pair per compute multiplier
    assert sorted((p["a"], p["b"], p["track"]) for p in pairs) == [
        ("filter0.5-scale0.25x", "filter1-scale0.25x", "debug-0.25x"),
        ("filter0.5-scale0.5x", "filter1-scale0.5x", "debug-0.5x"),
    ]
    assert "no verdict" in (report / "verdicts.md").read_text()  # one seed a cell: seed noise unknown
    steps = json.loads((report / "verdicts.json").read_text())["budget_steps"]  # each filter, 0.25x -> 0.5x
    assert sorted((s["a"], s["b"]) for s in steps) == [
        ("filter0.5-scale0.5x", "filter0.5-scale0.25x"),
        ("filter1-scale0.5x", "filter1-scale0.25x"),
    ]
    code, out = _run("leaderboard", "build", "--results", "sw/results", "--out", "site", cwd=sweep)
    assert code == 0, out
    index = (sweep / "site" / "index.html").read_text()
    assert index.index("track-debug-0.25x") < index.index("track-debug-0.5x") and "0.25x the compute of debug" in index
    page = (sweep / "site" / "experiments" / "debug-compute-aware-filtering.html").read_text()
    assert "experiments/debug-compute-aware-filtering.html" in index and all(e in page for e in records)


@pytest.mark.slow
def test_scaling_fit_refuses_too_few_cells_with_one_clear_message(sweep: Path) -> None:
    code, out = _run("scaling", "fit", "experiments/debug-compute-aware-filtering.toml", "--out", "sw", cwd=sweep)
    text = " ".join(out.split())
    assert code == 1 and "has 6 parameters but the fit has 4 points" in text and "Traceback" not in text


@pytest.mark.slow
def test_debug_quality_vs_quantity_runs_and_reports(tmp_path: Path) -> None:
    exp = str(EXPERIMENTS / "debug-quality-vs-quantity.toml")
    code, out = _run("sweep", "run", exp, "--out", "qvq", "--jobs", "2", cwd=tmp_path)
    assert code == 0, out
    code, out = _run("sweep", "report", exp, "--out", "qvq", cwd=tmp_path)
    assert code == 0, out
    summary = json.loads((tmp_path / "qvq" / "report" / "results.json").read_text())["summary"]
    shares = sorted(s["copy_share"] for s in summary)
    # The study's duplication (issue 24): half the documents replaced by copies of one chosen document, with the
    # replaced documents' tokens, so exactly half the distinct documents stay (the old round-robin copies of every
    # kept document gave a copy share near 0.5 and were the size axis again).
    assert shares[0] == 0.0 and shares[1] > 0 and all(s["loss"] > 0 for s in summary)
    half = json.loads((tmp_path / "qvq" / "cells" / "size1-duplication0.5" / "cell.json").read_text())
    assert half["unique_documents"] == half["base_documents"] - round(0.5 * half["base_documents"])


@pytest.mark.slow
def test_scaling_fit_and_advise_on_a_store_of_records(sweep: Path) -> None:
    """The generic path: records of one base track and its multipliers (here: copies of a real record whose
    subsets, token counts and losses follow a known utility-decay law), fitted and advised from the command line."""
    import hashlib

    from harness.experiments.scaling import Groups, Point, utility_decay_law
    from harness.records import Record, ResultsStore, entry_id

    (template,) = [r for r in ResultsStore(str(sweep / "sw" / "results")).list()[0] if r.track.scale == 0.5][:1]
    names, unique = ("top", "middle", "all"), (1e5, 3e5, 1e6)
    law = utility_decay_law(Groups.separate(names))
    true = np.array([2e-4, 2.0, -0.30, -0.25, -0.20, 1.0, 4.0, 30.0])  # top wins below ~3e5 tokens, then middle
    store = ResultsStore(str(sweep / "synthetic"))
    for group, u in zip(names, unique, strict=True):
        sha = hashlib.sha256(group.encode()).hexdigest()
        for scale in (0.25, 0.5, 1, 2, 4):
            tokens = 8e5 * scale
            loss = float(law.predict(true, [Point(group, tokens, u, 1.0)])[0])
            data = template.to_data()
            track = "debug" if scale == 1 else f"debug-{scale:g}x"
            data["track"].update(name=track, scale=float(scale))
            data["subset"].update(sha256=sha, unique_tokens=int(u))
            data["entry_id"] = entry_id(track, sha)
            data["submission"]["name"] = group
            data["training"]["tokens_seen"] = int(tokens)
            data["evaluation"]["heldout_lm"]["loss"] = loss
            store.add(Record.from_data(data, "synthetic"))
    code, out = _run("scaling", "fit", "--results", "synthetic", "--track", "debug", "--save", "fit", cwd=sweep)
    text = " ".join(out.split())
    assert code == 0, out
    assert "15 points on track debug (version 1); 12 fitted, 3 held out (scale 4x)" in text
    assert "b[top [" in text and "tau[all [" in text  # parameter names are text, never rich markup
    fitted = json.loads((sweep / "fit" / "fit.json").read_text())["fits"]["utility-decay"]
    assert fitted["held_out_max_relative_error"] < 1e-3 and len(fitted["parameters"]) == 8
    code, out = _run("scaling", "advise", "--results", "synthetic", "--track", "debug", "--budget", "1e5",
                     "--save", "fit", cwd=sweep)  # fmt: skip
    text = " ".join(out.split())
    assert code == 0, out
    assert "1. top [" in text and "a less aggressive filter starts to win" in text
    assert "law chosen by held-out error" in text and "best in 100% of resamples" in text  # noise-free cells
    assert (sweep / "fit" / "frontier.png").stat().st_size > 5000 and (sweep / "fit" / "frontier.svg").is_file()
