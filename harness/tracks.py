"""Tracks: the fixed rules of a benchmark scale (model shape, tokenizer, token budget, recipe, pool, suite).

A track is data (`tracks/<name>.toml`) loaded into the frozen `Track` dataclass. It holds rules only: never
hardware, process counts or paths. Derived figures (parameters, steps, FLOPs) are computed from the shape.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from harness.config import (
    ConfigError,
    check_named_after_file,
    doc,
    from_dict,
    read_toml,
    shipped_file,
    shipped_names,
    to_dict,
)
from harness.errors import HarnessError, UsageError

#: Tokens per parameter of a "1x" (Chinchilla-optimal) budget, as DCLM defines it.
CHINCHILLA_TOKENS_PER_PARAM = 20


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """The open_lm decoder's shape (pre-norm, rotary, SwiGLU, qk-norm, gain-only LayerNorm, no biases)."""

    d_model: int = doc("Width of the residual stream (open_lm `hidden_dim`).")
    n_layers: int = doc("Number of transformer blocks.")
    n_heads: int = doc("Attention heads; must divide d_model, and the head dim must be even (rotary).")
    vocab_size: int = doc("Rows of the embedding and output matrices (the tokenizer's vocab, padded).")
    context: int = doc("Training sequence length; stored sequences hold context + 1 token ids.")
    ffn_multiple_of: int = doc("SwiGLU hidden = multiple * ceil(int(8 * d / 3) / multiple).", default=256)
    norm: Literal["gain_only_lp_layer_norm", "gain_only_layer_norm", "rms_norm"] = doc(
        "Normalisation layer (open_lm `--model-norm`).", default="gain_only_lp_layer_norm"
    )
    norm_eps: float = doc("Epsilon of the normalisation layers.", default=1e-5)
    qk_norm: bool = doc("Normalise queries and keys over the full width (open_lm `--qk-norm`).", default=True)
    positional: Literal["rotary"] = doc("Position embedding.", default="rotary")
    weight_tying: bool = doc("Share the input embedding with the output matrix.", default=False)
    post_embed_norm: bool = doc("Normalise right after the embedding.", default=False)

    def __post_init__(self) -> None:
        for key in ("d_model", "n_layers", "n_heads", "vocab_size", "context", "ffn_multiple_of"):
            if getattr(self, key) <= 0:
                raise ValueError(f"'model.{key}' must be positive, got {getattr(self, key)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"'model.n_heads' ({self.n_heads}) must divide 'model.d_model' ({self.d_model})")
        if self.head_dim % 2:
            raise ValueError(f"'model.d_model' / 'model.n_heads' = {self.head_dim} must be even for rotary")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def ffn_hidden(self) -> int:
        m = self.ffn_multiple_of
        return m * math.ceil(int(8 * self.d_model / 3) / m)

    @property
    def n_params(self) -> int:
        """Parameters as DCLM counts them: everything, both embedding matrices, minus the q/k norm gains."""
        d, h = self.d_model, self.ffn_hidden
        per_layer = 4 * d * d + 3 * d * h + 2 * d  # qkv + out, w12 + w3, attention_norm + ffn_norm
        embeddings = self.vocab_size * d * (1 if self.weight_tying else 2)
        post = d if self.post_embed_norm else 0
        return embeddings + self.n_layers * per_layer + d + post  # + final norm

    @property
    def n_params_non_embedding(self) -> int:
        return self.n_params - self.vocab_size * self.d_model * (1 if self.weight_tying else 2)


@dataclass(frozen=True, kw_only=True)
class TokenizerSpec:
    """Which tokenizer turns text into ids, and the special ids the data step uses."""

    name: str = doc("Hugging Face hub id (e.g. EleutherAI/gpt-neox-20b) or a tokenizer shipped in harness/assets.")
    source: Literal["hub", "builtin"] = doc("'hub': downloaded or read from a local cache; 'builtin': shipped.")
    eot_id: int = doc("End-of-document id appended after every document.")
    pad_id: int = doc("Id that pads the final short sequence of a stream.")
    sha256: str = doc("sha256 of the tokenizer.json file, checked when loaded ('' = not pinned).", default="")

    def __post_init__(self) -> None:
        if self.sha256 and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise ValueError(f"'tokenizer.sha256' must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.eot_id < 0 or self.pad_id < 0:
            raise ValueError("'tokenizer.eot_id' and 'tokenizer.pad_id' must be non-negative")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """How many tokens training sees; give exactly one of the two keys."""

    tokens_per_param: float | None = doc("Tokens = this x parameters (20 is DCLM's '1x').", default=None)
    tokens: int | None = doc("An absolute token budget (for tracks where 20x params does not fit).", default=None)

    def __post_init__(self) -> None:
        if (self.tokens is None) == (self.tokens_per_param is None):
            raise ValueError("give exactly one of 'budget.tokens' and 'budget.tokens_per_param'")
        if (self.tokens or 1) <= 0 or (self.tokens_per_param or 1) <= 0:
            raise ValueError("the budget must be positive")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """The fixed training recipe (open_lm arguments in brackets)."""

    lr: float = doc("Peak learning rate (--lr).")
    warmup: int = doc("Linear warm-up steps (--warmup).")
    weight_decay: float = doc("AdamW weight decay, applied to all parameters (--wd).")
    cooldown_end_lr: float = doc("Final learning rate of the cosine decay (--lr-cooldown-end).")
    beta1: float = doc("AdamW beta1 (--beta1).", default=0.9)
    beta2: float = doc("AdamW beta2 (--beta2).", default=0.95)
    eps: float = doc("AdamW epsilon (--eps).", default=1e-8)
    z_loss: float = doc("Coefficient of the z-loss, mean(logsumexp(logits)^2) (--z-loss).")
    grad_clip_norm: float = doc("Global gradient norm clipping (--grad-clip-norm).", default=1.0)
    global_batch: int = doc("Sequences per optimizer step, whatever the number of processes.")
    grad_accum: int = doc("Default gradient accumulation steps (--accum-freq); must divide global_batch.")
    seed: int = doc("Seed of initialisation and data order (--seed).")
    seeds: tuple[int, ...] = doc(
        "Replicate seeds, the official `seed` first (`harness submit --replicates K` trains with the first K).",
        default=(),
    )
    precision: Literal["amp_bfloat16", "pure_bf16", "fp32"] = doc("Numeric precision on GPU (--precision).")
    checkpoints: int = doc("Checkpoints written over the run (open_lm --epochs).")
    sharding: Literal["ddp", "fsdp"] = doc("Data parallelism of the native trainer.", default="ddp")
    open_lm_flags: tuple[str, ...] = doc("Extra open_lm flags of DCLM's launch (FSDP options).", default=())

    @property
    def replicate_seeds(self) -> tuple[int, ...]:
        """The seeds replicates train with: `seeds`, or the official seed alone."""
        return self.seeds or (self.seed,)

    def __post_init__(self) -> None:
        if not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ValueError("'recipe.beta1' and 'recipe.beta2' must lie in [0, 1)")
        for key in ("lr", "global_batch", "grad_accum", "checkpoints"):
            if getattr(self, key) <= 0:
                raise ValueError(f"'recipe.{key}' must be positive, got {getattr(self, key)}")
        if self.warmup < 0 or self.weight_decay < 0 or self.z_loss < 0 or self.grad_clip_norm < 0:
            raise ValueError("'recipe.warmup', 'weight_decay', 'z_loss' and 'grad_clip_norm' must be >= 0")
        if self.cooldown_end_lr > self.lr:
            raise ValueError(f"'recipe.cooldown_end_lr' ({self.cooldown_end_lr}) exceeds 'recipe.lr' ({self.lr})")
        if self.seeds and (self.seeds[0] != self.seed or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(
                f"'recipe.seeds' must be distinct and start with 'recipe.seed' ({self.seed}), got {self.seeds}"
            )
        if self.global_batch % self.grad_accum:
            raise ValueError(
                f"'recipe.grad_accum' ({self.grad_accum}) must divide 'recipe.global_batch' ({self.global_batch})"
            )


@dataclass(frozen=True, kw_only=True)
class Rules:
    """What a submission may contain."""

    kind: Literal["filtering", "mixing"] = doc(
        "'filtering': every document from the pool; 'mixing': outside documents allowed with a source."
    )
    text_edits: bool = doc("Whether a document's text may be a deletion-only edit of the pool text.", default=True)
    contamination: Literal["report", "reject"] = doc(
        "Subsets quoting evaluation items (harness.submit.decontam): 'report' records them, 'reject' refuses the subset.",
        default="report",
    )


@dataclass(frozen=True, kw_only=True)
class Track:
    """A benchmark scale: everything that is fixed so that only the data varies."""

    name: str = doc("Track id, equal to the file name (tracks/<name>.toml).")
    version: int = doc("Bumped whenever a rule changes; records carry it.")
    description: str = doc("One line for tables.")
    reference: str = doc("The DCLM scale this reproduces, or why the track exists.")
    pool: str = doc("Pool id (pools/<id>.toml) that documents must come from.")
    suite: str = doc("Evaluation suite id (evaluation/<id>.toml).")
    model: ModelShape = doc("Model shape.")
    tokenizer: TokenizerSpec = doc("Tokenizer and special ids.")
    budget: Budget = doc("Training tokens.")
    recipe: Recipe = doc("Training recipe.")
    rules: Rules = doc("Submission rules.")
    notes: str = doc("Why the numbers are what they are (sizing measurements for the small tracks).", default="")

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError(f"'version' must be >= 1, got {self.version}")
        if max(self.tokenizer.eot_id, self.tokenizer.pad_id) >= self.model.vocab_size:
            raise ValueError("'tokenizer.eot_id' and 'tokenizer.pad_id' must be below 'model.vocab_size'")
        if self.recipe.warmup >= self.steps:
            raise ValueError(f"'recipe.warmup' ({self.recipe.warmup}) must be below the {self.steps} optimizer steps")
        if self.steps < self.recipe.checkpoints:
            raise ValueError(f"{self.steps} optimizer steps cannot hold {self.recipe.checkpoints} checkpoints")

    # Derived figures: computed, never typed in.
    @property
    def n_params(self) -> int:
        return self.model.n_params

    @property
    def tokens(self) -> int:
        if self.budget.tokens is not None:
            return self.budget.tokens
        return round(self.budget.tokens_per_param * self.n_params)  # type: ignore[operator]

    @property
    def tokens_per_step(self) -> int:
        return self.recipe.global_batch * self.model.context

    @property
    def steps(self) -> int:
        """Optimizer steps: the budget in whole global batches (open_lm rounds down)."""
        return self.tokens // self.tokens_per_step

    @property
    def flops(self) -> float:
        """Training compute, 6 x params x tokens."""
        return 6.0 * self.n_params * self.tokens

    def derived(self) -> dict[str, Any]:
        return {
            "n_params": self.n_params,
            "n_params_non_embedding": self.model.n_params_non_embedding,
            "ffn_hidden": self.model.ffn_hidden,
            "head_dim": self.model.head_dim,
            "tokens": self.tokens,
            "tokens_per_step": self.tokens_per_step,
            "steps": self.steps,
            "flops": self.flops,
        }

    def to_dict(self) -> dict[str, Any]:
        """The track as JSON data, with its derived figures under 'derived' (checked again by `from_json`)."""
        return {**to_dict(self), "derived": self.derived()}

    @property
    def sha256(self) -> str:
        """Hash of the track's canonical JSON (rules and derived figures), stamped into records."""
        import json

        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def track_from_dict(data: dict[str, Any], source: str) -> Track:
    """Build a Track from parsed TOML or from `harness tracks show --json` output (derived figures checked)."""
    data = dict(data)
    derived = data.pop("derived", None)
    track = from_dict(Track, data, source)
    if derived is not None and derived != track.derived():
        bad = sorted(k for k in set(derived) | set(track.derived()) if derived.get(k) != track.derived().get(k))
        raise ConfigError(f"{source}: 'derived' disagrees with the shape and budget on {', '.join(bad)}")
    return track


def load_track_file(path: Path) -> Track:
    """Load and validate one track file; its `name` must equal the file name."""
    track = track_from_dict(read_toml(path), str(path))
    check_named_after_file(path, "name", track.name)
    return track


def track_names() -> list[str]:
    return shipped_names("tracks")


@cache
def get_track(name: str) -> Track:
    """The shipped track `name`, or a compute multiple of one (`nano-4x`, see below); an unknown name answers with
    the closest known names."""
    if name not in track_names() and (seeded := _SEEDED.match(name)):
        raise UsageError(
            f"track {name!r}: a seed is not a track. Train replicates of an entry with `harness submit --track "
            f"{seeded['base']} "
            "--replicates K` (the track's [recipe] seeds), or give a sweep a seed factor"
        )
    if name not in track_names() and (derived := derive_track(name)) is not None:
        return derived
    return load_track_file(shipped_file("tracks", "track", name))


def all_tracks() -> list[Track]:
    return [get_track(n) for n in track_names()]


# ------------------------------------------------------------------------------------------- derived tracks
# DCLM's tracks come in compute multipliers (1B-1x, 1B-5x, 7B-2x): the same model and recipe trained on K times the
# token budget. `<track>-<K>x` is that track with K x its budget and everything else fixed (shape, recipe, pool,
# suite, rules). A derived track has its own name, so its entries, run folders and records are its own, and its
# hash covers the changed budget. Shipped files win: `1b-5x` is read from tracks/1b-5x.toml.
# A seed is not a track: replicate seeds are the track's `[recipe] seeds` (`harness submit --replicates K`, sweeps
# pass theirs explicitly). Records made when seeds were tracks (`nano-seed125`) still load and display
# (`legacy_seeded`); no new entry can be made on such a name.
# A pool version is a track too: `<track>-v<N>` is that track on `<pool>-v<N>` (a pool file shipped beside the
# track's own pool, e.g. `sandbox-v5` beside `sandbox`), everything else fixed. So a new version of a pool gets its
# tracks (`nano-v5`, `debug-v5`) without new track files, the shipped tracks and every record made on them stay on
# the version they name, and no two shipped tracks share a model shape (a checkpoint's shape names its track).

_SCALED = re.compile(r"^(?P<base>.+)-(?P<k>[0-9]+(?:\.[0-9]+)?)x$")
_POOLED = re.compile(r"^(?P<base>.+)-v(?P<v>[0-9]+)$")
_SEEDED = re.compile(r"^(?P<base>.+)-seed(?P<seed>[0-9]+)$")


def split_pool_version(name: str) -> tuple[str, str]:
    """(`nano`, `-v5`) for `nano-v5`; (`name`, '') for a name without a pool-version suffix."""
    return (m["base"], f"-v{m['v']}") if (m := _POOLED.match(name)) else (name, "")


def scale_label(k: float) -> str:
    """The name suffix of multiplier `k`: 4 -> '4x', 0.5 -> '0.5x'."""
    return f"{k:g}x"


def derived_name(track: str, scale: float = 1.0) -> str:
    """The name of `track` at `scale` x its budget; `track` itself for 1x."""
    if not scale > 0:
        raise UsageError(f"--scale must be a positive multiplier, got {scale:g}")
    return track if scale == 1 else f"{track}-{scale_label(scale)}"


def derive_track(name: str) -> Track | None:
    """The derived track `name` (None when the name has no multiplier or pool-version suffix)."""
    if m := _SCALED.match(name):
        base, k = get_track(m["base"]), float(m["k"])
        if k <= 0:
            raise UsageError(f"track {name!r}: the multiplier must be positive")
        budget = base.budget
        if budget.tokens is not None:
            budget = dataclasses.replace(budget, tokens=round(budget.tokens * k))
        else:
            budget = dataclasses.replace(budget, tokens_per_param=budget.tokens_per_param * k)  # type: ignore[operator]
        return _replace(base, name, budget=budget, note=f"{scale_label(k)} the token budget")
    if m := _POOLED.match(name):
        base = get_track(m["base"])
        pool = f"{base.pool}-v{m['v']}"
        if pool not in shipped_names("pools"):
            versions = sorted(p for p in shipped_names("pools") if p.startswith(f"{base.pool}-v"))
            raise UsageError(
                f"track {name!r}: there is no pool {pool!r} (pools/{pool}.toml) for track {base.name!r} to run on; "
                + (
                    f"its pool's other versions: {', '.join(versions)}"
                    if versions
                    else f"{base.pool!r} has no other version"
                )
            )
        return _replace(base, name, pool=pool, note=f"on pool {pool!r}")
    return None


def tracks_on_pool(pool: str) -> list[Track]:
    """The shipped tracks on `pool` and, for a pool version `<p>-v<N>`, the derived `<track>-v<N>` of every shipped
    track on `<p>`: the tracks whose tokenizer and suites a pool's index and contamination index serve."""
    tracks = {t.name: t for t in all_tracks() if t.pool == pool}
    if (m := _POOLED.match(pool)) is not None:
        for t in all_tracks():
            if t.pool == m["base"]:
                tracks.setdefault(f"{t.name}-v{m['v']}", get_track(f"{t.name}-v{m['v']}"))
    return list(tracks.values())


def _replace(base: Track, name: str, *, note: str, **changes: object) -> Track:
    try:
        return dataclasses.replace(
            base, name=name, description=f"{base.description} ({note})",
            notes=f"Derived from track {base.name!r}: {note}, everything else fixed.", **changes,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(f"track {name!r} cannot be derived from {base.name!r}: {exc}") from None


def legacy_seeded(name: str) -> Track | None:
    """The track a record named `<track>-seed<S>` was trained on (made when seeds were tracks): `<track>` with recipe
    seed S. None for any other name, or when `<track>` is not known here. For display only."""
    if not (m := _SEEDED.match(name)):
        return None
    try:
        base = get_track(m["base"])
    except HarnessError:
        return None
    seed = int(m["seed"])  # exactly the track such records were made on, so its hash matches theirs
    recipe = dataclasses.replace(base.recipe, seed=seed, seeds=(seed, *(s for s in base.recipe.seeds if s != seed)))
    return _replace(base, name, recipe=recipe, note=f"recipe seed {m['seed']}")


def scale_of(track: Track) -> tuple[str, float]:
    """(base track, compute multiplier) of `track`: ('nano', 4.0) for nano-4x, ('1b', 5.0) for the shipped 1b-5x
    (its budget is 5x 1b's), (name, 1.0) otherwise."""
    name = track.name
    m = _SCALED.match(name)
    if not m:
        return name, 1.0
    try:
        base = get_track(m["base"])
    except HarnessError:
        return name, 1.0
    ratio = track.tokens / base.tokens
    return (m["base"], round(ratio, 6)) if abs(ratio - float(m["k"])) < 0.01 * float(m["k"]) else (name, 1.0)
