"""Deriving a track's signal aggregate (harness.evaluate.signal) from its reliability statistics.

`harness reliability --track T --derive-signal FILE`:

1. Every task x metric (a task's scored metric and each continuous metric; aggregates are not candidates) that
   every entry has is judged on FineWeb's criteria as `harness reliability` measures them: monotonicity >= 0.5,
   SNR (|mean| / seed std) > 20, more than 3 seed stds above chance (metrics with a chance level), and some
   spread between recipes (AI2's signal > 0). A criterion the records cannot measure (monotonicity without
   checkpoint scores) is not applied and is listed in the file as `unmeasured`; a unit without a seed std fails.
2. One metric is chosen: the one with the most passing tasks; ties go to the higher mean AI2 SNR over those tasks
   (AI2's SNR predicts decision accuracy), then to the name. One metric, so the mean is over values of one scale
   and one direction.
3. The definition (suite and version, metric, tasks, criteria) keeps the version of the file it replaces (FILE, or
   else the shipped evaluation/signal/<track>.toml) when it is the same definition, and gets that version + 1
   otherwise; the first is version 1. The evidence (each record's entry id and the sha256 of its file) is
   replaced by the records read now.

Nothing here reads the target rung: the signal is derived from the small track alone, and `harness transfer`
measures afterwards how well it predicts the next rung (it is a candidate predictor of the target's primary).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness import __version__
from harness.analysis.reliability import MIN_CHANCE_MARGIN, MIN_MONOTONICITY, MIN_SNR, Reliability, UnitReliability
from harness.analysis.scoretable import AGGREGATE, NotEnoughData
from harness.errors import UsageError
from harness.evaluate.signal import (
    Candidate,
    Criteria,
    Evidence,
    SignalDefinition,
    load_signal,
    load_signal_file,
)
from harness.records import Record, now_iso


def judge(u: UnitReliability, monotonicity_measured: bool) -> str:
    """'' when `u` passes the criteria, else the criteria it fails, in words."""
    fails = []
    if monotonicity_measured and (u.monotonicity is None or u.monotonicity < MIN_MONOTONICITY):
        fails.append(f"monotonicity {_fmt(u.monotonicity)} < {MIN_MONOTONICITY}")
    if u.fineweb_snr is None:
        fails.append("no seed std (seeds agree exactly or one seed)")
    elif u.fineweb_snr <= MIN_SNR:
        fails.append(f"SNR {u.fineweb_snr:.3g} <= {MIN_SNR:g}")
    if u.chance is not None and (u.chance_margin is None or u.chance_margin <= MIN_CHANCE_MARGIN):
        fails.append(f"{_fmt(u.chance_margin)} seed stds above chance <= {MIN_CHANCE_MARGIN:g}")
    if not u.ai2_signal:
        fails.append("no spread between recipes")
    return "; ".join(fails)


def _fmt(x: float | None) -> str:
    return "not measured" if x is None else f"{x:.3g}"


def record_sha256(source: str) -> str:
    """sha256 of a record file's bytes (a local path or an fsspec URL)."""
    from harness.io.files import open_raw

    with open_raw(source) as f:
        return hashlib.sha256(f.read()).hexdigest()


def derive_signal(
    rel: Reliability, records: Sequence[Record], sources: Sequence[str], previous: SignalDefinition | None = None
) -> SignalDefinition:
    """The signal definition of `rel`'s track (see the module docstring); NotEnoughData when no task and metric
    pass the criteria, or the records span several suite versions."""
    units = [u for u in rel.units if u.metric != AGGREGATE and u.entries == len(rel.entries)]
    monotonicity_measured = any(u.monotonicity is not None for u in units)
    verdicts = {(u.task, u.metric): judge(u, monotonicity_measured) for u in units}
    by_metric: dict[str, list[UnitReliability]] = {}
    for u in units:
        if not verdicts[(u.task, u.metric)]:
            by_metric.setdefault(u.metric, []).append(u)
    if not by_metric:
        raise NotEnoughData(
            f"track {rel.track}: no task and metric pass the criteria (monotonicity >= {MIN_MONOTONICITY}, SNR > "
            f"{MIN_SNR:g}, > {MIN_CHANCE_MARGIN:g} seed stds above chance) over the {len(rel.entries)} entries; see "
            f"`harness reliability --track {rel.track}`, and add seeds (--replicates) or entries"
        )

    def strength(metric: str) -> tuple[int, float, str]:
        snrs = [u.ai2_snr or 0.0 for u in by_metric[metric]]
        return (len(snrs), math.fsum(snrs) / len(snrs), metric)

    metric = min(by_metric, key=lambda m: (-strength(m)[0], -strength(m)[1], m))
    chosen = sorted(u.task for u in by_metric[metric])
    directions = {u.higher_is_better for u in by_metric[metric]}
    if len(directions) > 1:
        raise NotEnoughData(f"track {rel.track}: metric {metric} is higher-is-better on some tasks and not others")
    suites = {(r.evaluation.suite, str(r.evaluation.suite_version)) for r in records}
    if len(suites) != 1:
        raise NotEnoughData(f"track {rel.track}: the records span several suite versions ({sorted(suites)})")
    (suite, suite_version), = suites  # fmt: skip
    n, mean_snr, _ = strength(metric)
    others = ", ".join(f"{m} ({strength(m)[0]})" for m in sorted(by_metric, key=strength, reverse=True) if m != metric)
    definition = SignalDefinition(
        track=rel.track, version=1, suite=suite, suite_version=int(suite_version), metric=metric,
        higher_is_better=directions.pop(), tasks=tuple(chosen),
        criteria=Criteria(min_monotonicity=MIN_MONOTONICITY, min_snr=MIN_SNR, min_chance_margin=MIN_CHANCE_MARGIN,
                          unmeasured=() if monotonicity_measured else ("monotonicity",)),
        derived_at=now_iso(), harness_version=__version__,
        evidence=tuple(
            Evidence(entry_id=r.entry_id, sha256=record_sha256(s), seeds=len(r.replicates.seeds) if r.replicates else 1)
            for r, s in zip(records, sources, strict=True)
        ),
        candidates=tuple(
            Candidate(task=u.task, metric=u.metric, passed=not verdicts[(u.task, u.metric)],
                      why=verdicts[(u.task, u.metric)], fineweb_snr=u.fineweb_snr, ai2_snr=u.ai2_snr,
                      monotonicity=u.monotonicity, chance_margin=u.chance_margin)
            for u in units
        ),
        notes=(f"{metric}: {n} task(s) pass, mean AI2 SNR {mean_snr:.3g} over them"
               + (f"; other metrics with passing tasks (count): {others}" if others else "")),
    )  # fmt: skip
    return replace(definition, version=next_version(definition, previous))


def next_version(definition: SignalDefinition, previous: SignalDefinition | None) -> int:
    """The previous version for the same definition, the next one for a changed definition, 1 for the first."""
    if previous is None:
        return 1
    if previous.track != definition.track:
        raise UsageError(
            f"the signal file being replaced is track {previous.track}'s, not {definition.track}'s: write "
            f"{definition.track}'s to evaluation/signal/{definition.track}.toml"
        )
    same = previous.definition_sha256() == replace(definition, version=previous.version).definition_sha256()
    return previous.version if same else previous.version + 1


def previous_definition(out: Path, track: str) -> SignalDefinition | None:
    """The definition a new one replaces: the file at `out` when there is one, else the shipped one of `track`."""
    return load_signal_file(out) if out.is_file() else load_signal(track)


# ------------------------------------------------------------------------------------------------------ TOML


def _str(value: str) -> str:
    """A TOML basic string: every control character (and DEL) escaped, so any text round-trips."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def signal_toml(d: SignalDefinition) -> str:
    """The definition as the TOML file `load_signal_file` reads back to an equal definition."""
    head = (
        f"# The derived signal aggregate {d.name} of track {d.track}: written by `harness reliability --track "
        f"{d.track} --derive-signal`.\n# Derive it again rather than editing it: the evidence below is what it was "
        "derived from.\n"
    )
    lines = [head]
    for key in ("track", "version", "suite", "suite_version", "metric", "higher_is_better", "tasks", "derived_at",
                "harness_version", "notes"):  # fmt: skip
        lines.append(f"{key} = {_value(getattr(d, key))}")
    lines.append(f"# definition sha256 (suite, metric, direction, tasks, criteria): {d.definition_sha256()}")
    lines.append("\n[criteria]")
    for key in ("min_monotonicity", "min_snr", "min_chance_margin", "unmeasured"):
        lines.append(f"{key} = {_value(getattr(d.criteria, key))}")
    for table, items in (("evidence", d.evidence), ("candidates", d.candidates)):
        for item in items:
            lines.append(f"\n[[{table}]]")
            lines += [f"{k} = {_value(v)}" for k, v in vars(item).items() if v is not None]
    return "\n".join(lines) + "\n"


def write_signal(d: SignalDefinition, out: Path) -> None:
    """Write the definition atomically, after checking that it reads back equal."""
    import tomllib

    from harness.config import from_dict
    from harness.io.files import write_text_atomic

    text = signal_toml(d)
    if from_dict(SignalDefinition, tomllib.loads(text), str(out)) != d:  # a writer bug must never ship a file
        raise AssertionError(f"{out}: the signal definition does not read back equal")
    write_text_atomic(out, text)
