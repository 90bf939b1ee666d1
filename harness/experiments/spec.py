"""Experiment files: `experiments/<name>.toml` -> the frozen `Experiment`, and the cells its design spans.

```toml
name = "quality-vs-quantity"          # equal to the file name
description = "..."
track = "nano"
design = "axes"                       # "grid": every combination; "axes": one factor at a time
seed = 0                              # seed of the subset transformations
duplication_sources = 1               # documents the duplication factor copies (1: the study's one story)
[base]
recipe = "quality"                    # pool | random | dedup | quality, or: subset = "path.jsonl"
[factors]
size = [1.0, 0.5, 0.25]               # share of the base subset's documents kept (a seeded sample)
duplication = [0.0, 0.25, 0.5]        # share of the documents replaced by copies of duplication_sources chosen
                                      # documents (default one), same total tokens
filter = [0.1, 0.3, 1.0]              # keep the top fraction by [filter].column
scale = [1, 2, 4]                     # compute multipliers of the track (nano-2x, nano-4x)
seed = [124, 125]                     # replicate seeds: each cell is one entry with these replicates (own seed first)
[filter]
scores = "scores/sandbox"             # `harness score` output: Parquet files keyed by pool id
column = "compression"
```

In the "axes" design the first level of each factor is its reference: one cell holds every factor at its
reference, and each other level is varied alone around it (the design of the quality/quantity study). Cells are
applied in the order filter -> size -> duplication to the base subset's distinct documents.

Duplication is the quality/quantity study's intervention (Sajith and Kathala 2024): a share r of the documents is
replaced by copies of `duplication_sources` documents chosen (seeded) among the kept ones, one by default as in
the study's released code, so a cell keeps exactly max(k, n - round(r n)) distinct documents and the same total
tokens (harness.experiments.transforms.duplicate). It is not the size axis: copies of every kept document would
only make each one more frequent, which is what a smaller size fraction already does.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.config import ConfigError, doc, from_dict, read_toml

#: Factors in the order the cells apply them (seed last: not a cell of its own, the replicates of every cell).
FACTORS = ("filter", "size", "duplication", "scale", "seed")
#: Base subsets that the harness can build itself: the whole pool, or one of the demo's baseline scripts.
RECIPES = ("pool", "random", "dedup", "quality")


@dataclass(frozen=True, kw_only=True)
class Base:
    """The subset every cell starts from; give exactly one of `recipe` and `subset`."""

    recipe: Literal["", "pool", "random", "dedup", "quality"] = doc(
        "'pool': every pool document; 'random' | 'dedup' | 'quality': the demo baseline of that name "
        "(examples/), sized to the track's budget.",
        default="",
    )
    subset: str = doc("A subset file (JSONL of pool ids), relative to the experiment file.", default="")

    def __post_init__(self) -> None:
        if bool(self.recipe) == bool(self.subset):
            raise ValueError("[base]: give exactly one of 'recipe' and 'subset'")


@dataclass(frozen=True, kw_only=True)
class Factors:
    """The levels of each factor (a factor left out stays at its neutral level)."""

    filter: tuple[float, ...] = doc("Filter strengths: keep the top fraction (0, 1] by [filter].column.", default=())
    size: tuple[float, ...] = doc("Size fractions (0, 1] of the base subset's documents.", default=())
    duplication: tuple[float, ...] = doc(
        "Duplication rates [0, 1]: that share of the documents replaced by copies of `duplication_sources` chosen "
        "documents (one by default), same total tokens.",
        default=(),
    )
    scale: tuple[float, ...] = doc("Compute multipliers of the track's token budget (> 0).", default=())
    seed: tuple[int, ...] = doc(
        "Replicate seeds of every cell (initialisation and data order), the track's own seed first: each cell is one "
        "entry trained at each seed (`harness submit` with these seeds), its record keeping their spread.",
        default=(),
    )

    def __post_init__(self) -> None:
        ranges = {"filter": (0, 1, False), "size": (0, 1, False), "duplication": (0, 1, True)}
        for name in FACTORS:
            levels = getattr(self, name)
            if len(set(levels)) != len(levels):
                raise ValueError(f"'factors.{name}' lists a level twice: {list(levels)}")
            if name in ranges:
                lo, hi, closed = ranges[name]
                for v in levels:
                    if not (lo <= v <= hi if closed else lo < v <= hi):
                        bound = "[0, 1] (0% to 100%)" if closed else "(0, 1]"
                        raise ValueError(f"'factors.{name}' level {v:g} cannot be built: it must lie in {bound}")
        if any(v <= 0 for v in self.scale):
            raise ValueError(f"'factors.scale' levels must be positive multipliers, got {list(self.scale)}")
        if any(v < 0 for v in self.seed):
            raise ValueError(f"'factors.seed' levels must be non-negative, got {list(self.seed)}")

    def present(self) -> list[str]:
        return [name for name in FACTORS if getattr(self, name)]


@dataclass(frozen=True, kw_only=True)
class FilterScores:
    """Where the filter factor's scores come from: `harness score` output."""

    scores: str = doc("A Parquet file or a folder of them (keyed by pool id), relative to the experiment file.")
    column: str = doc("The score column to rank by (higher is better unless `descending = false`).")
    id_column: str = doc("The column holding the pool document id (32 hex digits).", default="id")
    descending: bool = doc("Keep the highest scores (true) or the lowest (false).", default=True)


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """One experiment: a base subset, factors, a track and a design."""

    name: str = doc("Experiment id, equal to the file name.")
    description: str = doc("One line for tables and the leaderboard page.")
    track: str = doc("The track every cell runs on (multiplied by the scale factor).")
    base: Base = doc("The subset the cells transform.")
    factors: Factors = doc("The levels of each factor.")
    design: Literal["grid", "axes"] = doc("'grid': every combination; 'axes': one factor at a time.", default="grid")
    seed: int = doc("Seed of the subset transformations (sampling and duplication).", default=0)
    duplication_sources: int = doc(
        "Documents the duplication factor copies: a duplication level r replaces that share of the documents by "
        "copies of this many documents chosen among the kept ones (1: the study's single story).",
        default=1,
    )
    filter: FilterScores | None = doc("Scores for the filter factor (required with it).", default=None)
    notes: str = doc("What the experiment asks and how it was sized.", default="")
    source: str = doc("The file it was read from (set by the loader).", default="")

    def __post_init__(self) -> None:
        if not self.factors.present():
            raise ValueError("[factors] must give at least one factor")
        if self.factors.filter and self.filter is None:
            raise ValueError("the filter factor needs a [filter] table with 'scores' and 'column'")
        if self.duplication_sources < 1:
            raise ValueError(f"'duplication_sources' must be at least 1 document, got {self.duplication_sources}")

    @property
    def folder(self) -> Path:
        return Path(self.source).parent

    def resolve(self, path: str) -> Path:
        """A path of the experiment file, relative to the file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.folder / p

    def cells(self) -> list[Cell]:
        """Every cell of the design, in a stable order (replicate seeds are each cell's own, not cells)."""
        varied = [f for f in self.factors.present() if f != "seed"]
        if self.design == "grid":
            combos = [dict(zip(varied, levels, strict=True)) for levels in itertools.product(
                *(getattr(self.factors, f) for f in varied))]  # fmt: skip
        else:
            reference = {f: getattr(self.factors, f)[0] for f in varied}
            combos = [reference] + [{**reference, f: v} for f in varied for v in getattr(self.factors, f)[1:]]
        return [Cell(self, combo) for combo in combos]


@dataclass(frozen=True)
class Cell:
    """One cell: the level of each varied factor."""

    experiment: Experiment
    levels: dict[str, float]

    def level(self, factor: str) -> float | None:
        return self.levels.get(factor)

    @property
    def key(self) -> str:
        """A folder-safe id, e.g. 'filter0.3-scale4x' (stable across runs: cells are found by it)."""
        parts = []
        for f in FACTORS:
            if f in self.levels:
                v = self.levels[f]
                parts.append(f"scale{v:g}x" if f == "scale" else f"{f}{v:g}")
        return "-".join(parts) or "base"

    @property
    def label(self) -> str:
        return ", ".join(f"{f} {_show(f, v)}" for f, v in self.levels.items())

    @property
    def track(self) -> str:
        """The cell's track: the experiment's, multiplied by the scale factor (harness.tracks)."""
        from harness.tracks import derived_name

        return derived_name(self.experiment.track, self.levels.get("scale", 1.0))


def _show(factor: str, value: float) -> str:
    if factor in ("size", "duplication", "filter"):
        return f"{value:.0%}"
    return f"{value:g}x" if factor == "scale" else f"{value:g}"


def _check_keys(data: Any, cls: type, source: str, prefix: str = "") -> None:
    """Unknown keys anywhere in the file, answered with the closest allowed key (did you mean)."""
    if not isinstance(data, dict):
        return
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
            what = "factor" if cls is Factors else "key"
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown {what} {where!r}.{hint} Allowed: {', '.join(sorted(fields))}.")
        inner = _dataclass_of(fields[key].type)
        if inner is not None:
            _check_keys(value, inner, source, where)


def _dataclass_of(tp: Any) -> type | None:
    names = {"Base": Base, "Factors": Factors, "FilterScores": FilterScores}
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", "")
    return next((cls for name, cls in names.items() if name in str(text)), None)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file (unknown keys and factors are errors with a suggestion)."""
    from harness.errors import UsageError
    from harness.tracks import get_track

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"experiment file {path} does not exist (shipped ones are in experiments/)")
    data = read_toml(path)
    _check_keys(data, Experiment, str(path))
    experiment = from_dict(Experiment, {**data, "source": str(path)}, str(path))
    if experiment.name != path.stem:
        raise ConfigError(f"{path}: 'name' is {experiment.name!r} but the file is named {path.stem!r}")
    own = get_track(experiment.track).recipe.seed  # an unknown track answers with did-you-mean
    if experiment.factors.seed and experiment.factors.seed[0] != own:
        raise ConfigError(
            f"{path}: 'factors.seed' must start with track {experiment.track}'s own seed {own} (each cell's entry is "
            f"its run at that seed; the other seeds are its replicates), got {list(experiment.factors.seed)}"
        )
    for cell in experiment.cells():
        try:
            get_track(cell.track)
        except Exception as exc:  # a multiplier too small for the recipe's warm-up
            raise ConfigError(f"{path}: cell {cell.key}: {exc}") from None
    return experiment
