"""MATLAB-compatible bicubic resize (``imresize``) and the standard "BI" degradation.

Provenance: MATLAB's ``imresize(x, scale, 'bicubic')`` as used to make the low-resolution
frames of REDS, Vimeo-90K and Vid4 (the "BI" degradation):
- cubic kernel of Keys with a = -0.5 (support 4 pixels);
- when shrinking (scale < 1) the kernel is widened by 1/scale and scaled by scale (antialiasing);
- output pixel ``i`` (0-based) samples input position ``(i + 0.5) / scale - 0.5``;
- weights of each output pixel are normalised to sum to one;
- pixels past the border are mirrored with the edge pixel repeated (``... 1 0 | 0 1 2 ...``);
- output size ``ceil(scale * size)``.
Differs: the output size is rounded after removing floating-point noise (``10 * 1.1`` gives 11,
where MATLAB's ``ceil(11.000000000000002)`` gives 12); both axes are resized in float arithmetic
with no rounding in between (MATLAB rounds only at the end for uint8 input, as ``bi_degrade`` does).

Implementation: per axis, a table of input indices and weights ``(out, taps)`` is computed once per
(input length, output length, scale), turned into a dense ``(out, in)`` matrix and cached; the
resize is two matrix products, ``M_h @ x @ M_w.T`` (BLAS beats a gather of the taps on CPU).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

__all__ = ["bi_degrade", "cubic", "imresize", "imresize_box", "mod_crop", "source_box"]


def cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5, evaluated elementwise (any shape)."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def output_length(length: int, scale: float) -> int:
    """``ceil(length * scale)``, ignoring floating-point noise below 1e-9 (``180 * 4 = 720``)."""
    return max(1, math.ceil(length * scale - 1e-9))


@functools.lru_cache(maxsize=64)
def _axis_table(in_length: int, out_length: int, scale: float) -> tuple[Tensor, Tensor]:
    """Input indices ``(out_length, taps)`` (int64) and weights ``(out_length, taps)`` (float64).

    Row ``i`` says which input pixels output pixel ``i`` reads and with what weights; indices past
    the border are already mirrored into ``[0, in_length)``. Taps whose weight is zero for every
    output pixel are dropped.
    """
    if scale < 1:  # antialiasing: widen the kernel, keep its integral at one
        width = 4.0 / scale

        def kernel(d: Tensor) -> Tensor:
            return scale * cubic(scale * d)
    else:
        width = 4.0
        kernel = cubic
    center = (torch.arange(out_length, dtype=torch.float64) + 0.5) / scale - 0.5  # (out,)
    first = torch.floor(center - width / 2)  # leftmost input pixel that may have weight
    taps = math.ceil(width) + 2
    index = first[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # (out, taps)
    weight = kernel(center[:, None] - index)
    weight = weight / weight.sum(dim=1, keepdim=True)
    used = (weight != 0).any(dim=0)
    index, weight = index[:, used].long(), weight[:, used]
    # Symmetric border: index sequence ... 1 0 | 0 1 ... n-1 | n-1 n-2 ..., period 2n.
    index = index.remainder(2 * in_length)
    index = torch.where(index >= in_length, 2 * in_length - 1 - index, index)
    return index, weight


@functools.lru_cache(maxsize=64)
def _axis_matrix(
    in_length: int, out_length: int, scale: float, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """The same table as a dense ``(out_length, in_length)`` matrix (mirrored taps summed).

    A dense matrix product runs on BLAS and is several times faster on CPU than gathering the
    taps, even though most entries are zero.
    """
    index, weight = _axis_table(in_length, out_length, scale)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, index, weight)
    return matrix.to(device=device, dtype=dtype)


def _check_image(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a tensor (..., h, w) with at least 2 dims, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor (values in [0, 1]), got {x.dtype}")


def _scales_and_sizes(
    h: int, w: int, scale: float | None, size: tuple[int, int] | None
) -> tuple[tuple[float, float], tuple[int, int]]:
    if (scale is None) == (size is None):
        raise ValueError(f"expected exactly one of scale or size, got scale={scale}, size={size}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"expected a positive number for scale, got {scale!r}")
        return (float(scale), float(scale)), (output_length(h, scale), output_length(w, scale))
    if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ValueError(f"expected size (height, width) of positive ints, got {size!r}")
    return (size[0] / h, size[1] / w), (size[0], size[1])


def imresize(x: Tensor, scale: float | None = None, size: tuple[int, int] | None = None) -> Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` (antialiased when shrinking) on a batch.

    Args:
        x: ``(..., c, h, w)`` floating-point tensor, any leading dims (e.g. ``(b, t, 3, h, w)``).
        scale: one factor for both axes, e.g. ``1/4`` (shrink) or ``4`` (enlarge); output size is
            ``ceil(scale * h) x ceil(scale * w)``.
        size: ``(out_h, out_w)`` instead of ``scale``; the factor per axis is ``out / in``.

    Returns:
        ``(..., c, out_h, out_w)``, same dtype and device, not clamped (bicubic overshoots).
    """
    _check_image(x)
    h, w = x.shape[-2:]
    (scale_h, scale_w), (out_h, out_w) = _scales_and_sizes(h, w, scale, size)
    if (out_h, out_w) == (h, w) and scale_h == 1 and scale_w == 1:
        return x.clone()
    matrix_h = _axis_matrix(h, out_h, scale_h, x.dtype, x.device)  # (out_h, h)
    matrix_w = _axis_matrix(w, out_w, scale_w, x.dtype, x.device)  # (out_w, w)
    # Both orders give the same result; take the one with fewer multiply-adds.
    if out_h * w * (h + out_w) <= h * out_w * (w + out_h):
        return (matrix_h @ x) @ matrix_w.T  # (..., out_h, w) -> (..., out_h, out_w)
    return matrix_h @ (x @ matrix_w.T)  # (..., h, out_w) -> (..., out_h, out_w)


def source_box(
    in_size: tuple[int, int], box: tuple[int, int, int, int], *, scale: float
) -> tuple[int, int, int, int]:
    """The input pixels that output ``box`` of ``imresize(image, scale)`` reads.

    Args:
        in_size: ``(h, w)`` of the whole input image.
        box: ``(top, left, height, width)`` in output pixels.

    Returns:
        ``(top, left, height, width)`` in input pixels, inside the image.
    """
    out_size = (output_length(in_size[0], scale), output_length(in_size[1], scale))
    spans = []
    for n, m, start, length in zip(in_size, out_size, box[:2], box[2:], strict=True):
        if start < 0 or length < 1 or start + length > m:
            raise ValueError(f"expected a box inside the {out_size} output, got {box}")
        index, _ = _axis_table(n, m, float(scale))
        rows = index[start : start + length]
        lo, hi = int(rows.min()), int(rows.max())
        spans.append((lo, hi - lo + 1))
    return spans[0][0], spans[1][0], spans[0][1], spans[1][1]


def imresize_box(
    x: Tensor,
    box: tuple[int, int, int, int],
    *,
    scale: float,
    in_size: tuple[int, int],
    origin: tuple[int, int] = (0, 0),
) -> Tensor:
    """``imresize(image, scale)[..., top:top+height, left:left+width]`` from part of the image.

    This is how training samples make a low-resolution patch without resizing whole frames: the
    result equals resizing the whole image and cropping (borders included), because every output
    pixel of ``box`` reads only the pixels of ``source_box(in_size, box, scale=scale)``.

    Args:
        x: ``(..., c, hx, wx)``, the pixels of the whole image starting at ``origin``; must cover
            ``source_box(in_size, box, scale=scale)``.
        box: ``(top, left, height, width)`` in output pixels.
        scale: the resize factor (as in ``imresize``).
        in_size: ``(h, w)`` of the whole image that ``x`` is part of.
        origin: ``(top, left)`` of ``x`` inside the whole image.

    Returns:
        ``(..., c, height, width)``.
    """
    _check_image(x)
    top, left, height, width = box
    src_top, src_left, src_h, src_w = source_box(in_size, box, scale=scale)
    oy, ox = origin
    hx, wx = x.shape[-2:]
    if src_top < oy or src_left < ox or src_top + src_h > oy + hx or src_left + src_w > ox + wx:
        raise ValueError(
            f"expected x to cover input box {(src_top, src_left, src_h, src_w)} "
            f"(top, left, h, w), got {(oy, ox, hx, wx)}"
        )
    out_h, out_w = output_length(in_size[0], scale), output_length(in_size[1], scale)
    matrix_h = _axis_matrix(in_size[0], out_h, float(scale), x.dtype, x.device)
    matrix_w = _axis_matrix(in_size[1], out_w, float(scale), x.dtype, x.device)
    matrix_h = matrix_h[top : top + height, oy : oy + hx]  # (height, hx)
    matrix_w = matrix_w[left : left + width, ox : ox + wx]  # (width, wx)
    return matrix_h @ x @ matrix_w.T  # (..., height, width)


def mod_crop(x: Tensor, scale: int) -> Tensor:
    """Crop ``(..., h, w)`` at the bottom and right to multiples of ``scale``."""
    h, w = x.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"expected a frame of at least {scale}x{scale} pixels, got {h}x{w}")
    return x[..., : h - h % scale, : w - w % scale]


def quantize_uint8(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to the 256 levels of an 8-bit image (as when saved to PNG)."""
    return x.clamp(0, 1).mul(255).round().div(255)


def bi_degrade(gt: Tensor, scale: int = 4, round_uint8: bool = True) -> Tensor:
    """The "BI" low-resolution frames: MATLAB bicubic ``imresize(gt, 1/scale)``.

    Args:
        gt: ``(..., c, h, w)`` float in [0, 1], with h and w multiples of ``scale``
            (``mod_crop`` first).
        scale: integer downscaling factor.
        round_uint8: clamp and round to 8-bit levels, as the LR PNGs of REDS/Vimeo/Vid4 are.

    Returns:
        ``(..., c, h / scale, w / scale)``.
    """
    _check_image(gt)
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"expected an integer scale >= 1, got {scale!r}")
    h, w = gt.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"expected gt height and width divisible by scale {scale}, got {h}x{w} "
            "(crop it with afvsr.imresize.mod_crop first)"
        )
    lq = imresize(gt, size=(h // scale, w // scale))
    return quantize_uint8(lq) if round_uint8 else lq
