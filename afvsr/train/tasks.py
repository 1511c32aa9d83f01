"""The one registry of training tasks: ``[run] task = "<key>"`` picks the class.

See ``docs/TRAINING_TASKS.md`` for the interface (``afvsr.train.task.Task``).
"""

from __future__ import annotations

from afvsr.flow.task import FlowTask
from afvsr.train.task import Task
from afvsr.train.vsr_task import VSRTask

TASKS: dict[str, type[Task]] = {
    "vsr": VSRTask,
    "flow": FlowTask,  # stage 0: SPyNet on synthetic flow from real frames
}
