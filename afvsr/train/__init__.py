"""Training: config files, the iteration-based loop, exact resume, DDP (``afvsr train``).

- ``config``: the loop's schemas, validation, ``--set`` overrides (``load_config``);
  ``reference``: the config reference (``afvsr train --print-config``).
- ``task`` / ``tasks``: the task interface and the table of tasks (``docs/TRAINING_TASKS.md``).
- ``vsr_task``: BasicVSR, IconVSR and AFVSR, the method (stages 1 and 2); ``flow_task``: SPyNet
  (stage 0, on ``afvsr.flow``).
- ``loop``: the loop (``train(cfg, source=...)``); ``state``: checkpoints; ``sampler``: data
  order; ``logbook``: metrics.jsonl, TensorBoard, the console log; ``cli``: ``afvsr train``.
"""
