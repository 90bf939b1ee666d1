"""The Ray executor of the staged tokenize (harness.data.staged_run): datatrove's, running each task as one plain
Ray task in the worker process itself.

datatrove's RayPipelineExecutor runs a task inside a process pool of an actor; when that task's process is killed
(the kernel's OOM killer picks the largest process: the task) the pool waits for it forever and so does the run.
Here a killed worker is a failed Ray task (no retry), which the driver reports; the task's logs, stats and
completion marker are datatrove's as before, so a re-run resumes per task.
"""

from __future__ import annotations

from typing import Any

try:
    from datatrove.executor import RayPipelineExecutor
except ImportError:  # pragma: no cover - datatrove is a dependency
    RayPipelineExecutor = object  # type: ignore[assignment,misc]


def _run_rank(executor: Any, rank: int) -> None:
    executor._run_for_rank(rank)


class RayTaskExecutor(RayPipelineExecutor):  # type: ignore[misc]
    """datatrove's Ray executor with `workers` plain Ray tasks in flight (one CPU each unless `cpus_per_task`)."""

    def run(self) -> None:
        import ray

        todo = list(self.get_incomplete_ranks(range(self.world_size)))
        if not todo:
            return
        self.save_executor_as_json()
        ref = ray.put(self)
        remote = ray.remote(_run_rank).options(num_cpus=self.cpus_per_task, max_retries=0, retry_exceptions=False)
        pending: list[Any] = []
        failures: list[BaseException] = []
        while todo or pending:
            while todo and len(pending) < self.workers:
                pending.append(remote.remote(ref, todo.pop(0)))
            done, pending = ray.wait(pending, num_returns=1)
            for task in done:
                try:
                    ray.get(task)
                except Exception as exc:  # the others run on: their work is kept for the re-run
                    failures.append(exc)
        if failures:
            raise failures[0]


def ray_executor(pipeline: list[Any], tasks: int, workers: int, logs: str, cpus_per_task: int) -> RayTaskExecutor:
    return RayTaskExecutor(pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=logs,
                           cpus_per_task=cpus_per_task)  # fmt: skip
