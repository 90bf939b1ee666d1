"""Language modelling on clean held-out text: validation loss, next-token accuracy and perplexity.

These are the metrics of "Is Training Data Quality or Quantity More Impactful to Small Language Model
Performance?" (Sajith and Kathala, 2024), measured as training measures its loss: the held-out documents are
tokenized, each followed by the end-of-document id, concatenated into one stream and cut into disjoint windows of
context + 1 ids; every position after the first of a window is predicted from the ids before it in that window.
- loss: mean cross-entropy in nats per predicted token (comparable with the training loss, without z-loss);
- accuracy: share of predicted tokens whose argmax is the true next token;
- perplexity: exp(loss).
`loss_stderr` and `accuracy_stderr` are standard errors of the per-window means (windows are the natural independent units).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: The sandbox's held-out file (harness.sandbox.evalsets): {"id", "text"} lines of clean stories.
HELDOUT_FILE = "heldout.jsonl"


def heldout_texts(data_root: Path | None) -> list[str] | None:
    """The held-out documents of a pool suite's data folder, or None when it has none."""
    if data_root is None or not (data_root / HELDOUT_FILE).is_file():
        return None
    lines = (data_root / HELDOUT_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def pad_windows(windows: list[list[int]]) -> tuple[Any, Any]:
    """Token windows right-padded into one [n, longest] id tensor, and the [n, longest - 1] mask of the
    positions whose next token is real (what a next-token loss over the batch should count)."""
    import torch

    width = max(len(w) for w in windows)
    ids = torch.zeros((len(windows), width), dtype=torch.long)
    mask = torch.zeros((len(windows), width - 1), dtype=torch.bool)
    for r, w in enumerate(windows):
        ids[r, : len(w)] = torch.tensor(w)
        mask[r, : len(w) - 1] = True
    return ids, mask


def heldout_lm_metrics(
    model: Any, tokenizer: Any, texts: list[str], *, eot_id: int, context: int, device: str, batch_size: int = 32
) -> dict[str, float]:
    """{loss, loss_stderr, accuracy, perplexity, tokens, windows} of `model` on `texts` (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    stream: list[int] = []
    for enc in tokenizer.encode_batch(texts, add_special_tokens=False):
        stream += [*enc.ids, eot_id]
    width = context + 1
    windows = [stream[i : i + width] for i in range(0, len(stream) - 1, width)]
    windows = [w for w in windows if len(w) > 1]
    if not windows:
        raise ValueError("the held-out text is empty")
    sums: list[float] = []
    counts: list[int] = []
    right_counts: list[int] = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            ids, mask = pad_windows(batch)
            ids = ids.to(device)
            logits = model(ids[:, :-1]).float()
            targets = ids[:, 1:]
            nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").cpu()
            right = (logits.argmax(-1) == targets).cpu()
            for j in range(len(batch)):
                m = mask[j]
                sums.append(float(nll[j][m].sum()))
                counts.append(int(m.sum()))
                right_counts.append(int(right[j][m].sum()))
    tokens = sum(counts)
    loss = sum(sums) / tokens
    return {
        "loss": loss,
        "loss_stderr": _stderr([s / c for s, c in zip(sums, counts, strict=True)]),
        "accuracy": sum(right_counts) / tokens,
        "accuracy_stderr": _stderr([r / c for r, c in zip(right_counts, counts, strict=True)]),
        "perplexity": math.exp(loss),
        "tokens": float(tokens),
        "windows": float(len(counts)),
    }


def _stderr(values: list[float]) -> float:
    """Standard error of the mean of per-window values (0 for a single window)."""
    k = len(values)
    if k < 2:
        return 0.0
    mean = sum(values) / k
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (k - 1) / k)
