"""AFVSR, the method: BasicVSR over several frame-rate groups, fused by inter-group attention.

Provenance: "Attention-based Fusion for Video Super-Resolution" (the method this package is
named after): for a reference frame t, G groups see the same frame with temporal strides
``rates`` (e.g. 1, 2, 3): group g holds frames ``t + rates[g]*k, k = -W//2..W//2``. One shared
BasicVSR backbone (SPyNet + bidirectional propagation + its 1x1 direction-fusion conv) yields
each group's feature at the reference position; the attention module fuses them (the group
fusion; ``group_fusion="mean"`` is the ablation); BasicVSR's own
reconstruction (pixel-shuffle upsampling, conv_hr, conv_last, bicubic residual) rebuilds the frame.
Differs: adds a `sequence` inference mode (propagate once per rate and phase over the whole
clip), and group indices past the clip's ends are mirrored (documented in ``group_indices``).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from afvsr.frame_groups import check_rates, group_indices
from afvsr.models.attention import (
    AttentionMaps,
    MeanFusion,
    MultiHeadAttentionFusion,
    SingleHeadAttentionFusion,
)
from afvsr.models.basicvsr import (
    BidirectionalPropagation,
    check_flow_mode,
    compute_flows,
    propagate,
)
from afvsr.models.common import (
    Reconstruction,
    check_lq,
    check_scale,
    constructor_kwargs,
    reconstruct_frames,
)
from afvsr.models.spynet import SPyNet

MODES = ("window", "sequence")
GROUP_FUSIONS = ("attention", "mean")  # how the groups' features are fused


def check_afvsr_args(
    rates: tuple[int, ...],
    window: int,
    num_heads: int,
    group_fusion: str = "attention",
    residual_fusion: bool = False,
) -> tuple[int, ...]:
    rates = check_rates(rates, window)
    if not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"expected num_heads >= 1, got {num_heads!r}")
    if group_fusion not in GROUP_FUSIONS:
        raise ValueError(f"expected group_fusion in {GROUP_FUSIONS}, got {group_fusion!r}")
    if group_fusion == "mean" and num_heads != 1:
        raise ValueError(
            f"group_fusion 'mean' has no heads: expected num_heads = 1, got {num_heads}"
        )
    if group_fusion == "mean" and residual_fusion:
        raise ValueError("group_fusion 'mean' has no residual: expected residual_fusion = false")
    return rates


class AFVSR(nn.Module):
    """The method: ``(b, t, 3, h, w) → (b, t, 3, scale*h, scale*w)``.

    Default sizes: single-head (``num_heads=1``) 6,844,719 parameters; 4 heads 7,767,215.
    Submodule names match BasicVSR's (``spynet``, ``propagation``, ``reconstruction``), so a
    trained BasicVSR state dict warm-starts them; ``attention`` is the method's own module.
    ``group_fusion="mean"`` replaces it by the mean over groups (no parameters): the ablation that
    tells the attention's gain from the rest of stage 2. ``upsample_mode``: the reconstruction's
    residual base, as in :class:`~afvsr.models.basicvsr.BasicVSR` (``"bilinear"`` to start from a
    published BasicVSR); ``flow_mode`` as there too (``"one-way"``: SPyNet once per frame pair).
    ``residual_fusion``: the attention's result is added to the first
    group's feature (rate 1 in every preset: the backbone's own) instead of replacing it, and
    starts at zero, so stage 2 starts exactly at its backbone (not in the paper; the same
    parameters and names).
    """

    # How the model runs over a clip (see afvsr.models).
    clip_modes: tuple[str, ...] = MODES  # "window" as trained, "sequence" per rate/phase
    default_mode: str | None = "sequence"
    takes_frames = True

    def __init__(
        self,
        *,
        mid_channels: int = 64,
        num_blocks: int = 30,
        scale: int = 4,
        rates: tuple[int, ...] | list[int] = (1, 2, 3),
        window: int = 5,
        num_heads: int = 1,
        group_fusion: str = "attention",
        residual_fusion: bool = False,
        upsample_mode: str = "bicubic",
        flow_mode: str = "two-way",
        spynet: SPyNet | None = None,
    ) -> None:
        super().__init__()
        rates = check_afvsr_args(rates, window, num_heads, group_fusion, residual_fusion)
        self.one_way = check_flow_mode(flow_mode)
        self.kwargs = constructor_kwargs(AFVSR.__init__, locals())
        self.scale = check_scale(scale)
        self.rates, self.window, self.num_heads = rates, window, num_heads
        self.spynet = spynet if spynet is not None else SPyNet()
        self.propagation = BidirectionalPropagation(
            mid_channels=mid_channels, num_blocks=num_blocks
        )
        if group_fusion == "mean":
            self.attention: nn.Module = MeanFusion()
        elif num_heads == 1:
            self.attention = SingleHeadAttentionFusion(
                mid_channels=mid_channels, num_groups=len(rates), residual=residual_fusion
            )
        else:
            self.attention = MultiHeadAttentionFusion(
                mid_channels=mid_channels,
                num_groups=len(rates),
                num_heads=num_heads,
                residual=residual_fusion,
            )
        self.reconstruction = Reconstruction(
            mid_channels=mid_channels, scale=scale, upsample_mode=upsample_mode
        )

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
        feats = propagate(
            self.spynet, self.propagation, clips, only=w_ // 2, one_way=self.one_way
        )  # (b*G, mid, h, w)
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
                out[:, p::r, g] = propagate(
                    self.spynet, self.propagation, lq[:, p::r], one_way=self.one_way
                )
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

    def backward_streams(self, lq: Tensor) -> dict[tuple[int, int], tuple[list, Iterator]]:
        """Per distinct rate r and phase p: the backward features of the phase sub-sequence
        ``lq[:, p::r]`` (a list, entry k for frame ``p + r*k``) and a lazy iterator over its
        forward states (see :class:`~afvsr.models.basicvsr.BidirectionalPropagation`)."""
        streams = {}
        for r in dict.fromkeys(self.rates):  # distinct rates, in order
            for p in range(min(r, lq.shape[1])):
                sub = lq[:, p::r]  # (b, t_p, 3, h, w)
                if sub.shape[1] == 1:
                    fb = ff = sub.new_zeros(sub.shape[0], 0, 2, *sub.shape[-2:])
                else:
                    # (b, t_p - 1, 2, h, w) each
                    fb, ff = compute_flows(self.spynet, sub, one_way=self.one_way)
                backward = self.propagation.backward_features(sub, fb)
                streams[(r, p)] = (backward, self.propagation.forward_states(sub, ff))
        return streams

    def sequence_frames(self, lq: Tensor, keep: slice = slice(None)) -> Tensor:
        """``sequence`` mode, one frame at a time: the numbers of
        ``fuse_and_reconstruct(sequence_features(lq)[:, keep], lq[:, keep])`` without holding
        every group's features for every frame.

        Only the backward features (one map per frame and distinct rate) are held whole; the
        forward branches advance frame by frame, and each frame's G group features are fused and
        reconstructed as soon as they exist, their backward features released.

        Args:
            lq: ``(b, t, 3, h, w)``. keep: the output frames (a slice of ``range(t)``).

        Returns:
            ``(b, k, 3, s*h, s*w)`` for the k frames in ``keep``.
        """
        b, t, _, h, w = lq.shape
        wanted = range(t)[keep]
        s = self.scale
        out = lq.new_empty(b, len(wanted), 3, s * h, s * w)
        if not wanted:
            return out
        streams = self.backward_streams(lq)
        row = {i: j for j, i in enumerate(wanted)}  # frame index -> output row
        for i in range(max(wanted) + 1):
            feats = {}  # rate -> (b, mid_channels, h, w), this frame's feature of that rate
            for r in dict.fromkeys(self.rates):
                backward, states = streams[(r, i % r)]
                state = next(states)  # every phase's forward branch advances in step
                if i in row:
                    feats[r] = self.propagation.fuse(backward[i // r], state)
                backward[i // r] = None
            if i in row:
                groups = torch.stack([feats[r] for r in self.rates], dim=1)  # (b, G, c, h, w)
                fused = self.attention(groups)[0]  # (b, c, h, w)
                out[:, row[i]] = self.reconstruction(fused, lq[:, i])
        return out  # (b, k, 3, s*h, s*w)

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
            return self.sequence_frames(lq, keep)
        outs = []
        for ref in range(t)[keep]:
            idx = torch.tensor(self.group_indices(ref, t), device=lq.device)  # (G, W)
            outs.append(self.forward_groups(lq[:, idx]))  # lq[:, idx]: (b, G, W, 3, h, w)
        return torch.stack(outs, dim=1)


AttentionFusionVSR = AFVSR  # the class's earlier name
