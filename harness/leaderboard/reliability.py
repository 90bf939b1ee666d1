"""Reliability pages of the leaderboard (`reliability/<track>.html`): per track, `harness reliability`'s table, how
well the track's ranking predicted the next rung's (`harness transfer`), and the adjacent entries whose order is
not expected to transfer. The track's section on the index links the page and carries the one-line summary.

The ladder. A rung is a model shape people train at; a track's compute multipliers (`nano-0.25x` ... `nano-2x`,
harness.tracks.scale_of; a record's `track.base`) are runs of the same rung at other budgets, and DataDecide treats
them so (the share of training done at the small scale). So a track's next rung is the next *base* track in a
declared order, `LADDERS`, that has entries in the store (the 1x track, never one of its multipliers), and every
multiplier of a rung predicts that same next rung: `nano`, `nano-0.25x` and `nano-2x` are all checked against
`micro`. The order is declared rather than read off training compute because compute alone would make `nano-2x`
the rung above `nano` and put `nano-4x` (about micro's compute) beside `micro`, and because only tracks of one
family (pool and suite) rank the same entries; tracks on no ladder (`debug`) get no transfer line.

Marked pairs. Two adjacent entries of the ranking (by the primary aggregate, mean over seeds) are marked "order
not expected to transfer" when their difference is smaller than the minimum detectable difference of their two
means, (z_0.975 + z_0.8) x sigma x sqrt(1/k1 + 1/k2) (sigma: the track's pooled seed std of the primary, k1, k2:
their seeds; a 5% two-sided test with 80% power), or when on some seed both were trained with the lower-ranked
entry scores at least as well (their order flips across seeds). The page states the rule.

Nothing to show: a track whose entries all have one seed (or that has one entry) gets no page; its section says
why instead of a number. Every string from a record is escaped (the store is untrusted input).
"""

from __future__ import annotations

import html
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.reliability import MIN_CHANCE_MARGIN, MIN_MONOTONICITY, MIN_SNR, Z_80, Z_95, Reliability
from harness.analysis.reliability import reliability as measure
from harness.analysis.scoretable import AGGREGATE, EntryScores, NotEnoughData, TrackScores, track_scores
from harness.analysis.transfer import Agreement, predicts
from harness.errors import HarnessError
from harness.evaluate.signal import PREFIX as SIGNAL_PREFIX
from harness.evaluate.signal import load_signal
from harness.leaderboard.paths import site_path
from harness.records import Record
from harness.tracks import split_pool_version

#: The declared rung order of each ladder, smallest first: the CPU ladder and DCLM's GPU ladder.
LADDERS: tuple[tuple[str, ...], ...] = (("nano", "micro"), ("412m", "1b", "7b"))
#: Seed counts of the page's minimum detectable differences.
K = (1, 3, 5)
#: The site's bootstraps cost resamples x entries^2; this bounds the product (about 400 MB of work arrays).
BOOTSTRAP_BUDGET = 5e7
_SCALED = re.compile(r"^(?P<base>.+)-[0-9]+(?:\.[0-9]+)?x$")


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def base_of(record: Record) -> str:
    """The rung a record's track belongs to: its recorded base, else the name without a multiplier suffix."""
    ref = record.track
    return ref.base or (m["base"] if (m := _SCALED.match(ref.name)) else ref.name)


def next_rung(track: str, base: str, available: Sequence[str]) -> str | None:
    """The first base track above `base` on its ladder that is among `available` (None when there is none); a
    pool version climbs its own version's ladder (`nano-v5` -> `micro-v5`), never another pool's."""
    root, version = split_pool_version(base)
    for ladder in LADDERS:
        if root in ladder:
            above = [r + version for r in ladder[ladder.index(root) + 1 :]]
            return next((r for r in above if r in available and r != track), None)
    return None


@dataclass(frozen=True)
class PairMark:
    """Two adjacent entries of a track's ranking and whether their order is expected to transfer."""

    upper: EntryScores
    lower: EntryScores
    difference: float
    mde: float
    flips: int
    shared_seeds: int

    @property
    def marked(self) -> bool:
        return self.difference < self.mde or self.flips > 0


def ranked(scores: TrackScores) -> list[EntryScores]:
    """The entries with the primary aggregate, best first (ties: entry id)."""
    unit = (scores.primary, AGGREGATE)
    sign = 1 if scores.infos[unit].higher_is_better else -1
    return sorted((x for x in scores.entries if unit in x.values), key=lambda x: (-sign * x.mean(unit), x.entry_id))


def pair_marks(scores: TrackScores, sigma: float) -> list[PairMark]:
    """Every adjacent pair of the ranking with its difference, minimum detectable difference and seed flips."""
    unit = (scores.primary, AGGREGATE)
    sign = 1 if scores.infos[unit].higher_is_better else -1
    out = []
    for a, b in itertools.pairwise(ranked(scores)):
        va, vb = dict(zip(a.seeds, a.values[unit], strict=True)), dict(zip(b.seeds, b.values[unit], strict=True))
        shared = sorted(set(va) & set(vb))
        flips = sum(1 for s in shared if sign * (vb[s] - va[s]) >= 0)
        k1, k2 = len(a.values[unit]), len(b.values[unit])
        mde = (Z_95 + Z_80) * sigma * math.sqrt(1 / k1 + 1 / k2)
        out.append(PairMark(a, b, sign * (a.mean(unit) - b.mean(unit)), mde, flips, len(shared)))
    return out


def _percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "–" if x is None else format(x, fmt)


def _prediction(a: Agreement, small: str, target: str, what: str, intervals: bool) -> str:
    interval = f" [{_percent(a.decision_low)}, {_percent(a.decision_high)}]" if intervals else " (no seed interval)"
    if a.decision_accuracy is None:
        return (
            f"{what} on {small} predicted nothing of {target}'s: {target} ties every pair ({a.entries} shared subsets)"
        )
    return (
        f"{what} on {small} predicted {target}'s in {_percent(a.decision_accuracy)} of pairs{interval} "
        f"({a.entries} shared subsets)"
    )


def transfer_lines(scores: TrackScores, target: TrackScores | None) -> list[str]:
    """'ranking on nano predicted micro's in 83% of pairs [67%, 100%] (6 shared subsets)', and the same for the
    track's signal aggregates; a sentence saying why instead when it cannot be measured."""
    if target is None:
        return []
    unit = (scores.primary, AGGREGATE)
    shared = len({x.subset for x in scores.entries} & {x.subset for x in target.entries})
    if shared < 2:
        return [f"{target.track} is the next rung; it shares {shared} subset(s) with {scores.track}, so no ranking "
                "transfer is measured (submit the same subsets on both)"]  # fmt: skip
    resamples = 1 if shared > 1500 else max(20, min(1000, int(BOOTSTRAP_BUDGET // shared**2)))
    seeded = any(len(x.seeds) > 1 for x in scores.entries) or any(len(x.seeds) > 1 for x in target.entries)
    lines = []
    candidates = [(unit, "ranking")] + [
        (u, f"signal aggregate {u[0]}") for u in scores.units if u[1] == AGGREGATE and u[0].startswith(SIGNAL_PREFIX)
    ]
    for small_unit, what in candidates:
        try:
            agreement = predicts(scores, target, small_unit, (target.primary, AGGREGATE), resamples=resamples)
        except NotEnoughData as exc:
            lines.append(f"{what}: not measured ({exc})")
            continue
        lines.append(_prediction(agreement, scores.track, target.track, what, seeded and resamples > 1))
    return lines


@dataclass(frozen=True)
class TrackReliability:
    """What the site shows of one track's reliability."""

    track: str
    summary: str  # the index's line (HTML)
    page: str | None  # the page (HTML), None when there is nothing to show


def _seeds(record: Record) -> int:
    return len(record.replicates.seeds) if record.replicates else 1


def _scores(records: Sequence[Record]) -> TrackScores | str:
    try:
        return track_scores(records)
    except HarnessError as exc:  # other suite versions, an unreadable signal definition: said, not a failed build
        return str(exc)


def track_reliability(
    track: str, base: str, scores_of: Mapping[str, TrackScores | str], title: str
) -> TrackReliability:
    """The summary line and page of `track` (on rung `base`); `scores_of`: every track's scores (or why none)."""
    scores = scores_of[track]
    if isinstance(scores, str):
        return TrackReliability(
            track, f'<p class="reliability muted">Reliability: not measured ({e(scores)}).</p>', None
        )
    above = next_rung(track, base, [t for t, s in scores_of.items() if not isinstance(s, str)])
    target = scores_of.get(above) if above else None
    lines = transfer_lines(scores, target if isinstance(target, TrackScores) else None)
    try:
        rel = measure(scores, k=K)
    except NotEnoughData as exc:
        text = "; ".join([f"not measured: {exc}", *lines])
        return TrackReliability(track, f'<p class="reliability muted">Reliability: {e(text)}.</p>', None)
    primary = next((u for u in rel.units if (u.task, u.metric) == (scores.primary, AGGREGATE)), None)
    marks = pair_marks(scores, primary.seed_std) if primary and primary.seed_std is not None else []
    flagged = sum(m.marked for m in marks)
    parts = [*lines]
    if marks:
        parts.append(f"{flagged} of {len(marks)} adjacent pairs: order not expected to transfer")
    link = f'<a href="reliability/{e(track)}.html">Reliability of {e(track)}</a>'
    summary = f'<p class="reliability">{link}' + "".join(f"; {e(p)}" for p in parts) + ".</p>"
    return TrackReliability(track, summary, _page(rel, scores, lines, marks, title))


def write_reliability_pages(records_by_track: Mapping[str, Sequence[Record]], root: Path, title: str) -> dict[str, str]:
    """Write `reliability/<track>.html` for every track with something to show; returns each track's summary line
    (HTML) for its section of the index."""
    bases = {t: base_of(rs[0]) for t, rs in records_by_track.items()}
    rungs = {t: next_rung(t, bases[t], list(records_by_track)) for t in records_by_track}
    # Scores (a pass over every record) only where something can be shown: replicates, or a rung to compare with.
    needed = {t for t, rs in records_by_track.items() if rungs[t] or any(_seeds(r) > 1 for r in rs)}
    needed |= {r for r in rungs.values() if r}
    scores_of: dict[str, TrackScores | str] = {
        t: _scores(rs) if t in needed else f"each of the {len(rs)} entries of track {t} has one seed; submit with "
        "--replicates 3 to measure the seed noise"
        for t, rs in records_by_track.items()
    }  # fmt: skip
    out = {}
    for track in records_by_track:
        result = track_reliability(track, bases[track], scores_of, title)
        out[track] = result.summary
        if result.page is not None:
            (root / "reliability").mkdir(exist_ok=True)
            site_path(root, "reliability", track, suffix=".html").write_text(result.page, encoding="utf-8")
    return out


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "board") -> str:
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _ranking_html(scores: TrackScores, marks: Sequence[PairMark]) -> str:
    unit = (scores.primary, AGGREGATE)
    below = {m.upper.entry_id: m for m in marks}
    rows = []
    for rank, x in enumerate(ranked(scores), 1):
        m = below.get(x.entry_id)
        verdict = "" if m is None else ("order not expected to transfer" if m.marked else "expected to transfer")
        rows.append([
            str(rank), f'<a href="../entries/{e(x.entry_id)}.html">{e(x.name)}</a>', e(f"{x.mean(unit):.4f}"),
            str(len(x.values[unit])), "" if m is None else e(f"{m.difference:.4f}"),
            "" if m is None else e(f"{m.mde:.4f}"), "" if m is None else e(f"{m.flips} of {m.shared_seeds}"),
            f'<span class="warn">{verdict}</span>' if m is not None and m.marked else e(verdict),
        ])  # fmt: skip
    headers = ["rank", "entry", f"{scores.primary} (mean)", "seeds", "lead over the next", "MDE of the pair",
               "seeds it flips on", "order against the next"]  # fmt: skip
    return _table(headers, rows)


def _units_html(rel: Reliability) -> str:
    rows = []
    for u in rel.units:
        keep = {True: "yes", False: "no", None: "–"}[u.fineweb_keep]
        ai2 = _num(u.ai2_snr) + ("" if u.ai2_snr is None or u.noise_from == "checkpoints" else "*")
        rows.append([e(x) for x in (
            u.task, u.metric + ("" if u.higher_is_better else " ↓"), _num(u.mean, ".4g"), _num(u.seed_std),
            _num(u.fineweb_snr), ai2, _num(u.monotonicity, ".2f"), _num(u.chance_margin, ".2f"),
            *(_num(u.mde.get(str(k))) for k in rel.k), keep,
        )])  # fmt: skip
    headers = ["task", "metric", "mean", "seed std", "FineWeb SNR", "AI2 SNR", "monotonic", "chance margin"]
    return _table([*headers, *(f"MDE K={k}" for k in rel.k), "keep"], rows)


def _signal_html(track: str) -> str:
    try:
        d = load_signal(track)
    except HarnessError as exc:  # a broken shipped file must not break the site; the page says so
        return f'<p class="warn">The signal definition of {e(track)} cannot be read: {e(exc)}</p>'
    if d is None:
        return (f"<p>No signal aggregate is derived for {e(track)} (<code>harness reliability --track {e(track)} "
                "--derive-signal FILE</code>).</p>")  # fmt: skip
    return (
        f"<p><strong>{e(d.name)}</strong> (version {e(d.version)}, derived {e(d.derived_at)} by harness "
        f"{e(d.harness_version)} from {len(d.evidence)} records): the mean {e(d.metric)} of {e(', '.join(d.tasks))}, "
        f"beside the suite's aggregates and never ranked by. {e(d.notes)}</p>"
    )


def _page(rel: Reliability, scores: TrackScores, lines: Sequence[str], marks: Sequence[PairMark], title: str) -> str:
    t = e(rel.track)
    seeds = "/".join(map(str, sorted(set(rel.seeds_per_entry))))
    transfer = "".join(f"<li>{e(line)}</li>" for line in lines) or "<li>No higher rung of this track in the store.</li>"
    rule = (
        f"Adjacent entries are marked <em>order not expected to transfer</em> when their lead is smaller than the "
        f"minimum detectable difference of their means, (z<sub>0.975</sub> + z<sub>0.8</sub>) × σ × √(1/k₁ + 1/k₂), "
        f"σ the pooled seed standard deviation of {e(scores.primary)} on this track and k₁, k₂ their seeds (a 5% "
        f"test with 80% power), or when on some seed both were trained with the lower-ranked entry scores at least "
        f"as well (their order flips across seeds)."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reliability of {t} · {e(title)}</title><link rel="stylesheet" href="../assets/style.css"></head>
<body><header class="site"><p><a href="../index.html#track-{t}">← {e(title)}</a></p><h1>Reliability of track {t}</h1>
<p class="muted">{len(rel.entries)} entries, {e(seeds)} seeds each ({sum(rel.seeds_per_entry)} runs). Definitions:
<code>harness reliability</code> and <code>harness transfer</code> (docs/researchers.md, "Reliability and transfer").</p>
</header><main>
<section><h2>Does the ranking hold one rung up?</h2><ul>{transfer}</ul>
<p class="muted">Decision accuracy: the share of pairs of shared subsets that the next rung orders which this track
orders the same way (a pair this track ties counts one half); the interval is a 95% bootstrap over seeds.</p></section>
<section><h2>Signal aggregate</h2>{_signal_html(rel.track)}</section>
<section><h2>Ranking and the pairs whose order is not expected to transfer</h2><p>{rule}</p>
{_ranking_html(scores, marks)}</section>
<section><h2>Reliability of every task and metric</h2>
<p class="muted">FineWeb keeps a task at monotonicity ≥ {MIN_MONOTONICITY}, SNR &gt; {MIN_SNR:g} and more than
{MIN_CHANCE_MARGIN:g} seed stds above chance. – = not measured (monotonicity needs intermediate-checkpoint scores);
* AI2 SNR with the relative seed spread as noise; ↓ lower is better; MDE K=n: the smallest difference of two n-seed
means a 5% test detects with 80% power.</p>
{_units_html(rel)}</section></main></body></html>
"""
