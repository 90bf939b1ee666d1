"""The results store is untrusted input (issue #23): every hostile file the tests generate here is skipped by
`harness leaderboard build` with one line naming it and the reason, refused by `harness leaderboard add` with one
message and exit code 2, and never lets the build write outside its site, hang, or change the store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import harness.records.parse as records_parse
from harness.cli import main
from harness.fields import MAX_FLOAT, MAX_INT
from harness.leaderboard.build import build_site
from harness.leaderboard.sample import synthetic_record
from harness.records import Record, ResultsStore
from harness.records.evaluation import MAX_AGGREGATES, MAX_TASKS

REPO = Path(__file__).resolve().parent.parent
GOOD = [synthetic_record("debug", 1), synthetic_record("debug", 2)]
VICTIM = synthetic_record("debug", 3)  # the record each case spoils


def _store(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    store = ResultsStore(str(results))
    for record in GOOD:
        store.add(record)
    return results


def _snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[bytes | str, int]]:
    """Every path under `root` (but `skip`) with its bytes (or link target) and mode, links not followed."""
    out: dict[str, tuple[bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            out[str(path)] = (os.readlink(path), info.st_mode)
        elif stat.S_ISREG(info.st_mode):
            out[str(path)] = (path.read_bytes(), info.st_mode)
        else:
            out[str(path)] = (b"", info.st_mode)
    return out


def _build(results: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(out)]) == 0
    return " ".join(capsys.readouterr().err.split())


# ------------------------------------------------------------------------------- numbers and text of records


def _text(edit: Callable[[dict[str, Any]], None], replace: tuple[str, str] | None = None) -> str:
    data = VICTIM.to_data()
    edit(data)
    text = json.dumps(data, separators=(",", ":"))  # allow_nan: NaN and Infinity as JavaScript writes them
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    return text


def _set(*keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value

    return edit


def _many_aggregates(data: dict[str, Any]) -> None:
    aggs = data["evaluation"]["aggregates"]
    template = aggs["heldout_bpb"]
    aggs.update({f"agg_{i}": dict(template, description="x" * 200) for i in range(3000)})


def _many_tasks(data: dict[str, Any]) -> None:
    tasks = data["evaluation"]["tasks"]
    tasks.update({f"task_{i}": dict(tasks["heldout"]) for i in range(MAX_TASKS + 1)})


def _aggregate_name(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["evaluation"]["aggregates"][name] = data["evaluation"]["aggregates"].pop("heldout_bpb")

    return edit


def _none(data: dict[str, Any]) -> None:
    pass


_TOKENS = f'"tokens_seen":{VICTIM.training.tokens_seen}'
SCHEMA_CASES = {
    # name: (JSON text of the record, what the reason says)
    "int-of-5000-digits": (_text(_none, (_TOKENS, '"tokens_seen":' + "9" * 5000)), "integers must lie within"),
    "int-beyond-2**53": (_text(_set("subset", "tokens", value=MAX_INT + 1)), "integers must lie within"),
    "int-in-curve": (_text(_none, ("[[0,0,", f"[[0,{10**300},")), "integers must lie within"),
    "float-at-double-edge": (_text(_set("training", "wall_time_s", value=1.7e308)), "floats must lie within"),
    "float-beyond-double": (_text(_none, (_TOKENS, '"tokens_seen":1e400')), "must be finite"),
    "nan": (_text(_set("training", "passes", value=float("nan"))), "must be finite"),
    "infinity": (_text(_set("training", "final_loss", value=float("inf"))), "must be finite"),
    "nan-in-metrics": (_text(lambda d: d["evaluation"]["heldout_lm"].update(loss=float("nan"))), "must be finite"),
    "surrogate-in-contact": (_text(_set("submission", "contact", value="me\ud800")), "lone surrogate"),
    "surrogate-in-pool": (_text(_set("pool", value="pool\udfff")), "lone surrogate"),
    "surrogate-in-hardware": (_text(_set("hardware", "accelerator", value="\ud83d gpu")), "lone surrogate"),
    "surrogate-in-aggregate-name": (_text(_aggregate_name("bpb\ud800")), "lone surrogate"),
    "uffff-in-name": (_text(_set("submission", "name", value="entry\uffff")), "noncharacter U+FFFF"),
    "ufffe-in-task-metric": (_text(_set("evaluation", "tasks", "heldout", "metric", value="m\ufffe")), "U+FFFE"),
    "ufdd0-in-aggregate-name": (_text(_aggregate_name("bpb\ufdd0")), "noncharacter U+FDD0"),
    "astral-noncharacter": (_text(_set("versions", "torch", value="2.13\U0010ffff")), "noncharacter U+10FFFF"),
    "control-in-contact": (_text(_set("submission", "contact", value="x\x1b[2J@example.org")), "control character"),
    "newline-in-contact": (_text(_set("submission", "contact", value="a@b.org\n<b>")), "control character"),
    "bidi-in-cpu": (_text(_set("hardware", "cpu", value="abc\u202edcb")), "bidirectional"),
    "thousands-of-aggregates": (_text(_many_aggregates), f"at most {MAX_AGGREGATES}"),
    "too-many-tasks": (_text(_many_tasks), f"at most {MAX_TASKS}"),
    "a-list-not-an-object": ("[]", "must be a JSON object"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_bad_numbers_and_text_are_skipped_by_build(case: str, tmp_path: Path, capsys) -> None:
    text, reason = SCHEMA_CASES[case]
    results = _store(tmp_path)
    bad = results / "debug" / f"{VICTIM.entry_id}.json"
    bad.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = _snapshot(results)
    err = _build(results, tmp_path / "site", capsys)
    assert f"skipped {bad}" in err and reason in err, err
    assert "Traceback" not in err
    site = tmp_path / "site"
    assert sorted(p.stem for p in (site / "entries").iterdir()) == sorted(r.entry_id for r in GOOD)
    assert _snapshot(results) == before
    for svg in (site / "charts").glob("*.svg"):  # the standalone charts stay well-formed XML
        import xml.etree.ElementTree as ET

        ET.fromstring(svg.read_bytes())


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_bad_numbers_and_text_are_refused_by_add(case: str, tmp_path: Path, capsys) -> None:
    text, reason = SCHEMA_CASES[case]
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    store = tmp_path / "results"
    assert main(["leaderboard", "add", str(path), "--results", str(store)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "refused, nothing added" in err and "bad.json" in err and reason in err, err
    assert "Traceback" not in err and err.count("error:") == 1
    assert not store.exists() or not any(store.rglob("*.json"))


def test_the_bounds_are_inclusive_and_real_records_keep_them() -> None:
    data = VICTIM.to_data()
    data["subset"]["tokens"] = MAX_INT
    data["training"]["wall_time_s"] = MAX_FLOAT
    data["submission"]["description"] = "two\nlines\tand a tab"
    data["submission"]["contact"] = "Ünïcödé 😀 <me@example.org>"
    record = Record.from_data(data, "<edge>")
    assert Record.from_json(record.to_json(), "<again>") == record


# ------------------------------------------------------------------------------------- files of the store


def test_links_fifos_and_devices_are_skipped_without_hanging(tmp_path: Path) -> None:
    results = _store(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.json"
    secret.write_text(VICTIM.to_json())  # a valid record, but not the store's
    folder = results / "debug"
    names = {
        "fifo": folder / "debug-aaaaaaaaaaaa.json",
        "zero": folder / "debug-bbbbbbbbbbbb.json",
        "outside": folder / f"{VICTIM.entry_id}.json",
        "dir": folder / "debug-cccccccccccc.json",
        "track-link": results / "nano",
        "exp-fifo": results / "_experiments" / "fifo" / "experiment.json",
        "exp-zero": results / "_experiments" / "zero" / "experiment.json",
        "exp-link": results / "_experiments" / "linked",
    }
    os.mkfifo(names["fifo"])
    names["zero"].symlink_to("/dev/zero")
    names["outside"].symlink_to(secret)
    names["dir"].mkdir()
    (outside / "nano").mkdir()
    (outside / "nano" / "nano-ffffffffffff.json").write_text(synthetic_record("nano", 1).to_json())
    names["track-link"].symlink_to(outside / "nano", target_is_directory=True)
    for key in ("exp-fifo", "exp-zero"):
        names[key].parent.mkdir(parents=True)
    os.mkfifo(names["exp-fifo"])
    names["exp-zero"].symlink_to("/dev/zero")
    (outside / "exp").mkdir()
    names["exp-link"].symlink_to(outside / "exp", target_is_directory=True)
    odd = os.fsencode(folder) + b"/debug-\xff\x1b[2J.json"  # not UTF-8, and a terminal escape
    with open(odd, "wb") as fh:
        fh.write(b"{}")
    before, outside_before = _snapshot(results), _snapshot(outside)
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "leaderboard", "build", "--results", str(results), "--out", str(site)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    err = " ".join(done.stderr.split())
    assert done.returncode == 0, err
    assert "Traceback" not in err
    for key, path in names.items():
        assert f"skipped {path}" in err, (key, err)
    assert "debug-\\udcff\\x1b[2J.json: " in err and "\x1b" not in err  # named, escaped, never sent raw
    for reason in ("a FIFO, not a regular file", "a symbolic link", "a directory, not a regular file"):
        assert reason in err
    assert sorted(p.stem for p in (site / "entries").iterdir()) == sorted(r.entry_id for r in GOOD)
    assert not (site / "records" / "nano").exists() and not (site / "experiments").exists()
    assert _snapshot(results) == before and _snapshot(outside) == outside_before


def test_an_oversized_file_is_not_read(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _store(tmp_path)
    monkeypatch.setattr(records_parse, "MAX_FILE_BYTES", 4096)  # a record is about 15 KB
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "site")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no valid records" in err and "a store file holds at most 4,096" in err


def test_records_naming_many_aggregates_between_them_do_not_grow_every_row(tmp_path: Path) -> None:
    """Each record within its bound of aggregates, but each naming others: the track's table keeps the most common
    columns (the primary first) and says how many it left out, so the index grows with the records, not their
    product with the aggregates."""
    from harness.leaderboard.columns import MAX_AGGREGATE_COLUMNS, build_table

    def spread(i: int) -> Record:
        data = synthetic_record("debug", 100 + i).to_data()
        template = data["evaluation"]["aggregates"]["heldout_bpb"]
        data["evaluation"]["aggregates"].update({f"own_{i}_{k}": dict(template) for k in range(MAX_AGGREGATES - 4)})
        return Record.from_data(data, f"spread-{i}")

    records = [*GOOD, *map(spread, range(40))]
    honest = build_site([*GOOD, *(synthetic_record("debug", 100 + i) for i in range(40))], tmp_path / "honest")
    summary = build_site(records, tmp_path / "site")
    table = build_table("debug", records)
    named = {key for r in records for key in (f"agg:{n}@{a.version}" for n, a in r.evaluation.aggregates.items())}
    assert len(table.aggregate_columns) == MAX_AGGREGATE_COLUMNS
    assert table.hidden_aggregates == len(named) - MAX_AGGREGATE_COLUMNS > 400
    assert table.aggregate_columns[0].label == "Sandbox_v1"  # the primary, then the most common
    assert {c.label for c in build_table("debug", GOOD).aggregate_columns} <= {c.label for c in table.aggregate_columns}
    index = (tmp_path / "site" / "index.html").read_text()
    assert f"{table.hidden_aggregates} rarer aggregates not shown here" in index
    assert summary.index_bytes < 3 * honest.index_bytes  # 24 of 482 columns: 2.3x; without the cap 28x
    assert "rarer aggregates" not in (tmp_path / "honest" / "index.html").read_text()


def test_writes_into_a_built_site_never_reach_the_store(tmp_path: Path, capsys) -> None:
    results = _store(tmp_path)
    _publish_summary(results, _summary())
    before = _snapshot(results)
    site = tmp_path / "site"
    _build(results, site, capsys)
    copies = [p for p in site.rglob("*") if p.is_file()]
    assert len(list((site / "records").rglob("*.json"))) == len(GOOD)
    for path in copies:
        assert path.stat().st_nlink == 1  # no file of the site is shared with anything
        with open(path, "ab") as fh:
            fh.write(b"tampered")
        path.chmod(0o600)
    os.truncate(next((site / "records").rglob("*.json")), 0)
    assert _snapshot(results) == before


# ------------------------------------------------------------------------------------ experiment summaries


def _summary(**changes: Any) -> dict[str, Any]:
    summary = {
        "experiment": "exp", "description": "A sweep.", "track": "debug", "factors": ["size", "seed"],
        "summary": [{"size": 1.0, "seeds": 2, "tokens_seen": 100, "unique_passes": 1.0, "loss": 2.0,
                     "loss_band": 0.1}],
        "cells": [{"cell": "size=1", "entry_id": GOOD[0].entry_id, "track": "debug"}],
    }  # fmt: skip
    return summary | changes


def _publish_summary(results: Path, summary: Any, folder: str = "exp") -> Path:
    path = results / "_experiments" / folder / "experiment.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary), encoding="utf-8")
    return path


SUMMARY_CASES = {
    "dot-dot-name": (_summary(experiment="../../../escape"), "is not a name"),
    "slash-name": (_summary(experiment="a/b"), "is not a name"),
    "hidden-name": (_summary(experiment=".hidden"), "is not a name"),
    "name-of-another-folder": (_summary(experiment="other"), "lies in folder 'exp'"),
    "missing-keys": ({"experiment": "exp"}, "'description' must be text"),
    "a-list": ([1, 2, 3], "must be a JSON object, got list"),
    "row-a-list": (_summary(summary=[[1, 2]]), "'summary[0]' must be an object"),
    "row-lacks-keys": (_summary(summary=[{"size": 1.0}]), "lacks seeds"),
    "band-text": (_summary(summary=[_summary()["summary"][0] | {"loss_band": "wide"}]), "must be a number"),
    "cell-without-id": (_summary(cells=[{"cell": "x"}]), "'cells[0]' must be an object with text"),
    "nan": (_summary(summary=[_summary()["summary"][0] | {"loss": float("nan")}]), "must be finite"),
    "huge-int": (_summary(summary=[_summary()["summary"][0] | {"tokens_seen": 10**40}]), "integers must lie"),
    "noncharacter": (_summary(description="a\uffff"), "noncharacter U+FFFF"),
    "too-many-cells": (_summary(cells=_summary()["cells"] * 10_001), "at most 10,000"),
}


@pytest.mark.parametrize("case", sorted(SUMMARY_CASES))
def test_bad_experiment_summaries_are_skipped(case: str, tmp_path: Path, capsys) -> None:
    summary, reason = SUMMARY_CASES[case]
    results = _store(tmp_path)
    bad = _publish_summary(results, summary)
    _publish_summary(results, _summary(experiment="fine"), "fine")
    before = _snapshot(tmp_path, skip=tmp_path / "site")
    err = _build(results, tmp_path / "site", capsys)
    assert f"skipped {bad}: not a valid experiment summary" in err and reason in err, err
    assert sorted(p.name for p in (tmp_path / "site" / "experiments").iterdir()) == ["fine.html"]
    assert _snapshot(tmp_path, skip=tmp_path / "site") == before  # nothing written outside the site


def test_summaries_handed_to_build_site_cannot_escape_it(tmp_path: Path) -> None:
    bad = [_summary(experiment="../../escape"), {"experiment": "x"}, "not a dict", _summary(experiment="ok")]
    site = tmp_path / "deep" / "site"
    summary = build_site(GOOD, site, experiments=bad)  # type: ignore[arg-type]
    assert [p.path for p in summary.problems] == [
        "<experiment summary 1 '../../escape'>", "<experiment summary 2 'x'>", "<experiment summary 3>"
    ]  # fmt: skip
    assert sorted(p.name for p in (site / "experiments").iterdir()) == ["ok.html"]
    assert sorted(p.name for p in tmp_path.rglob("*") if site not in (p, *p.parents)) == ["deep"]
