"""`harness reliability`: how much signal each task and metric of a track carries, from its entries' replicates.

Per unit (task x metric, and every aggregate), over the track's entries (recipes) i with seed values v_ij:

- `seed_std`: the pooled seed standard deviation, sqrt(sum_i sum_j (v_ij - m_i)^2 / sum_i (k_i - 1)) over the
  entries with two or more seeds (m_i the entry's mean over its k_i seeds); final checkpoints only.
- `fineweb_snr` (FineWeb / FineTasks): |mean of every run's final score| / seed_std; they keep a task above 20.
- `ai2_snr` (Signal and Noise, AI2's snr/metrics.py): signal = max_ij |m_i - m_j| / |mean_i m_i| over the
  entries' seed means, noise = the std (ddof 0) of a run's last checkpoints' scores over their mean, averaged over
  runs (`noise_from = "checkpoints"`); without intermediate-checkpoint scores the relative seed spread
  seed_std / |mean| stands in for it (`noise_from = "seeds"`, which the table says).
- `monotonicity` (FineWeb): Spearman correlation of score against step per run (sign turned so that improving
  is positive for lower-is-better metrics), averaged over runs; None without checkpoint scores. Keep at >= 0.5.
- `chance_margin` (FineWeb's non-randomness): (mean - chance) / seed_std in the improving direction; None for
  metrics without a chance level. Keep at > 3.
- `mde`: the smallest difference between two entries' K-seed means that a two-sided test at 5% detects with 80%
  power, (z_0.975 + z_0.8) x seed_std x sqrt(2 / K) (the seed std taken as known).
- `fineweb_keep`: all of FineWeb's criteria that could be measured hold (None when one could not be measured).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.analysis.scoretable import EntryScores, NotEnoughData, TrackScores, Unit

#: z quantiles of a two-sided 5% test and of 80% power.
Z_95, Z_80 = 1.959963984540054, 0.8416212335729143
#: Intermediate checkpoints per run that AI2's checkpoint noise averages over (their small-scale variant: 5).
LAST_CHECKPOINTS = 5
#: FineWeb's thresholds.
MIN_MONOTONICITY, MIN_SNR, MIN_CHANCE_MARGIN = 0.5, 20.0, 3.0


@dataclass(frozen=True)
class UnitReliability:
    """The reliability statistics of one unit on one track (see the module docstring)."""

    task: str
    metric: str
    scored: bool
    higher_is_better: bool
    entries: int
    runs: int
    mean: float
    seed_std: float | None
    fineweb_snr: float | None
    ai2_signal: float | None
    ai2_noise: float | None
    ai2_snr: float | None
    noise_from: str
    monotonicity: float | None
    chance: float | None
    chance_margin: float | None
    mde: dict[str, float]
    fineweb_keep: bool | None
    note: str = ""


@dataclass(frozen=True)
class Reliability:
    """Every unit's statistics on one track."""

    track: str
    entries: tuple[str, ...]
    seeds_per_entry: tuple[int, ...]
    k: tuple[int, ...]
    units: tuple[UnitReliability, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track, "entries": list(self.entries), "seeds_per_entry": list(self.seeds_per_entry),
            "mde_seeds": list(self.k), "units": [asdict(u) for u in self.units],
            "definitions": "harness.analysis.reliability (docs/researchers.md#reliability-and-transfer-does-a-verdict-hold-at-scale)",
        }  # fmt: skip


def pooled_seed_std(groups: Sequence[Sequence[float]]) -> float | None:
    """sqrt of the pooled within-group variance over groups of two or more values; None when there are none."""
    ss, df = 0.0, 0
    for g in groups:
        if len(g) >= 2:
            m = math.fsum(g) / len(g)
            ss += math.fsum((x - m) ** 2 for x in g)
            df += len(g) - 1
    return math.sqrt(ss / df) if df else None


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when either side is constant or too short."""
    if len(xs) < 2:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = math.fsum(rx) / len(rx), math.fsum(ry) / len(ry)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = math.fsum((a - mx) ** 2 for a in rx), math.fsum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for n in range(i, j + 1):
            ranks[order[n]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mde(seed_std: float, k: int) -> float:
    """Minimum detectable difference of two k-seed means (5% two-sided, 80% power)."""
    return (Z_95 + Z_80) * seed_std * math.sqrt(2 / k)


def _checkpoint_noise(entries: Sequence[EntryScores], unit: Unit) -> float | None:
    """AI2's noise: per run, std (ddof 0) over its last checkpoints divided by their mean, averaged over runs."""
    per_run = []
    for e in entries:
        for run in e.trajectories.get(unit, ()):
            last = [v for _, v in sorted(run)[-LAST_CHECKPOINTS:]]
            if len(last) >= 2 and (m := math.fsum(last) / len(last)) != 0:
                per_run.append(math.sqrt(math.fsum((v - m) ** 2 for v in last) / len(last)) / abs(m))
    return math.fsum(per_run) / len(per_run) if per_run else None


def _monotonicity(entries: Sequence[EntryScores], unit: Unit, higher_is_better: bool) -> float | None:
    rhos = []
    for e in entries:
        for run in e.trajectories.get(unit, ()):
            steps, values = zip(*sorted(run), strict=True) if run else ((), ())
            rho = spearman(steps, values)
            if rho is not None:
                rhos.append(rho if higher_is_better else -rho)
    return math.fsum(rhos) / len(rhos) if rhos else None


def unit_reliability(scores: TrackScores, unit: Unit, k: Sequence[int]) -> UnitReliability | None:
    """The statistics of `unit` over the entries that have it; None when no entry has it."""
    info = scores.infos[unit]
    entries = [e for e in scores.entries if unit in e.values]
    if not entries:
        return None
    groups = [e.values[unit] for e in entries]
    all_runs = [v for g in groups for v in g]
    mean = math.fsum(all_runs) / len(all_runs)
    std = pooled_seed_std(groups)
    notes = []
    if std is None:
        notes.append("no entry has two seeds: no seed std")
    elif std <= 1e-12 * max(1.0, abs(mean)):  # rounding of equal values is no noise
        notes.append("the seeds agree exactly: no seed noise measured")
        std = None
    means = [math.fsum(g) / len(g) for g in groups]
    grand = math.fsum(means) / len(means)
    signal = max(abs(a - b) for a in means for b in means) / abs(grand) if len(means) >= 2 and grand else None
    if len(means) < 2:
        notes.append("one entry: no signal between recipes")
    noise, noise_from = _checkpoint_noise(entries, unit), "checkpoints"
    if noise is None:
        noise, noise_from = (std / abs(mean) if std is not None and mean else None), "seeds"
    ai2 = signal / noise if signal is not None and noise else None
    mono = _monotonicity(entries, unit, info.higher_is_better)
    sign = 1 if info.higher_is_better else -1
    margin = sign * (mean - info.chance) / std if std is not None and info.chance is not None else None
    fineweb_snr = abs(mean) / std if std is not None else None
    checks = [
        None if mono is None else mono >= MIN_MONOTONICITY,
        None if fineweb_snr is None else fineweb_snr > MIN_SNR,
        None if margin is None and info.chance is not None else (margin is None or margin > MIN_CHANCE_MARGIN),
    ]
    keep = None if None in checks else all(checks)
    return UnitReliability(
        task=unit[0], metric=unit[1], scored=info.scored, higher_is_better=info.higher_is_better,
        entries=len(entries), runs=len(all_runs), mean=mean, seed_std=std, fineweb_snr=fineweb_snr,
        ai2_signal=signal, ai2_noise=noise, ai2_snr=ai2, noise_from=noise_from, monotonicity=mono,
        chance=info.chance, chance_margin=margin, mde={str(n): mde(std, n) for n in k} if std is not None else {},
        fineweb_keep=keep, note="; ".join(notes),
    )  # fmt: skip


def reliability(scores: TrackScores, k: Sequence[int] = (1, 3, 5)) -> Reliability:
    """Every unit's statistics. NotEnoughData, naming what is missing, when no entry has two seeds (every
    statistic but the signal needs the seed std) or the track has one entry (the signal needs two recipes)."""
    entries = scores.entries
    if len(entries) < 2:
        raise NotEnoughData(
            f"track {scores.track}: reliability compares recipes, and only one entry was found "
            f"({entries[0].entry_id}); submit at least two subsets on the track (with --replicates 3)"
        )
    if all(len(e.seeds) < 2 for e in entries):
        raise NotEnoughData(
            f"track {scores.track}: the seed std needs replicates, and each of the {len(entries)} entries has one "
            f"seed; re-run `harness submit --track {scores.track} SUBSET --replicates 3` on the entries' subsets "
            "(their finished stages are reused)"
        )
    if any(n < 1 for n in k):
        raise NotEnoughData(f"--k must be positive seed counts, got {list(k)}")
    units = tuple(u for unit in scores.units if (u := unit_reliability(scores, unit, k)) is not None)
    return Reliability(
        scores.track, tuple(e.entry_id for e in entries), tuple(len(e.seeds) for e in entries), tuple(k), units
    )
