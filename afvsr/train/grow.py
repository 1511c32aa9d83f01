"""Start a deeper BasicVSR from a trained, shallower one (``[train] init_grow = true``).

A propagation branch is an input conv and a chain of residual blocks ``x + conv2(relu(conv1(x)))``.
A block whose ``conv2`` is zero is the identity, so a model with more blocks per branch, the
added ones zeroed after the file's, computes exactly what the file's model computes; training
then gives the added blocks work. The flow mode (``two-way`` or ``one-way``) may differ too: it
changes how the flows are computed, not any tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from afvsr.checkpoint import (
    check_tensor_shapes,
    kwargs_mismatch,
    read_model_file,
    resolve_model_path,
)
from afvsr.errors import AfvsrError
from afvsr.models.basicvsr import BasicVSR

# What may differ between the file and the model: depth (the model's at least the file's) and
# the flow mode. Everything else (width, scale, residual base) must agree.
GROWABLE = ("num_blocks", "flow_mode")


def load_grown_basicvsr(model: nn.Module, name_or_path: str) -> list[str]:
    """Load a BasicVSR model file into a BasicVSR ``model`` with as many or more residual blocks
    per branch; each block the file lacks starts as the identity (``conv2`` weight and bias 0,
    ``conv1`` as initialised).

    Returns:
        the names of the added blocks (``"propagation.backward_branch.blocks.5"``, …), in order.

    Raises:
        AfvsrError: a file of another family, with more blocks than the model, or differing in an
            argument other than ``num_blocks`` and ``flow_mode``; a tensor of the file the model
            lacks or of another shape.
    """
    path = str(resolve_model_path(name_or_path))
    found = read_model_file(path)
    if found.family != "basicvsr" or not isinstance(model, BasicVSR):
        raise AfvsrError(f"{path}: init_grow starts a basicvsr from a basicvsr model file")
    theirs = found.kwargs.get("num_blocks", 30)
    ours = model.kwargs["num_blocks"]
    if theirs > ours:
        raise AfvsrError(
            f"{path}: the file has {theirs} blocks per branch, [model] num_blocks = {ours}: "
            "init_grow only adds blocks"
        )
    mismatch = kwargs_mismatch(model, {**found.kwargs, **{k: model.kwargs[k] for k in GROWABLE}})
    if mismatch is not None:
        name, value, mine = mismatch
        raise AfvsrError(f"{path}: the file has {name} = {value!r}, [model] has {mine!r}")
    blocks = [
        f"propagation.{branch}_branch.blocks.{i}"
        for branch in ("backward", "forward")
        for i in range(theirs, ours)
    ]
    state = model.state_dict()
    prefixes = tuple(f"{name}." for name in blocks)
    kept = {k: v for k, v in state.items() if not k.startswith(prefixes)}
    check_tensor_shapes(
        {k: tuple(v.shape) for k, v in kept.items()},
        {k: tuple(v.shape) for k, v in found.tensors.items()},
        source=path,
    )
    model.load_state_dict({**state, **found.tensors}, strict=True)
    with torch.no_grad():
        for name in blocks:
            conv2 = model.get_submodule(name).conv2
            conv2.weight.zero_()
            conv2.bias.zero_()
    return blocks
