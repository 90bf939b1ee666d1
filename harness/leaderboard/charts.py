"""Charts of the site.

Per track (matplotlib, Agg backend, SVG files): the primary score against subset size and against passes over
the data, and the loss curves of the best entries. Per entry: the loss curve as a small inline SVG written
directly, because drawing 10,000 matplotlib figures would take minutes while this takes microseconds each.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from harness.leaderboard.columns import TrackTable, human

#: Scatter points beyond this are rasterised inside the SVG so the file stays small.
RASTERIZE_ABOVE = 1000
#: Loss curves drawn on a track's overlay chart (the best-ranked entries).
CURVES_PER_TRACK = 8


def _mpl_text(text: str, limit: int = 40) -> str:
    """Entry names as matplotlib text: '$' would start mathtext (and could fail the build), so escape it."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("$", r"\$")


def track_charts(table: TrackTable, out_dir: Path) -> dict[str, str]:
    """Write the track's charts into out_dir; returns {kind: file name} for the charts that have data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    ranked = [r for r in table.rows if r[table.primary] is not None]
    for kind, key, xlabel, xlog in (
        ("size", "subset_tokens", "subset size (tokens, one pass)", True),
        ("passes", "passes", "passes over the data", False),
    ):
        if not ranked:
            break
        fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
        xs, ys = [r[key] for r in ranked], [r[table.primary] for r in ranked]
        ax.scatter(xs, ys, s=14, alpha=0.7, color="#2563eb", rasterized=len(xs) > RASTERIZE_ABOVE)
        if xlog and min(xs) > 0 and max(xs) > 10 * min(xs):  # a log axis over a narrow range has unreadable ticks
            ax.set_xscale("log")
        if kind == "size":
            from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

            if ax.get_xscale() == "linear":
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            lo, hi = ax.get_xlim()
            exact = hi - lo < 0.01 * abs(hi)  # nearly equal sizes: short labels would all read the same
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, exact=exact: f"{v:,.0f}" if exact else _short(v)))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_mpl_text(table.primary_name))
        ax.set_title(_mpl_text(f"{table.track}: {table.primary_name} vs {xlabel.split(' (')[0]}", 60), fontsize=10)
        ax.grid(alpha=0.3)
        name = f"{table.track}-{kind}.svg"
        fig.savefig(out_dir / name, format="svg", metadata={"Date": None})
        plt.close(fig)
        written[kind] = name
    curves = [(r["name"], table.records[r["id"]].training.curve) for r in table.rows[:CURVES_PER_TRACK]]
    curves = [(n, c) for n, c in curves if c]
    if curves:
        fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
        for label, curve in curves:
            ax.plot([p[1] for p in curve], [p[2] for p in curve], linewidth=1.2, label=_mpl_text(label, 28))
        ax.set_xlabel("tokens seen")
        ax.set_ylabel("training loss")
        ax.set_title(_mpl_text(f"{table.track}: loss curves of the top {len(curves)}", 60), fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        name = f"{table.track}-loss.svg"
        fig.savefig(out_dir / name, format="svg", metadata={"Date": None})
        plt.close(fig)
        written["loss"] = name
    return written


def _short(value: float) -> str:
    """1572864 -> '1.57M': tick labels that stay short whatever the range."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


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
