"""DCLM's scoring of rendered requests (llm-foundry 0.9.0's metrics in `eval/metrics/nlp.py`).

- multiple choice and schema: the choice with the lowest perplexity per continuation token, i.e. the highest mean
  log-likelihood per token; ties go to the first choice;
- language modelling: correct when every continuation token is the model's argmax;
- generation: the output is cut at the first stop sequence (`re.split` on the sequences joined by `|`, as
  llm-foundry does), the answer is what follows the last chain-of-thought delimiter, then output and accepted
  answers are normalised (lower case, `_` and punctuation to spaces, no articles, single spaces) and the output is
  correct when it starts with any of them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

_PUNCTUATION = frozenset(string.punctuation + "‘’´`")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def best_choice(loglikelihoods: Sequence[float], lengths: Sequence[int]) -> int:
    """Index of the choice with the highest log-likelihood per continuation token (first on ties)."""
    means = [ll / max(1, n) for ll, n in zip(loglikelihoods, lengths, strict=True)]
    return means.index(max(means))


def normalize_answer(text: str) -> str:
    """llm-foundry's normalisation of generated and accepted answers."""
    text = text.replace("_", " ").lower()
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split()).strip()


def extract_answer(output: str, stop_sequences: Sequence[str], cot_delimiter: str) -> str:
    """The part of a generation that is compared: before the first stop sequence, after the last CoT delimiter."""
    if stop_sequences:
        output = re.split("|".join(stop_sequences), output)[0]
    if cot_delimiter:
        output = output.split(cot_delimiter)[-1]
    return output


def generation_correct(
    output: str, answers: Sequence[str], *, stop_sequences: Sequence[str] = (), cot_delimiter: str = "",
    normalize: bool = True,
) -> bool:  # fmt: skip
    """DCLM's exact match of one generation against the accepted answers."""
    final = extract_answer(output, stop_sequences, cot_delimiter)
    if normalize:
        final, labels = normalize_answer(final), {normalize_answer(a) for a in answers}
    else:
        final, labels = final.strip(), {a.strip() for a in answers}
    return any(final.startswith(label) for label in labels)
