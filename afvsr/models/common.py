"""Building blocks shared by the BasicVSR family: flow warping, residual trunks, upsampling.

Provenance: BasicVSR (Chan et al., CVPR 2021), Sec. 3.1 ("propagation", "alignment",
"aggregation and upsampling"); the residual block without batch norm is EDSR's (Lim et al., 2017).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def channels_last_weights(model: nn.Module) -> nn.Module:
    """Store ``model``'s conv weights channels-last (4-D) / channels-last-3d (5-D), in place.

    The same model and numbers up to float rounding; oneDNN (CPU) and cuDNN run convolutions
    faster in this layout, in inference and in training (measured: a ``basicvsr-small`` training
    step 1.8x faster in bf16 on an AVX-512 CPU, 1.3x in fp32). Only ``nn.Conv2d``/``nn.Conv3d``
    weights change: other 4-D parameters (e.g. the modulated deformable conv's) stay as they are.
    The Parameter objects are kept, so an optimizer built before still holds them.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
        elif isinstance(module, nn.Conv3d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def check_lq(lq: Tensor, *, min_frames: int = 1) -> None:
    """Raise ValueError unless ``lq`` is a clip ``(b, t, 3, h, w)`` with t >= min_frames, h, w >= 1."""
    if not isinstance(lq, Tensor):
        raise ValueError(
            f"expected a torch.Tensor of shape (b, t, 3, h, w), got {type(lq).__name__}"
        )
    if lq.ndim != 5:
        raise ValueError(
            f"expected a clip of shape (b, t, 3, h, w) (5 dims), got {lq.ndim} dims {tuple(lq.shape)}"
        )
    b, t, c, h, w = lq.shape
    if c != 3:
        raise ValueError(f"expected 3 (RGB) channels at dim 2, got {c} in shape {tuple(lq.shape)}")
    if b < 1 or t < min_frames or h < 1 or w < 1:
        raise ValueError(
            f"expected a non-empty clip with at least {min_frames} frame(s), got shape {tuple(lq.shape)}"
        )


def check_scale(scale: int) -> int:
    """Return ``scale`` if it is a supported upscaling factor (2, 3 or 4), else raise ValueError."""
    if scale not in (2, 3, 4):
        raise ValueError(f"expected scale 2, 3 or 4, got {scale!r}")
    return scale


def constructor_kwargs(init, values: dict) -> dict:
    """What a model file records of a constructor call: every keyword-only parameter of ``init``
    (read from the signature, so the record cannot drift from it) with its value in ``values``
    (the constructor's ``locals()``), except sub-networks passed in (parameters defaulting to
    None, e.g. ``spynet``); tuples become lists, as JSON stores them."""
    out = {}
    for name, param in inspect.signature(init).parameters.items():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.default is None:
            continue
        value = values[name]
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def make_grid(h: int, w: int, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Pixel coordinates ``(1, 2, h, w)``: channel 0 is x (column), channel 1 is y (row)."""
    ys = torch.arange(h, device=device, dtype=dtype).view(1, h, 1).expand(1, h, w)
    xs = torch.arange(w, device=device, dtype=dtype).view(1, 1, w).expand(1, h, w)
    return torch.stack([xs, ys], dim=1)


def flow_warp(x: Tensor, flow: Tensor, *, padding_mode: str = "zeros") -> Tensor:
    """Backward-warp ``x`` with ``flow``: ``out[p] = x[p + flow[p]]``, bilinear.

    Args:
        x: ``(b, c, h, w)`` the frame (or features) to sample from.
        flow: ``(b, 2, h, w)`` displacement in pixels (channel 0 = x, channel 1 = y), defined on
            the output grid: with ``flow = spynet(ref, supp)``, ``flow_warp(supp, flow)`` ≈ ``ref``.
        padding_mode: ``"zeros"`` or ``"border"`` for samples outside ``x``.

    Returns:
        ``(b, c, h, w)`` the warped ``x``.
    """
    if x.shape[-2:] != flow.shape[-2:] or flow.shape[1] != 2:
        raise ValueError(
            f"expected flow (b, 2, h, w) matching x {tuple(x.shape)}, got {tuple(flow.shape)}"
        )
    _, _, h, w = x.shape
    # Coordinates are computed in fp32 even under autocast: bf16 cannot address pixels of a
    # 1280-wide frame to better than 8 px.
    flow32 = flow.float()
    coords = make_grid(h, w, device=x.device, dtype=torch.float32) + flow32  # (b, 2, h, w)
    # Normalise for align_corners=False (pixel p ↦ (2p + 1)/size - 1): the same samples as
    # align_corners=True, but no branch on the size (so an ONNX export keeps h, w dynamic), and a
    # size of 1 still moves with the flow.
    gx = coords[:, 0] * (2.0 / w) + (1.0 / w - 1.0)
    gy = coords[:, 1] * (2.0 / h) + (1.0 / h - 1.0)
    grid = torch.stack([gx, gy], dim=-1)  # (b, h, w, 2)
    return F.grid_sample(
        x, grid.to(x.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=False
    )


class ResidualBlock(nn.Module):
    """conv3x3 → ReLU → conv3x3, added to the input (EDSR's block, no batch norm)."""

    def __init__(self, *, mid_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(n, c, h, w) -> (n, c, h, w)``."""
        return x + self.conv2(self.relu(self.conv1(x)))


class ResidualBlocksWithInputConv(nn.Module):
    """An input conv3x3 + LeakyReLU(0.1) to ``mid_channels``, then ``num_blocks`` residual blocks.

    This is BasicVSR's propagation branch ("residual blocks" in Fig. 3 of the paper).
    """

    def __init__(self, *, in_channels: int, mid_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, mid_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        self.blocks = nn.Sequential(
            *[ResidualBlock(mid_channels=mid_channels) for _ in range(num_blocks)]
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(n, in_channels, h, w) -> (n, mid_channels, h, w)``."""
        return self.blocks(self.lrelu(self.conv_in(x)))


class PixelShuffleUpsampler(nn.Module):
    """Upsample features by ``scale`` with sub-pixel convolutions, each followed by LeakyReLU(0.1).

    ×4 is two ×2 stages (conv 64→256, shuffle) as in BasicVSR; ×2 is one such stage; ×3 is one
    conv 64→576 and a ×3 shuffle.
    """

    def __init__(self, *, mid_channels: int, scale: int) -> None:
        super().__init__()
        factors = {2: [2], 3: [3], 4: [2, 2]}[check_scale(scale)]
        layers: list[nn.Module] = []
        for f in factors:
            layers += [
                nn.Conv2d(mid_channels, mid_channels * f * f, 3, 1, 1),
                nn.PixelShuffle(f),
                nn.LeakyReLU(0.1, inplace=True),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(n, c, h, w) -> (n, c, scale*h, scale*w)``."""
        return self.body(x)


UPSAMPLE_MODES = ("bicubic", "bilinear")


def check_upsample_mode(mode: str) -> str:
    """Return ``mode`` if it is a residual base of :class:`Reconstruction`, else raise ValueError."""
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"expected upsample_mode in {UPSAMPLE_MODES}, got {mode!r}")
    return mode


class Reconstruction(nn.Module):
    """Features of one frame → the HR frame: upsample, conv_hr, conv_last, plus an upsampled LR.

    BasicVSR's "aggregation and upsampling" after its direction-fusion conv; AFVSR (the method)
    reuses it unchanged so it can be warm-started from a trained BasicVSR. The residual base is
    ``F.interpolate(lr, scale_factor=scale, mode=upsample_mode, align_corners=False)``:
    ``"bilinear"`` is what BasicSR's and mmagic's BasicVSR/IconVSR use (their published weights
    need it), ``"bicubic"`` what afvsr's own shipped weights were trained with.
    """

    def __init__(self, *, mid_channels: int, scale: int, upsample_mode: str = "bicubic") -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.upsample_mode = check_upsample_mode(upsample_mode)
        self.upsample = PixelShuffleUpsampler(mid_channels=mid_channels, scale=scale)
        self.conv_hr = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv_last = nn.Conv2d(mid_channels, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, feat: Tensor, lr: Tensor) -> Tensor:
        """feat ``(n, mid_channels, h, w)``, lr ``(n, 3, h, w)`` → ``(n, 3, scale*h, scale*w)``."""
        out = self.conv_last(self.lrelu(self.conv_hr(self.upsample(feat))))
        base = F.interpolate(
            lr, scale_factor=self.scale, mode=self.upsample_mode, align_corners=False
        )
        # The residual add is kept in fp32 so bf16 inference does not quantise the output.
        return out.float() + base.float()


def reconstruct_frames(
    reconstruction: Reconstruction,
    feats: Tensor,
    lq: Tensor,
    *,
    frames: slice | None = None,
    max_pixels: int = 1 << 20,
) -> Tensor:
    """Apply ``reconstruction`` to every frame, a few frames at a time to bound HR memory.

    Args:
        feats: ``(b, t, c, h, w)`` fused LR features.
        lq: ``(b, t, 3, h, w)`` the LR frames.
        frames: only these frames (None: all); chunked upscaling skips its context frames.
        max_pixels: at most this many HR pixels (frames × s²·h·w) per batch.

    Returns:
        ``(b, t, 3, s*h, s*w)``, or ``(b, k, …)`` for the k frames in ``frames``.
    """
    if frames is not None:
        feats, lq = feats[:, frames], lq[:, frames]
    b, t, c, h, w = feats.shape
    s = reconstruction.scale
    feats = feats.reshape(b * t, c, h, w)  # (b*t, c, h, w)
    lr = lq.reshape(b * t, 3, h, w)
    step = max(1, max_pixels // (s * s * h * w))
    starts = range(0, b * t, step)
    if len(starts) == 1 or torch.jit.is_tracing():  # traced (ONNX export): one Concat node
        out = torch.cat([reconstruction(feats[i : i + step], lr[i : i + step]) for i in starts])
    else:
        # One preallocated buffer: a list of slices then a cat would hold the HR output twice.
        out = lr.new_empty(b * t, 3, s * h, s * w)
        for i in starts:
            out[i : i + step] = reconstruction(feats[i : i + step], lr[i : i + step])
    return out.view(b, t, 3, s * h, s * w)
