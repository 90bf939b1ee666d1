"""DCLM's in-context-learning task settings (`evaluation/dclm/heavy.toml`, a copy of DCLM's eval/heavy.yaml) as
frozen dataclasses; the defaults are the values DCLM's `build_icl_evaluators` passes when a task names none."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from harness.config import ConfigError, doc, from_dict, read_toml
from harness.errors import unknown_name
from harness.resources import resource_dir

IclType = Literal["multiple_choice", "schema", "language_modeling", "generation_task_with_answers"]


@dataclass(frozen=True, kw_only=True)
class IclTask:
    """One entry of DCLM's `icl_tasks` list."""

    label: str = doc("DCLM's task label (the name results carry).")
    dataset_uri: str = doc("Data file, relative to the folder holding DCLM's local_data/ (and gpqa_data/).")
    icl_task_type: IclType = doc("llm-foundry's dataset class: how requests are built and scored.")
    num_fewshot: int = doc("Few-shot examples DCLM uses.")
    continuation_delimiter: str = doc("Between an example's context and its answer.", default=" ")
    question_prelimiter: str = doc("Before every context, few-shot ones included.", default="")
    cot_delimiter: str = doc("Generation: between chain of thought and answer; the answer follows its last copy.",
                             default="")  # fmt: skip
    early_stopping_criteria: tuple[str, ...] = doc("Generation: stop sequences.", default=())
    has_categories: bool = doc("Rendered per `category` (own sampler each) and averaged over categories.",
                               default=False)  # fmt: skip
    prompt_string: str = doc("Text before the few-shot examples.", default="")
    example_delimiter: str = doc("Between examples.", default="\n")
    max_seq_len: int = doc("Context + continuation are cut from the left to fit this many tokens.", default=2048)
    fewshot_random_seed: int = doc("Seed of the few-shot sampler.", default=1234)
    do_normalization: bool = doc("Generation: normalise answers before comparing.", default=True)

    def __post_init__(self) -> None:
        if self.num_fewshot < 0 or self.max_seq_len <= 0:
            raise ValueError(f"task {self.label!r}: num_fewshot must be >= 0 and max_seq_len > 0")
        if self.icl_task_type != "generation_task_with_answers" and (
            self.cot_delimiter or self.early_stopping_criteria
        ):
            raise ValueError(f"task {self.label!r}: cot_delimiter/early_stopping_criteria are for generation tasks")


@dataclass(frozen=True, kw_only=True)
class HeavyFile:
    """The contents of evaluation/dclm/heavy.toml."""

    tasks: tuple[IclTask, ...] = doc("DCLM's icl_tasks, in heavy.yaml's order.")


def heavy_path() -> Path:
    return resource_dir("evaluation") / "dclm" / "heavy.toml"


@cache
def icl_tasks() -> dict[str, IclTask]:
    """Every DCLM ICL task by label."""
    path = heavy_path()
    tasks = from_dict(HeavyFile, read_toml(path), str(path)).tasks
    labels = [t.label for t in tasks]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: a label appears twice")
    return {t.label: t for t in tasks}


def get_icl_task(label: str) -> IclTask:
    tasks = icl_tasks()
    if label not in tasks:
        raise unknown_name("DCLM ICL task", label, list(tasks))
    return tasks[label]
