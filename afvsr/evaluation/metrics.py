"""PSNR and SSIM with the conventions of the video super-resolution literature, batched in torch.

- Images are floats in [0, 1] (or uint8); both are rounded to uint8 levels first, as if the output
  had been saved as an 8-bit PNG and read back, and scored on the 0–255 scale.
- RGB metrics use all three channels (the REDS4 convention; SSIM is computed per channel and
  averaged). Y metrics use the luma of BT.601 YCbCr with MATLAB's ``rgb2ycbcr`` coefficients,
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B on 0–255, so Y spans 16–235
  (the Vid4 / Vimeo-90K convention). Y is kept as a float, not re-rounded (as BasicSR and
  mmagic do; MATLAB's uint8 path rounds it, which moves PSNR by a few hundredths of a dB).
- ``border`` pixels are cropped from every side before scoring (default 0: the whole frame).
- SSIM is Wang et al. (IEEE TIP 2004) as in their reference ``ssim_index.m``: an 11×11 Gaussian
  window with σ = 1.5, "valid" filtering (no padding), C1 = (0.01·255)², C2 = (0.03·255)², the
  mean of the SSIM map. There is no automatic downsampling of large images (unlike MATLAB's later
  ``ssim.m``), as in BasicSR and mmagic.

All functions take ``(..., c, h, w)`` and return one value per image: a tensor of shape ``(...)``.
Computation is in float64, so results do not depend on the device's float32 rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# BT.601 luma on 0–255 inputs, studio range (MATLAB rgb2ycbcr): Y = 16 + (w · rgb) / 255.
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2

METRIC_NAMES = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")


def quantize(x: Tensor) -> Tensor:
    """Image ``(..., c, h, w)`` → float64 uint8 levels 0..255.

    Floats are taken as [0, 1], clamped and rounded half to even (numpy's and torch's rounding);
    uint8 tensors are used as they are.
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float64)
    if not x.is_floating_point():
        raise ValueError(f"expected a float image in [0, 1] or uint8, got dtype {x.dtype}")
    return torch.round(x.to(torch.float64).clamp(0.0, 1.0) * 255.0)


def rgb_to_y(rgb255: Tensor) -> Tensor:
    """BT.601 luma (16–235) of RGB on 0–255: ``(..., 3, h, w)`` → ``(..., 1, h, w)``."""
    if rgb255.ndim < 3 or rgb255.shape[-3] != 3:
        raise ValueError(f"expected RGB images (..., 3, h, w), got shape {tuple(rgb255.shape)}")
    w = torch.tensor(Y_WEIGHTS, dtype=rgb255.dtype, device=rgb255.device).view(3, 1, 1)
    return (rgb255 * w).sum(dim=-3, keepdim=True) / 255.0 + Y_OFFSET


def _prepare(pred: Tensor, gt: Tensor, *, border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Quantise, optionally convert to Y, crop the border: both → float64 ``(..., c, h', w')``."""
    if pred.shape != gt.shape:
        raise ValueError(
            f"expected prediction and ground truth of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(gt.shape)}"
        )
    if pred.ndim < 3:
        raise ValueError(f"expected images (..., c, h, w), got shape {tuple(pred.shape)}")
    if border < 0:
        raise ValueError(f"expected border >= 0, got {border}")
    h, w = pred.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves nothing of a {h}x{w} image")
    a, b = quantize(pred), quantize(gt.to(pred.device))
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if border:
        a = a[..., border:-border, border:-border]
        b = b[..., border:-border, border:-border]
    return a, b


def psnr(pred: Tensor, gt: Tensor, *, border: int = 0, y_channel: bool = False) -> Tensor:
    """Peak signal-to-noise ratio in dB, one value per image.

    Args:
        pred, gt: ``(..., 3, h, w)`` floats in [0, 1] (or uint8).
        border: pixels cropped from each side before scoring.
        y_channel: score the BT.601 luma instead of RGB.

    Returns:
        ``(...)`` float64: ``10 log10(255² / MSE)``; ``inf`` where the images are identical.
    """
    a, b = _prepare(pred, gt, border=border, y_channel=y_channel)
    mse = (a - b).pow(2).flatten(-3).mean(dim=-1)  # (...)
    return 10.0 * torch.log10(255.0**2 / mse)  # mse == 0 → inf


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """The 1-D Gaussian ``(size,)`` (float64, sums to 1); the 2-D window is its outer product."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: Tensor, g: Tensor) -> Tensor:
    """Separable Gaussian filter, no padding: ``(n, 1, h, w)`` → ``(n, 1, h-k+1, w-k+1)``."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return F.conv2d(x, g.view(1, 1, 1, k))


def ssim(pred: Tensor, gt: Tensor, *, border: int = 0, y_channel: bool = False) -> Tensor:
    """Structural similarity (Wang et al. 2004), one value per image.

    Args:
        pred, gt: ``(..., 3, h, w)`` floats in [0, 1] (or uint8); after the border crop both
            sides must be at least 11 pixels (the Gaussian window).
        border: pixels cropped from each side before scoring.
        y_channel: score the BT.601 luma instead of RGB (RGB: the mean over the three channels).

    Returns:
        ``(...)`` float64 in [-1, 1]; exactly 1 where the images are identical.
    """
    a, b = _prepare(pred, gt, border=border, y_channel=y_channel)
    lead, (c, h, w) = a.shape[:-3], a.shape[-3:]
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(
            f"expected images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels for SSIM "
            f"(after a border crop of {border}), got {h}x{w}"
        )
    a = a.reshape(-1, 1, h, w)  # (n*c, 1, h, w): every channel filtered on its own
    b = b.reshape(-1, 1, h, w)
    g = gaussian_window().to(a.device)
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    )
    per_channel = ssim_map.flatten(1).mean(dim=1).view(*lead, c)  # (..., c)
    return per_channel.mean(dim=-1)


def frame_metrics(pred: Tensor, gt: Tensor, *, border: int = 0) -> dict[str, Tensor]:
    """All four metrics per frame: ``{"psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"}`` → ``(...)``.

    Args:
        pred, gt: ``(..., 3, h, w)`` floats in [0, 1] (or uint8), e.g. the ``t`` frames of a clip.
    """
    return {
        "psnr_rgb": psnr(pred, gt, border=border),
        "ssim_rgb": ssim(pred, gt, border=border),
        "psnr_y": psnr(pred, gt, border=border, y_channel=True),
        "ssim_y": ssim(pred, gt, border=border, y_channel=True),
    }


def mean_metric(values: list[float]) -> float:
    """Mean of per-frame or per-clip values; ``inf`` when any value is ``inf`` (identical frames)."""
    if not values:
        raise ValueError("expected at least one value to average, got none")
    return math.fsum(values) / len(values)  # fsum of a list holding inf is inf
