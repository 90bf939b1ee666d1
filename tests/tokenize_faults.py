"""Faults for the staged tokenize tests, importable by the Ray cluster's workers (tests/ is on their PYTHONPATH).

`FaultStep` is harness.data.staged's task step that appends "stage rank" to a record file each time a task runs,
and injects one fault at one (stage, rank), once (a marker file records that it happened): `kill` ends the task's
process with SIGKILL as the kernel's OOM killer would; `unreachable` moves the task's input file away first, so the
task meets a missing input; `hang` blocks the task (for a test to cancel it mid-stage: the marker says it is there).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from harness.data.staged import StagedJob, StageStep


class FaultStep(StageStep):
    """A stage step with one injected fault (see the module docstring)."""

    def __init__(
        self, stage: str, job: StagedJob, *, fault: str, at: tuple[str, int], marker: str, record: str
    ) -> None:
        super().__init__(stage, job)
        self.fault, self.at, self.marker, self.record = fault, tuple(at), marker, record

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        with open(self.record, "a") as fh:
            fh.write(f"{self.stage} {rank}\n")
        marker = Path(self.marker)
        if (self.stage, rank) == self.at and not marker.exists():
            marker.write_text(f"{self.fault} {self.stage} {rank} pid {os.getpid()}\n")
            if self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.fault == "unreachable":
                path = Path(self.job.files[rank][0])
                path.rename(path.with_name(path.name + ".away"))
            elif self.fault == "hang":
                time.sleep(600)
        return super().run(data, rank, world_size)
