import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import command_options
from harness.cli import main
from harness.config import ConfigError
from harness.errors import UsageError
from harness.tracks import Track, get_track, load_track_file, scale_of, track_from_dict, track_names

DCLM = {  # name: (params, tokens) as DCLM publishes them
    "412m": (411_616_256, 8_232_325_120),
    "1b": (1_439_795_200, 28_795_904_000),
    "1b-5x": (1_439_795_200, 143_979_520_000),
    "3b": (2_795_932_160, 55_918_643_200),
    "7b": (6_889_410_560, 137_788_211_200),
    "7b-2x": (6_889_410_560, 275_576_422_400),
}


def test_every_shipped_track_loads():
    assert set(DCLM) | {"debug", "nano", "micro"} <= set(track_names())
    for name in track_names():
        track = get_track(name)
        assert track.name == name and track.steps > track.recipe.warmup


def test_micro_is_nanos_recipe_at_about_4x_its_compute():
    """The CPU ladder's target rung: nano's recipe family (everything but the shape, the budget and the warm-up
    that keeps its share of the run) at about 4x nano's training compute, with the compute multipliers too."""
    nano, micro = get_track("nano"), get_track("micro")
    assert 3.8 <= micro.flops / nano.flops <= 4.2
    shared = ("pool", "suite", "tokenizer", "rules")
    assert all(getattr(micro, k) == getattr(nano, k) for k in shared)
    same = ("lr", "weight_decay", "cooldown_end_lr", "z_loss", "global_batch", "seed", "seeds", "checkpoints")
    assert all(getattr(micro.recipe, k) == getattr(nano.recipe, k) for k in same)
    assert abs(micro.recipe.warmup / micro.steps - nano.recipe.warmup / nano.steps) < 0.01
    assert micro.model.context == nano.model.context and micro.model.head_dim == nano.model.head_dim
    half = get_track("micro-0.5x")
    assert (half.tokens, half.model, scale_of(half)) == (micro.tokens // 2, micro.model, ("micro", 0.5))


@pytest.mark.parametrize("name", sorted(DCLM))
def test_dclm_counts_exact(name):
    track = get_track(name)
    assert (track.n_params, track.tokens) == DCLM[name]
    assert track.flops == 6 * track.n_params * track.tokens
    assert track.tokenizer.name == "EleutherAI/gpt-neox-20b" and track.model.vocab_size == 50432
    assert (track.recipe.seed, track.recipe.checkpoints, track.recipe.cooldown_end_lr) == (124, 5, 3e-5)


def test_412m_recipe():
    r = get_track("412m").recipe
    assert (r.lr, r.warmup, r.weight_decay, r.global_batch, r.grad_accum, r.z_loss) == (3e-3, 2000, 0.033, 512, 8, 1e-4)
    assert get_track("412m").model.ffn_hidden == 2816


def test_7b_recipe():
    r = get_track("7b").recipe
    assert (r.lr, r.weight_decay, r.global_batch, r.grad_accum, r.z_loss) == (2e-3, 0.05, 2048, 2, 5e-6)
    assert "--fsdp-pure-bf16" in r.open_lm_flags


def _write(tmp_path: Path, text: str, name: str = "t") -> Path:
    src = (Path(__file__).parent.parent / "tracks" / "debug.toml").read_text()
    path = tmp_path / f"{name}.toml"
    path.write_text(src.replace('name = "debug"', f'name = "{name}"') + text)
    return path


def _edit(tmp_path: Path, old: str, new: str) -> Path:
    path = _write(tmp_path, "")
    path.write_text(path.read_text().replace(old, new, 1))
    return path


def test_unknown_key_names_file_and_key(tmp_path):
    path = _edit(tmp_path, "[recipe]\n", "[recipe]\nlearning_rate = 1\n")
    with pytest.raises(ConfigError, match=r"t\.toml: unknown key 'recipe\.learning_rate'"):
        load_track_file(path)


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"t\.toml: 'model\.n_layers' must be an integer"):
        load_track_file(_edit(tmp_path, "n_layers = 2", 'n_layers = "two"'))


def test_heads_must_divide_width(tmp_path):
    with pytest.raises(ConfigError, match=r"t\.toml: 'model\.n_heads' \(3\) must divide 'model\.d_model' \(64\)"):
        load_track_file(_edit(tmp_path, "n_heads = 2", "n_heads = 3"))


def test_bad_literal_and_accumulation(tmp_path):
    with pytest.raises(ConfigError, match="'recipe.precision' must be one of"):
        load_track_file(_edit(tmp_path, 'precision = "fp32"', 'precision = "fp8"'))
    with pytest.raises(ConfigError, match="'recipe.grad_accum' \\(3\\) must divide"):
        load_track_file(_edit(tmp_path, "grad_accum = 1", "grad_accum = 3"))


def test_missing_key_and_name_mismatch(tmp_path):
    with pytest.raises(ConfigError, match="missing key 'recipe.lr'"):
        load_track_file(_edit(tmp_path, "lr = 3e-3\n", ""))
    path = _write(tmp_path, "")
    renamed = path.rename(tmp_path / "other.toml")
    with pytest.raises(ConfigError, match="file is named 'other'"):
        load_track_file(renamed)


def test_unknown_track_did_you_mean():
    with pytest.raises(UsageError, match="Did you mean '412m'"):
        get_track("41m")
    assert main(["tracks", "show", "nanoo"]) == 2


def test_track_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_track("nano").recipe.lr = 1.0  # type: ignore[misc]


def test_show_json_round_trips(capsys):
    assert main(["tracks", "show", "412m", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["derived"]["n_params"] == 411_616_256 and data["derived"]["tokens"] == 8_232_325_120
    assert (data["recipe"]["lr"], data["recipe"]["warmup"], data["recipe"]["weight_decay"]) == (0.003, 2000, 0.033)
    assert (data["recipe"]["global_batch"], data["recipe"]["z_loss"]) == (512, 0.0001)
    assert track_from_dict(data, "<json>") == get_track("412m")
    data["derived"]["n_params"] += 1
    with pytest.raises(ConfigError, match="'derived' disagrees .* n_params"):
        track_from_dict(data, "<json>")


def test_tracks_json_lists_every_track(capsys):
    assert main(["tracks", "--json"]) == 0
    tracks = [track_from_dict(d, "<json>") for d in json.loads(capsys.readouterr().out)]
    assert all(isinstance(t, Track) for t in tracks) and {t.name for t in tracks} == set(track_names())


def test_tracks_cli_options_pinned():
    assert command_options("tracks") == {"--json"}
    assert command_options("tracks", "show") == {"name", "--json"}


def test_tracks_command_imports_nothing_heavy():
    code = "import sys; from harness.cli import main; main(['tracks']); print(sorted(m for m in ('torch', 'lm_eval', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "harness 0." in capsys.readouterr().out


def test_every_command_is_offered():
    from cli_helpers import subcommands

    assert subcommands() == {
        "tracks", "pool", "validate", "tokenize", "train", "evaluate", "export", "eval-data", "submit", "bundle", "verify", "compare",
        "leaderboard",
        "demo", "score", "select", "classifier", "sweep", "scaling", "reliability", "transfer",
    }  # fmt: skip
