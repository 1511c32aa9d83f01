"""The one table of training tasks: ``[run] task = "<key>"`` picks the class.

See ``docs/TRAINING_TASKS.md`` for the interface (``afvsr.train.task.Task``). Both tasks live in
this package; ``afvsr.flow`` is the stage-0 library the "flow" task uses (it imports nothing from
``afvsr.train``).
"""

from __future__ import annotations

from afvsr.train.flow_task import FlowTask
from afvsr.train.task import Task
from afvsr.train.vsr_task import VSRTask

TASKS: dict[str, type[Task]] = {
    "vsr": VSRTask,
    "flow": FlowTask,  # stage 0: SPyNet on synthetic flow from real frames
}
