"""The `eval` and `train` levels of a verification: re-evaluate the bundle's checkpoint, re-train the entry.

Tolerance. On a CPU track (fp32 recipe: debug, nano) evaluated on a CPU as recorded, evaluation is a deterministic
function of the weights, so scores must match exactly (tolerance 0). Elsewhere (GPU tracks, or a record made on a
GPU) the same weights give slightly different log-likelihoods: bf16 autocast, and kernels that sum in another order
on another GPU model or library version, flip the choice of near-tied examples. A flip moves a task by 1/n (well
under 0.001 for DCLM's tasks of 1,000+ examples); a handful of them stays under GPU_TOLERANCE = 0.005 (half a
point of accuracy, under half the bootstrap standard error of these tasks), which a changed checkpoint or an edited
score exceeds. The same tolerance applies to bits per byte and to the aggregates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bundle import CHECKPOINT, EVAL, BundleUnusable
from harness.bundle.outcome import Outcome
from harness.bundle.read import Bundle

if TYPE_CHECKING:
    from rich.progress import Progress

    from harness.tracks import Track

#: The largest difference of a score accepted where evaluation is not bit-reproducible (see the module docstring).
GPU_TOLERANCE = 0.005
#: Training values the train level compares with the record (timings are left out: they differ every run).
TRAINING_COMPARED = ("final_loss", "tokens_seen", "steps", "passes")
#: A CPU entry trained on more than one thread re-trains to the same counts and accuracies but not to the same last
#: bits: the threads' partial sums meet in an order that varies from run to run (measured on nano, 2 threads, a
#: loaded machine vs an idle one: losses within 1e-6 relative, weights within 1.7e-4, held-out metrics within 2e-8,
#: every accuracy identical). Such a re-run is accepted within these bounds; one thread is compared bit for bit.
THREADED_LOSS_RTOL = 1e-5
THREADED_WEIGHT_ATOL = 1e-3
THREADED_SCORE_ATOL = 1e-6


def is_cpu_track(track: Track) -> bool:
    """A track that trains in fp32 on a CPU (debug, nano): its whole entry re-runs bit for bit."""
    return track.recipe.precision == "fp32"


def default_tolerance(track: Track, record: dict[str, Any], device: str) -> float:
    recorded_on_cpu = record["hardware"].get("accelerator", "cpu") == "cpu"
    return 0.0 if is_cpu_track(track) and recorded_on_cpu and device == "cpu" else GPU_TOLERANCE


# ---------------------------------------------------------------------------------------------------- eval


def _checkpoint(bundle: Bundle, outcome: Outcome, work: Path) -> Path | None:
    """The bundle's safetensors file, or the file at the manifest's URL fetched and checked against its sha256."""
    from harness.io.files import download, file_sha256

    ckpt = bundle.manifest["checkpoint"]
    if not isinstance(ckpt, dict) or not ({"path", "url"} & set(ckpt)) or "sha256" not in ckpt:
        raise BundleUnusable(f"{bundle.source}: the manifest's checkpoint needs a path or url, and a sha256")
    if "path" in ckpt:
        if ckpt["path"] != CHECKPOINT:
            raise BundleUnusable(
                f"{bundle.source}: the checkpoint must be {CHECKPOINT}, the manifest says {ckpt['path']}"
            )
        return bundle.path(CHECKPOINT)
    target = work / "model.safetensors"
    try:
        download(str(ckpt["url"]), target)
    except Exception as exc:  # any failure to fetch: the bundle cannot be evaluated here
        raise BundleUnusable(f"{bundle.source}: checkpoint {ckpt['url']} cannot be fetched ({exc})") from None
    digest = file_sha256(target)
    if digest != ckpt["sha256"]:
        outcome.add("eval", f"checkpoint {ckpt['url']}", False,
                    f"sha256 {digest[:16]}..., the manifest's {ckpt['sha256'][:16]}...: another file is at the URL")  # fmt: skip
        return None
    outcome.add("eval", "checkpoint", True, f"{ckpt['url']} matches the manifest's sha256")
    return target


def _evaluate(weights: Path, track: Track, device: str, progress: Progress | None) -> dict[str, Any]:
    from harness.bundle.weights import check_shapes
    from harness.evaluate.run import evaluate_checkpoint

    check_shapes(weights, track.model, track.name)
    return evaluate_checkpoint(str(weights), suite=track.suite, track=track, device=device, progress=progress).to_json()


def verify_eval(
    bundle: Bundle, track: Track, record: dict[str, Any], outcome: Outcome, work: Path, progress: Progress | None
) -> None:
    """The eval level: the checkpoint re-evaluates to the recorded scores (within the outcome's tolerance)."""
    weights = _checkpoint(bundle, outcome, work)
    if weights is None:
        return
    measured = _evaluate(weights, track, outcome.device, progress)
    compare_scores(outcome, "eval", record, measured, bundle.json(EVAL), "re-evaluated")


def _examples_differing(measured: dict[str, Any], bundled: dict[str, Any], task: str) -> str:
    """', 3 of 500 examples differ' from the per-example results, where both sides have them."""
    a = measured["tasks"].get(task, {}).get("examples") or {}
    b = bundled.get("tasks", {}).get(task, {}).get("examples") or {}
    total = differ = 0
    for sub in set(a) & set(b):
        x, y = a[sub].get("values", []), b[sub].get("values", [])
        total += max(len(x), len(y))
        differ += sum(1 for u, v in zip(x, y, strict=False) if u != v) + abs(len(x) - len(y))
    return f"; {differ:,} of {total:,} examples differ from {EVAL}" if total and differ else ""


def compare_scores(
    outcome: Outcome, level: str, record: dict[str, Any], measured: dict[str, Any], bundled: dict[str, Any], verb: str,
    tolerance: float | None = None,
) -> None:  # fmt: skip
    """Every recorded task score, aggregate and held-out figure against a fresh evaluation's (within `tolerance`,
    default the outcome's)."""
    from harness.evaluate.signal import PREFIX as SIGNAL_PREFIX
    from harness.submit.record import evaluation_for_record

    fresh = evaluation_for_record(measured)
    recorded = record["evaluation"]
    tol = outcome.tolerance if tolerance is None else tolerance
    rows: list[tuple[str, Any, Any, str]] = []
    for name in sorted(set(recorded["tasks"]) | set(fresh["tasks"])):
        extra = _examples_differing(measured, bundled, name)
        if name in measured.get("missing", {}):
            extra = f"; its data is missing here: {measured['missing'][name]}"
        a, b = recorded["tasks"].get(name, {}).get("value"), fresh["tasks"].get(name, {}).get("value")
        rows.append((f"task {name}", a, b, extra))
    for name in sorted(set(recorded["aggregates"]) | set(fresh["aggregates"])):
        if name.startswith(SIGNAL_PREFIX) and name not in recorded["aggregates"]:
            continue  # a signal aggregate derived after the record was made (harness.evaluate.signal)
        a, b = recorded["aggregates"].get(name, {}).get("value"), fresh["aggregates"].get(name, {}).get("value")
        rows.append((f"aggregate {name}", a, b, ""))
    held_a, held_b = recorded.get("heldout_lm") or {}, fresh.get("heldout_lm") or {}
    for key in sorted(set(held_a) | set(held_b)):
        rows.append((f"heldout_lm {key}", held_a.get(key), held_b.get(key), ""))
    for what, a, b, extra in rows:
        numbers = isinstance(a, int | float) and isinstance(b, int | float)
        diff = (b - a) if numbers else None
        ok = numbers and abs(diff) <= tol if tol else a == b
        shown = f"recorded {_num(a)}, {verb} {_num(b)}"
        if diff:
            shown += f" ({diff:+.6g}; tolerance {tol:g})"
        outcome.add(level, what, bool(ok), shown + extra, diff if numbers else None)


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else "absent" if v is None else str(v)


# --------------------------------------------------------------------------------------------------- train


def verify_train(
    bundle: Bundle, track: Track, record: dict[str, Any], outcome: Outcome, shards: Path | None, work: Path,
    progress: Progress | None,
) -> None:  # fmt: skip
    """The train level (CPU tracks): train on the re-tokenized shards (proved identical at the data level) and
    compare the training summary, the log, the final weights and, when the weights differ, the scores."""
    from harness.bundle.weights import compare_tensors, load_tensors
    from harness.train import train

    if shards is None:
        raise BundleUnusable(f"{bundle.source}: no re-tokenized data to train on (the data level did not tokenize)")
    import torch

    trainer = record["training"]["trainer"]
    # Summation order follows the thread count, so bit-identical weights need the count the entry trained with.
    threads, before = (record.get("hardware") or {}).get("threads") or 0, torch.get_num_threads()
    if not threads:
        outcome.notes.append(f"the record does not say how many CPU threads trained it; re-trained with {before}, and "
                             "weights trained with another count differ in their last bits")  # fmt: skip
    torch.set_num_threads(threads or before)
    try:
        compile = "on" if record["training"].get("compiled") else "off"  # compiled and eager differ in the last bits
        result = train(track, str(shards), work / "train", trainer=trainer, device=outcome.device, progress=progress,
                       compile=compile)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    # Several processes also sum in another order (their gradients meet in an all-reduce): measured on debug, 2
    # processes against 1 differ by 2.8e-7 in losses and 7.9e-5 in weights (docs/organisers.md), within the bounds.
    processes = int((record.get("hardware") or {}).get("count") or 1)
    threaded = (threads or before) > 1 or processes > 1
    if threaded:
        outcome.notes.append(
            f"trained on {threads or before} CPU threads"
            + (f" in {processes} processes" if processes > 1 else "")
            + f", re-trained in one process: compared within {THREADED_LOSS_RTOL:g} relative (losses), "
            f"{THREADED_WEIGHT_ATOL:g} (weights) and {THREADED_SCORE_ATOL:g} (scores), since threads and processes "
            "sum in an order that varies from run to run; an entry trained on one thread is compared bit for bit"
        )
    rtol = THREADED_LOSS_RTOL if threaded else 0.0
    done = {k: getattr(result, k) for k in TRAINING_COMPARED}
    for key in TRAINING_COMPARED:
        a, b = record["training"][key], done[key]
        diff = b - a
        ok = abs(diff) <= rtol * abs(a) if key == "final_loss" else a == b
        outcome.add("train", f"training {key}", ok, f"recorded {_num(a)}, re-trained {_num(b)}"
                    + (f" ({diff:+.6g})" if diff else ""), diff)  # fmt: skip
    _compare_logs(bundle, Path(result.log), outcome, rtol)
    fresh = load_tensors_of(Path(result.checkpoint))
    ours = bundle.path(CHECKPOINT) if "path" in bundle.manifest["checkpoint"] else work / "model.safetensors"
    differ = compare_tensors(load_tensors(ours), fresh)  # with a URL, the eval level fetched the weights to `work`
    seeds = (record.get("replicates") or {}).get("seeds") or []
    if len(seeds) > 1:
        outcome.notes.append(f"the entry has {len(seeds)} replicates: only the official seed's run was re-trained")
    if not differ:
        outcome.add("train", "weights", True, f"the re-trained final weights are bit-identical to the bundle's "
                    f"({len(fresh)} tensors), so their scores are the ones the eval level re-measured")  # fmt: skip
        return
    worst = max(differ, key=differ.__getitem__)
    close = threaded and differ[worst] <= THREADED_WEIGHT_ATOL
    how = (f"within {THREADED_WEIGHT_ATOL:g}" if close else "beyond what the threads' summation order explains"
           if threaded else "trained on one thread, so they must be bit-identical")  # fmt: skip
    outcome.add("train", "weights", close, f"{len(differ)} of {len(fresh)} tensors differ from the bundle's, at most "
                f"{differ[worst]:.3g} (in {worst}), {how}", differ[worst])  # fmt: skip
    from harness.evaluate.run import evaluate_checkpoint

    measured = evaluate_checkpoint(str(result.checkpoint), suite=track.suite, track=track, device=outcome.device,
                                   progress=progress).to_json()  # fmt: skip
    compare_scores(outcome, "train", record, measured, bundle.json(EVAL), "re-trained",
                   max(outcome.tolerance, THREADED_SCORE_ATOL) if threaded else None)  # fmt: skip


def load_tensors_of(checkpoint: Path) -> dict[str, Any]:
    from harness.model import load_weights

    return load_weights(checkpoint)


def _compare_logs(bundle: Bundle, log: Path, outcome: Outcome, rtol: float = 0.0) -> None:
    """The training log's losses, step by step (within `rtol` relative): the first step whose loss differs, and by
    how much."""
    rel = "train/train_log.jsonl"
    if rel not in bundle.files:
        return

    def losses(text: str) -> dict[int, float]:
        rows = (json.loads(line) for line in text.splitlines() if line.strip())
        return {r["step"]: r["loss"] for r in rows if "loss" in r and "step" in r}

    want, got = losses(bundle.path(rel).read_text()), losses(log.read_text())

    def same(s: int) -> bool:
        a, b = want.get(s), got.get(s)
        return a == b or (a is not None and b is not None and abs(b - a) <= rtol * abs(a))

    differ = [s for s in sorted(set(want) | set(got)) if not same(s)]
    if not differ:
        how = "identical" if rtol == 0 else f"within {rtol:g} relative"
        outcome.add("train", "training log", True, f"the loss of every one of {len(want)} logged steps is {how}")
        return
    s = differ[0]
    a, b = want.get(s), got.get(s)
    by = f" ({b - a:+.6g})" if a is not None and b is not None else ""
    outcome.add("train", "training log", False, f"{len(differ)} logged steps differ, first step {s}: recorded loss "
                f"{_num(a)}, re-trained {_num(b)}{by}")  # fmt: skip
