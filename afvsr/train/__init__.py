"""Training: config files, the iteration-based loop, exact resume, DDP (``afvsr train``).

- ``config``: schemas, validation, ``--set`` overrides (``load_config``).
- ``task`` / ``tasks``: the task interface and the registry (``docs/TRAINING_TASKS.md``).
- ``vsr_task``: BasicVSR, IconVSR and the fusion model (stages 1 and 2).
- ``loop``: the loop (``train(cfg, source=...)``); ``state``: checkpoints; ``sampler``: data order.
"""
