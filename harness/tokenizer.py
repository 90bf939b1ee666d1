"""Tokenizers: find a track's tokenizer.json (shipped, local, cached or downloaded), pin it by sha256, load it.

A track names its tokenizer with a `TokenizerSpec`. Where the file comes from, in order:

- `source = "builtin"`: `harness/assets/<name>.json`, shipped inside the package.
- `source = "hub"` (a Hugging Face repo id such as `EleutherAI/gpt-neox-20b`):
  1. the `path=` argument (a tokenizer.json file, or a folder holding one);
  2. the environment variable `HARNESS_TOKENIZER_<NAME>` (see `tokenizer_env_var`; same meaning as `path=`),
     e.g. `HARNESS_TOKENIZER_ELEUTHERAI_GPT_NEOX_20B=/data/neox/tokenizer.json` for offline clusters;
  3. the Hugging Face cache (`$HF_HOME/hub`), where an earlier download or `huggingface-cli download` put it;
  4. a download from the hub (what `Tokenizer.from_pretrained` does), unless `HF_HUB_OFFLINE=1`.

When the spec pins `sha256`, the file's bytes must hash to it, so that every machine tokenizes identically.

Special-token strings that appear in document text (e.g. a web page quoting `<|endoftext|>`) are encoded as
ordinary text: the returned tokenizer has `encode_special_tokens = True`, so only the data step ever writes the
end-of-document id.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.io.files import file_sha256
from harness.resources import asset_path

if TYPE_CHECKING:
    import tokenizers

    from harness.tracks import TokenizerSpec

#: File a hub repository stores its fast tokenizer in.
HUB_FILENAME = "tokenizer.json"


def tokenizer_env_var(name: str) -> str:
    """The environment variable that points at a local copy of tokenizer `name`.

    Upper-cased, every run of characters other than letters and digits replaced by `_`:
    `EleutherAI/gpt-neox-20b` -> `HARNESS_TOKENIZER_ELEUTHERAI_GPT_NEOX_20B`.
    """
    return "HARNESS_TOKENIZER_" + re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


def _local_file(path: str | os.PathLike[str], origin: str) -> Path:
    """A tokenizer.json given by the user: the file itself, or a folder that holds tokenizer.json."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / HUB_FILENAME
    if not p.is_file():
        raise HarnessError(f"tokenizer file {p} (from {origin}) does not exist; point it at a tokenizer.json file")
    return p


def _from_hub(repo_id: str) -> Path:
    """The repo's tokenizer.json from the Hugging Face cache, downloading it when it is not there yet."""
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with tokenizers
        raise HarnessError(f"cannot fetch tokenizer {repo_id!r}: huggingface_hub is not installed") from exc
    cached = try_to_load_from_cache(repo_id, HUB_FILENAME)
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached)
    hint = (
        f"download it once with `huggingface-cli download {repo_id} {HUB_FILENAME}`, or set "
        f"{tokenizer_env_var(repo_id)}=/path/to/{HUB_FILENAME}"
    )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        raise HarnessError(f"tokenizer {repo_id!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; {hint}")
    try:
        return Path(hf_hub_download(repo_id, HUB_FILENAME))
    except Exception as exc:  # network errors, missing repos, gated repos: all answered the same way
        raise HarnessError(
            f"could not download tokenizer {repo_id!r} from the Hugging Face hub ({exc}); {hint}"
        ) from exc


def resolve_tokenizer_file(spec: TokenizerSpec, *, path: str | os.PathLike[str] | None = None) -> Path:
    """Where the tokenizer.json of `spec` is on this machine (downloading a hub tokenizer if needed)."""
    if spec.source == "builtin":
        if path is not None:
            return _local_file(path, "the path argument")
        p = asset_path(f"{spec.name}.json")
        if not p.is_file():
            raise HarnessError(f"builtin tokenizer {spec.name!r} is missing: expected {p} in the harness package")
        return p
    if path is not None:
        return _local_file(path, "the path argument")
    env = tokenizer_env_var(spec.name)
    if os.environ.get(env):
        return _local_file(os.environ[env], f"${env}")
    return _from_hub(spec.name)


def _check_pin(name: str, expected: str, file: Path, actual: str) -> None:
    if expected and actual != expected:
        raise HarnessError(
            f"tokenizer file {file} has sha256 {actual} but the track pins {name!r} to {expected}; "
            "use the exact tokenizer.json the track was pinned with (delete a stale cached copy, or fix "
            f"{tokenizer_env_var(name)} / the path you passed)"
        )


@cache
def _load_file(file: str, mtime_ns: int, expected_sha256: str, name: str) -> tokenizers.Tokenizer:
    """Load (and pin-check) one file; cached by path and modification time so an edited file is re-read."""
    from tokenizers import Tokenizer

    blob = Path(file).read_bytes()
    _check_pin(name, expected_sha256, Path(file), hashlib.sha256(blob).hexdigest())
    try:
        tok = Tokenizer.from_str(blob.decode("utf-8"))
    except Exception as exc:
        raise HarnessError(f"{file} is not a valid tokenizer.json ({exc})") from exc
    tok.encode_special_tokens = True  # "<|endoftext|>" inside a document is text, never the eot id
    return tok


def load_tokenizer(spec: TokenizerSpec, *, path: str | os.PathLike[str] | None = None) -> tokenizers.Tokenizer:
    """The `tokenizers.Tokenizer` of `spec` (cached; treat it as read-only since callers share it).

    Raises HarnessError when the file cannot be found or fetched, or when it does not match `spec.sha256`.
    """
    file = resolve_tokenizer_file(spec, path=path).resolve()
    return _load_file(str(file), file.stat().st_mtime_ns, spec.sha256, spec.name)


def tokenizer_sha256(spec: TokenizerSpec, *, path: str | os.PathLike[str] | None = None) -> str:
    """sha256 of the tokenizer.json that `load_tokenizer(spec, path=path)` uses (checked against a pin)."""
    file = resolve_tokenizer_file(spec, path=path)
    actual = file_sha256(file)
    _check_pin(spec.name, spec.sha256, file, actual)
    return actual
