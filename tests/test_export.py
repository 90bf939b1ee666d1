"""`harness export --format hf`: the exported folder loads with transformers and computes the harness model's
logits (debug, nano, and the DCLM shapes at reduced width; their full shapes map on the meta device), its tokenizer
encodes as the harness's, lm-eval's `hf` model scores the sandbox suite as `harness evaluate` does, `harness
evaluate` reads the folder back, and the errors are one line with exit code 2."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from evaluate_fixtures import write_checkpoint, write_eval_folder

from cli_helpers import command_options
from harness.cli import main
from harness.evaluate.checkpoint import HF_MODEL_TYPE, load_model, resolve_checkpoint, shape_from_hf_config
from harness.export.hf import TOLERANCE, export_hf, hf_config, hf_state
from harness.tracks import get_track

transformers = pytest.importorskip("transformers")


def _perturbed_checkpoint(run: Path, track: str, seed: int = 0) -> Path:
    """A run folder whose weights are random everywhere, norm gains included (ones would hide a swapped norm)."""
    write_checkpoint(run, track, seed=seed)
    file = run / "checkpoints" / "epoch_1.pt"
    ckpt = torch.load(file, weights_only=True)
    gen = torch.Generator().manual_seed(seed + 1)
    for name, value in ckpt["state_dict"].items():
        if name.endswith(".weight") and value.ndim == 1:
            value.copy_(1 + 0.3 * torch.randn(value.shape, generator=gen))
    torch.save(ckpt, file)
    return run


def _hf_module():
    from harness.export.hf_code import configuration_harness_open_lm as conf
    from harness.export.hf_code import modeling_harness_open_lm as modeling

    return conf, modeling


@pytest.mark.parametrize("track", ["debug", "nano"])
def test_round_trip_logits_equal(tmp_path, track):
    from harness.export.load import load_hf_model

    run = _perturbed_checkpoint(tmp_path / "run", track)
    result = export_hf(run, tmp_path / "hf")
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOLERANCE
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(result.files)
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "hf" / "pytorch_model.bin").exists()
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == HF_MODEL_TYPE and config["harness"]["track"] == track
    assert config["auto_map"]["AutoModelForCausalLM"].startswith("modeling_harness_open_lm.")

    ours = load_model(resolve_checkpoint(run))
    hf = load_hf_model(tmp_path / "hf")
    shape = get_track(track).model
    ids = torch.randint(0, shape.vocab_size, (2, shape.context), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = ours(ids), hf(ids).logits
    diff = float((got - want).abs().max())
    print(f"{track}: max abs logit difference {diff:.3g}")
    assert got.dtype == torch.float32 and diff <= TOLERANCE
    # a right-padded batch with an attention mask gives the same logits on the real tokens
    mask = torch.ones_like(ids)
    mask[1, shape.context // 2 :] = 0
    with torch.no_grad():
        masked = hf(ids, attention_mask=mask).logits
    assert float((masked[0] - want[0]).abs().max()) <= TOLERANCE
    assert float((masked[1, : shape.context // 2] - want[1, : shape.context // 2]).abs().max()) <= TOLERANCE


def test_autotokenizer_round_trip(tmp_path):
    from harness.export.load import load_hf_tokenizer
    from harness.tokenizer import load_tokenizer

    run = write_checkpoint(tmp_path / "run", "debug")
    export_hf(run, tmp_path / "hf", verify=False)
    spec = get_track("debug").tokenizer
    ours = load_tokenizer(spec)
    theirs = load_hf_tokenizer(tmp_path / "hf")
    assert theirs.eos_token_id == spec.eot_id and theirs.pad_token_id == spec.pad_id
    for text in ["The river runs north.", " leading space and  two", "a page quoting <|endoftext|> as text", "ünï"]:
        ids = ours.encode(text).ids
        assert theirs(text, add_special_tokens=False)["input_ids"] == ids
        assert theirs.encode(text) == ids  # no BOS is added
        assert theirs.decode(ids) == ours.decode(ids, skip_special_tokens=False)
    blob = (tmp_path / "hf" / "tokenizer.json").read_bytes()
    import hashlib

    assert hashlib.sha256(blob).hexdigest() == spec.sha256  # copied byte for byte: the pin still holds


@pytest.mark.parametrize("track", ["412m", "1b", "7b"])
def test_dclm_shapes_map(track):
    """Full DCLM shapes on the meta device: config round trip and every exported name and shape; then the same
    shape at reduced width (head dim, norms, SwiGLU rounding kept) computes equal logits."""
    from harness.model import build_model, load_state

    conf, modeling = _hf_module()
    t = get_track(track)
    config = hf_config(t.model, t.tokenizer, track=t)
    assert shape_from_hf_config(config) == t.model
    assert config["intermediate_size"] == t.model.ffn_hidden and config["vocab_size"] == 50432
    ours = build_model(t.model, device="meta")
    with torch.device("meta"):
        hf = modeling.HarnessOpenLMForCausalLM(conf.HarnessOpenLMConfig(**config))
    exported = {k: tuple(v.shape) for k, v in hf_state(ours.state_dict()).items()}
    assert exported == {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    assert sum(v.numel() for v in hf.parameters()) == sum(v.numel() for v in ours.parameters())

    small = dataclasses.replace(t.model, d_model=2 * t.model.head_dim, n_heads=2, n_layers=2, vocab_size=512,
                                context=64)  # fmt: skip
    torch.manual_seed(0)
    ours = build_model(small).eval()
    with torch.no_grad():
        for p in ours.parameters():
            if p.ndim == 1:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    hf = modeling.HarnessOpenLMForCausalLM(conf.HarnessOpenLMConfig(**hf_config(small, t.tokenizer, track=None)))
    hf.load_state_dict(hf_state(ours.state_dict()), strict=True)
    ids = torch.randint(0, 512, (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = float((hf.eval()(ids).logits - ours(ids)).abs().max())
    print(f"{track} at width {small.d_model}: max abs logit difference {diff:.3g}")
    assert diff <= TOLERANCE
    back = build_model(small, device="meta").to_empty(device="cpu")  # and the harness reads the names back
    from harness.model import strip_prefixes

    load_state(back, strip_prefixes(hf_state(ours.state_dict())))
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), ours.state_dict().values(), strict=True))


def test_evaluate_accepts_the_exported_folder(tmp_path):
    run = _perturbed_checkpoint(tmp_path / "run", "debug")
    export_hf(run, tmp_path / "hf", verify=False)
    info = resolve_checkpoint(tmp_path / "hf")
    assert info.track == "debug" and info.shape == get_track("debug").model
    assert info.tokenizer == get_track("debug").tokenizer and info.tokenizer_file == tmp_path / "hf" / "tokenizer.json"
    original = load_model(resolve_checkpoint(run)).state_dict()
    back = load_model(info).state_dict()
    assert back.keys() == original.keys() and all(torch.equal(back[k], original[k]) for k in back)
    # and an export of the exported folder is the same folder
    export_hf(tmp_path / "hf", tmp_path / "again", verify=False)
    for name in ("model.safetensors", "tokenizer.json", "modeling_harness_open_lm.py"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "hf" / name).read_bytes()


def test_lm_eval_hf_model_scores_as_harness_evaluate(tmp_path):
    """lm-eval's own `hf` model on the exported folder gives `harness evaluate`'s sandbox scores: accuracies equal,
    held-out bits per byte within 1e-6 (sums of float32 log-probabilities computed in other batch shapes)."""
    from lm_eval.models.huggingface import HFLM

    from harness.evaluate.run import _run_tasks
    from harness.evaluate.suites import get_suite

    run = _perturbed_checkpoint(tmp_path / "run", "debug")
    export_hf(run, tmp_path / "hf", verify=False)
    evald = write_eval_folder(tmp_path / "eval", n=10)
    want = {}
    for name, ckpt in (("run", run), ("hf", tmp_path / "hf")):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", str(ckpt), "--mirror", str(evald), "--out", str(out), "--device", "cpu"]) == 0
        want[name] = json.loads(out.read_text())
    assert want["hf"]["track"] == "debug" and want["hf"]["primary_value"] == want["run"]["primary_value"]
    assert want["hf"]["tasks"] == want["run"]["tasks"]  # `harness evaluate` on the folder: identical results

    lm = HFLM(pretrained=str(tmp_path / "hf"), trust_remote_code=True, device="cpu", batch_size=4)
    tasks, missing = _run_tasks(lm, get_suite("sandbox"), evald, None, None)
    assert not missing
    for name, task in tasks.items():
        expected = want["run"]["tasks"][name]
        if name == "heldout":
            assert task.accuracy == pytest.approx(expected["accuracy"], rel=1e-6)
        else:
            assert task.accuracy == expected["accuracy"], name
            assert task.examples[name]["values"] == expected["examples"][name]["values"]


def test_command_and_errors(tmp_path, capsys):
    assert command_options("export") == {
        "checkpoint", "out", "--format", "--track", "--tokenizer-file", "--dtype", "--force", "--no-verify",
    }  # fmt: skip
    out = tmp_path / "hf"
    assert main(["export", str(tmp_path / "nope"), "--format", "hf", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err

    run = write_checkpoint(tmp_path / "run", "debug")
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(run), str(out)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and "Traceback" not in err
    assert main(["export", str(run), str(out), "--force"]) == 0
    assert "max abs logit difference" in capsys.readouterr().out
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").is_file()

    bf16 = tmp_path / "bf16"
    assert main(["export", str(run), str(bf16), "--dtype", "bfloat16"]) == 0
    assert json.loads((bf16 / "config.json").read_text())["dtype"] == "bfloat16"


def test_without_transformers(tmp_path, capsys, monkeypatch):
    run = write_checkpoint(tmp_path / "run", "debug")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    assert main(["export", str(run), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert "pip install transformers" in err and "Traceback" not in err and not (tmp_path / "hf").exists()
    assert main(["export", str(run), str(tmp_path / "hf"), "--no-verify"]) == 0  # writing needs no transformers
    assert (tmp_path / "hf" / "model.safetensors").is_file()


def test_generate_left_padded_batch_equals_greedy(tmp_path):
    """model.generate on a left-padded batch (with or without use_cache) gives the harness model's greedy tokens."""
    from harness.export.load import load_hf_model, load_hf_tokenizer

    run = _perturbed_checkpoint(tmp_path / "run", "debug")
    export_hf(run, tmp_path / "hf", verify=False)
    hf, tok = load_hf_model(tmp_path / "hf"), load_hf_tokenizer(tmp_path / "hf")
    ours = load_model(resolve_checkpoint(run))
    texts = ["the river runs", "a king sings to the old queen of the north"]
    tok.padding_side = "left"
    batch = tok(texts, return_tensors="pt", padding=True)
    for use_cache in (True, False):
        out = hf.generate(**batch, max_new_tokens=5, do_sample=False, use_cache=use_cache)
        for row, text in zip(out.tolist(), texts, strict=True):
            ids = tok(text)["input_ids"]
            with torch.no_grad():
                for _ in range(5):
                    ids.append(int(ours(torch.tensor([ids]))[0, -1].argmax()))
            assert row[-len(ids) :] == ids
