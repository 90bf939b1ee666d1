"""Charts of the site, written as SVG directly (no plotting library: the build stays fast at any size).

Per track (standalone SVG files): the primary score against subset size and against passes over the data, and
the loss curves of the best entries. Per entry: the loss curve as a small inline SVG.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

from harness.leaderboard.columns import TrackTable, human
from harness.leaderboard.paths import site_path

#: Loss curves drawn on a track's overlay chart (the best-ranked entries).
CURVES_PER_TRACK = 8

#: The second line of a chart whose x values are all the same.
NO_SPREAD = "no spread to plot the score against"


def has_spread(values: Sequence[float]) -> bool:
    """Whether values differ by more than float noise (a chart against them has an x axis to draw)."""
    lo, hi = min(values), max(values)
    return hi - lo > 1e-9 * max(abs(lo), abs(hi), 1e-300)


def track_charts(table: TrackTable, out_dir: Path) -> dict[str, str]:
    """Write the track's charts into out_dir; returns {kind: file name} for the charts that have data."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    ranked = [r for r in table.rows if r[table.primary] is not None]
    for kind, key, xlabel, xlog in (
        ("size", "subset_tokens", "subset size (tokens, one pass)", True),
        ("passes", "passes", "passes over the data", False),
    ):
        if not ranked:
            break
        xs, ys = [float(r[key]) for r in ranked], [float(r[table.primary]) for r in ranked]
        title = f"{table.track}: {table.primary_name} vs {xlabel.split(' (')[0]}"
        if not has_spread(xs):  # a column of dots over made-up ticks says nothing: say why there is no chart
            note = note_svg(title, [same_x_note(kind, xs), NO_SPREAD])
            written[kind] = _write(site_path(out_dir, f"{table.track}-{kind}", suffix=".svg"), note)
            continue
        # A log axis over a narrow range has unreadable ticks.
        log = xlog and min(xs) > 0 and max(xs) > 10 * min(xs)
        svg = figure_svg(title, xlabel, table.primary_name, [("", xs, ys)], log_x=log, points=True)
        written[kind] = _write(site_path(out_dir, f"{table.track}-{kind}", suffix=".svg"), svg)
    curves = [(r["name"], table.records[r["id"]].training.curve) for r in table.rows[:CURVES_PER_TRACK]]
    series = [(_clip(n, 28), [float(p[1]) for p in c], [float(p[2]) for p in c]) for n, c in curves if c]
    if series:
        title = f"{table.track}: loss curves of the top {len(series)}"
        svg = figure_svg(title, "tokens seen", "training loss", series, legend=True)
        written["loss"] = _write(site_path(out_dir, f"{table.track}-loss", suffix=".svg"), svg)
    return written


def same_x_note(kind: str, xs: Sequence[float]) -> str:
    """'all 3 entries have subset size 1.57M tokens': what a chart against one x value says instead."""
    who = "the only entry" if len(xs) == 1 else f"all {len(xs)} entries"
    value = _short(xs[0])
    if kind == "passes":
        return f"{who} made {value} pass{'' if value == '1' else 'es'} over the data"
    return f"{who} {'has' if len(xs) == 1 else 'have'} subset size {value} tokens"


def _write(path: Path, svg: str) -> str:
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + svg, encoding="utf-8")
    return path.name


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Line colours of the overlay chart (matplotlib's tab10, readable on white).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def nice_ticks(lo: float, hi: float, log: bool = False, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: 1/2/5 x 10^k steps, or on a log axis decades (with 2x, 5x if few)."""
    if hi <= lo:
        return [lo]
    if log:
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        for mults in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            ticks = [m * 10.0**k for k in range(first, last + 1) for m in mults if lo <= m * 10.0**k <= hi]
            if len(ticks) >= 3:
                return ticks
        return [lo, hi]
    raw = (hi - lo) / target
    step = min((m * 10.0 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda v: abs(v - raw))
    return [k * step for k in range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)]


def figure_svg(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    log_x: bool = False,
    points: bool = False,
    legend: bool = False,
    width: int = 520,
    height: int = 340,
) -> str:
    """A standalone SVG chart: each series as points (a scatter) or a polyline, with axes, ticks and a legend.

    Written directly rather than with matplotlib: a 10,000-entry leaderboard drew its six figures in seconds
    (import, layout, rasterisation), longer than writing every entry page; this takes milliseconds.
    """
    left, right, top, bottom = 62, 14, 28, 44
    pw, ph = width - left - right, height - top - bottom
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs_all = [x for _, xs, _ in series for x in xs]
    ys_all = [y for _, _, ys in series for y in ys]
    x0, x1, y0, y1 = min(xs_all), max(xs_all), min(ys_all), max(ys_all)
    if x1 <= x0:
        x0, x1 = (x0 / 2, x0 * 2) if log_x else (x0 - 1, x0 + 1)
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y0 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    lx0, lx1 = fx(x0), fx(x1)
    xpad = 0.04 * (lx1 - lx0)
    lx0, lx1 = lx0 - xpad, lx1 + xpad
    kx, ky = pw / (lx1 - lx0), ph / (y1 - y0)

    def sx(v: float) -> float:
        return left + (fx(v) - lx0) * kx

    def sy(v: float) -> float:
        return top + ph - (v - y0) * ky

    esc = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11" role="img" aria-label="{esc(title)}">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left + pw / 2}" y="16" text-anchor="middle" font-size="12">{esc(_clip(title, 70))}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>',
    ]
    xlo, xhi = (10**lx0, 10**lx1) if log_x else (lx0, lx1)
    xticks = nice_ticks(xlo, xhi, log_x)
    for t, label in zip(xticks, tick_labels(xticks), strict=True):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 15}" text-anchor="middle">{esc(label)}</text>')
    yticks = nice_ticks(y0, y1)
    for t, label in zip(yticks, tick_labels(yticks), strict=True):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{esc(label)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{esc(xlabel)}</text>')
    out.append(f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" '
               f'text-anchor="middle">{esc(_clip(ylabel, 45))}</text>')  # fmt: skip
    for i, (label, xs, ys) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)] if legend else "#2563eb"
        if points:  # points on the same half pixel are drawn once: the file stays small at any entry count
            dots = dict.fromkeys((round(sx(x) * 2) / 2, round(sy(y) * 2) / 2) for x, y in zip(xs, ys, strict=True))
            out.append(f'<g fill="{colour}" fill-opacity="0.7">')
            out += [f'<circle cx="{x:g}" cy="{y:g}" r="2.5"/>' for x, y in dots]
            out.append("</g>")
        else:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.2"/>')
        if legend:
            y = top + 12 + 13 * i
            out.append(f'<line x1="{left + pw - 150}" x2="{left + pw - 134}" y1="{y - 4}" y2="{y - 4}" '
                       f'stroke="{colour}" stroke-width="2"/>')  # fmt: skip
            out.append(f'<text x="{left + pw - 130}" y="{y}" font-size="9">{esc(label)}</text>')
    out.append("</svg>\n")
    return "\n".join(out)


def note_svg(title: str, lines: Sequence[str], width: int = 520, height: int = 340) -> str:
    """A chart-sized SVG that says something (e.g. why there is nothing to plot) instead of drawing axes."""
    esc = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11" role="img" '
        f'aria-label="{esc(title)}: {esc(lines[0] if lines else "")}">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="12">{esc(_clip(title, 70))}</text>',
        f'<rect x="62" y="28" width="{width - 76}" height="{height - 72}" fill="none" stroke="#ddd"/>',
    ]
    for i, line in enumerate(lines):
        y = height / 2 - 8 * (len(lines) - 1) + 18 * i
        colour = "#222" if i == 0 else "#666"
        out.append(f'<text x="{width / 2}" y="{y:.1f}" text-anchor="middle" fill="{colour}">{esc(line)}</text>')
    out.append("</svg>\n")
    return "\n".join(out)


def _short(value: float, digits: int = 3) -> str:
    """1572864 -> '1.57M': tick labels that stay short whatever the range (`digits` significant digits)."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{unit}"
    return f"{value:.{digits}g}"


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Short labels of sorted ticks, with the fewest significant digits (3 at least) that keep neighbours distinct
    and every label within 1% of a tick gap of its tick: 1.571M, 1.572M, 1.573M rather than 1.57M three times."""
    if len(ticks) < 2:
        return [_short(t) for t in ticks]
    gap = min(b - a for a, b in itertools.pairwise(ticks))
    labels = [_short(t) for t in ticks]
    for digits in range(3, 18):
        labels = [_short(t, digits) for t in ticks]
        exact = all(abs(float(f"{t:.{digits}g}") - t) <= 0.01 * gap for t in ticks)
        if exact and all(a != b for a, b in itertools.pairwise(labels)):
            return labels
    return labels


def _ticks(lo: float, hi: float) -> list[float]:
    return [lo + (hi - lo) * i / 4 for i in range(5)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e3 else f"{v:.2e}"


def loss_curve_svg(curve: Sequence[Sequence[float]], width: int = 560, height: int = 260) -> str:
    """An accessible inline SVG line chart of [step, tokens, loss] points (x = tokens, y = loss)."""
    if len(curve) < 2:
        return '<p class="muted">No training curve in this record.</p>'
    left, right, top, bottom = 56, 28, 12, 36
    xs, ys = [float(p[1]) for p in curve], [float(p[2]) for p in curve]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pw, ph = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * ph

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="training loss from {_fmt(ys[0])} to {_fmt(ys[-1])} over {human(x1)} tokens">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>',
    ]
    for t in _ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(_fmt(t))}</text>')
    for t in _ticks(x0, x1):
        x = sx(t)
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{html.escape(human(t))}</text>')
    kx, ky = pw / (x1 - x0), ph / (y1 - y0)  # inlined scaling: this line runs for every point of every entry
    coords: list[float] = []
    for x, y in zip(xs, ys, strict=True):
        coords += (left + (x - x0) * kx, top + ph - (y - y0) * ky)
    points = ("%.1f,%.1f " * len(xs) % tuple(coords))[:-1]  # one format call: 40% faster than one per point
    parts.append(f'<polyline points="{points}" class="line"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">tokens seen</text>')
    parts.append(f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" '
                 f'text-anchor="middle">loss</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)
