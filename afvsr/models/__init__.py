"""The models: SPyNet, BasicVSR, IconVSR, AFVSR (the method) and Bicubic.

Every video model maps ``lq (b, t, 3, h, w)`` in [0, 1] to ``(b, t, 3, scale*h, scale*w)``.

Each class declares how it runs over a clip, for callers (upscale, eval) instead of their reading
forward's signature:

- ``clip_modes``: the ``mode`` values ``forward`` takes (empty: no ``mode``, one whole-clip pass);
- ``default_mode``: the one ``forward`` uses when none is given (None when ``clip_modes`` is empty);
- ``takes_frames``: whether ``forward(lq, frames=slice)`` rebuilds only those output frames.
"""

from __future__ import annotations

from torch import nn

from afvsr.models.afvsr_net import AFVSR, AttentionFusionVSR
from afvsr.models.basicvsr import BasicVSR
from afvsr.models.bicubic import Bicubic
from afvsr.models.iconvsr import IconVSR
from afvsr.models.spynet import SPyNet
from afvsr.names import current_kwargs, current_name

# The one place a model family's name maps to its class (checkpoints, configs and the CLI use it);
# old names ("fusion" for "afvsr") are mapped in one place too, afvsr.names.OLD_NAMES.
MODELS: dict[str, type[nn.Module]] = {
    "bicubic": Bicubic,
    "spynet": SPyNet,
    "basicvsr": BasicVSR,
    "iconvsr": IconVSR,
    "afvsr": AFVSR,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """``build_model("basicvsr", mid_channels=32, num_blocks=5)``; ValueError for an unknown name.

    Old names and arguments read as their current ones (``build_model("fusion", fusion="mean")``
    is ``build_model("afvsr", group_fusion="mean")``; see :mod:`afvsr.names`)."""
    if current_name(name) not in MODELS:
        raise ValueError(f"expected a model name in {sorted(MODELS)}, got {name!r}")
    return MODELS[current_name(name)](**current_kwargs(name, kwargs))


__all__ = [
    "AFVSR",
    "MODELS",
    "AttentionFusionVSR",
    "BasicVSR",
    "Bicubic",
    "IconVSR",
    "SPyNet",
    "build_model",
]
