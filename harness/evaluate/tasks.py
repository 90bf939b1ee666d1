"""lm-eval task objects for a suite's tasks: lm-eval's own config (when the suite names one) overridden by our
YAML, the suite's shots, and the data loaded by `harness.evaluate.data` (mirror, files or hub)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.evaluate.data import DataRecord, MissingData, load_task_data
from harness.evaluate.suites import SuiteTask, tasks_dir

#: lm-eval keys that only make sense inside lm-eval's own registry (groups, tags); dropped from base configs.
_REGISTRY_KEYS = ("tag", "group", "group_alias", "task_alias")


@dataclass
class BuiltTask:
    """One lm-eval task built for a suite task (a suite task with subtasks builds one per subtask)."""

    suite_task: str
    subtask: str | None
    task: Any  # lm_eval.api.task.ConfigurableTask
    data: DataRecord

    @property
    def name(self) -> str:
        return self.task.config.task


def lm_eval_tasks_root() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def task_config(task: SuiteTask, subtask: str | None = None) -> dict[str, Any]:
    """The merged lm-eval config: base (lm-eval's file) <- our YAML <- task name and shots from the suite."""
    from lm_eval.tasks._yaml_loader import load_yaml

    config: dict[str, Any] = {}
    if task.lm_eval_base:
        base = lm_eval_tasks_root() / task.lm_eval_base.format(subtask=subtask or "")
        config = load_yaml(base)
        for key in _REGISTRY_KEYS:
            config.pop(key, None)
    config.update(load_yaml(tasks_dir() / task.yaml))
    config["task"] = task.name if subtask is None else f"{task.name}_{subtask}"
    config["num_fewshot"] = task.shots
    return config


def build_tasks(task: SuiteTask, *, data_root: Path | None, fewshot_seed: int) -> list[BuiltTask]:
    """lm-eval tasks for `task` with their data loaded; raises MissingData naming the task when data is absent."""
    from lm_eval.api.task import ConfigurableTask

    built = []
    for sub in task.subtasks or (None,):
        config = task_config(task, sub)
        dataset, record = load_task_data(config["task"], config, mirror=data_root, extra_names=task.mirror)
        # lm-eval calls custom_dataset(**metadata, **dataset_kwargs) instead of datasets.load_dataset
        config["custom_dataset"] = lambda _ds=dataset, **_: _ds
        lm_task = ConfigurableTask(config=config)
        lm_task.set_fewshot_seed(seed=fewshot_seed)
        built.append(BuiltTask(task.name, sub, lm_task, record))
    return built


__all__ = ["BuiltTask", "MissingData", "build_tasks", "task_config"]
