"""Continuous metrics of likelihood-scored tasks, from every choice's summed log-probability (AI2's definitions).

Accuracy stays the scored metric; these are recorded beside it because at small scale they carry more signal
(DataDecide, Magnusson et al. 2025; Signal and Noise, Heineman et al. 2025). With l_k the summed log-probability of
choice k, c the gold choice and n_k the choice's length (tokens or characters), each example gives:

- `correct_prob` = exp(l_c); `correct_prob_per_token` / `_per_char` = exp(l_c / n_c);
- `norm_correct_prob` = exp(l_c - logsumexp_k l_k), the softmax over the choices (per-length variants: the
  softmax over l_k / n_k);
- `margin` = exp(l_c) - max_{k != c} exp(l_k) (per-length variants on l_k / n_k);
- `total_prob` = exp(logsumexp_k l_k) (per-length variants likewise);
- `bits_per_byte` = -l_c / (bytes_c x ln 2), of the gold continuation (lower is better).

A task's value is the mean over its examples (macro-averaged over subtasks, as its accuracy is). Tasks with one
continuation per example (language modelling) have no `norm_correct_prob`, `margin` or `total_prob`: with one
choice they are constant or undefined.

Per-example choices are kept as `{"gold": [...], "logprobs": [[...]], "tokens": [[...]], "chars": [[...]],
"bytes": [[...]]}` per subtask (eval.json's `choices`): one row per example, one column per choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The length normalisations: none (summed log-probability), per token, per character.
NORMS = ("", "_per_token", "_per_char")
#: Metrics that need two or more choices.
MULTI_CHOICE = ("norm_correct_prob", "margin", "total_prob")
#: Every metric an example can give, in display order.
METRICS = (
    *(f"correct_prob{n}" for n in NORMS),
    *(f"{m}{n}" for m in MULTI_CHOICE for n in NORMS),
    "bits_per_byte",
)
#: Metrics where lower is better (every other one: higher is better).
LOWER_IS_BETTER = frozenset({"bits_per_byte"})


@dataclass(frozen=True)
class Choices:
    """One example's choices as the model scored them."""

    gold: int
    """Index of the correct choice."""
    logprobs: tuple[float, ...]
    """Summed log-probability (nats) of each choice's continuation."""
    tokens: tuple[int, ...]
    """Tokens the model scored for each continuation."""
    chars: tuple[int, ...]
    """Characters of each continuation's text."""
    bytes: tuple[int, ...]
    """UTF-8 bytes of each continuation's text."""

    def __post_init__(self) -> None:
        k = len(self.logprobs)
        if not k or not len(self.tokens) == len(self.chars) == len(self.bytes) == k:
            raise ValueError(f"an example needs one log-probability and three lengths per choice, got {self!r}")
        if not 0 <= self.gold < k:
            raise ValueError(f"gold choice {self.gold} is not among the {k} choices")


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def example_metrics(ex: Choices) -> dict[str, float]:
    """Every continuous metric of one example (see the module docstring)."""
    out: dict[str, float] = {}
    lengths = {"": None, "_per_token": ex.tokens, "_per_char": ex.chars}
    for norm, per in lengths.items():
        scores = list(ex.logprobs) if per is None else [lp / max(1, n) for lp, n in zip(ex.logprobs, per, strict=True)]
        gold = scores[ex.gold]
        out[f"correct_prob{norm}"] = math.exp(gold)
        if len(scores) > 1:
            total = _logsumexp(scores)
            out[f"norm_correct_prob{norm}"] = math.exp(gold - total) if total > -math.inf else 0.0
            out[f"margin{norm}"] = math.exp(gold) - max(math.exp(s) for i, s in enumerate(scores) if i != ex.gold)
            out[f"total_prob{norm}"] = math.exp(total)
    out["bits_per_byte"] = -ex.logprobs[ex.gold] / (max(1, ex.bytes[ex.gold]) * math.log(2))
    return out


def examples_of(block: Mapping[str, Any]) -> list[Choices]:
    """The `Choices` of one subtask's stored block (the module docstring's format)."""
    rows = zip(block["gold"], block["logprobs"], block["tokens"], block["chars"], block["bytes"], strict=True)
    return [Choices(int(g), tuple(map(float, lp)), tuple(t), tuple(c), tuple(b)) for g, lp, t, c, b in rows]


def block_of(examples: Sequence[Choices]) -> dict[str, list[Any]]:
    """One subtask's examples as the stored block (the inverse of `examples_of`)."""
    return {
        "gold": [e.gold for e in examples],
        "logprobs": [list(e.logprobs) for e in examples],
        "tokens": [list(e.tokens) for e in examples],
        "chars": [list(e.chars) for e in examples],
        "bytes": [list(e.bytes) for e in examples],
    }


def subtask_metrics(examples: Sequence[Choices]) -> dict[str, float]:
    """Mean over examples of each metric every example has (a metric some example lacks is left out)."""
    if not examples:
        return {}
    per = [example_metrics(e) for e in examples]
    names = [m for m in METRICS if all(m in p for p in per)]
    return {m: math.fsum(p[m] for p in per) / len(per) for m in names}


def task_metrics(blocks: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """A task's continuous metrics from its subtasks' stored blocks: the macro average over subtasks of each metric
    every subtask has (as the task's accuracy averages its subtasks)."""
    per_sub = [subtask_metrics(examples_of(b)) for b in blocks.values()]
    per_sub = [s for s in per_sub if s]
    if not per_sub:
        return {}
    names = [m for m in METRICS if all(m in s for s in per_sub)]
    return {m: math.fsum(s[m] for s in per_sub) / len(per_sub) for m in names}


def best_per_token(ex: Choices) -> int:
    """The choice with the highest log-likelihood per continuation token, first on ties (DCLM's accuracy)."""
    means = [lp / max(1, n) for lp, n in zip(ex.logprobs, ex.tokens, strict=True)]
    return means.index(max(means))
