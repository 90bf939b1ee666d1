"""Derived tracks: compute multipliers (`nano-4x`) and replicate seeds (`nano-seed125`) of a shipped track.

DCLM's tracks come in compute multipliers (1B-1x, 1B-5x, 7B-2x): the same model and recipe trained on K times the
token budget. `<track>-<K>x` is that track with K x its budget and everything else fixed (shape, recipe, pool,
suite, rules); `<track>-seed<S>` is it with the recipe seed (initialisation and data order) set to S. Both can be
combined (`nano-4x-seed125`). A derived track has its own name, so its entries, run folders and records are its
own, and its hash covers the changed budget or seed. Shipped files win: `1b-5x` is read from tracks/1b-5x.toml.
"""

from __future__ import annotations

import dataclasses
import re

from harness.errors import UsageError
from harness.tracks import Track

_SCALED = re.compile(r"^(?P<base>.+)-(?P<k>[0-9]+(?:\.[0-9]+)?)x$")
_SEEDED = re.compile(r"^(?P<base>.+)-seed(?P<seed>[0-9]+)$")


def scale_label(k: float) -> str:
    """The name suffix of multiplier `k`: 4 -> '4x', 0.5 -> '0.5x'."""
    return f"{k:g}x"


def derived_name(track: str, scale: float = 1.0, seed: int | None = None) -> str:
    """The name of `track` at `scale` x its budget (and with recipe seed `seed`); `track` itself for 1x and no seed."""
    if not scale > 0:
        raise UsageError(f"--scale must be a positive multiplier, got {scale:g}")
    name = track if scale == 1 else f"{track}-{scale_label(scale)}"
    return name if seed is None else f"{name}-seed{seed}"


def derive_track(name: str) -> Track | None:
    """The derived track `name` (None when the name has no multiplier or seed suffix)."""
    from harness.tracks import get_track

    if m := _SEEDED.match(name):
        base = get_track(m["base"])
        seed = int(m["seed"])  # the official seed leads the replicate seeds (harness.replicates)
        seeds = (seed, *(s for s in base.recipe.seeds if s != seed))
        recipe = dataclasses.replace(base.recipe, seed=seed, seeds=seeds)
        return _replace(base, name, recipe=recipe, note=f"recipe seed {m['seed']}")
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
    return None


def _replace(base: Track, name: str, *, note: str, **changes: object) -> Track:
    try:
        return dataclasses.replace(
            base, name=name, description=f"{base.description} ({note})",
            notes=f"Derived from track {base.name!r}: {note}, everything else fixed.", **changes,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(f"track {name!r} cannot be derived from {base.name!r}: {exc}") from None


def scale_of(track: Track) -> tuple[str, float]:
    """(base track, compute multiplier) of `track`: ('nano', 4.0) for nano-4x, ('1b', 5.0) for the shipped 1b-5x
    (its budget is 5x 1b's), (name, 1.0) otherwise. A seed suffix does not change the multiplier."""
    from harness.errors import HarnessError
    from harness.tracks import get_track

    name = track.name
    if m := _SEEDED.match(name):
        name = m["base"]
    m = _SCALED.match(name)
    if not m:
        return name, 1.0
    try:
        base = get_track(m["base"])
    except HarnessError:
        return name, 1.0
    ratio = track.tokens / base.tokens
    return (m["base"], round(ratio, 6)) if abs(ratio - float(m["k"])) < 0.01 * float(m["k"]) else (name, 1.0)
