"""Stage 0: SPyNet trained without downloaded weights.

- ``synthetic``: synthetic (ref, supp, flow) pairs from real frames, exact ground truth.
- ``real``: real consecutive-frame pairs at LR scale (unsupervised fine-tuning).
- ``losses``: EPE, multi-scale supervised loss, unsupervised photometric + smoothness loss.
- ``evaluate``: EPE on held-out synthetic pairs, warp PSNR on real frames; ``python -m
  afvsr.flow.evaluate MODEL`` prints JSON.
- ``task``: the "flow" task of ``afvsr train`` (``afvsr.train.tasks.TASKS``).
"""
