"""Modulated deformable convolution (DCNv2) in pure PyTorch, and EDVR's offset-predicting pack.

Provenance: Zhu et al., "Deformable ConvNets v2: More Deformable, Better Results", CVPR 2019,
Sec. 3.1 (eq. 1: every kernel tap k samples the input at ``p + p_k + Δp_k`` by bilinear
interpolation and is scaled by a modulation scalar ``Δm_k`` in [0, 1]); the pack that predicts
``Δp`` and ``Δm`` from a conditioning feature is EDVR's (Wang et al., CVPRW 2019, Sec. 3.1,
"DConv" in Fig. 3). Differs: no compiled kernel — all taps are sampled by one ``grid_sample`` and
contracted with the weight by one matmul per band of output rows (``max_pixels`` bounds the
sampled columns' memory); stride 1 only (all EDVR/IconVSR uses need no more).

Layouts (the same as DCNv2's and torchvision's, with tap ``k = ki * kernel_size + kj``):
    offset ``(n, 2 * G * K, h_out, w_out)``: channel ``2 * (g * K + k)`` is the row (y)
        displacement and ``2 * (g * K + k) + 1`` the column (x) displacement, in pixels, of tap k
        of deformable group g; K = kernel_size², G = deform_groups.
    mask ``(n, G * K, h_out, w_out)``: channel ``g * K + k`` multiplies tap k of group g.
Deformable group g covers input channels ``g * C/G .. (g + 1) * C/G - 1``. Output pixel (i, j), tap
(ki, kj) reads the input at row ``i - padding + ki * dilation + dy`` and column
``j - padding + kj * dilation + dx``; samples outside the input read zero (per bilinear corner).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def modulated_deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    padding: int = 0,
    dilation: int = 1,
    deform_groups: int = 1,
    max_pixels: int = 1 << 16,
) -> Tensor:
    """DCNv2 (stride 1): ``out[i, j] = bias + Σ_k w_k · m_k · x(p_k(i, j) + Δp_k)``.

    Args:
        x: ``(n, c_in, h, w)`` input.
        offset: ``(n, 2 * G * K, h_out, w_out)`` displacements in pixels (layout in the module doc).
        mask: ``(n, G * K, h_out, w_out)`` modulation (already in [0, 1] if it should be).
        weight: ``(c_out, c_in, kernel_size, kernel_size)``.
        bias: ``(c_out,)`` or None.
        padding, dilation: as for ``F.conv2d``; ``h_out = h + 2·padding - dilation·(kernel_size - 1)``.
        deform_groups: G, the number of channel groups with their own offsets and mask.
        max_pixels: output rows are computed in bands of at most this many ``n × rows × w_out``
            pixels (at least one row): the sampled columns, ``c_in·K`` values per pixel, are the
            memory peak (a 5-frame window at 320×180 with 64 channels: 0.66 GB in one piece).
            The result does not depend on it.

    Returns:
        ``(n, c_out, h_out, w_out)``.
    """
    n, c_in, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    g, k = deform_groups, kh * kw
    h_out, w_out = h + 2 * padding - dilation * (kh - 1), w + 2 * padding - dilation * (kw - 1)
    if c_w != c_in or kh != kw:
        raise ValueError(
            f"expected a square weight (c_out, {c_in}, k, k) for {c_in} input channels, "
            f"got {tuple(weight.shape)}"
        )
    if g < 1 or c_in % g != 0:
        raise ValueError(
            f"expected deform_groups >= 1 dividing the {c_in} input channels, got {deform_groups}"
        )
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"expected an input of at least the kernel's reach, got {h}x{w} for kernel {kh}, "
            f"padding {padding}, dilation {dilation}"
        )
    if offset.shape != (n, 2 * g * k, h_out, w_out) or mask.shape != (n, g * k, h_out, w_out):
        raise ValueError(
            f"expected offset {(n, 2 * g * k, h_out, w_out)} and mask {(n, g * k, h_out, w_out)}, "
            f"got {tuple(offset.shape)} and {tuple(mask.shape)}"
        )
    rows_per_band = max(1, max_pixels // (n * w_out))
    if rows_per_band >= h_out:
        return _deform_conv_rows(x, offset, mask, weight, bias, 0, padding, dilation, g)
    return torch.cat(
        [
            _deform_conv_rows(
                x,
                offset[:, :, r : r + rows_per_band],
                mask[:, :, r : r + rows_per_band],
                weight,
                bias,
                r,
                padding,
                dilation,
                g,
            )
            for r in range(0, h_out, rows_per_band)
        ],
        dim=2,
    )


def _deform_conv_rows(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    row0: int,
    padding: int,
    dilation: int,
    g: int,
) -> Tensor:
    """Output rows ``row0 … row0 + rows - 1`` of :func:`modulated_deform_conv2d`; offset and mask
    hold just those rows, ``(n, 2·G·K, rows, w_out)`` and ``(n, G·K, rows, w_out)``.
    → ``(n, c_out, rows, w_out)``."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    k = kh * kw
    rows_out, w_out = offset.shape[-2:]
    # Coordinates in at least fp32: bf16 cannot address pixels of a wide frame precisely.
    cdtype = torch.promote_types(x.dtype, torch.float32)
    dev = x.device
    taps = torch.arange(kh, device=dev, dtype=cdtype) * dilation
    tap_y = taps.repeat_interleave(kw).view(k, 1, 1)  # (K, 1, 1): ki * dilation
    tap_x = taps.repeat(kh).view(k, 1, 1)  # (K, 1, 1): kj * dilation
    rows = torch.arange(row0, row0 + rows_out, device=dev, dtype=cdtype).view(1, rows_out, 1)
    cols = torch.arange(w_out, device=dev, dtype=cdtype).view(1, 1, w_out) - padding
    off = offset.to(cdtype).reshape(n, g, k, 2, rows_out, w_out)
    y = tap_y + (rows - padding) + off[:, :, :, 0]  # (n, G, K, rows, w_out), input row
    x_ = tap_x + cols + off[:, :, :, 1]  # (n, G, K, rows, w_out), input column
    # Normalise for align_corners=False (pixel p ↦ (2p + 1)/size - 1), which also works for a
    # size of 1; zeros padding makes every out-of-range bilinear corner read 0, as in DCNv2.
    grid = torch.stack([(2 * x_ + 1) / w - 1, (2 * y + 1) / h - 1], dim=-1)
    grid = grid.view(n * g, k * rows_out, w_out, 2)  # all taps stacked along the rows
    sampled = F.grid_sample(
        x.to(cdtype).reshape(n * g, c_in // g, h, w),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    ).to(x.dtype)  # (n*G, c_in/G, K*rows, w_out)
    mask = mask.reshape(n, g, 1, k, rows_out, w_out)
    sampled = sampled.view(n, g, c_in // g, k, rows_out, w_out) * mask  # modulated samples
    columns = sampled.view(n, c_in * k, rows_out * w_out)  # row index c * K + k, as in the weight
    out = torch.matmul(weight.view(c_out, c_in * k), columns)  # (n, c_out, rows*w_out)
    out = out.view(n, c_out, rows_out, w_out)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer (Zhu et al. 2019, eq. 1): a conv whose taps move by ``offset`` and scale by ``mask``.

    Parameters are a conv's (``weight (c_out, c_in, k, k)``, ``bias (c_out,)``), initialised as
    ``nn.Conv2d`` does; stride 1.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        dilation: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if deform_groups < 1 or in_channels % deform_groups != 0:
            raise ValueError(
                f"expected deform_groups >= 1 dividing in_channels={in_channels}, "
                f"got {deform_groups}"
            )
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s initialisation (Kaiming-uniform weight, uniform bias)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        """x ``(n, c_in, h, w)``, offset ``(n, 2·G·K, h', w')``, mask ``(n, G·K, h', w')`` →
        ``(n, c_out, h', w')`` with ``h' = h + 2·padding - dilation·(k - 1)``."""
        return modulated_deform_conv2d(
            x,
            offset,
            mask,
            self.weight,
            self.bias,
            padding=self.padding,
            dilation=self.dilation,
            deform_groups=self.deform_groups,
        )


class ModulatedDCNPack(nn.Module):
    """EDVR's "DConv": a DCNv2 whose offsets and mask are predicted from a conditioning feature.

    ``conv_offset`` (conv3x3, ``cond_channels → 3·G·K``) gives, in order, the ``2·G·K`` offset
    channels (layout in the module doc) and ``G·K`` mask logits, squashed by a sigmoid. It is
    initialised to zero, so the pack starts as a plain conv with every tap weighted by
    ``sigmoid(0) = 0.5``: ``F.conv2d(x, 0.5 * weight, bias)``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        cond_channels: int,
        kernel_size: int = 3,
        deform_groups: int = 8,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"expected an odd kernel_size (size-preserving), got {kernel_size}")
        k = kernel_size * kernel_size
        self.num_offsets = 2 * deform_groups * k
        self.dcn = ModulatedDeformConv2d(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            deform_groups=deform_groups,
        )
        self.conv_offset = nn.Conv2d(
            cond_channels, 3 * deform_groups * k, kernel_size, 1, kernel_size // 2
        )
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x ``(n, in_channels, h, w)`` sampled under offsets/mask predicted from
        cond ``(n, cond_channels, h, w)`` → ``(n, out_channels, h, w)``."""
        out = self.conv_offset(cond)  # (n, 3*G*K, h, w)
        offset, mask_logits = out[:, : self.num_offsets], out[:, self.num_offsets :]
        return self.dcn(x, offset, torch.sigmoid(mask_logits))
