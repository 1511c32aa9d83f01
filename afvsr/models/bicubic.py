"""Bicubic upsampling as a model with the same interface as the networks (no parameters).

Provenance: the "Bicubic" row of every VSR table: MATLAB's ``imresize`` (cubic a = -0.5).
"""

from __future__ import annotations

from torch import Tensor, nn

from afvsr.imresize import imresize
from afvsr.models.common import check_lq, check_scale, constructor_kwargs


class Bicubic(nn.Module):
    """``(b, t, 3, h, w) → (b, t, 3, scale*h, scale*w)`` by MATLAB-compatible bicubic, clamped to [0, 1]."""

    # How the model runs over a clip (see afvsr.models).
    clip_modes: tuple[str, ...] = ()
    default_mode: str | None = None
    takes_frames = False

    def __init__(self, *, scale: int = 4) -> None:
        super().__init__()
        self.kwargs = constructor_kwargs(Bicubic.__init__, locals())
        self.scale = check_scale(scale)

    def forward(self, lq: Tensor) -> Tensor:
        check_lq(lq)
        return imresize(lq, scale=self.scale).clamp_(0, 1)
