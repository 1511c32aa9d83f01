"""The models: SPyNet, BasicVSR, IconVSR, AttentionFusionVSR (the method) and Bicubic.

Every video model maps ``lq (b, t, 3, h, w)`` in [0, 1] to ``(b, t, 3, scale*h, scale*w)``.
"""

from __future__ import annotations

from torch import nn

from afvsr.models.basicvsr import BasicVSR
from afvsr.models.bicubic import Bicubic
from afvsr.models.fusion_vsr import AttentionFusionVSR
from afvsr.models.iconvsr import IconVSR
from afvsr.models.spynet import SPyNet

# The one place a model family's name maps to its class (checkpoints, configs and the CLI use it).
MODELS: dict[str, type[nn.Module]] = {
    "bicubic": Bicubic,
    "spynet": SPyNet,
    "basicvsr": BasicVSR,
    "iconvsr": IconVSR,
    "fusion": AttentionFusionVSR,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """``build_model("basicvsr", mid_channels=32, num_blocks=5)``; ValueError for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"expected a model name in {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**kwargs)


__all__ = [
    "MODELS",
    "AttentionFusionVSR",
    "BasicVSR",
    "Bicubic",
    "IconVSR",
    "SPyNet",
    "build_model",
]
