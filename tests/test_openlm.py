"""The open_lm backend: DCLM's exact argument list per track, the install hint, mapping open_lm's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.model import build_model, load_weights
from harness.openlm import OPEN_LM_SUBDIR, RUN_NAME, map_output, open_lm_args, train_open_lm
from harness.tracks import get_track
from harness.train import read_result
from harness.train.checkpoint import read_params

# (global batch, lr, warmup, wd, accum, z-loss, tokens, fsdp flags) from reference/dclm-facts.md
FSDP_412M = ["--fsdp", "--fsdp-amp", "--fsdp-limit-all-gathers"]
FSDP_1B = [*FSDP_412M, "--fsdp-use-orig-params"]
FSDP_3B = ["--fsdp", "--fsdp-limit-all-gathers", "--fsdp-pure-bf16", "--fsdp-use-orig-params"]
DCLM = {
    "412m": ("512", "0.003", "2000", "0.033", "8", "0.0001", 8_232_325_120, FSDP_412M),
    "1b": ("256", "0.003", "5000", "0.033", "1", "0.0001", 28_795_904_000, FSDP_1B),
    "1b-5x": ("256", "0.003", "5000", "0.033", "1", "0.0001", 143_979_520_000, FSDP_1B),
    "3b": ("256", "0.003", "5000", "0.033", "1", "0.0001", 55_918_643_200, FSDP_3B),
    "7b": ("2048", "0.002", "5000", "0.05", "2", "5e-06", 137_788_211_200, FSDP_3B),
    "7b-2x": ("2048", "0.002", "5000", "0.05", "2", "5e-06", 275_576_422_400, FSDP_3B),
}


@pytest.mark.parametrize("name", sorted(DCLM))
def test_argument_list_is_dclms(name: str) -> None:
    batch, lr, warmup, wd, accum, z, tokens, fsdp = DCLM[name]
    expected = [
        "--workers", "2", "--precision", "amp_bfloat16", "--global-batch-size", batch, "--log-every-n-steps", "20",
        "--grad-clip-norm", "1", "--lr", lr, "--warmup", warmup, "--model", "M.json", "--wd", wd, "--beta2", "0.95",
        "--epochs", "5", "--resume", "latest", "--seed", "124", "--accum-freq", accum,
        "--model-norm", "gain_only_lp_layer_norm", "--delete-previous-checkpoint", "--lr-cooldown-end", "3e-05",
        "--logs", "LOGS", "--attn-name", "torch_attn", "--log-logit-mean", "--data-tolerate-error-p", "0.09",
        "--data-tolerate-num-ckpts", "0", "--train-num-samples", str(tokens // 5), "--dataset-manifest", "MAN",
        "--data-key", "json.gz", "--name", "NAME", *fsdp, "--qk-norm", "--z-loss", z,
    ]  # fmt: skip
    track = get_track(name)
    assert track.tokens == tokens
    kwargs = {"model_json": "M.json", "manifest": "MAN", "logs": "LOGS", "name": "NAME"}
    assert open_lm_args(track, **kwargs, multiple_passes=False) == expected
    assert open_lm_args(track, **kwargs, multiple_passes=True) == [*expected, "--multiple-data-passes"]


def test_missing_open_lm_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "open_lm" else real(n, *a))
    with pytest.raises(HarnessError, match=r"pip install 'harness\[openlm\]'"):
        train_open_lm(get_track("nano"), str(tmp_path), tmp_path / "run")


def test_open_lm_output_is_mapped_into_the_run_folder(tmp_path: Path) -> None:
    """A folder laid out as open_lm leaves it (final checkpoint only, params.txt, out.log) becomes a run."""
    track = get_track("debug")
    data = tmp_path / "shards"
    data.mkdir()
    (data / "manifest.jsonl").write_text(json.dumps({"shard": "shard_00000000", "num_sequences": 400}) + "\n")
    out = tmp_path / "run"
    src = out / OPEN_LM_SUBDIR / RUN_NAME
    (src / "checkpoints").mkdir(parents=True)
    model = build_model(track)
    samples = track.steps * track.recipe.global_batch
    ckpt = {"epoch": 2, "name": RUN_NAME, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
            "samples_seen": samples, "next_chunk": 3, "evaluation_loss": -1}  # fmt: skip
    torch.save(ckpt, src / "checkpoints" / "epoch_2.pt")
    (src / "params.txt").write_text("lr: 0.003\nmodel: /elsewhere/model.json\nseed: 124\n")
    (src / "out.log").write_text("Train Epoch: 1 [...] Loss: 5.123 Data\nTrain Epoch: 1 [...] Loss: 4.321 Data\n")
    result = map_output(track, str(data), out, wall_time_s=10.0)
    assert result == read_result(out)
    assert result.final_loss == 4.321 and result.trainer == "open_lm"
    assert result.tokens_seen == samples * track.model.context and result.steps == track.steps
    assert result.passes == pytest.approx(samples / 400)
    assert load_weights(result.checkpoint).keys() == model.state_dict().keys()
    params = read_params(out / "params.txt")
    assert json.loads((out / "model.json").read_text())["hidden_dim"] == track.model.d_model
    assert params["model"] == str(out / "model.json") and params["track"] == "debug" and params["lr"] == "0.003"
