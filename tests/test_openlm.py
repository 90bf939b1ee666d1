"""The open_lm backend: DCLM's exact argument list per track, the install hint, mapping open_lm's output."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError, UsageError
from harness.model import build_model, load_weights
from harness.tracks import get_track
from harness.train import read_result
from harness.train.checkpoint import read_params
from harness.train.openlm.log import read_open_lm_log
from harness.train.openlm.run import (
    OPEN_LM_SUBDIR,
    RUN_NAME,
    map_output,
    open_lm_args,
    train_num_samples,
    train_open_lm,
)

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


def test_several_processes_on_a_cpu_are_refused_before_launching(tmp_path: Path) -> None:
    """open_lm 9bb92ef on torch 2.13 CPU, two processes with gloo: its DDP fails at start (device_ids=[cpu]), its
    FSDP at the first checkpoint (docs/organisers.md, "Several processes on CPU"); one process trains."""
    with pytest.raises(UsageError, match="several processes on a CPU.*--trainer native"):
        train_open_lm(get_track("debug"), str(tmp_path), tmp_path / "run", nproc=2, device="cpu")
    assert not (tmp_path / "run").exists()


# open_lm 9bb92ef's out.log of a real debug run (open_lm 0.0.34, torch 2.13 CPU): 1,017 sequences in 15 shards, so
# each checkpoint reads 8 shards (544 sequences); the first ran 33 steps (a worker ran out of shards), the second 31.
OUT_LOG = """\
2026-11-30,20:01:36 | INFO | Start epoch 0
2026-11-30,20:01:36 | INFO | Train Epoch: 0 [ 16/544 (3%)] Loss: 8.139 Data (t): 0.084 Batch (t): 0.452, 4532.69/s, 4532.69/s/gpu LR: 0.000300
2026-11-30,20:01:41 | INFO | Train Epoch: 0 [336/544 (62%)] Loss: 6.604 Data (t): 0.001 Batch (t): 0.208, 10185.9/s, 10185.9/s/gpu LR: 0.002756
2026-11-30,20:01:43 | INFO | Start epoch 1
2026-11-30,20:01:44 | INFO | Train Epoch: 1 [ 16/544 (3%)] Loss: 4.620 Data (t): 0.066 Batch (t): 0.406, 5043.93/s, 5043.93/s/gpu LR: 0.001857
2026-11-30,20:01:48 | INFO | Train Epoch: 1 [336/544 (62%)] Loss: 3.905 Data (t): 0.001 Batch (t): 0.235, 9511.57/s, 9511.57/s/gpu LR: 0.000324
2026-11-30,20:01:51 | INFO | Train Epoch: 1 [480/544 (88%)] Loss: 3.645 Data (t): 0.001 Batch (t): 0.239, 7997.85/s, 7997.85/s/gpu LR: 0.000040
"""


def test_open_lm_log_becomes_a_curve(tmp_path: Path) -> None:
    """Global steps from open_lm's per-checkpoint counters and where each checkpoint started: the last line is the
    one open_lm writes at step total - 1 (63)."""
    (tmp_path / "out.log").write_text(OUT_LOG)
    points = read_open_lm_log(tmp_path / "out.log", global_batch=16, context=128, epoch_starts=[0, 33])
    assert [(p.step, p.loss) for p in points] == [(1, 8.139), (21, 6.604), (34, 4.62), (54, 3.905), (63, 3.645)]
    assert points[-1].tokens == 63 * 16 * 128
    assert read_open_lm_log(tmp_path / "missing.log", global_batch=16, context=128) == []
    # without the plan an epoch counts as its total (544 / 16 = 34 steps)
    assert [p.step for p in read_open_lm_log(tmp_path / "out.log", global_batch=16, context=128)] == [1, 21, 35, 55, 64]


def test_nano_asks_open_lm_for_192_steps() -> None:
    """DCLM's tokens // checkpoints would be 1,228 sequences per checkpoint on nano: 191 steps."""
    track = get_track("nano")
    assert train_num_samples(track) == 1229 * 256 and 1229 * 5 // 32 == track.steps == 192


def test_torchrun_accepts_the_command_line(tmp_path: Path) -> None:
    """torchrun prefix-matches every option on its line: open_lm's list goes through a JSON file instead."""
    from torch.distributed.run import get_args_parser

    from harness.train.launch import torchrun_command
    from harness.train.openlm.main import read_args

    args = open_lm_args(
        get_track("debug"), model_json="M.json", manifest="MAN", logs="LOGS", name="NAME", multiple_passes=False,
        dist_backend="gloo",
    )  # fmt: skip
    (tmp_path / "args.json").write_text(json.dumps(args))
    cmd = torchrun_command(nproc=2, module="harness.train.openlm.main", args=[str(tmp_path / "args.json")])
    parsed = get_args_parser().parse_args(cmd[3:])
    assert parsed.training_script == "harness.train.openlm.main" and parsed.training_script_args == [
        str(tmp_path / "args.json")
    ]
    assert read_args(str(tmp_path / "args.json")) == args and args[-2:] == ["--dist-backend", "gloo"]
    with pytest.raises(SystemExit):  # the direct form is what torchrun rejects
        get_args_parser().parse_args([*cmd[3:-2], "open_lm.main", *args])


def _open_lm_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run folder as open_lm leaves it (final checkpoint only, its params.txt, its out.log) beside tokenized data."""
    track = get_track("debug")
    data = tmp_path / "shards"
    data.mkdir()
    (data / "manifest.jsonl").write_text(json.dumps({"shard": "shard_00000000", "num_sequences": 2000}) + "\n")
    stats = {"tokenizer": track.tokenizer.name, "tokenizer_sha256": track.tokenizer.sha256, "eot_id": 0, "pad_id": 1}
    (data / "stats.json").write_text(json.dumps(stats))
    out = tmp_path / "run"
    src = out / OPEN_LM_SUBDIR / RUN_NAME
    (src / "checkpoints").mkdir(parents=True)
    model = build_model(track)
    ckpt = {"epoch": 2, "name": RUN_NAME, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
            "evaluation_metrics": [], "next_shard_per_source": [16], "samples_seen": 1024, "step": 64,
            "shard_shuffle_seed": 124}  # fmt: skip
    torch.save(ckpt, src / "checkpoints" / "epoch_2.pt")
    (out / "model.json").parent.mkdir(parents=True, exist_ok=True)
    from harness.model import open_lm_model_config

    (out / "model.json").write_text(json.dumps(open_lm_model_config(track.model)))
    params = "lr: 0.003\nmodel: model\nmodel_norm: gain_only_lp_layer_norm\nqk_norm: True\nseed: 124\n"
    (src / "params.txt").write_text(params + f"dataset_manifest: ['{data / 'manifest.jsonl'}']\n")
    (src / "out.log").write_text(OUT_LOG)
    (out / "open_lm_plan.json").write_text(json.dumps({"checkpoint_steps": [33, 64], "total_steps": 64, "passes": 1}))
    return data, out


def test_open_lm_output_is_mapped_into_the_run_folder(tmp_path: Path) -> None:
    track = get_track("debug")
    data, out = _open_lm_run(tmp_path)
    result = map_output(track, str(data), out, wall_time_s=10.0)
    assert result == read_result(out)
    assert result.final_loss == 3.645 and result.trainer == "open_lm"
    assert result.tokens_seen == track.tokens and result.steps == track.steps == 64
    assert result.passes == pytest.approx(1024 / 2000)
    assert load_weights(result.checkpoint).keys() == build_model(track).state_dict().keys()
    rows = [json.loads(line) for line in Path(result.log).read_text().splitlines()]
    assert rows[-1] == {"step": 63, "tokens": 63 * 16 * 128, "loss": 3.645} and len(rows) == 5
    params = read_params(out / "params.txt")
    assert json.loads((out / "model.json").read_text())["hidden_dim"] == track.model.d_model
    assert params["model"] == str(out / "model.json") and params["track"] == "debug" and params["lr"] == "0.003"


def test_evaluate_resolves_open_lms_own_folder(tmp_path: Path) -> None:
    """open_lm's params.txt names the model by the JSON's stem and no tokenizer: the JSON two folders up, the
    tokenizer from the data's stats.json, and so the debug track (its suite and pool)."""
    from harness.evaluate.checkpoint import resolve_checkpoint

    _data, out = _open_lm_run(tmp_path)
    info = resolve_checkpoint(out / OPEN_LM_SUBDIR / RUN_NAME)
    assert info.track == "debug" and info.shape == get_track("debug").model and info.epoch == 2
    assert info.tokenizer == get_track("debug").tokenizer
    (out / "model.json").unlink()
    with pytest.raises(UsageError, match="model config 'model' not found"):
        resolve_checkpoint(out / OPEN_LM_SUBDIR / RUN_NAME)


@pytest.mark.openlm
@pytest.mark.skipif(
    importlib.util.find_spec("open_lm") is None,
    reason="open_lm is not installed (docs/organisers.md: Training with open_lm)",
)
def test_open_lm_builtin_model_names_resolve(tmp_path: Path) -> None:
    from harness.evaluate.checkpoint import resolve_checkpoint

    (tmp_path / "epoch_1.pt").write_bytes(b"")
    (tmp_path / "params.txt").write_text("model: open_lm_1b\nqk_norm: True\n")
    info = resolve_checkpoint(tmp_path / "epoch_1.pt")
    assert info.shape == get_track("1b").model and info.tokenizer.name == "EleutherAI/gpt-neox-20b"
