"""Analytic FLOP counts: run a model on meta tensors and add up its convolutions and matmuls.

Nothing is computed (meta tensors have shapes only), so counting a full-size model on a
320x180 clip takes a fraction of a second. One multiply-add counts as 2 FLOPs. Element-wise ops,
``grid_sample`` and interpolation are not counted (a few percent of the total for these models).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, lq_shape: tuple[int, ...], **forward_kwargs) -> dict[str, float]:
    """FLOPs of ``model(lq, **forward_kwargs)`` for ``lq`` of shape ``(b, t, 3, h, w)``.

    A model built under ``with torch.device("meta"):`` is used as is (no weights are ever made).

    Returns:
        ``{"total": FLOPs, "per_frame": total / (b*t), "<submodule>": FLOPs, ...}`` where the
        submodule keys are the model's direct children (e.g. spynet, propagation, reconstruction).
    """
    on_meta = all(p.device.type == "meta" for p in model.parameters())
    meta_model = model if on_meta else copy.deepcopy(model).to("meta")
    lq = torch.empty(lq_shape, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta_model(lq, **forward_kwargs)
    total = float(counter.get_total_flops())
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    result = {"total": total, "per_frame": total / (lq_shape[0] * lq_shape[1])}
    for name, _ in model.named_children():
        result[name] = float(sum(per_module.get(f"{root}.{name}", {}).values()))
    return result
