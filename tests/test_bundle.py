"""`harness bundle` and `harness verify` on one debug entry: the honest bundle verifies at every level, its hash is
stable, and each kind of tampering (a changed id, an edited score, an altered tensor, a missing file, a checkpoint
of another shape, a subset of another pool) fails with a message naming what and where."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bundle import FORMAT, LEVELS, MANIFEST, VERIFICATION
from harness.bundle.outcome import Outcome
from harness.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # messages on one line, as the tests read them


# ------------------------------------------------------------------------------------------ without an entry


def test_outcome_level_is_the_highest_level_fully_passed() -> None:
    o = Outcome("h", "debug-0", "debug", "train")
    assert o.level == "self-reported" and not o.ok
    o.add("data", "files", True, "")
    o.add("eval", "task a", True, "")
    assert o.level == "eval" and not o.ok  # train asked, not run
    o.add("train", "weights", False, "differ")
    assert o.level == "eval" and not o.ok and len(o.failed()) == 1
    o = Outcome("h", "debug-0", "debug", "data")
    o.add("data", "files", True, "")
    o.add("data", "subset", False, "")
    assert o.level == "self-reported"
    data = o.to_json()
    assert data["level"] == "self-reported" and data["mismatches"] == 1 and set(LEVELS) == {"data", "eval", "train"}


def test_not_a_bundle_is_unusable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    assert MANIFEST in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "absent")]) == 2


def test_bundle_refuses_an_unfinished_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "debug" / "debug-0123456789ab" / "validate").mkdir(parents=True)
    assert main(["bundle", "debug-0123456789ab", str(tmp_path / "b"), "--run-dir", str(tmp_path / "runs")]) == 2
    assert "stage 'validate' has not finished" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- one entry


@pytest.fixture(scope="module")
def entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One debug entry, submitted once for the whole module."""
    cwd = tmp_path_factory.mktemp("entry")
    subset = cwd / "random.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(EXAMPLES / "random_sample.py"), "--track", "debug", "--out", str(subset)],
                   check=True, env=env)  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "harness", "submit", "--track", "debug", str(subset), "--name", "bundled random"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    (folder,) = (cwd / "runs" / "debug").glob("debug-*")
    return folder


def _bundle(entry: Path, out: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["bundle", str(entry), str(out), *extra]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("bundle ")
    return last.split()[-1]


@pytest.fixture(scope="module")
def bundled(entry: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bundle") / "b"
    code = main(["bundle", str(entry), str(out), "--archive", "--json"])
    assert code == 0
    return out, hashlib.sha256((out / MANIFEST).read_bytes()).hexdigest()


def _copy(bundled: tuple[Path, str], tmp_path: Path) -> Path:
    out = tmp_path / "b"
    shutil.copytree(bundled[0], out, ignore=shutil.ignore_patterns(VERIFICATION))
    return out


def _reseal(bundle: Path) -> None:
    """What a forger would do: recompute every file's hash in the manifest after editing files."""
    manifest = json.loads((bundle / MANIFEST).read_text())
    for rel in manifest["files"]:
        data = (bundle / rel).read_bytes()
        manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if "path" in manifest["checkpoint"]:
        manifest["checkpoint"].update(manifest["files"][manifest["checkpoint"]["path"]])
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _verify(bundle: Path, level: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, dict]:
    code = main(["verify", str(bundle), "--level", level, *extra])
    captured = capsys.readouterr()
    out_file = bundle / VERIFICATION
    outcome = json.loads(out_file.read_text()) if out_file.is_file() else {}
    return code, captured.out + captured.err, outcome


@pytest.mark.slow
def test_bundle_holds_no_pickle_and_its_hash_is_stable(
    entry: Path, bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, first = bundled
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["entry_id"] == entry.name
    files = set(manifest["files"])
    assert {"record.json", "eval/eval.json", "checkpoint/model.safetensors", "data/shards.json"} <= files
    assert all(f.endswith((".json", ".jsonl", ".jsonl.gz", ".safetensors")) for f in files)
    assert any(f.startswith("subset/") for f in files) and not any(f.endswith(".pt") for f in files)
    again = _bundle(entry, tmp_path / "again", "--archive", capsys=capsys)
    assert again == first
    archive = folder.with_name("b.tar.gz")
    assert archive.read_bytes() == (tmp_path / "again.tar.gz").read_bytes()  # the archive too (other folder name)
    from safetensors.torch import load_file

    from harness.model import load_weights

    ours = load_file(folder / "checkpoint" / "model.safetensors")
    (pt,) = sorted((entry / "train" / "checkpoints").glob("epoch_*.pt"))[-1:]
    original = load_weights(pt)
    assert set(ours) == set(original) and all((ours[k] == original[k]).all() for k in ours)


@pytest.mark.slow
def test_honest_bundle_verifies_at_every_level(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, bundle_hash = bundled
    code, out, outcome = _verify(folder, "train", capsys)
    assert code == 0, out
    assert outcome["level"] == "train" and outcome["ok"] and outcome["bundle"] == bundle_hash
    assert outcome["tolerance"] == 0.0 and outcome["mismatches"] == 0
    whats = {c["what"] for c in outcome["checks"]}
    assert {"files", "subset", "tokenization", "task fact_cloze", "aggregate Sandbox_v1", "weights"} <= whats
    assert {"training final_loss", "training tokens_seen"} <= whats
    # the archive verifies too (data level), its outcome beside it
    archive = folder.with_name("b.tar.gz")
    assert main(["verify", str(archive), "--level", "data"]) == 0
    assert json.loads(archive.with_name("b.tar.gz." + VERIFICATION).read_text())["level"] == "data"


def _checks(outcome: dict, ok: bool = False) -> dict[str, str]:
    return {c["what"]: c["detail"] for c in outcome["checks"] if c["ok"] == ok}


@pytest.mark.slow
def test_a_changed_id_fails_the_data_level(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.pools import ensure_pool

    bundle = _copy(bundled, tmp_path)
    (path,) = (bundle / "subset").glob("*.jsonl.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    used = {json.loads(line)["id"] for line in lines}
    pool = ensure_pool("sandbox")
    other = next(pool.id_of_row(r) for r in range(len(pool)) if pool.id_of_row(r) not in used)
    lines[0] = json.dumps({"id": other, "repeat": 1})
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    code, out, outcome = _verify(bundle, "data", capsys)
    assert code == 1, out
    bad = _checks(outcome)
    assert "changed after the bundle was made" in bad[f"file subset/{path.name}"]
    assert "its subset hash is" in bad["subset"] and "differ from those submitted" in bad["subset"]
    assert any(what.startswith("shard shard_") for what in bad)  # the re-tokenized shards differ, named
    assert outcome["level"] == "self-reported" and "MISMATCH" in out


@pytest.mark.slow
def test_an_edited_score_fails_with_or_without_a_resealed_manifest(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(bundled, tmp_path)
    record = json.loads((bundle / "record.json").read_text())
    record["evaluation"]["tasks"]["fact_cloze"]["value"] += 0.1
    (bundle / "record.json").write_text(json.dumps(record, indent=1))
    code, out, outcome = _verify(bundle, "eval", capsys)
    assert code == 1, out
    bad = _checks(outcome)
    assert "file record.json" in bad and "record.json: task fact_cloze" in bad
    assert "eval/eval.json says" in bad["record.json: task fact_cloze"]
    assert "the data level failed" in outcome["notes"][0]
    _reseal(bundle)  # the manifest now agrees; the record still disagrees with the evaluation outputs
    code, out, outcome = _verify(bundle, "data", capsys)
    assert code == 1 and set(_checks(outcome)) == {"record.json: task fact_cloze"}, out


@pytest.mark.slow
def test_an_edited_score_and_outputs_fail_the_eval_level(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(bundled, tmp_path)
    record = json.loads((bundle / "record.json").read_text())
    evaluation = json.loads((bundle / "eval" / "eval.json").read_text())
    recorded = record["evaluation"]["tasks"]["next_sentence"]["value"]
    record["evaluation"]["tasks"]["next_sentence"]["value"] = evaluation["tasks"]["next_sentence"]["accuracy"] = 0.9
    (bundle / "record.json").write_text(json.dumps(record, indent=1))
    (bundle / "eval" / "eval.json").write_text(json.dumps(evaluation, indent=1))
    _reseal(bundle)  # consistent forgery: data passes, re-evaluation catches it
    code, out, outcome = _verify(bundle, "eval", capsys)
    assert code == 1, out
    assert outcome["level"] == "data"
    (check,) = [c for c in outcome["checks"] if not c["ok"]]
    assert check["what"] == "task next_sentence" and check["difference"] == pytest.approx(recorded - 0.9)
    assert "recorded 0.9, re-evaluated" in check["detail"]


@pytest.mark.slow
def test_an_altered_tensor_fails_the_eval_level(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file, save_file

    bundle = _copy(bundled, tmp_path)
    path = bundle / "checkpoint" / "model.safetensors"
    tensors = load_file(path)
    tensors["output.weight"] = tensors["output.weight"] * 0.5
    save_file(tensors, path, metadata={"format": "pt"})
    code, out, outcome = _verify(bundle, "eval", capsys)  # the manifest's hash catches it first
    assert code == 1 and "changed after the bundle was made" in _checks(outcome)["file checkpoint/model.safetensors"]
    _reseal(bundle)
    code, out, outcome = _verify(bundle, "eval", capsys)
    assert code == 1, out
    bad = _checks(outcome)
    assert outcome["level"] == "data" and any(what.startswith(("task ", "heldout_lm")) for what in bad), bad
    assert "re-evaluated" in next(iter(bad.values()))


@pytest.mark.slow
def test_unusable_bundles_exit_2_naming_the_file(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from harness.tracks import get_track

    bundle = _copy(bundled, tmp_path)
    (bundle / "eval" / "eval.json").unlink()
    code, out, _ = _verify(bundle, "data", capsys)
    assert code == 2 and "eval/eval.json is missing" in out, out

    bundle = _copy(bundled, tmp_path / "shape")
    path = bundle / "checkpoint" / "model.safetensors"
    tensors = load_file(path)
    tensors["output.weight"] = torch.zeros(100, tensors["output.weight"].shape[1])
    save_file(tensors, path)
    _reseal(bundle)
    code, out, _ = _verify(bundle, "eval", capsys)
    assert code == 2 and "model.safetensors: not a checkpoint of track debug's model" in out, out
    assert "output.weight has shape [100, 64]" in out

    bundle = _copy(bundled, tmp_path / "pickle")
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"]["checkpoint/model.pt"] = manifest["files"]["checkpoint/model.safetensors"]
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    code, out, _ = _verify(bundle, "data", capsys)
    assert code == 2 and "'checkpoint/model.pt'; a bundle holds only" in out, out

    bundle = _copy(bundled, tmp_path / "gpu")  # the train level of a GPU track is not a thing this harness does
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["track"] = {"name": "412m", "version": get_track("412m").version, "sha256": get_track("412m").sha256}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    code, out, _ = _verify(bundle, "train", capsys)
    assert code == 2 and "spot check" in out and "--level eval" in out, out


@pytest.mark.slow
def test_a_subset_of_another_pool_fails(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(bundled, tmp_path)
    (path,) = (bundle / "subset").glob("*.jsonl.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    foreign = [json.dumps({"id": hashlib.sha256(line.encode()).hexdigest()[:32], "repeat": 1}) for line in lines]
    path.write_bytes(gzip.compress(("\n".join(foreign) + "\n").encode(), mtime=0))
    _reseal(bundle)
    code, out, outcome = _verify(bundle, "data", capsys)
    assert code == 1, out
    bad = _checks(outcome)
    assert "does not validate against track debug" in bad["subset"] and "subset-00000.jsonl.gz line 1" in bad["subset"]
    assert "not re-tokenized" in bad["tokenization"]


@pytest.mark.slow
def test_weights_kept_at_a_url_are_fetched_and_checked(
    entry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url_file = tmp_path / "store" / "model.safetensors"
    bundle = tmp_path / "b"
    _bundle(entry, bundle, "--checkpoint-url", url_file.as_uri(), capsys=capsys)
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert (
        manifest["checkpoint"]["url"] == url_file.as_uri() and "checkpoint/model.safetensors" not in manifest["files"]
    )
    code, out, _ = _verify(bundle, "eval", capsys)
    assert code == 2 and "cannot be fetched" in out, out  # not uploaded yet
    url_file.parent.mkdir()
    url_file.write_bytes(b"something else")
    code, out, outcome = _verify(bundle, "eval", capsys)
    assert code == 1 and "another file is at the URL" in _checks(outcome)[f"checkpoint {url_file.as_uri()}"], out
    shutil.copyfile(bundle.with_name("b.safetensors"), url_file)  # uploaded
    code, out, outcome = _verify(bundle, "eval", capsys)
    assert code == 0 and outcome["level"] == "eval", out


# ------------------------------------------------------------------------------------ leaderboard status


@pytest.mark.slow
def test_leaderboard_add_verifies_a_bundle_and_the_site_shows_how_each_entry_was_checked(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.leaderboard.sample import synthetic_record
    from harness.records import ResultsStore

    results, other = str(tmp_path / "results"), synthetic_record("debug", 7)
    (tmp_path / "other.json").write_text(other.to_json())
    before = {p: p.read_bytes() for p in bundled[0].rglob("*") if p.is_file()}
    assert main(["leaderboard", "add", str(bundled[0]), str(tmp_path / "other.json"), "--results", results]) == 0
    assert f"verified: data (bundle {bundled[1]})" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in bundled[0].rglob("*") if p.is_file()} == before  # the bundle is left as it was
    _, _, sources = ResultsStore(results).load()
    entry_id = json.loads((bundled[0] / "record.json").read_text())["entry_id"]
    assert sources[entry_id].checked == "verified: data" and sources[other.entry_id].checked == "self-reported"
    assert main(["leaderboard", "build", "--results", results, "--out", str(tmp_path / "site")]) == 0
    data = (tmp_path / "site" / "assets" / "data.js").read_text()
    assert '"checked":"verified: data"' in data and '"checked":"self-reported"' in data
    assert "verified: data" in (tmp_path / "site" / "entries" / f"{entry_id}.html").read_text()
    # A record replaced after its verification (a re-run of the same entry) is self-reported again.
    record = json.loads((bundled[0] / "record.json").read_text())
    record["submission"]["name"] = "renamed later"
    (tmp_path / "again.json").write_text(json.dumps(record))
    assert main(["leaderboard", "add", str(tmp_path / "again.json"), "--results", results]) == 0
    assert ResultsStore(results).load()[2][entry_id].checked == "self-reported"


@pytest.mark.slow
def test_leaderboard_add_refuses_a_bundle_that_does_not_verify(
    bundled: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _copy(bundled, tmp_path)
    subset = next((bundle / "subset").glob("*.jsonl.gz"))
    lines = gzip.decompress(subset.read_bytes()).decode().splitlines()
    lines[0] = lines[0].replace(json.loads(lines[0])["id"], "0" * 32)
    subset.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    _reseal(bundle)
    assert main(["leaderboard", "add", str(bundle), "--results", str(tmp_path / "results")]) == 1
    assert "refused, nothing added" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))
