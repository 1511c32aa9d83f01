"""Inter-group attention: fuse the reference-frame features of G frame-rate groups into one.

Provenance: the method's attention module ("Attention-based Fusion for Video Super-Resolution"):
per group a conv3x3 scores every channel and pixel, a softmax over the group axis turns the scores
into weights, the weighted features are stacked on a group axis and fused by a 3-D dense block
(collapsing the groups) and a 2-D dense block. All convs are followed by LeakyReLU(0.1).
Differs: per-group convs are run as one grouped convolution (same weights and count, one call);
for G != 3 groups the collapsing 3-D conv has a depth kernel of G (for G = 3 it is the paper's
3x3x3 with padding (0, 1, 1)). With ``residual=True`` (not in the paper) the fused result is added
to the first group's feature instead of replacing it, its last conv starting at zero, so a new
module starts as the identity on that group: stage 2 starts exactly at its backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttentionMaps = dict[str, Tensor]


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.1, inplace=True)


def conv3d_as_2d(conv: nn.Conv3d, x: Tensor) -> Tensor:
    """``conv(x)`` for ``x (n, c, D, h, w)``, computed as one 2-D conv over depth windows.

    The group axis is short (D = G, e.g. 3), and oneDNN's 3-D convolution with depth padding runs
    about 4x slower per FLOP than its 2-D one on CPU. Each output depth d reads input depths
    d..d+kd-1 (after padding): stacking them on the channel axis (index ``k*c + channel``) turns
    the 3-D kernel ``(c_out, c, kd, kh, kw)`` into a 2-D one ``(c_out, kd*c, kh, kw)``. Stride 1.

    Returns:
        ``(n, c_out, D + 2*pad_d - kd + 1, h, w)``, equal to ``conv(x)`` up to float rounding.
    """
    if torch.jit.is_tracing():  # ONNX has a native 3-D Conv (and needs a static kernel)
        return conv(x)
    kd, pd = conv.kernel_size[0], conv.padding[0]
    if pd:
        x = F.pad(x, (0, 0, 0, 0, pd, pd))  # zeros before and after on the depth axis
    n, c, d, h, w = x.shape
    d_out = d - kd + 1
    windows = torch.stack(
        [x[:, :, i : i + kd] for i in range(d_out)], dim=1
    )  # (n, d_out, c, kd, h, w)
    windows = windows.transpose(2, 3).reshape(n * d_out, kd * c, h, w)
    weight = conv.weight.transpose(1, 2).reshape(conv.out_channels, kd * c, *conv.kernel_size[1:])
    out = F.conv2d(windows, weight, conv.bias, padding=conv.padding[1:])  # (n*d_out, c_out, h, w)
    return out.view(n, d_out, conv.out_channels, h, w).transpose(1, 2)


class DenseFusion(nn.Module):
    """The two dense blocks after the attention weighting.

    3-D: ``Y = conv3d(X)`` (3x3x3, pad 1), ``Z = conv3d([X; Y])`` (Gx3x3, pad (0,1,1)) which
    collapses the group axis to 1; 2-D: ``U = conv(Z)``, ``out = conv([Z; U])``. ``residual``:
    the last conv starts at zero and has no LeakyReLU (its output is a residual to add).
    """

    def __init__(self, *, mid_channels: int, num_groups: int, residual: bool = False) -> None:
        super().__init__()
        c = mid_channels
        self.residual = residual
        self.conv3d_1 = nn.Conv3d(c, c, 3, 1, 1)
        self.conv3d_2 = nn.Conv3d(2 * c, c, (num_groups, 3, 3), 1, (0, 1, 1))
        self.conv2d_1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv2d_2 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.lrelu = _lrelu()
        if residual:
            nn.init.zeros_(self.conv2d_2.weight)
            nn.init.zeros_(self.conv2d_2.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x (n, c, G, h, w)`` → ``(n, c, h, w)``."""
        y = self.lrelu(conv3d_as_2d(self.conv3d_1, x))  # (n, c, G, h, w)
        z = self.lrelu(conv3d_as_2d(self.conv3d_2, torch.cat([x, y], dim=1))).squeeze(
            2
        )  # (n, c, h, w)
        u = self.lrelu(self.conv2d_1(z))
        out = self.conv2d_2(torch.cat([z, u], dim=1))
        return out if self.residual else self.lrelu(out)


def group_softmax_weighting(
    scorer: nn.Conv2d, feats: Tensor, lrelu: nn.Module
) -> tuple[Tensor, Tensor]:
    """Score each group's features with its own conv and weight them by a softmax over groups.

    Args:
        scorer: a grouped conv with ``groups = heads*G`` mapping ``heads*G*c`` channels to as many
            (one conv3x3 per head and group, own weights).
        feats: ``(n, heads, G, c, h, w)`` each head's view of the G groups' features.

    Returns:
        ``weighted (n, heads, G, c, h, w)`` = ``M ⊙ feats`` and ``M`` of the same shape, where
        ``M = softmax over G of lrelu(scorer(feats))`` per head, channel and pixel.
    """
    n, nh, g, c, h, w = feats.shape
    scores = lrelu(scorer(feats.reshape(n, nh * g * c, h, w))).view(n, nh, g, c, h, w)
    attn = torch.softmax(scores, dim=2)  # subtracts the max internally: numerically stable
    return attn * feats, attn


class SingleHeadAttentionFusion(nn.Module):
    """``x (n, G, c, h, w)`` → ``(n, c, h, w)``; 553,408 parameters at c = 64, G = 3.

    ``residual``: the output is ``x[:, 0]`` plus the fusion (zero when new), not the fusion.
    """

    def __init__(self, *, mid_channels: int, num_groups: int, residual: bool = False) -> None:
        super().__init__()
        c, g = mid_channels, num_groups
        self.num_groups, self.residual = g, residual
        self.scorer = nn.Conv2d(g * c, g * c, 3, 1, 1, groups=g)  # conv3x3_g per group
        self.fusion = DenseFusion(mid_channels=c, num_groups=g, residual=residual)
        self.lrelu = _lrelu()

    def forward(self, x: Tensor, *, return_attention: bool = False) -> tuple[Tensor, AttentionMaps]:
        """``x (n, G, c, h, w)`` → ``out (n, c, h, w)`` and maps (each ``(n, 1, G, c, h, w)``) if asked."""
        weighted, attn = group_softmax_weighting(self.scorer, x[:, None], self.lrelu)
        out = self.fusion(weighted[:, 0].transpose(1, 2))  # (n, c, G, h, w) → (n, c, h, w)
        if self.residual:
            out = x[:, 0] + out
        maps: AttentionMaps = {}
        if return_attention:
            maps = {"projection": x[:, None], "attention": attn, "output": weighted}
        return out, maps


class MultiHeadAttentionFusion(nn.Module):
    """Multi-head variant: ``x (n, G, c, h, w)`` → ``(n, c, h, w)``.

    Per head h a projection ``P_h`` (conv3x3 + LeakyReLU, shared by the groups), then the
    single-head weighting on ``P_h x_g`` with the head's own per-group convs; heads are concatenated
    per group and combined by a 3-D conv (3x3x3, heads*c → c, group axis kept), then the same
    dense blocks. 1,475,904 parameters at c = 64, G = 3, 4 heads. ``residual`` as for
    :class:`SingleHeadAttentionFusion`.
    """

    def __init__(
        self, *, mid_channels: int, num_groups: int, num_heads: int, residual: bool = False
    ) -> None:
        super().__init__()
        c, g, nh = mid_channels, num_groups, num_heads
        self.num_groups, self.num_heads, self.residual = g, nh, residual
        self.projection = nn.Conv2d(c, nh * c, 3, 1, 1)  # the heads' P_h as one conv
        self.scorer = nn.Conv2d(nh * g * c, nh * g * c, 3, 1, 1, groups=nh * g)
        self.combine = nn.Conv3d(nh * c, c, 3, 1, 1)
        self.fusion = DenseFusion(mid_channels=c, num_groups=g, residual=residual)
        self.lrelu = _lrelu()

    def forward(self, x: Tensor, *, return_attention: bool = False) -> tuple[Tensor, AttentionMaps]:
        """``x (n, G, c, h, w)`` → ``out (n, c, h, w)`` and maps (each ``(n, heads, G, c, h, w)``)."""
        n, g, c, h, w = x.shape
        nh = self.num_heads
        proj = self.lrelu(self.projection(x.reshape(n * g, c, h, w)))  # (n*G, nh*c, h, w)
        proj = proj.view(n, g, nh, c, h, w).transpose(1, 2)  # (n, nh, G, c, h, w)
        weighted, attn = group_softmax_weighting(self.scorer, proj, self.lrelu)
        # Heads concatenated per group: (n, nh*c, G, h, w), channel index = head*c + channel.
        stacked = weighted.permute(0, 1, 3, 2, 4, 5).reshape(n, nh * c, g, h, w)
        out = self.fusion(self.lrelu(conv3d_as_2d(self.combine, stacked)))
        if self.residual:
            out = x[:, 0] + out
        maps: AttentionMaps = {}
        if return_attention:
            maps = {"projection": proj, "attention": attn, "output": weighted}
        return out, maps


class MeanFusion(nn.Module):
    """The ablation of the attention module: ``x (n, G, c, h, w)`` → the mean over groups ``(n, c, h, w)``.

    No parameters. It answers what stage 2 gains without attention: the same frame-rate groups
    and the same fine-tuned reconstruction, with every group weighted ``1/G`` everywhere. The
    maps, if asked, hold that uniform weighting (each ``(n, 1, G, c, h, w)``).
    """

    def forward(self, x: Tensor, *, return_attention: bool = False) -> tuple[Tensor, AttentionMaps]:
        out = x.mean(dim=1)
        maps: AttentionMaps = {}
        if return_attention:
            attn = torch.full_like(x, 1.0 / x.shape[1])[:, None]
            maps = {"projection": x[:, None], "attention": attn, "output": attn * x[:, None]}
        return out, maps
