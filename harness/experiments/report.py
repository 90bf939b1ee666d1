"""`harness sweep report`: the table of a sweep's cells (Markdown, CSV, JSON) and plots of every metric against each
factor with noise bands (PNG and SVG), and the `harness compare` verdict of every pair of cells on one track
(harness.experiments.verdicts), written into `<sweep>/report/`.

Numbers come from the cells' records only. A cell is one entry; with a seed factor it holds that many replicates
(the record's `replicates` block), summarised by their mean; the band is +-1 standard deviation over the seeds when
a cell has two or more, else +-1 standard error of the held-out metric over its evaluation windows (one seed:
evaluation noise only, which understates the spread).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.experiments.spec import Experiment
from harness.experiments.sweep import SweepPaths, cell_figures
from harness.leaderboard.experiments import fmt_value

#: Reported metrics: (key in the rows, axis label, higher is better).
METRICS = (
    ("loss", "validation loss (nats/token)", False),
    ("accuracy", "next-token accuracy", True),
    ("perplexity", "perplexity", False),
    ("primary", "suite primary aggregate", True),
)


def collect(experiment: Experiment, paths: SweepPaths) -> list[dict[str, Any]]:
    """One row per finished cell: its levels, the training figures and the metrics of its record."""
    from harness.records import ResultsStore

    store = ResultsStore(paths.results)
    rows = []
    for cell in experiment.cells():
        done = paths.done(cell)
        if done is None:
            continue
        record = store.get(done["entry_id"])
        lm = record.evaluation.heldout_lm
        figures = cell_figures(paths, cell)
        rows.append({
            "cell": cell.key, **{f: cell.levels.get(f) for f in experiment.factors.present()},
            "track": record.track.name, "entry_id": record.entry_id,
            "documents": record.subset.documents, "unique_documents": record.subset.unique_documents,
            "copy_share": figures["copy_share"], "tokens_seen": record.training.tokens_seen,
            "unique_tokens": record.subset.unique_tokens, "unique_passes": record.training.unique_passes,
            "loss": lm.get("loss"), "loss_stderr": lm.get("loss_stderr"), "accuracy": lm.get("accuracy"),
            "accuracy_stderr": lm.get("accuracy_stderr"), "perplexity": lm.get("perplexity"),
            "primary": record.primary.value, "primary_name": record.evaluation.primary_aggregate,
            **_over_seeds(record),
        })  # fmt: skip
    return rows


def _over_seeds(record: Any) -> dict[str, Any]:
    """The number of replicate seeds, and each metric's mean and standard deviation over them (None with one)."""
    runs = record.replicates.runs if record.replicates else ()
    own = {"loss": record.evaluation.heldout_lm.get("loss"), "accuracy": record.evaluation.heldout_lm.get("accuracy"),
           "perplexity": record.evaluation.heldout_lm.get("perplexity"), "primary": record.primary.value}  # fmt: skip
    out: dict[str, Any] = {"seeds": max(len(runs), 1)}
    for key, value in own.items():
        per_seed = [r.aggregates.get(record.evaluation.primary_aggregate) if key == "primary" else
                    r.heldout_lm.get(key) for r in runs]  # fmt: skip
        values = per_seed if len(runs) > 1 and None not in per_seed else [value] if value is not None else []
        out[f"{key}_mean"] = sum(values) / len(values) if values else None  # type: ignore[arg-type]
        out[f"{key}_sd"] = _sd(values)  # type: ignore[arg-type]
    return out


def _sd(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarise(experiment: Experiment, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per cell: its levels, figures, the number of seeds, each metric's mean over the seeds and its band
    (see the module docstring)."""
    varied = [f for f in experiment.factors.present() if f != "seed"]
    out = []
    for row in rows:
        s: dict[str, Any] = {f: row[f] for f in varied}
        s["seeds"] = row["seeds"]
        for key in ("tokens_seen", "unique_tokens", "unique_passes", "copy_share"):
            s[key] = row[key]
        for key, _label, _hib in METRICS:
            s[key] = row[f"{key}_mean"]
            s[f"{key}_band"] = row[f"{key}_sd"] if row[f"{key}_sd"] is not None else _band(key, row)
        out.append(s)
    return out


def _band(key: str, m: dict[str, Any]) -> float | None:
    """One seed: the standard error of the held-out metric over its evaluation windows."""
    if key in ("loss", "accuracy"):
        return m.get(f"{key}_stderr")
    if key == "perplexity" and m["loss_stderr"] is not None and m["perplexity"] is not None:
        return m["perplexity"] * (math.exp(m["loss_stderr"]) - 1)
    return None


def markdown(experiment: Experiment, summary: list[dict[str, Any]], total: int, primary: str = "") -> str:
    varied = [f for f in experiment.factors.present() if f != "seed"]
    cols = [*varied, "seeds", "tokens_seen", "unique_tokens", "unique_passes", "copy_share"]
    metric_cols = [k for k, _l, _h in METRICS]
    head = cols + [f"{k} (± band)" for k in metric_cols]
    lines = [f"# {experiment.name}", "", experiment.description, "",
             f"{len(summary)} of {total} cells finished, track {experiment.track}.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]  # fmt: skip
    for s in summary:
        cells = [f"{s[c]:g}" if c in varied else fmt_value(s[c]) for c in cols]
        cells += [fmt_value(s[k]) + ("" if s[f"{k}_band"] is None else f" ± {s[f'{k}_band']:.4f}") for k in metric_cols]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _relative(experiment, summary, varied)
    lines += ["", "Band: ±1 s.d. over the cell's replicate seeds where it has 2 or more, else ±1 s.e. over the held-out "
              f"evaluation windows (one seed). The primary aggregate is {primary}. Differences between cells are "
              "decided in verdicts.md (`harness compare` on every pair of cells on one track), not by this table."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _relative(experiment: Experiment, summary: list[dict[str, Any]], varied: list[str]) -> list[str]:
    """Axes design: each cell's change against the reference cell, in percent (how the study reports its findings:
    e.g. +0.87% accuracy and +0.52% perplexity at 25% duplication)."""
    if experiment.design != "axes":
        return []
    reference = {f: getattr(experiment.factors, f)[0] for f in varied}
    ref = next((s for s in summary if all(s[f] == v for f, v in reference.items())), None)
    if ref is None:
        return []
    keys = [k for k, _l, _h in METRICS if ref[k]]
    where = ", ".join(f"{f} {v:g}" for f, v in reference.items())
    lines = ["", f"Change against the reference cell ({where}), in percent:", "",
             "| " + " | ".join([*varied, *keys]) + " |", "|" + "---|" * (len(varied) + len(keys))]  # fmt: skip
    for s in summary:
        if s is ref:
            continue
        changes = [f"{100 * (s[k] - ref[k]) / abs(ref[k]):+.2f}%" if s[k] is not None else "–" for k in keys]
        lines.append("| " + " | ".join([*(f"{s[f]:g}" for f in varied), *changes]) + " |")
    return lines


def write_report(experiment: Experiment, paths: SweepPaths) -> dict[str, Path]:
    """Write report/{results.md,results.csv,results.json,cells.csv}, one PNG + SVG per metric and the verdicts of
    every pair of cells on one track (report/verdicts.{md,json}, harness.experiments.verdicts)."""
    rows = collect(experiment, paths)
    if not rows:
        raise UsageError(f"no finished cells in {paths.root}; run `harness sweep run {experiment.source}` first")
    summary = summarise(experiment, rows)
    out = paths.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out / "results.md", "csv": out / "results.csv", "json": out / "results.json",
             "cells_csv": out / "cells.csv"}  # fmt: skip
    total = len(experiment.cells())
    files["markdown"].write_text(markdown(experiment, summary, total, rows[0]["primary_name"]), encoding="utf-8")
    _csv(files["csv"], summary)
    _csv(files["cells_csv"], rows)
    blob = {"experiment": experiment.name, "description": experiment.description, "track": experiment.track,
            "factors": experiment.factors.present(), "summary": summary, "cells": rows}  # fmt: skip
    files["json"].write_text(json.dumps(blob, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    from harness.leaderboard.experiments import publish_summary

    publish_summary(paths.results, blob)  # the leaderboard's experiment page (`harness leaderboard build`)
    for key, label, _hib in METRICS:
        for ext, path in plot_metric(experiment, summary, key, label, out).items():
            files[f"{key}_{ext}"] = path
    from harness.experiments.verdicts import write_verdicts
    from harness.records import ResultsStore

    store = ResultsStore(paths.results)
    records = {row["entry_id"]: store.get(row["entry_id"]) for row in rows}
    factors = experiment.factors.present()
    files.update(write_verdicts(out, experiment.name, rows, records, rows[0]["primary_name"], factors))
    return files


def _csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_metric(
    experiment: Experiment, summary: list[dict[str, Any]], key: str, label: str, out: Path
) -> dict[str, Path]:
    """One figure per metric, one panel per varied factor: the mean against the level with its band; one line per
    combination of the other factors' levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    varied = [f for f in experiment.factors.present() if f != "seed"]
    fig, axes = plt.subplots(1, len(varied), figsize=(4.2 * len(varied), 3.4), squeeze=False)
    for ax, factor in zip(axes[0], varied, strict=True):
        others = [f for f in varied if f != factor]
        lines: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for s in summary:
            if s[key] is not None:
                lines[tuple(s[o] for o in others)].append(s)
        for other_levels, points in sorted(lines.items(), key=lambda kv: str(kv[0])):
            points.sort(key=lambda p: p[factor])
            xs = [p[factor] for p in points]
            ys = [p[key] for p in points]
            name = ", ".join(f"{o} {v:g}" for o, v in zip(others, other_levels, strict=True)) or experiment.name
            (line,) = ax.plot(xs, ys, marker="o", label=name)
            bands = [p[f"{key}_band"] for p in points]
            if all(b is not None for b in bands):
                lo = [y - b for y, b in zip(ys, bands, strict=True)]
                hi = [y + b for y, b in zip(ys, bands, strict=True)]
                ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color())
        ax.set_xlabel(factor + (" (x budget)" if factor == "scale" else ""))
        if factor == "scale":
            ax.set_xscale("log", base=2)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if 1 < len(lines) <= 8:
            ax.legend(fontsize=7)
    fig.suptitle(f"{experiment.name}: {label}", fontsize=10)
    fig.tight_layout()
    paths = {}
    for ext in ("png", "svg"):
        paths[ext] = out / f"{key}.{ext}"
        fig.savefig(paths[ext], dpi=110)
    plt.close(fig)
    return paths
