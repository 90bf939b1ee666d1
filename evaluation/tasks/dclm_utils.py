"""Helpers that lm-eval task YAMLs under evaluation/tasks/ reference with `!function dclm_utils.<name>`."""

from __future__ import annotations

from typing import Any


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
