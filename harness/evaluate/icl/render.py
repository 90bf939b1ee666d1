"""Requests rendered exactly as llm-foundry 0.9.0's in-context-learning datasets render them for DCLM.

The rules (llm-foundry `in_context_learning_evaluation.py` and `eval/datasets/utils.py` at v0.9.0, pinned by the
golden token ids in `reference/dclm-eval/golden/`):

- every top-level string field is `.strip()`ped (list items are not); generation tasks first collect the answer
  set and the longest answer from the unstripped rows;
- a few-shot example is `[delimiter][prelimiter]context + continuation_delimiter + answer` (the delimiter only when
  text precedes it; answers get no prefix space); schema tasks put the prelimiter before the delimiter;
- the evaluated context is `"\\n" + prelimiter + query + continuation_delimiter`, right-stripped, tokenized apart
  from the few-shot preamble; a scored continuation or choice gets a leading space when it lacks one;
- one `random.Random(seed)` per dataset (per category with `has_categories`) draws `set(rng.sample(range(N), k))`
  for each example in order; a drawn example is replaced by repeated `rng.choice`; examples appear in set order;
- contexts are cut from the left so that context + continuation fits `max_seq_len` (generation: the context fits
  `max_seq_len` minus the longest answer, +10 tokens when there is a chain of thought).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.evaluate.icl.spec import IclTask

#: Texts -> token ids, one list per text, no special tokens added (e.g. `tokenizers.Tokenizer.encode_batch`).
EncodeBatch = Callable[[list[str]], list[list[int]]]

#: llm-foundry's _MAX_ANSWER_BUFFER_LENGTH: extra generation budget for chain-of-thought tasks.
ANSWER_BUFFER = 10


@dataclass(frozen=True)
class Pair:
    """One scored request: the model scores `continuation_ids` given `context_ids`."""

    context_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]


@dataclass(frozen=True)
class Example:
    """One rendered example. `gold` indexes `pairs` (0 for language modelling, None for generation)."""

    index: int  # the example's line in the data file
    gold: int | None
    pairs: tuple[Pair, ...]
    category: str | None = None
    category_index: int = 0  # position within its category (has_categories)
    answers: tuple[str, ...] = ()  # generation: accepted answers, sorted


@dataclass(frozen=True)
class Rendered:
    """A task rendered over one data file (one category of it with has_categories)."""

    task: IclTask
    shots: int
    category: str | None
    examples: tuple[Example, ...]
    max_new_tokens: int = 0  # generation only
    stop_sequences: tuple[str, ...] = field(default=())


def fewshot_indices(n: int, k: int, example: int, rng: random.Random) -> set[int]:
    """llm-foundry's get_fewshot_sample_idxs: k distinct indices other than `example`, as a set."""
    k = min(n - 1, k)
    drawn = set(rng.sample(range(0, n), k))
    if example in drawn:
        drawn.remove(example)
        if len(drawn) >= n - 1:
            return drawn
        other = rng.choice(range(0, n))
        while other in drawn or other == example:
            other = rng.choice(range(0, n))
        drawn.add(other)
    return drawn


def trim_context(context: list[int], continuation: list[int], max_len: int) -> list[int]:
    """Cut the context from the left so that context + continuation fits `max_len` (llm-foundry's trim_context)."""
    if len(context) + len(continuation) > max_len:
        keep = max_len - len(continuation)
        if keep < 0:
            raise ValueError(f"a continuation of {len(continuation)} tokens is longer than {max_len}")
        context = context[-keep:]
    return context


def _space(text: str) -> str:
    return text if text.startswith(" ") else " " + text


class _Renderer:
    """The per-type parts of llm-foundry's dataset classes."""

    def __init__(self, task: IclTask, rows: list[dict[str, Any]], encode_batch: EncodeBatch, shots: int) -> None:
        self.t, self.rows, self.encode_batch, self.shots = task, rows, encode_batch, shots
        self.kind = task.icl_task_type
        self.has_cot = False
        self.max_answer = 0
        self.answer_sets: list[tuple[str, ...]] = []
        if self.kind == "generation_task_with_answers":
            self._prepare_generation()
        self.rows = [{k: v.strip() if isinstance(v, str) else v for k, v in r.items()} for r in self.rows]

    # --- generation: answers and the longest one, from the unstripped rows (llm-foundry's read_dataset) -------
    def _prepare_generation(self) -> None:
        self.has_cot = any("chain_of_thought" in r for r in self.rows)
        texts = []
        for r in self.rows:
            answers = [r["answer"], *(r.get("aliases") or [])]
            self.answer_sets.append(tuple(sorted(set(answers))))
            cot = r.get("chain_of_thought", "")
            for a in [r["answer"], *set(answers)]:
                texts.append(f"{cot}{self.t.cot_delimiter}{a}" if self.has_cot else a)
        longest = max((len(ids) for ids in self.encode_batch(list(dict.fromkeys(texts)))), default=0)
        self.max_answer = longest + (ANSWER_BUFFER if self.t.cot_delimiter else 0)

    @property
    def context_budget(self) -> int:
        if self.kind == "generation_task_with_answers":
            return max(self.t.max_seq_len, self.max_answer) - self.max_answer
        return self.t.max_seq_len

    # --- text ------------------------------------------------------------------------------------------------
    def context_key(self) -> str:
        return {"multiple_choice": "query", "schema": "context_options"}.get(self.kind, "context")

    def answer(self, row: dict[str, Any]) -> str:
        if self.kind == "multiple_choice":
            return row["choices"][row["gold"]]
        if self.kind == "language_modeling":
            return row["continuation"]
        if self.has_cot:
            return f"{row['chain_of_thought']}{self.t.cot_delimiter}{row['answer']}"
        return row["answer"]

    def shot_text(self, row: dict[str, Any], preceding: str) -> str:
        t = self.t
        if self.kind == "schema":
            ctx = row["context_options"][row["gold"]]
            ctx = f"{t.example_delimiter}{ctx}" if preceding else ctx
            return f"{t.question_prelimiter}{ctx}{t.continuation_delimiter}{row['continuation']}"
        return self.query_text(row, preceding) + self.answer(row)

    def query_text(self, row: dict[str, Any], preceding: str) -> str:
        t = self.t
        ctx = f"{t.question_prelimiter}{row[self.context_key()]}"
        ctx = f"{t.example_delimiter}{ctx}" if preceding else ctx
        return f"{ctx}{t.continuation_delimiter}"

    # --- one example -----------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0] if text else []

    def preamble(self, shots: set[int]) -> str:
        text = self.t.prompt_string
        for j in shots:
            text += self.shot_text(self.rows[j], text)
        return text

    def pairs(self, row: dict[str, Any], preamble: str) -> tuple[Pair, ...]:
        pre = self.encode(preamble)
        budget = self.context_budget
        if self.kind == "schema":
            if preamble:
                delim = self.t.continuation_delimiter.rstrip()
                options = [f"{self.t.question_prelimiter}{self.t.example_delimiter}{c}{delim}"
                           for c in row["context_options"]]  # fmt: skip
            else:
                options = [f"{self.t.question_prelimiter}{c}" for c in row["context_options"]]
            cont = self.encode(_space(row["continuation"]))
            return tuple(Pair(tuple(trim_context(pre + self.encode(o), cont, budget)), tuple(cont)) for o in options)
        context = pre + self.encode(self.query_text(row, preamble).rstrip())
        if self.kind == "multiple_choice":
            conts = [self.encode(_space(c)) for c in row["choices"]]
        elif self.kind == "language_modeling":
            conts = [self.encode(_space(row["continuation"]))]
        else:
            conts = [[]]
        return tuple(Pair(tuple(trim_context(context, c, budget)), tuple(c)) for c in conts)

    def render(self, first: int | None) -> list[Example]:
        rng = random.Random(self.t.fewshot_random_seed)
        out = []
        n = len(self.rows)
        for idx, row in enumerate(self.rows[:first]):  # the sampler draws in dataset order: later rows change nothing
            shots = fewshot_indices(n, self.shots, idx, rng) if self.shots > 0 else set()
            preamble = self.preamble(shots)
            gold = {"language_modeling": 0, "generation_task_with_answers": None}.get(self.kind, row.get("gold"))
            answers = self.answer_sets[idx] if self.answer_sets else ()
            out.append(Example(idx, gold, self.pairs(row, preamble), answers=answers))
        return out


def render(
    task: IclTask, rows: Sequence[dict[str, Any]], encode_batch: EncodeBatch, *, shots: int | None = None,
    first: int | None = None,
) -> list[Rendered]:  # fmt: skip
    """`task` rendered over the data file's `rows` (in file order): one `Rendered` per category (sorted) with
    `has_categories`, else one. `shots` defaults to DCLM's; `first` renders only each part's first examples, the same
    as in a full rendering (the sampler draws in dataset order; few-shot examples come from the whole part)."""
    k = task.num_fewshot if shots is None else shots
    if not task.has_categories:
        return [_render_part(task, list(rows), list(range(len(rows))), encode_batch, k, None, first)]
    parts = []
    for cat in sorted({r["category"] for r in rows}):
        lines = [i for i, r in enumerate(rows) if r["category"] == cat]
        parts.append(_render_part(task, [rows[i] for i in lines], lines, encode_batch, k, cat, first))
    return parts


def _render_part(
    task: IclTask, rows: list[dict[str, Any]], lines: list[int], encode_batch: EncodeBatch, shots: int,
    category: str | None, first: int | None,
) -> Rendered:  # fmt: skip
    r = _Renderer(task, rows, encode_batch, shots)
    examples = tuple(
        replace(e, index=lines[e.index], category=category, category_index=e.index) for e in r.render(first)
    )
    gen = task.icl_task_type == "generation_task_with_answers"
    return Rendered(
        task, shots, category, examples, max_new_tokens=max(r.max_answer, 1) if gen else 0,
        stop_sequences=task.early_stopping_criteria,
    )  # fmt: skip
