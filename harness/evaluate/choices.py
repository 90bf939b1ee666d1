"""Every choice of every likelihood-scored example, from lm-eval's logged samples: the summed log-probability of
each continuation and its length in tokens, characters and bytes (`harness.evaluate.continuous.Choices`).

Three kinds of task give them: lm-eval's multiple-choice tasks (the sandbox's fact cloze and next sentence), its
one-continuation log-likelihood tasks (last word: one choice, the gold one) and DCLM's tasks rendered as
llm-foundry renders them (multiple choice, schema and language modelling; the token counts are the rendered ids).
Generation and rolling log-likelihood (perplexity) tasks have no choices: `choices_of` returns None for them.
"""

from __future__ import annotations

from typing import Any

from harness.evaluate.continuous import Choices


def continuation_tokens(lm: Any, context: str, continuation: str) -> int:
    """How many tokens the model scores for `continuation` (TemplateLM's own encoding of the pair, or the ids of
    a pre-tokenized continuation)."""
    ids = getattr(continuation, "ids", None)
    if ids is not None:
        return max(1, len(ids))
    if context == "":
        return max(1, len(lm.tok_encode(continuation)))
    return max(1, len(lm._encode_pair(context, continuation)[1]))


def gold_index(task: Any, doc: dict[str, Any]) -> int:
    """The correct choice's index, as lm-eval resolves it (a target may be the choice's text); for DCLM's rendered
    tasks, the rendered example's gold."""
    rendered = getattr(task, "rendered", None)
    if rendered is not None:
        gold = rendered.examples[doc["n"]].gold
        if gold is None:
            raise ValueError(f"task {task.config.task!r}: a generation example has no gold choice")
        return int(gold)
    if task.OUTPUT_TYPE == "loglikelihood":
        return 0  # one continuation, the target itself
    gold = task.doc_to_target(doc)
    gold = gold[0] if isinstance(gold, list) else gold
    return task.doc_to_choice(doc).index(gold) if isinstance(gold, str) else int(gold)


def choices_of(lm: Any, task: Any, samples: list[dict[str, Any]]) -> list[Choices] | None:
    """Every logged sample's choices, in the samples' order; None for tasks not scored by choice likelihoods."""
    if task.OUTPUT_TYPE not in ("multiple_choice", "loglikelihood"):
        return None
    out = []
    for s in samples:
        conts = [str(args[1]) for args in s["arguments"]]
        out.append(
            Choices(
                gold=gold_index(task, s["doc"]),
                logprobs=tuple(float(resp[0][0]) for resp in s["resps"]),
                tokens=tuple(continuation_tokens(lm, *args) for args in s["arguments"]),
                chars=tuple(len(c) for c in conts),
                bytes=tuple(len(c.encode("utf-8")) for c in conts),
            )
        )
    return out
