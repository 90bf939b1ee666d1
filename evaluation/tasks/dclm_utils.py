"""Helpers that lm-eval task YAMLs under evaluation/tasks/ reference with `!function dclm_utils.<name>`."""

from __future__ import annotations

import re
import string
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """llm-foundry's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def process_generation(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Exact match of a greedy generation against the answer or any alias (after normalisation)."""
    answers = [doc["answer"], *(doc.get("aliases") or [])]
    output = normalize_answer(results[0])
    hit = any(output.startswith(normalize_answer(a)) and normalize_answer(a) for a in answers)
    return {"exact_match": float(hit)}


def process_rolling(doc: dict[str, Any], results: list[float]) -> dict[str, tuple[float, int]]:
    """Per-document (log-likelihood, size) pairs that lm-eval's perplexity aggregations turn into bits per byte."""
    (loglikelihood,) = results
    text = doc["text"]
    n_bytes = len(text.encode("utf-8"))
    return {
        "word_perplexity": (loglikelihood, len(text.split())),
        "byte_perplexity": (loglikelihood, n_bytes),
        "bits_per_byte": (loglikelihood, n_bytes),
    }
