"""EDVR's PCD alignment and TSA fusion, assembled as IconVSR's keyframe feature extractor.

Provenance: Wang et al., "EDVR: Video Restoration with Enhanced Deformable Convolutional
Networks", CVPRW 2019, Sec. 3.1 (Pyramid, Cascading and Deformable alignment, Fig. 3: three
pyramid levels aligned coarse to fine with modulated deformable convolution, then a cascading
refinement at full resolution) and Sec. 3.2 (Temporal and Spatial Attention fusion, Fig. 4);
used as in Chan et al., "BasicVSR", CVPR 2021, Sec. 3.2 (IconVSR's information-refill: an
EDVR-M-like extractor — conv + 5 residual blocks, PCD with 8 deformable groups, TSA — applied to
the 5 frames around each keyframe, giving the keyframe's features). Differs: frames are padded
(edge-replicated) to a multiple of 4 so every pyramid level halves exactly, and the features are
cropped back; the deformable convolution is the pure-PyTorch one of ``afvsr.models.dcn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afvsr.models.common import ResidualBlocksWithInputConv
from afvsr.models.dcn import ModulatedDCNPack


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.1, inplace=True)


def _upsample2(x: Tensor) -> Tensor:
    """Bilinear ×2 (``(n, c, h, w) → (n, c, 2h, 2w)``), as EDVR moves offsets/features up a level."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class FeaturePyramid(nn.Module):
    """EDVR's feature extraction: conv + residual blocks (level 1), then two stride-2 levels.

    Level l+1 is ``lrelu(conv3x3(lrelu(conv3x3_stride2(level l))))``.
    """

    def __init__(self, *, mid_channels: int, num_blocks: int = 5) -> None:
        super().__init__()
        c = mid_channels
        self.extraction = ResidualBlocksWithInputConv(
            in_channels=3, mid_channels=c, num_blocks=num_blocks
        )
        self.conv_l2_1 = nn.Conv2d(c, c, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(c, c, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(c, c, 3, 1, 1)
        self.lrelu = _lrelu()

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(n, 3, h, w)`` with h, w multiples of 4 → ``[(n, c, h, w), (n, c, h/2, w/2),
        (n, c, h/4, w/4)]``."""
        l1 = self.extraction(x)
        l2 = self.lrelu(self.conv_l2_2(self.lrelu(self.conv_l2_1(l1))))
        l3 = self.lrelu(self.conv_l3_2(self.lrelu(self.conv_l3_1(l2))))
        return [l1, l2, l3]


class PCDLevel(nn.Module):
    """One pyramid level of PCD alignment (EDVR Fig. 3, one row of the pyramid).

    Offset features from [neighbour; reference] (plus the coarser level's ×2-upsampled offset
    features, except at the coarsest level) drive a deformable conv of the neighbour's features;
    below the coarsest level the result is merged with the coarser level's upsampled aligned
    features by ``feat_conv``.
    """

    def __init__(self, *, mid_channels: int, deform_groups: int, coarsest: bool) -> None:
        super().__init__()
        c = mid_channels
        self.coarsest = coarsest
        self.offset_conv1 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.offset_conv2 = nn.Conv2d(c if coarsest else 2 * c, c, 3, 1, 1)
        self.offset_conv3 = None if coarsest else nn.Conv2d(c, c, 3, 1, 1)
        self.dcn = ModulatedDCNPack(
            in_channels=c, out_channels=c, cond_channels=c, deform_groups=deform_groups
        )
        self.feat_conv = None if coarsest else nn.Conv2d(2 * c, c, 3, 1, 1)
        self.lrelu = _lrelu()

    def forward(
        self,
        nbr: Tensor,
        ref: Tensor,
        coarser_offset: Tensor | None = None,
        coarser_feat: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Align ``nbr`` to ``ref`` at this level.

        Args:
            nbr, ref: ``(n, c, h, w)`` neighbour and reference features of this level.
            coarser_offset, coarser_feat: ``(n, c, h, w)`` the coarser level's offset features
                (already ×2 in value) and aligned features, upsampled to this level; None at the
                coarsest level.

        Returns:
            ``offset_feat (n, c, h, w)`` and ``aligned (n, c, h, w)`` (before any activation).
        """
        offset = self.lrelu(self.offset_conv1(torch.cat([nbr, ref], dim=1)))
        if self.coarsest:
            offset = self.lrelu(self.offset_conv2(offset))
        else:
            offset = self.lrelu(self.offset_conv2(torch.cat([offset, coarser_offset], dim=1)))
            offset = self.lrelu(self.offset_conv3(offset))
        aligned = self.dcn(nbr, offset)
        if not self.coarsest:
            aligned = self.feat_conv(torch.cat([aligned, coarser_feat], dim=1))
        return offset, aligned


class PCDAlignment(nn.Module):
    """Pyramid, Cascading and Deformable alignment (EDVR Sec. 3.1, Fig. 3), three levels.

    Levels are aligned coarse (h/4) to fine (h), each seeded by the coarser level's offsets and
    aligned features; a final cascading deformable conv refines the full-resolution result
    against the reference.
    """

    num_levels = 3

    def __init__(self, *, mid_channels: int, deform_groups: int = 8) -> None:
        super().__init__()
        c = mid_channels
        # levels[0] is the coarsest (h/4), levels[-1] full resolution.
        self.levels = nn.ModuleList(
            [
                PCDLevel(mid_channels=c, deform_groups=deform_groups, coarsest=(i == 0))
                for i in range(self.num_levels)
            ]
        )
        self.cascade_offset_conv1 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.cascade_offset_conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.cascade_dcn = ModulatedDCNPack(
            in_channels=c, out_channels=c, cond_channels=c, deform_groups=deform_groups
        )
        self.lrelu = _lrelu()

    def forward(self, nbr: list[Tensor], ref: list[Tensor]) -> Tensor:
        """Align a neighbour's feature pyramid to the reference's.

        Args:
            nbr, ref: pyramids ``[(n, c, h, w), (n, c, h/2, w/2), (n, c, h/4, w/4)]`` (fine to
                coarse, as from :class:`FeaturePyramid`), h and w multiples of 4.

        Returns:
            ``(n, c, h, w)`` the neighbour's features aligned to the reference.
        """
        offset = feat = None
        for i, level in enumerate(self.levels):
            pyr = self.num_levels - 1 - i  # pyramid index: 2 (h/4) … 0 (h)
            up_offset = None if offset is None else _upsample2(offset) * 2  # pixels double
            up_feat = None if feat is None else _upsample2(feat)
            offset, feat = level(nbr[pyr], ref[pyr], up_offset, up_feat)
            if pyr > 0:
                feat = self.lrelu(feat)
        offset = self.lrelu(self.cascade_offset_conv1(torch.cat([feat, ref[0]], dim=1)))
        offset = self.lrelu(self.cascade_offset_conv2(offset))
        return self.lrelu(self.cascade_dcn(feat, offset))


class TemporalAttention(nn.Module):
    """TSA's temporal attention (EDVR Sec. 3.2): weight each aligned frame, per pixel, by
    ``sigmoid(<θ(frame), φ(reference)>)``, the dot product of two conv3x3 embeddings."""

    def __init__(self, *, mid_channels: int) -> None:
        super().__init__()
        self.embed_ref = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.embed = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1)

    def forward(self, aligned: Tensor, *, center: int) -> Tensor:
        """``aligned (b, t, c, h, w)`` → the weighted frames ``(b, t, c, h, w)``."""
        b, t, c, h, w = aligned.shape
        ref = self.embed_ref(aligned[:, center])  # (b, c, h, w)
        emb = self.embed(aligned.reshape(b * t, c, h, w)).view(b, t, c, h, w)
        corr = torch.sigmoid((emb * ref[:, None]).sum(dim=2, keepdim=True))  # (b, t, 1, h, w)
        return aligned * corr


class SpatialAttention(nn.Module):
    """TSA's spatial attention (EDVR Sec. 3.2, Fig. 4): a two-level pyramid of max/avg-pooled
    features on the temporally weighted frames, giving a multiplicative mask (sigmoid) and an
    additive term at full resolution."""

    def __init__(self, *, mid_channels: int, num_frames: int) -> None:
        super().__init__()
        c = mid_channels
        self.attn1 = nn.Conv2d(num_frames * c, c, 1)
        self.attn2 = nn.Conv2d(2 * c, c, 1)
        self.attn3 = nn.Conv2d(c, c, 3, 1, 1)
        self.attn4 = nn.Conv2d(c, c, 1)
        self.attn5 = nn.Conv2d(c, c, 3, 1, 1)
        self.attn_l1 = nn.Conv2d(c, c, 1)
        self.attn_l2 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.attn_l3 = nn.Conv2d(c, c, 3, 1, 1)
        self.attn_add1 = nn.Conv2d(c, c, 1)
        self.attn_add2 = nn.Conv2d(c, c, 1)
        self.lrelu = _lrelu()

    @staticmethod
    def _pool(x: Tensor) -> Tensor:
        """``(n, c, h, w) → (n, 2c, h/2, w/2)``: [max-pool; avg-pool], 3x3 stride 2."""
        return torch.cat(
            [F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1, count_include_pad=True)], dim=1
        )

    def forward(self, weighted: Tensor) -> tuple[Tensor, Tensor]:
        """``weighted (b, t*c, h, w)``, h and w multiples of 4 → ``mask (b, c, h, w)`` in (0, 1)
        and ``add (b, c, h, w)``."""
        attn = self.lrelu(self.attn1(weighted))
        attn = self.lrelu(self.attn2(self._pool(attn)))  # (b, c, h/2, w/2)
        level = self.lrelu(self.attn_l1(attn))
        level = self.lrelu(self.attn_l2(self._pool(level)))  # (b, c, h/4, w/4)
        level = _upsample2(self.lrelu(self.attn_l3(level)))  # (b, c, h/2, w/2)
        attn = self.lrelu(self.attn3(attn)) + level
        attn = _upsample2(self.lrelu(self.attn4(attn)))  # (b, c, h, w)
        attn = self.attn5(attn)
        add = self.attn_add2(self.lrelu(self.attn_add1(attn)))
        return torch.sigmoid(attn), add


class TSAFusion(nn.Module):
    """Temporal and Spatial Attention fusion (EDVR Sec. 3.2, Fig. 4): ``t`` aligned frames → one.

    Temporal attention weights the frames, a 1x1 conv fuses them, spatial attention modulates the
    result: ``fused · 2·mask + add`` (the 2 makes the mask ≈ 1 at initialisation, as in EDVR).
    """

    def __init__(self, *, mid_channels: int, num_frames: int) -> None:
        super().__init__()
        self.center = num_frames // 2
        self.temporal = TemporalAttention(mid_channels=mid_channels)
        self.feat_fusion = nn.Conv2d(num_frames * mid_channels, mid_channels, 1)
        self.spatial = SpatialAttention(mid_channels=mid_channels, num_frames=num_frames)
        self.lrelu = _lrelu()

    def forward(self, aligned: Tensor) -> Tensor:
        """``aligned (b, t, c, h, w)`` (reference at ``t // 2``), h and w multiples of 4 →
        ``(b, c, h, w)``."""
        b, t, c, h, w = aligned.shape
        weighted = self.temporal(aligned, center=self.center).reshape(b, t * c, h, w)
        fused = self.lrelu(self.feat_fusion(weighted))
        mask, add = self.spatial(weighted)
        return fused * mask * 2 + add


class EDVRFeatureExtractor(nn.Module):
    """IconVSR's information-refill extractor (BasicVSR paper Sec. 3.2): a window of frames → the
    features of its centre frame, by feature pyramid, PCD alignment of every frame to the centre,
    and TSA fusion. 2,227,488 parameters at 64 channels, 5 frames, 8 deformable groups.
    """

    def __init__(
        self,
        *,
        mid_channels: int = 64,
        num_frames: int = 5,
        num_blocks: int = 5,
        deform_groups: int = 8,
    ) -> None:
        super().__init__()
        if num_frames < 1 or num_frames % 2 == 0:
            raise ValueError(f"expected an odd number of frames per window, got {num_frames}")
        if deform_groups < 1 or mid_channels % deform_groups != 0:
            raise ValueError(
                f"expected mid_channels divisible by deform_groups={deform_groups}, "
                f"got mid_channels={mid_channels}"
            )
        self.num_frames = num_frames
        self.pyramid = FeaturePyramid(mid_channels=mid_channels, num_blocks=num_blocks)
        self.pcd = PCDAlignment(mid_channels=mid_channels, deform_groups=deform_groups)
        self.tsa = TSAFusion(mid_channels=mid_channels, num_frames=num_frames)

    def forward(self, frames: Tensor) -> Tensor:
        """Features of the centre frame of each window.

        Args:
            frames: ``(n, num_frames, 3, h, w)``, any h, w >= 1; the centre frame
                ``frames[:, num_frames // 2]`` is the reference.

        Returns:
            ``(n, mid_channels, h, w)``.
        """
        n, t, c, h, w = frames.shape
        if t != self.num_frames or c != 3:
            raise ValueError(
                f"expected windows (n, {self.num_frames}, 3, h, w), got {tuple(frames.shape)}"
            )
        # Pad to a multiple of 4 so the two stride-2 levels and their ×2 upsampling line up.
        # Edge replication works for any size (reflection needs the pad smaller than the frame).
        # Padded even when the pad is 0, with positive operands only, so a traced export (ONNX)
        # stays right for every size.
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4
        x = F.pad(frames.reshape(n * t, c, h, w), (0, pw, 0, ph), mode="replicate")
        pyramid = [f.view(n, t, *f.shape[1:]) for f in self.pyramid(x)]  # fine to coarse
        center = t // 2
        ref = [p[:, center] for p in pyramid]
        # All t neighbours (the centre included, as in EDVR) aligned in one batched call.
        nbr = [p.reshape(n * t, *p.shape[2:]) for p in pyramid]
        ref_rep = [r.repeat_interleave(t, dim=0) for r in ref]  # (n*t, c, h_l, w_l)
        aligned = self.pcd(nbr, ref_rep).view(n, t, -1, h + ph, w + pw)
        return self.tsa(aligned)[:, :, :h, :w]
