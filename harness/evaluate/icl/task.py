"""DCLM's tasks as lm-eval tasks: lm-eval stays the runner and the model interface, but the requests are the token
ids llm-foundry renders (`render.py`), handed to the model as `TokenText` so nothing is re-tokenized, and the
results are scored as llm-foundry scores them (`score.py`). A task with categories builds one lm-eval task per
category; the caller averages their accuracies (DCLM averages over categories)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.evaluate.data import DataRecord
from harness.evaluate.icl.files import load_rows, manifest
from harness.evaluate.icl.render import Example, Rendered, render
from harness.evaluate.icl.score import best_choice, generation_correct
from harness.evaluate.icl.spec import IclTask, get_icl_task

SOURCE = "dclm-local_data"


def _encoder(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    """Batch encoding as a Hugging Face tokenizer call does it for DCLM: special-token strings in the text are
    special tokens, none is added."""

    def encode_batch(texts: list[str]) -> list[list[int]]:
        flag = getattr(tokenizer, "encode_special_tokens", None)
        if flag is not None:
            tokenizer.encode_special_tokens = False
        try:
            return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        finally:
            if flag is not None:
                tokenizer.encode_special_tokens = flag

    return encode_batch


def _lm_eval_task(name: str, part: Rendered, metric: str, decode: Callable[[list[int]], str]) -> Any:
    import datasets
    from lm_eval.api.instance import Instance
    from lm_eval.api.metrics import mean
    from lm_eval.api.task import ConfigurableTask

    from harness.evaluate.lm import TokenText

    examples = list(part.examples)
    docs = datasets.Dataset.from_list([{"line": e.index, "n": i} for i, e in enumerate(examples)])
    generation = part.task.icl_task_type == "generation_task_with_answers"

    class DclmTask(ConfigurableTask):
        def fewshot_context(self, doc: dict[str, Any], num_fewshot: int, **_: Any) -> str:
            return ""  # the few-shot text is already inside the rendered ids

        def construct_requests(self, doc: dict[str, Any], ctx: str, **kwargs: Any) -> list[Any]:
            ex = examples[doc["n"]]
            meta = kwargs.get("metadata")
            out, texts = [], {}  # choices usually share one context: decode it once
            for i, pair in enumerate(ex.pairs):
                if pair.context_ids not in texts:
                    texts[pair.context_ids] = TokenText(decode(list(pair.context_ids)), pair.context_ids)
                context = texts[pair.context_ids]
                if generation:
                    gen = {"until": list(part.stop_sequences), "max_gen_toks": part.max_new_tokens, "do_sample": False}
                    out.append(Instance("generate_until", doc, (context, gen), i, meta))
                else:
                    cont = TokenText(decode(list(pair.continuation_ids)), pair.continuation_ids)
                    out.append(Instance("loglikelihood", doc, (context, cont), i, meta))
            return out

        def process_results(self, doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
            return {metric: float(_correct(part, examples[doc["n"]], results))}

        def aggregation(self) -> dict[str, Any]:
            return {metric: mean}

        def higher_is_better(self) -> dict[str, bool]:
            return {metric: True}

    config = {
        "task": name, "custom_dataset": lambda **_: datasets.DatasetDict({"test": docs}), "test_split": "test",
        "output_type": "generate_until" if generation else "loglikelihood", "doc_to_text": lambda _doc: "",
        "doc_to_target": lambda _doc: "", "num_fewshot": 0, "target_delimiter": "",
        "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}],
        "process_results": lambda _doc, _results: {},  # (overridden above; set so lm-eval looks up no metric)
        "metadata": {"version": 1.0},
    }  # fmt: skip
    if generation:
        config["generation_kwargs"] = {"until": list(part.stop_sequences), "max_gen_toks": part.max_new_tokens}
    task = DclmTask(config=config)
    task.rendered = part  # what was rendered (tests and logs read it)
    return task


def _correct(part: Rendered, ex: Example, results: list[Any]) -> bool:
    kind = part.task.icl_task_type
    if kind == "generation_task_with_answers":
        return generation_correct(
            results[0], ex.answers, stop_sequences=part.stop_sequences, cot_delimiter=part.task.cot_delimiter,
            normalize=part.task.do_normalization,
        )  # fmt: skip
    if kind == "language_modeling":
        return bool(results[0][1])
    lls = [r[0] for r in results]
    return best_choice(lls, [len(p.continuation_ids) for p in ex.pairs]) == ex.gold


def build_icl_tasks(
    label: str, *, suite_task: str, metric: str, shots: int, data_root: Path, tokenizer: Any, first: int | None = None
) -> list[Any]:
    """One BuiltTask per category (one without categories) for DCLM task `label`, its data read from `data_root`
    (MissingData when absent or not DCLM's file) and rendered with the model's `tokenizer`; `first`: only the
    first examples (of each category) are rendered, the same as in a full rendering."""
    from harness.evaluate.tasks import BuiltTask

    spec: IclTask = get_icl_task(label)
    loaded = load_rows(suite_task, data_root, spec.dataset_uri)
    parts = render(spec, loaded.rows, _encoder(tokenizer), shots=shots, first=first)
    record = DataRecord(SOURCE, str(loaded.path), {"test": loaded.sha256}, f"llm-foundry@{manifest().commit[:12]}")

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False)

    built = []
    for part in parts:
        name = suite_task if part.category is None else f"{suite_task}_{part.category}"
        task = _lm_eval_task(name, part, metric, decode)
        built.append(BuiltTask(suite_task, part.category, task, record))
    return built
