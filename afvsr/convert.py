"""Convert model files between afvsr and BasicSR / mmagic (MMEditing).

  afvsr convert BasicVSR_REDS4.pth basicvsr_reds4.safetensors       # published → afvsr
  afvsr convert model.safetensors model.pth --to basicsr            # afvsr → BasicSR (or mmagic)

Reading a .pth detects its layout (BasicSR or mmagic), its key set (params_ema is preferred over
params, as BasicSR does), the family (SPyNet, BasicVSR, IconVSR or IconVSR's EDVR extractor) and
its sizes, and prints them. .pth files are read with torch.load(weights_only=True) only. Writing
a .pth gives the container the other project loads strictly (BasicSR {"params": ...}; mmagic
{"meta": ..., "state_dict": {"generator....": ...}}).
"""

from __future__ import annotations

from pathlib import Path

import torch

from afvsr.errors import AfvsrError
from afvsr.io_utils import atomic_path


def published_to_afvsr(src: Path, dst: Path, *, keyframe_stride: int | None) -> str:
    """Write the afvsr model file of a published checkpoint; returns what was found."""
    from afvsr.checkpoint import save_model
    from afvsr.published import build, read_published

    pub = read_published(src, keyframe_stride=keyframe_stride)
    if pub.family == "edvr":
        raise AfvsrError(
            f"{src}: {pub.describe()}: an IconVSR extractor on its own, not a model afvsr files "
            "hold; training reads the .pth as it is (afvsr.checkpoint.load_extractor)"
        )
    model = build(pub.family, pub.kwargs)
    model.load_state_dict(pub.tensors, strict=True)
    save_model(model, dst, extra={"converted_from": f"{pub.layout} {pub.key_set}"})
    ignored = f"; not weights, left out: {', '.join(pub.ignored)}" if pub.ignored else ""
    return f"{src}: {pub.describe()}{ignored}"


def afvsr_to_published(src: Path, dst: Path, layout: str) -> str:
    """Write the BasicSR/mmagic checkpoint of an afvsr model file; returns what was written."""
    from afvsr.checkpoint import read_model_file
    from afvsr.published import from_afvsr

    found = read_model_file(src)
    try:
        obj = from_afvsr(found.family, found.kwargs, found.tensors, layout)
    except ValueError as exc:
        raise AfvsrError(f"{src}: cannot be written in {layout}'s layout: {exc}") from None
    with atomic_path(dst) as tmp:
        torch.save(obj, tmp)
    note = ""
    if found.kwargs.get("upsample_mode", "bicubic") != "bilinear":
        note = (
            f"; note: this model adds a bicubic residual base, {layout}'s network a bilinear one, "
            "so its outputs there differ slightly from afvsr's"
        )
    if found.kwargs.get("flow_mode", "two-way") != "two-way":
        note += (
            f"; its backward flow is derived from the forward one, {layout}'s network runs SPyNet "
            "both ways, so its outputs there differ"
        )
    if found.kwargs.get("boundary", "reference") != "reference":
        note += f"; IconVSR's clip ends are handled as {layout} does there, not mirrored"
    return f"{src}: {found.description} -> {dst} ({layout} layout){note}"
