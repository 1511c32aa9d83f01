"""AttentionFusionVSR: BasicVSR over several frame-rate groups, fused by inter-group attention.

Provenance: "Attention-based Fusion for Video Super-Resolution" (the method this package is
named after): for a reference frame t, G groups see the same frame with temporal strides
``rates`` (e.g. 1, 2, 3): group g holds frames ``t + rates[g]*k, k = -W//2..W//2``. One shared
BasicVSR backbone (SPyNet + bidirectional propagation + its 1x1 fusion conv) yields each group's
feature at the reference position; the attention module fuses them; BasicVSR's own
reconstruction (pixel-shuffle upsampling, conv_hr, conv_last, bicubic residual) rebuilds the frame.
Differs: adds a `sequence` inference mode (propagate once per rate and phase over the whole
clip), and group indices past the clip's ends are mirrored (documented in ``group_indices``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from afvsr.frame_groups import check_rates, group_indices
from afvsr.models.attention import (
    AttentionMaps,
    MeanFusion,
    MultiHeadAttentionFusion,
    SingleHeadAttentionFusion,
)
from afvsr.models.basicvsr import BidirectionalPropagation, propagate
from afvsr.models.common import Reconstruction, check_lq, check_scale, reconstruct_frames
from afvsr.models.spynet import SPyNet

MODES = ("window", "sequence")
FUSIONS = ("attention", "mean")


def check_fusion_args(
    rates: tuple[int, ...], window: int, num_heads: int, fusion: str = "attention"
) -> tuple[int, ...]:
    rates = check_rates(rates, window)
    if not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"expected num_heads >= 1, got {num_heads!r}")
    if fusion not in FUSIONS:
        raise ValueError(f"expected fusion in {FUSIONS}, got {fusion!r}")
    if fusion == "mean" and num_heads != 1:
        raise ValueError(f"fusion 'mean' has no heads: expected num_heads = 1, got {num_heads}")
    return rates


class AttentionFusionVSR(nn.Module):
    """The method: ``(b, t, 3, h, w) → (b, t, 3, scale*h, scale*w)``.

    Default sizes: single-head (``num_heads=1``) 6,844,719 parameters; 4 heads 7,767,215.
    Submodule names match BasicVSR's (``spynet``, ``propagation``, ``reconstruction``), so a
    trained BasicVSR state dict warm-starts them; ``attention`` is the method's own module.
    ``fusion="mean"`` replaces it by the mean over groups (no parameters): the ablation that
    tells the attention's gain from the rest of stage 2.
    """

    def __init__(
        self,
        *,
        mid_channels: int = 64,
        num_blocks: int = 30,
        scale: int = 4,
        rates: tuple[int, ...] | list[int] = (1, 2, 3),
        window: int = 5,
        num_heads: int = 1,
        fusion: str = "attention",
        spynet: SPyNet | None = None,
    ) -> None:
        super().__init__()
        rates = check_fusion_args(rates, window, num_heads, fusion)
        self.kwargs = {
            "mid_channels": mid_channels,
            "num_blocks": num_blocks,
            "scale": scale,
            "rates": list(rates),
            "window": window,
            "num_heads": num_heads,
            "fusion": fusion,
        }
        self.scale = check_scale(scale)
        self.rates, self.window, self.num_heads = rates, window, num_heads
        self.spynet = spynet if spynet is not None else SPyNet()
        self.propagation = BidirectionalPropagation(
            mid_channels=mid_channels, num_blocks=num_blocks
        )
        if fusion == "mean":
            self.attention: nn.Module = MeanFusion()
        elif num_heads == 1:
            self.attention = SingleHeadAttentionFusion(
                mid_channels=mid_channels, num_groups=len(rates)
            )
        else:
            self.attention = MultiHeadAttentionFusion(
                mid_channels=mid_channels, num_groups=len(rates), num_heads=num_heads
            )
        self.reconstruction = Reconstruction(mid_channels=mid_channels, scale=scale)

    def group_indices(self, t: int, num_frames: int) -> list[list[int]]:
        """Indices ``[G][W]`` of the groups around reference frame ``t`` (mirrored at the ends)."""
        return group_indices(t, num_frames, rates=self.rates, window=self.window)

    def forward_groups(
        self, lq_groups: Tensor, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, AttentionMaps]:
        """Rebuild the reference frame from its frame-rate groups (what training calls).

        Args:
            lq_groups: ``(b, G, W, 3, h, w)``; group g holds frames ``t + rates[g]*k``,
                ``k = -W//2..W//2``, so ``lq_groups[:, g, W//2]`` is the reference frame.
            return_attention: also return the attention maps (for figures).

        Returns:
            ``(b, 3, scale*h, scale*w)``, and with ``return_attention`` a dict of
            ``(b, heads, G, c, h, w)`` tensors: "projection", "attention", "output".
        """
        if lq_groups.ndim != 6:
            raise ValueError(
                f"expected groups of shape (b, G, W, 3, h, w), got {tuple(lq_groups.shape)}"
            )
        b, g, w_, c, h, w = lq_groups.shape
        if g != len(self.rates) or w_ != self.window:
            raise ValueError(
                f"expected {len(self.rates)} groups of {self.window} frames, got {g} of {w_}"
            )
        clips = lq_groups.reshape(b * g, w_, c, h, w)
        feats = propagate(self.spynet, self.propagation, clips, only=w_ // 2)  # (b*G, mid, h, w)
        fused, maps = self.attention(feats.view(b, g, -1, h, w), return_attention=return_attention)
        out = self.reconstruction(fused, lq_groups[:, 0, w_ // 2])
        return (out, maps) if return_attention else out

    def sequence_features(self, lq: Tensor) -> Tensor:
        """Each group's feature for every frame, propagating once per rate and phase.

        For rate r the clip splits into r phase sub-sequences (frames ≡ p mod r); each is
        propagated over its whole length, so one rate costs one BasicVSR pass over the clip.

        Args:
            lq: ``(b, t, 3, h, w)``.

        Returns:
            ``(b, t, G, mid_channels, h, w)``.
        """
        b, t, _, h, w = lq.shape
        out = lq.new_empty(b, t, len(self.rates), self.propagation.mid_channels, h, w)
        first_group: dict[int, int] = {}  # rate -> the first group with it
        for g, r in enumerate(self.rates):
            if r in first_group:  # a repeated rate: same features
                out[:, :, g] = out[:, :, first_group[r]]
                continue
            first_group[r] = g
            for p in range(min(r, t)):
                out[:, p::r, g] = propagate(self.spynet, self.propagation, lq[:, p::r])
        return out  # (b, t, G, mid_channels, h, w)

    def fuse_and_reconstruct(
        self, feats: Tensor, lq: Tensor, *, max_pixels: int = 1 << 22
    ) -> Tensor:
        """Attention fusion then reconstruction, a few frames at a time.

        Args:
            feats: ``(b, t, G, mid_channels, h, w)`` group features per frame.
            lq: ``(b, t, 3, h, w)``.

        Returns:
            ``(b, t, 3, s*h, s*w)``.
        """
        b, t, g, c, h, w = feats.shape
        flat = feats.reshape(b * t, g, c, h, w)
        step = max(1, max_pixels // (g * h * w * 4))
        fused = torch.cat(
            [self.attention(flat[i : i + step])[0] for i in range(0, b * t, step)], dim=0
        )
        return reconstruct_frames(
            self.reconstruction, fused.view(b, t, c, h, w), lq, max_pixels=max_pixels
        )

    def forward(self, lq: Tensor, *, mode: str = "sequence", frames: slice | None = None) -> Tensor:
        """Every frame of a clip, or only ``frames`` of it (the groups still read the whole clip).

        Args:
            lq: ``(b, t, 3, h, w)`` in [0, 1].
            mode: ``"sequence"`` — per rate, propagate over each phase sub-sequence of the whole
                clip, then fuse per frame (cost ≈ G BasicVSR passes); ``"window"`` — per reference
                frame, as trained: G groups of W frames (mirrored at the clip's ends).
            frames: the output frames to rebuild (None: all); chunked upscaling drops the
                context frames at each chunk's ends, so it asks only for the kept ones.

        Returns:
            ``(b, t, 3, scale*h, scale*w)``, or ``(b, k, …)`` for the k frames in ``frames``.
        """
        check_lq(lq)
        if mode not in MODES:
            raise ValueError(f"expected mode in {MODES}, got {mode!r}")
        t = lq.shape[1]
        keep = slice(None) if frames is None else frames
        if mode == "sequence":
            return self.fuse_and_reconstruct(self.sequence_features(lq)[:, keep], lq[:, keep])
        outs = []
        for ref in range(t)[keep]:
            idx = torch.tensor(self.group_indices(ref, t), device=lq.device)  # (G, W)
            outs.append(self.forward_groups(lq[:, idx]))  # lq[:, idx]: (b, G, W, 3, h, w)
        return torch.stack(outs, dim=1)
