"""DataDecide in miniature (issue 26): do curation rankings on the small CPU rungs predict the target rung?

    python experiments/datadecide.py --ladder ladder-v5 --out datadecide [--plan] [--analyse-only [--shared-only]]

Recipes: the seven curation ladder rows (examples/ladder.py; their subsets are read from `<ladder>/subsets/` and
curated there when missing) plus two filter strengths of DCLM's classifier: the top 30% of the pool instead of
10%, and half classifier top 10% / half random sample (a mixture). Every recipe's one subset, sized to the small
track's budget, is submitted unchanged on every rung, since `harness transfer` matches entries by subset: the
rungs nano-v5-0.25x and nano-v5-0.5x read a share of it, nano-v5 one pass, micro-v5 about 2.1 passes (the
strong filters hold no more; DataDecide's corpora held enough unique tokens at every scale, ours do not).

Rungs and seeds (`--rungs`): nano-v5 x3, nano-v5-0.25x x3, nano-v5-0.5x x3 (the small rungs) and micro-v5 x2
(the target), all with `--checkpoint-scores` (every saved checkpoint evaluated: monotonicity and AI2's
checkpoint noise). Runs go to `--run-dir` (default `<ladder>/runs`, so the ladder's trained nano-v5 entries are
reused: only their evaluation is redone, now with the continuous metrics) and records to `<out>/results`. Order:
the small rungs first, then the target, each rung recipe by recipe; re-running resumes.

Analysis (`<out>/report/`): `harness reliability` of every rung (text and JSON), the nano-v5 signal aggregate
derived from its reliability (`signal-nano-v5.toml`), `harness transfer SMALL micro-v5` for each small rung (text
and JSON; also `transfer-SMALL-last2.*`, the small rung ranked by each run's mean over its last 2 checkpoints,
Signal and Noise's checkpoint averaging), `snr-vs-decision-SMALL.json` (each task x metric's SNR on the small
rung against its decision accuracy, and their Spearman correlation), and `compute.json`: the training compute
and the measured wall and CPU seconds per rung.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

from ladder import LADDER  # noqa: E402  (examples/ is a folder of scripts, not a package)

SMALL, TARGET = "nano-v5", "micro-v5"
EXTRA = (
    ("classifier30", "fastText classifier top 30% (DCLM recipe, weaker filter)"),
    ("mix_classifier_random", "Half fastText classifier top 10%, half random sample"),
)
#: Measured wall seconds of one nano submit's stages on 2 idle cores (docs/results.md, the demo, compiled step):
#: training, then one evaluation of one checkpoint. The plan scales training by each rung's compute.
NANO_TRAIN_S, NANO_EVAL_S = 118.0, 5.0
#: Checkpoints averaged in the smoothed transfer: the last 2 of the 5 saved (80% and 100% of training), the closest
#: our coarse checkpoints come to Signal and Noise's average over the last few checkpoints.
LAST = 2


def recipes(only: list[str] | None = None) -> list[tuple[str, str]]:
    every = [(key, name) for key, _, name in LADDER] + list(EXTRA)
    unknown = sorted(set(only or ()) - {k for k, _ in every})
    if unknown:
        raise SystemExit(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(k for k, _ in every)}")
    return [(k, n) for k, n in every if not only or k in only]


def rungs(small: str, target: str, small_seeds: int, target_seeds: int) -> tuple[tuple[str, int], ...]:
    """The small track and its 0.25x and 0.5x multipliers, then the target."""
    return ((small, small_seeds), (f"{small}-0.25x", small_seeds), (f"{small}-0.5x", small_seeds),
            (target, target_seeds))  # fmt: skip


def curate(ladder: Path, key: str, workers: int, small: str = SMALL) -> Path:
    """The recipe's subset file, curated for the small track when it is not there yet."""
    subset = ladder / "subsets" / f"{key}.jsonl"
    if subset.is_file():
        return subset
    subset.parent.mkdir(parents=True, exist_ok=True)
    tmp = subset.with_name(f".{subset.name}.tmp")
    if key in {k for k, _, _ in LADDER}:
        script = next(s for k, s, _ in LADDER if k == key)
        cmd = [sys.executable, str(EXAMPLES / script), "--track", small, "--out", str(tmp)]
        subprocess.run(cmd + ([] if script == "random_sample.py" else ["--workers", str(workers)]), check=True)
    elif key == "classifier30":
        from classifier import classifier_scores
        from common import select_subset

        scores = classifier_scores(small, workers)
        select_subset(small, [scores], str(tmp), by="fasttext_hq_prob", top=0.30, seed=0)
    elif key == "mix_classifier_random":
        from common import write_subset

        halves = [curate(ladder, k, workers, small).read_text().splitlines() for k in ("classifier", "random")]
        ids: dict[str, None] = {}
        for lines in halves:
            for line in (x for x in lines[: len(lines) // 2] if x.strip()):
                ids.setdefault(json.loads(line)["id"], None)
        write_subset(({"id": i} for i in ids), str(tmp))
    else:
        raise SystemExit(f"unknown recipe {key!r}")
    tmp.replace(subset)
    return subset


def plan(ladder: tuple[tuple[str, int], ...], n_recipes: int) -> list[dict]:
    """Expected cost per rung (wall minutes on 2 idle cores), from the measured nano submit scaled by compute."""
    from harness.tracks import get_track

    nano = get_track("nano")
    nano_flops = nano.n_params * nano.tokens
    rows = []
    for track, seeds in ladder:
        t = get_track(track)
        ratio = t.n_params * t.tokens / nano_flops
        evals = t.recipe.checkpoints
        per_run = NANO_TRAIN_S * ratio + NANO_EVAL_S * evals * max(1.0, t.n_params / nano.n_params)
        rows.append({"track": track, "seeds": seeds, "compute_vs_nano": round(ratio, 3),
                     "runs": seeds * n_recipes, "minutes": round(per_run * seeds * n_recipes / 60, 1)})  # fmt: skip
    return rows


def submit(subset: Path, name: str, track: str, seeds: int, run_dir: Path, results: Path) -> dict:
    cmd = [sys.executable, "-m", "harness", "submit", "--track", track, str(subset), "--name", name,
           "--run-dir", str(run_dir), "--results", str(results), "--replicates", str(seeds),
           "--checkpoint-scores", "--json"]  # fmt: skip
    started = time.monotonic()
    record = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    primary = record["evaluation"]["primary_aggregate"]
    value = record["evaluation"]["aggregates"][primary]["value"]
    print(f"{track} {subset.stem}: {primary} {value:.4f} ({time.monotonic() - started:.0f} s)", flush=True)
    return record


def harness(args: list[str], out: Path) -> bool:
    """Run one analysis command into `out`; a refusal (too few seeds, say) is written there instead, and False."""
    run = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True)
    if run.returncode != 0:
        out.write_text(f"harness {' '.join(args)} exited {run.returncode}:\n{run.stderr}")
        print(f"analysis: {out.name}: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else 'failed'}")
        return False
    out.write_text(run.stdout)
    return True


def analyse(ladder: tuple[tuple[str, int], ...], results: Path, report: Path, shared_only: bool = False) -> bool:
    """Write the report; False when an analysis refused (its file says why). `shared_only`: transfers compare the
    recipes on both rungs (a rung still training lacks some)."""
    report.mkdir(parents=True, exist_ok=True)
    store, ok = ["--results", str(results)], True
    shared = ["--shared-only"] if shared_only else []
    if missing := [t for t, _ in ladder if not any((results / t).glob("*.json"))]:
        print(f"analysis: no records yet of {', '.join(missing)}: left out of the report")
    target = ladder[-1][0]
    for track, _ in ladder:
        if track in missing:
            continue
        extra = ["--derive-signal", str(report / f"signal-{track}.toml")] if track == ladder[0][0] else []
        ok &= harness(["reliability", "--track", track, *store, *extra], report / f"reliability-{track}.txt")
        ok &= harness(["reliability", "--track", track, *store, "--json"], report / f"reliability-{track}.json")
    for track, _ in ladder[:-1] if target not in missing else ():
        if track in missing:
            continue
        ok &= harness(["transfer", track, target, *store, *shared], report / f"transfer-{track}.txt")
        ok &= harness(["transfer", track, target, *store, *shared, "--json"], report / f"transfer-{track}.json")
        for ext, fmt in (("txt", []), ("json", ["--json"])):  # Signal and Noise's checkpoint averaging
            ok &= harness(["transfer", track, target, *store, *shared, "--average-last", str(LAST), *fmt],
                          report / f"transfer-{track}-last{LAST}.{ext}")  # fmt: skip
        if ok:
            path = report / f"snr-vs-decision-{track}.json"
            path.write_text(json.dumps(snr_vs_decision(report, track), indent=2) + "\n")
    (report / "compute.json").write_text(json.dumps(measured_compute(ladder, results), indent=2) + "\n")
    return ok


def snr_vs_decision(report: Path, small: str) -> dict:
    """Signal and Noise's claim that a higher SNR goes with a higher decision accuracy, on our units: per task x
    metric of the small track, its SNRs against its decision accuracy for the target's ranking of the same task, and
    Spearman's rank correlation over the units (aggregates included). Three SNRs: AI2's as the reliability table
    measures it (its noise, the spread of a run's last 5 checkpoints, spans our whole run, so it holds the learning
    trend too), AI2's signal over the relative seed std (the noise our replicates measure cleanly), and FineWeb's."""
    from harness.analysis.reliability import spearman

    units = {
        (u["task"], u["metric"]): u for u in json.loads((report / f"reliability-{small}.json").read_text())["units"]
    }
    rows = []
    for a in json.loads((report / f"transfer-{small}.json").read_text())["agreements"]:
        if a["target_task"] or a["decision_accuracy"] is None or (u := units.get((a["task"], a["metric"]))) is None:
            continue
        seed_noise = u["seed_std"] / abs(u["mean"]) if u["mean"] and u["seed_std"] else None
        rows.append({"task": a["task"], "metric": a["metric"], "decision_accuracy": a["decision_accuracy"],
                     "ai2_snr": u["ai2_snr"], "ai2_signal_over_seed_noise":
                     u["ai2_signal"] / seed_noise if seed_noise and u["ai2_signal"] is not None else None,
                     "fineweb_snr": u["fineweb_snr"]})  # fmt: skip
    out: dict = {"small": small, "units": len(rows)}
    for snr in ("ai2_snr", "ai2_signal_over_seed_noise", "fineweb_snr"):
        pts = [(r[snr], r["decision_accuracy"]) for r in rows if r[snr] is not None]
        out[f"spearman_{snr}"] = spearman([x for x, _ in pts], [y for _, y in pts])
    return out | {"rows": rows}


def measured_compute(ladder: tuple[tuple[str, int], ...], results: Path) -> list[dict]:
    """Per rung: 6ND of one run, and the wall seconds of the training runs the records hold."""
    from harness.tracks import get_track

    rows = []
    for track, _ in ladder:
        t = get_track(track)
        walls = []
        for path in sorted((results / track).glob("*.json")):
            record = json.loads(path.read_text())
            runs = (record.get("replicates") or {}).get("runs") or []
            walls += [r["wall_time_s"] for r in runs if r.get("wall_time_s")]
        rows.append({"track": track, "flops_6nd": 6.0 * t.n_params * t.tokens, "training_runs": len(walls),
                     "training_wall_s": round(sum(walls), 1)})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ladder", type=Path, default=Path("ladder-v5"), help="the ladder's folder (subsets/)")
    parser.add_argument("--out", type=Path, default=Path("datadecide"), help="records and the report")
    parser.add_argument("--run-dir", type=Path, help="run folders (default: <ladder>/runs)")
    parser.add_argument("--workers", type=int, default=2, help="scoring processes for curation")
    parser.add_argument("--plan", action="store_true", help="print the expected cost and stop")
    parser.add_argument("--analyse-only", action="store_true", help="only (re)write the report")
    parser.add_argument("--only-track", action="append", default=[], help="run only these rungs (repeatable)")
    parser.add_argument("--small", default=SMALL, help=f"the small track (default {SMALL})")
    parser.add_argument("--target", default=TARGET, help=f"the target track (default {TARGET})")
    parser.add_argument("--seeds", type=int, nargs=2, default=(3, 2), metavar=("SMALL", "TARGET"),
                        help="replicate seeds on the small rungs and on the target (default 3 2)")  # fmt: skip
    parser.add_argument("--recipe", action="append", default=[], help="only these recipes (repeatable)")
    parser.add_argument("--shared-only", action="store_true",
                        help="transfers compare the recipes on both rungs (the others left out)")  # fmt: skip
    args = parser.parse_args()
    ladder, chosen = rungs(args.small, args.target, *args.seeds), recipes(args.recipe)
    rows = plan(ladder, len(chosen))
    for row in rows:
        print(f"plan: {row['track']}: {row['runs']} runs ({row['seeds']} seeds x {len(chosen)} recipes), "
              f"{row['compute_vs_nano']}x nano's compute per run, about {row['minutes']} min")  # fmt: skip
    print(f"plan: about {sum(r['minutes'] for r in rows) / 60:.1f} h on 2 idle cores (less what is already done)")
    if args.plan:
        return 0
    results = args.out / "results"
    if not args.analyse_only:
        run_dir = args.run_dir or args.ladder / "runs"
        subsets = [(curate(args.ladder, key, args.workers, args.small), name) for key, name in chosen]
        for track, seeds in ladder:
            if args.only_track and track not in args.only_track:
                continue
            for subset, name in subsets:
                submit(subset, name, track, seeds, run_dir, results)
    ok = analyse(ladder, results, args.out / "report", args.shared_only)
    print(f"report: {args.out / 'report'}" + ("" if ok else " (some analyses refused: see their files)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
