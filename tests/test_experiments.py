"""Experiment files and subset transformations: strict loading, exact transforms measured on their output, scores
read from Parquet, derived tracks (compute multipliers and seeds). No training here (see test_sweep.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.config import ConfigError
from harness.experiments.spec import load_experiment
from harness.experiments.transforms import (
    Docs,
    TransformError,
    duplicate,
    measure,
    sample_fraction,
    top_fraction,
    write_subset,
)

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def _docs(n: int = 1000, seed: int = 0) -> Docs:
    rng = np.random.default_rng(seed)
    return Docs(np.array([f"{i:032x}" for i in range(n)], dtype=object), rng.integers(20, 400, n))


def _write(tmp_path: Path, body: str, name: str = "exp") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\ndescription = "d"\ntrack = "debug"\n' + body)
    return path


# ---------------------------------------------------------------------------------------------- transforms


@pytest.mark.parametrize("fraction", [0.01, 0.25, 0.5, 1.0])
def test_filter_keeps_exactly_the_top_fraction(fraction: float) -> None:
    docs = _docs()
    scores = np.random.default_rng(1).random(len(docs))
    out = top_fraction(docs, scores, fraction)
    kept = np.isin(docs.ids, out.ids)
    assert len(out) == round(fraction * len(docs))
    assert fraction == 1.0 or scores[kept].min() > scores[~kept].max()


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 1.0])
def test_size_fraction_is_an_exact_seeded_sample(fraction: float) -> None:
    docs = _docs()
    out = sample_fraction(docs, fraction, seed=3)
    assert len(out) == round(fraction * len(docs)) == len(set(out.ids))
    assert set(out.ids) <= set(docs.ids)
    assert list(sample_fraction(docs, fraction, seed=3).ids) == list(out.ids)  # seeded: the same sample again


@pytest.mark.parametrize("sources", [1, 3])
@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_duplication_replaces_that_share_with_copies_of_k_documents_at_the_same_tokens(
    rate: float, sources: int, tmp_path: Path
) -> None:
    """The study's intervention (issue 24): r of the documents replaced by copies of k chosen ones (the study: one
    story). Until issue 24 the copies went round-robin over every kept document, which is the size axis again; the
    assertions on that spread were of the wrong behaviour and are replaced by these."""
    docs = _docs()
    n, total = len(docs), int(docs.tokens.sum())
    repeats = duplicate(docs, rate, seed=5, sources=sources)
    figures = write_subset(docs, repeats, tmp_path / "subset.jsonl")
    # measured on the written file, not on the arrays
    lines = [json.loads(line) for line in (tmp_path / "subset.jsonl").read_text().splitlines()]
    by_id = dict(zip(docs.ids, docs.tokens, strict=True))
    written = {d["id"]: d.get("repeat", 1) for d in lines}
    replaced = round(rate * n)
    assert len(written) == len(lines) == max(sources, n - replaced)  # distinct documents: the study's count, exact
    tokens = sum(by_id[i] * k for i, k in written.items())
    copied = {i: k for i, k in written.items() if k > 1}
    assert abs(tokens - total) <= max([by_id[i] for i in copied], default=0) / 2  # same tokens, within half a copy
    assert figures["tokens"] == tokens and figures["unique_documents"] == len(written)
    if replaced:
        assert 1 <= len(copied) <= sources  # only the chosen documents are copied ...
        counts = [written[i] for i in copied]
        assert max(counts) - min(counts) <= 1 or len(copied) == 1  # ... round-robin over them
        assert sum(k > 1 for k in written.values()) == len(copied)
    else:
        assert not copied and tokens == total
    copy_tokens = sum(by_id[i] * (k - 1) for i, k in written.items())
    assert copy_tokens / tokens == pytest.approx(figures["copy_token_share"])
    replaced_tokens = total - sum(by_id[i] for i in written)
    assert abs(copy_tokens - replaced_tokens) <= max([by_id[i] for i in copied], default=0) / 2
    assert figures["copy_token_share"] == pytest.approx(rate, abs=0.05)  # a seeded sample: r of the tokens
    share = (sum(written.values()) - len(written)) / sum(written.values())
    assert share == pytest.approx(figures["copy_share"])


def test_duplication_sources_is_read_from_the_experiment_file(tmp_path: Path) -> None:
    body = 'duplication_sources = 4\n[base]\nrecipe = "random"\n[factors]\nduplication = [0.0, 0.5]\n'
    assert load_experiment(_write(tmp_path, body)).duplication_sources == 4


def test_full_duplication_keeps_one_document_as_the_study() -> None:
    docs = _docs(200)
    repeats = duplicate(docs, 1.0, seed=0)
    assert (repeats > 0).sum() == 1  # the study's 100% cell: every story a copy of one
    assert repeats[repeats > 0][0] * docs.tokens[repeats > 0][0] == pytest.approx(docs.tokens.sum(), abs=200)
    assert list(duplicate(docs, 0.5, seed=0)) == list(duplicate(docs, 0.5, seed=0))  # seeded
    assert (duplicate(docs, 0.5, seed=0) > 1).sum() == 1 and (duplicate(docs, 0.5, seed=0) > 0).sum() == 100
    with pytest.raises(TransformError, match="duplication_sources = 201"):
        duplicate(docs, 0.5, seed=0, sources=201)


def test_levels_that_leave_nothing_are_refused() -> None:
    docs = _docs(10)
    with pytest.raises(TransformError, match="leaves nothing"):
        top_fraction(docs, np.zeros(10), 0.01)
    with pytest.raises(TransformError, match="leaves nothing"):
        sample_fraction(docs, 0.04, seed=0)
    with pytest.raises(TransformError, match=r"\[0, 1\]"):
        duplicate(docs, 1.5, seed=0)
    assert measure(docs, np.ones(10, np.int64))["copy_share"] == 0.0


# -------------------------------------------------------------------------------------------- experiment files


def test_shipped_experiments_load_and_span_their_designs() -> None:
    qvq = load_experiment(EXPERIMENTS / "quality-vs-quantity.toml")
    keys = [c.key for c in qvq.cells()]
    assert len(keys) == 1 + 2 + 4 and len(set(keys)) == len(keys)  # axes design, one seed
    assert "size0.25-duplication0" in keys and "size0.25-duplication0.5" not in keys  # seeds are replicates
    caf = load_experiment(EXPERIMENTS / "compute-aware-filtering.toml")
    assert len(caf.cells()) == 4 * 5
    assert {c.track for c in caf.cells()} == {"nano-0.25x", "nano-0.5x", "nano-0.75x", "nano", "nano-2x"}
    assert qvq.duplication_sources == 1  # the study's one story, unless the file says otherwise
    # issue 24's re-runs: the same designs on sandbox v5, three seeds on every cell (replicates, not cells)
    qvq5, caf5 = (
        load_experiment(EXPERIMENTS / f"{n}-v5.toml") for n in ("quality-vs-quantity", "compute-aware-filtering")
    )
    assert len(qvq5.cells()) == 7 and len(caf5.cells()) == 20
    assert qvq5.factors.seed == caf5.factors.seed == (124, 125, 126)
    assert {c.track for c in caf5.cells()} == {
        "nano-v5-0.25x",
        "nano-v5-0.5x",
        "nano-v5-0.75x",
        "nano-v5",
        "nano-v5-2x",
    }
    for name in ("debug-quality-vs-quantity", "debug-compute-aware-filtering"):
        assert load_experiment(EXPERIMENTS / f"{name}.toml").track.startswith("debug")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[base]\nrecipe = "random"\n[factors]\nsizes = [0.5]\n',
            "unknown factor 'factors.sizes'. Did you mean 'size'?",
        ),
        ('desing = "grid"\n[base]\nrecipe = "random"\n[factors]\nsize = [0.5]\n', "Did you mean 'design'?"),
        ('[base]\nrecipe = "random"\n[factors]\nduplication = [0.5, 1.5]\n', "duplication' level 1.5 cannot be built"),
        ('[base]\nrecipe = "random"\n[factors]\nfilter = [0.5]\n', "needs a [filter] table"),
        ('[base]\nrecipe = "random"\n[factors]\n', "at least one factor"),
        (
            'duplication_sources = 0\n[base]\nrecipe = "random"\n[factors]\nduplication = [0.5]\n',
            "'duplication_sources' must be at least 1 document",
        ),
        ('[base]\nrecipe = "random"\n[factors]\nscale = [0.1]\n', "'recipe.warmup' (10) must be below the 6"),
        ('[base]\nrecipe = "random"\nsubset = "x.jsonl"\n[factors]\nsize = [1.0]\n', "exactly one of"),
    ],
)
def test_bad_experiment_files_are_one_clear_error(tmp_path: Path, body: str, message: str, capsys) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError):
        load_experiment(path)
    assert main(["sweep", "run", str(path), "--out", str(tmp_path / "sweep")]) == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert message in err and "Traceback" not in err


def test_a_level_that_cannot_be_built_stops_before_any_cell_and_keeps_finished_ones(tmp_path: Path, capsys) -> None:
    subset = tmp_path / "base.jsonl"
    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    subset.write_text("".join(json.dumps({"id": pool.id_of_row(r)}) + "\n" for r in range(10)))
    path = _write(tmp_path, '[base]\nsubset = "base.jsonl"\n[factors]\nsize = [1.0, 0.01]\n')
    finished = tmp_path / "sweep" / "cells" / "size1" / "DONE.json"
    finished.parent.mkdir(parents=True)
    finished.write_text('{"entry_id": "debug-000000000000"}')
    assert main(["sweep", "run", str(path), "--out", str(tmp_path / "sweep")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cell size0.01: size fraction 0.01 leaves nothing" in err
    assert finished.is_file() and not (tmp_path / "sweep" / "cells" / "size1" / "subset.jsonl").exists()


def test_filter_scores_come_from_parquet_keyed_by_pool_id(tmp_path: Path, capsys) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.experiments.sweep import SweepPaths, build_cells
    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    ids = [pool.id_of_row(r) for r in range(40)]
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))
    (tmp_path / "scores").mkdir()
    pq.write_table(pa.table({"id": ids[:20], "quality": [float(i) for i in range(20)]}), tmp_path / "scores/a.parquet")
    pq.write_table(
        pa.table({"id": ids[20:], "quality": [float(i) for i in range(20, 40)]}), tmp_path / "scores/b.parquet"
    )
    body = '[base]\nsubset = "base.jsonl"\n[factors]\nfilter = [0.25]\n[filter]\nscores = "scores"\ncolumn = "{}"\n'
    exp = load_experiment(_write(tmp_path, body.format("quality")))
    (cell,) = build_cells(exp, SweepPaths.of(exp, str(tmp_path / "sweep")))
    kept = [
        json.loads(line)["id"]
        for line in (tmp_path / "sweep/cells" / cell.key / "subset.jsonl").read_text().splitlines()
    ]
    assert kept == ids[30:]  # the top 25% by score: the 10 highest
    bad = _write(tmp_path, body.format("qualty"), name="bad")
    assert main(["sweep", "run", str(bad), "--out", str(tmp_path / "sweep2")]) == 2
    assert "Did you mean 'quality'?" in " ".join(capsys.readouterr().err.split())


def test_derived_tracks_multiply_the_budget_only_and_a_seed_is_not_a_track() -> None:
    from harness.errors import UsageError
    from harness.tracks import derived_name, get_track, legacy_seeded, scale_of

    nano, big = get_track("nano"), get_track("nano-4x")
    assert big.tokens == 4 * nano.tokens and big.model == nano.model and big.recipe == nano.recipe
    assert (
        scale_of(big) == ("nano", 4.0)
        and scale_of(nano) == ("nano", 1.0)
        and scale_of(get_track("1b-5x")) == ("1b", 5.0)
    )
    assert get_track(derived_name("nano", 2)).tokens == 2 * nano.tokens and derived_name("nano", 1) == "nano"
    with pytest.raises(UsageError, match="a seed is not a track.*--replicates K"):
        get_track("nano-2x-seed125")
    # Records made when seeds were tracks still display: the track they ran on, with the hash they carry.
    seeded = legacy_seeded("nano-2x-seed125")
    assert seeded is not None and seeded.recipe.seed == 125 and seeded.tokens == 2 * nano.tokens
    assert seeded.sha256 == "fe360d3608635af834e41ba149d9ee8a8b3032d8babd32507fe3c30e096c1030"  # as recorded then
    assert len({nano.sha256, big.sha256, seeded.sha256}) == 3 and legacy_seeded("nano-2x") is None
    assert main(["tracks", "show", "nano-0.5x"]) == 0


def test_slurm_launcher_writes_a_job_array_over_the_pending_cells(tmp_path: Path) -> None:
    import subprocess

    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"id": pool.id_of_row(r)}) + "\n" for r in range(40)))
    body = '[base]\nsubset = "base.jsonl"\n[factors]\nsize = [1.0, 0.5]\nduplication = [0.0, 0.5]\n'
    path = _write(tmp_path, 'design = "axes"\n' + body)
    out = tmp_path / "sweep"
    (out / "cells" / "size1-duplication0").mkdir(parents=True)
    (out / "cells" / "size1-duplication0" / "DONE.json").write_text('{"entry_id": "x"}')  # a finished cell
    assert main(["sweep", "run", str(path), "--out", str(out), "--launcher", "slurm", "--no-sbatch"]) == 0
    script = (out / "sweep.sbatch").read_text()
    pending = (out / "cells.txt").read_text().split()
    assert pending == ["size0.5-duplication0", "size1-duplication0.5"]  # axes design, finished cell left out
    assert "#SBATCH --array=0-1" in script and '--cell "$KEY"' in script and "SLURM_ARRAY_TASK_ID + 1" in script
    assert subprocess.run(["bash", "-n", str(out / "sweep.sbatch")]).returncode == 0
    for key in pending:
        assert (out / "cells" / key / "subset.jsonl").is_file()


def test_a_changed_definition_is_not_mixed_with_earlier_cells(tmp_path: Path, capsys) -> None:
    from harness.pools import ensure_pool

    pool = ensure_pool("sandbox")
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"id": pool.id_of_row(r)}) + "\n" for r in range(20)))
    body = '[base]\nsubset = "base.jsonl"\n[factors]\nsize = [0.5]\n'
    out = str(tmp_path / "sweep")
    slurm = ["--out", out, "--launcher", "slurm", "--no-sbatch"]
    assert main(["sweep", "run", str(_write(tmp_path, body)), *slurm]) == 0
    assert main(["sweep", "run", str(_write(tmp_path, "seed = 7\n" + body)), *slurm]) == 2
    assert "earlier definition of exp" in " ".join(capsys.readouterr().err.split())


def test_a_seed_factor_gives_each_cell_its_replicates_and_starts_with_the_tracks_own_seed(tmp_path: Path) -> None:
    body = '[base]\nrecipe = "pool"\n[factors]\nsize = [1.0, 0.5]\nseed = [{}]\n'
    experiment = load_experiment(_write(tmp_path, body.format("124, 125")))
    assert [c.key for c in experiment.cells()] == ["size1", "size0.5"]  # seeds are not cells
    assert {c.track for c in experiment.cells()} == {"debug"}  # nor tracks
    with pytest.raises(ConfigError, match="must start with track debug's own seed 124"):
        load_experiment(_write(tmp_path, body.format("125, 124"), name="exp2"))


def test_explicit_replicate_seeds_start_with_the_tracks_own_seed() -> None:
    from harness.errors import UsageError
    from harness.submit.options import SubmitOptions
    from harness.tracks import get_track

    debug = get_track("debug")
    opts = SubmitOptions(track="debug", subset="s.jsonl")
    assert opts.replicate_seeds(debug) == (124,)
    assert SubmitOptions(track="debug", subset="s.jsonl", replicates=2).replicate_seeds(debug) == (124, 125)
    assert SubmitOptions(track="debug", subset="s.jsonl", seeds=(124, 9)).replicate_seeds(debug) == (124, 9)
    for seeds, replicates in (((125, 124), 1), ((124, 124), 1), ((124, 125), 3)):
        with pytest.raises(UsageError):
            SubmitOptions(track="debug", subset="s.jsonl", seeds=seeds, replicates=replicates).replicate_seeds(debug)


def test_the_report_summarises_a_cell_over_its_replicate_seeds() -> None:
    from types import SimpleNamespace

    from harness.experiments.report import _over_seeds

    def run(loss: float, primary: float) -> SimpleNamespace:
        return SimpleNamespace(heldout_lm={"loss": loss, "accuracy": 0.5, "perplexity": 2.0}, aggregates={"P": primary})

    evaluation = SimpleNamespace(heldout_lm={"loss": 3.0, "accuracy": 0.5, "perplexity": 2.0}, primary_aggregate="P")
    record = SimpleNamespace(evaluation=evaluation, primary=SimpleNamespace(value=0.4),
                             replicates=SimpleNamespace(runs=[run(3.0, 0.4), run(2.0, 0.6)]))  # fmt: skip
    out = _over_seeds(record)
    assert out["seeds"] == 2 and out["loss_mean"] == 2.5 and out["primary_mean"] == pytest.approx(0.5)
    assert out["loss_sd"] == pytest.approx(0.5**0.5) and out["accuracy_sd"] == 0.0
    single = SimpleNamespace(evaluation=evaluation, primary=SimpleNamespace(value=0.4), replicates=None)
    assert _over_seeds(single) == {"seeds": 1, **{f"{k}_mean": v for k, v in (("loss", 3.0), ("accuracy", 0.5),
                                   ("perplexity", 2.0), ("primary", 0.4))}, **dict.fromkeys(
                                   ("loss_sd", "accuracy_sd", "perplexity_sd", "primary_sd"))}  # fmt: skip


def test_the_duplication_transform_and_its_sources_are_part_of_a_cells_definition(tmp_path: Path) -> None:
    from harness.experiments.sweep import definition

    body = '[base]\nrecipe = "pool"\n[factors]\nduplication = [0.0, 0.5]\n'
    one = definition(load_experiment(_write(tmp_path, body, name="a")))
    two = definition(load_experiment(_write(tmp_path, "duplication_sources = 2\n" + body, name="b")))
    sizes = definition(load_experiment(_write(tmp_path, '[base]\nrecipe = "pool"\n[factors]\nsize = [0.5]\n', "c")))
    sizes2 = definition(load_experiment(_write(tmp_path, 'duplication_sources = 2\n[base]\nrecipe = "pool"\n'
                                               "[factors]\nsize = [0.5]\n", "d")))  # fmt: skip
    assert one != two and sizes == sizes2  # cells built by another transform are never reused


def test_sweep_verdicts_pair_every_cell_on_one_track_through_compare() -> None:
    import random

    from reliability_fixtures import record as synthetic

    from harness.analysis.compare import compare_records
    from harness.experiments.verdicts import cell_verdicts, markdown
    from harness.records import Record

    rng = random.Random(3)
    specs = {"lo": ("nano", 0, 0.3, 3), "lo2": ("nano", 1, 0.3, 3), "hi": ("nano", 2, 0.6, 3),
             "other": ("nano-2x", 3, 0.6, 3), "one": ("micro", 4, 0.3, 1), "one2": ("micro", 5, 0.6, 1)}  # fmt: skip
    records, rows = {}, []
    for cell, (track, subset, quality, seeds) in specs.items():
        rec = Record.from_json(json.dumps(synthetic(track, subset, quality, seeds, rng)).encode(), cell)
        records[rec.entry_id] = rec
        rows.append({"cell": cell, "track": track, "entry_id": rec.entry_id, "seeds": seeds})
    verdicts = cell_verdicts(rows, records)
    # Only cells on one track are paired: 3 on nano, 1 on micro; the lone nano-2x cell has no partner.
    assert [(v["a"], v["b"]) for v in verdicts] == [("lo", "lo2"), ("lo", "hi"), ("lo2", "hi"), ("one", "one2")]
    by_pair = {(v["a"], v["b"]): {d["aggregate"]: d for d in v["differences"]} for v in verdicts}
    expected = compare_records(records[rows[0]["entry_id"]], records[rows[2]["entry_id"]]).differences[0]
    assert by_pair["lo", "hi"]["Sandbox_v1"]["diff"] == expected.diff and expected.verdict == "B better"
    assert by_pair["lo", "lo2"]["Sandbox_v1"]["verdict"] == "not distinguishable at 95%"
    assert by_pair["one", "one2"]["Sandbox_v1"]["verdict"] == "no verdict"  # one seed a side: seed noise unknown
    md = markdown("exp", verdicts, "Sandbox_v1")
    assert "| lo | hi | nano | 3/3 |" in md and "B better" in md and "--replicates" in md
    assert "- nano, Sandbox_v1: best mean hi (" in md and "beats by a verdict: lo, lo2; not decided against: none" in md
    assert "- micro, Sandbox_v1: best mean one2 (" in md and "beats by a verdict: none; not decided against: one" in md


def test_sweep_budget_steps_compare_each_cell_with_the_same_subset_one_multiplier_lower() -> None:
    import random

    from reliability_fixtures import record as synthetic

    from harness.analysis.compare import NotComparable, compare_records
    from harness.experiments.verdicts import budget_steps, markdown
    from harness.records import Record

    rng = random.Random(5)
    specs = {"f1-1x": ("nano", 1.0, 0, 0.3), "f1-2x": ("nano-2x", 2.0, 1, 0.6), "f1-0.5x": ("nano-0.5x", 0.5, 2, 0.3),
             "f2-1x": ("nano", 1.0, 3, 0.5), "f2-2x": ("nano-2x", 2.0, 4, 0.5)}  # fmt: skip
    records, rows = {}, []
    for cell, (track, scale, subset, quality) in specs.items():
        data = synthetic(track, subset, quality, 3, rng)
        data["track"].update(base="nano" if scale != 1.0 else "", scale=scale)
        rec = Record.from_json(json.dumps(data).encode(), cell)
        records[rec.entry_id] = rec
        rows.append({"cell": cell, "track": track, "entry_id": rec.entry_id, "seeds": 3, "filter": cell[:2],
                     "scale": scale})  # fmt: skip
    by_cell = {r["cell"]: records[r["entry_id"]] for r in rows}
    steps = budget_steps(rows, records, ["filter", "scale", "seed"])
    # Adjacent multipliers of one subset only, the larger budget as A: 0.5x -> 1x -> 2x for f1, 1x -> 2x for f2.
    assert [(s["a"], s["b"]) for s in steps] == [("f1-1x", "f1-0.5x"), ("f1-2x", "f1-1x"), ("f2-2x", "f2-1x")]
    diffs = {(s["a"], s["b"]): {d["aggregate"]: d for d in s["differences"]} for s in steps}
    expected = compare_records(by_cell["f1-2x"], by_cell["f1-1x"], across_budgets=True).differences[0]
    assert diffs["f1-2x", "f1-1x"]["Sandbox_v1"]["diff"] == expected.diff and expected.verdict == "A better"
    low_step = compare_records(by_cell["f1-1x"], by_cell["f1-0.5x"], across_budgets=True).differences[0]
    assert diffs["f1-1x", "f1-0.5x"]["Sandbox_v1"]["diff"] == low_step.diff and low_step.verdict != "A better"
    assert budget_steps(rows, records, ["filter", "seed"]) == []  # no scale factor: nothing to step over
    with pytest.raises(NotComparable, match="--across-budgets"):
        compare_records(by_cell["f1-2x"], by_cell["f1-1x"])  # rivals must share a budget
    micro = synthetic("micro-2x", 9, 0.5, 3, rng)
    micro["track"].update(base="micro", scale=2.0)
    with pytest.raises(NotComparable, match="only multipliers of one base track version"):
        compare_records(Record.from_json(json.dumps(micro).encode(), "m"), by_cell["f1-1x"], across_budgets=True)
    md = markdown("exp", [], "Sandbox_v1", steps)
    assert "Budget steps" in md and "| f1-2x | f1-1x | nano-2x vs nano | 3/3 | +" in md and "A better" in md
