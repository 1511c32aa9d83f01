"""Stage 0: SPyNet trained without downloaded weights (the library; the "flow" training task is
``afvsr.train.flow_task``, which uses it — nothing here imports ``afvsr.train``).

- ``synthetic``: synthetic (ref, supp, flow) pairs from real frames, exact ground truth.
- ``real``: real consecutive-frame pairs at LR scale (unsupervised fine-tuning).
- ``pairs``: the ``[data]`` keys of a flow config (``DATA_FIELDS``) and the datasets they make.
- ``losses``: EPE, multi-scale supervised loss, unsupervised photometric + smoothness loss.
- ``evaluate``: EPE on held-out synthetic pairs, warp PSNR on real frames.
- ``cli``: ``afvsr flow-eval MODEL`` prints those as JSON (``python -m afvsr.flow.evaluate`` too).
"""
