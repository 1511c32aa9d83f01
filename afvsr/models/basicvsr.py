"""BasicVSR: bidirectional recurrent propagation with flow-based feature alignment.

Provenance: Chan et al., "BasicVSR: The Search for Essential Components in Video
Super-Resolution and Beyond", CVPR 2021, Sec. 3.1 and Fig. 3: SPyNet flow, backward and forward
branches of residual blocks fed with [LR frame, flow-warped hidden state], a 1x1 conv fusing both
directions, pixel-shuffle upsampling and a bicubic residual. Differs: scale 2 and 3 are supported
(one shuffle stage of ×2 or ×3), and reconstruction runs a few frames at a time after propagation.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from afvsr.models.common import (
    Reconstruction,
    ResidualBlocksWithInputConv,
    check_lq,
    check_scale,
    constructor_kwargs,
    flow_warp,
    reconstruct_frames,
)
from afvsr.models.spynet import SPyNet

FLOW_MODES = ("two-way", "one-way")


def check_flow_mode(mode: str) -> bool:
    """Whether ``mode`` (one of :data:`FLOW_MODES`) is one-way; ValueError for another."""
    if mode not in FLOW_MODES:
        raise ValueError(f"expected flow_mode in {FLOW_MODES}, got {mode!r}")
    return mode == "one-way"


def compute_flows(
    spynet: SPyNet, lq: Tensor, *, only: int | None = None, one_way: bool = False
) -> tuple[Tensor, Tensor]:
    """Flows between neighbouring frames, all pairs in one batched SPyNet call.

    Args:
        lq: ``(b, t, 3, h, w)`` with t >= 2.
        only: if given, compute only the flows that propagation to frame ``only`` needs
            (backward pairs ``only..t-2``, forward pairs ``0..only-1``: half of them); the
            others are left zero.
        one_way: run SPyNet once per pair (the forward flows, half the cost) and derive each
            backward flow from its forward one: ``f_b(p) ≈ -f_f(p - f_f(p))`` (the forward flow
            lives on frame i+1's grid, the backward one on frame i's). ``only`` is then ignored:
            every pair's forward flow is needed anyway.

    Returns:
        ``flows_backward (b, t-1, 2, h, w)``: entry i is the flow from frame i to frame i+1, used to
        warp frame i+1's state onto frame i (backward branch);
        ``flows_forward (b, t-1, 2, h, w)``: entry i is the flow from frame i+1 to frame i, used to
        warp frame i's state onto frame i+1 (forward branch).
    """
    if only is not None and not one_way:
        return _flows_to(spynet, lq, only)
    b, t, c, h, w = lq.shape
    first = lq[:, :-1].reshape(-1, c, h, w)  # frames 0..t-2, (b*(t-1), 3, h, w)
    second = lq[:, 1:].reshape(-1, c, h, w)  # frames 1..t-1
    if one_way:
        forward = spynet(second, first)  # (b*(t-1), 2, h, w): frame i+1 → frame i
        backward = -flow_warp(forward, -forward, padding_mode="border")
        return backward.view(b, t - 1, 2, h, w), forward.view(b, t - 1, 2, h, w)
    # One call for both directions: twice the batch, no Python loop over frames.
    flows = spynet(torch.cat([first, second]), torch.cat([second, first]))
    flows_backward, flows_forward = flows.view(2, b, t - 1, 2, h, w).unbind(0)
    return flows_backward, flows_forward


def _flows_to(spynet: SPyNet, lq: Tensor, only: int) -> tuple[Tensor, Tensor]:
    """Two-way flows for propagation to frame ``only`` alone (see :func:`compute_flows`): one
    SPyNet call over the pairs each branch needs, the others left zero."""
    b, t, c, h, w = lq.shape
    nb, nf = t - 1 - only, only  # pairs needed by each branch
    ref = torch.cat([lq[:, only:-1], lq[:, 1 : only + 1]], dim=1).reshape(-1, c, h, w)
    supp = torch.cat([lq[:, only + 1 :], lq[:, :only]], dim=1).reshape(-1, c, h, w)
    flows = spynet(ref, supp).view(b, nb + nf, 2, h, w)
    flows_backward = lq.new_zeros(b, t - 1, 2, h, w)
    flows_forward = lq.new_zeros(b, t - 1, 2, h, w)
    flows_backward[:, only:] = flows[:, :nb]
    flows_forward[:, :only] = flows[:, nb:]
    return flows_backward, flows_forward


class BidirectionalPropagation(nn.Module):
    """Backward then forward recurrent branches and the 1x1 conv that fuses them.

    Each branch is ``ResidualBlocksWithInputConv(3 + mid_channels → mid_channels)`` applied to
    [LR frame i, hidden state warped onto frame i].
    """

    def __init__(self, *, mid_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.mid_channels = mid_channels
        self.backward_branch = ResidualBlocksWithInputConv(
            in_channels=mid_channels + 3, mid_channels=mid_channels, num_blocks=num_blocks
        )
        self.forward_branch = ResidualBlocksWithInputConv(
            in_channels=mid_channels + 3, mid_channels=mid_channels, num_blocks=num_blocks
        )
        # the 1x1 direction-fusion conv, under BasicSR's name (a published key; not AFVSR)
        self.fusion = nn.Conv2d(2 * mid_channels, mid_channels, 1, 1, 0)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(
        self, lq: Tensor, flows_backward: Tensor, flows_forward: Tensor, *, only: int | None = None
    ) -> Tensor:
        """Propagate over a clip.

        Args:
            lq: ``(b, t, 3, h, w)``.
            flows_backward, flows_forward: ``(b, t-1, 2, h, w)`` as from :func:`compute_flows`.
            only: if given, run each branch only as far as frame ``only`` and return its features.

        Returns:
            ``(b, t, mid_channels, h, w)`` fused features (after LeakyReLU) of every frame, or
            ``(b, mid_channels, h, w)`` of frame ``only``.
        """
        b, t, _, h, w = lq.shape
        backward_feats = self.backward_features(lq, flows_backward, last=only or 0)
        states = self.forward_states(lq, flows_forward)
        if only is not None:
            for i, state in zip(range(only + 1), states, strict=False):
                if i == only:
                    return self.fuse(backward_feats[i], state)
        # Written frame by frame; each backward feature is released once fused, so inference
        # holds about t + 1 feature maps, not 2t (and no final stack).
        out = lq.new_empty(b, t, self.mid_channels, h, w)
        for i, state in enumerate(states):
            out[:, i] = self.fuse(backward_feats[i], state)
            backward_feats[i] = None
        return out  # (b, t, mid_channels, h, w)

    def backward_features(
        self, lq: Tensor, flows_backward: Tensor, *, last: int = 0
    ) -> list[Tensor | None]:
        """The backward branch from the clip's last frame down to frame ``last``.

        Returns a list of t entries: ``(b, mid_channels, h, w)`` for frames ``last..t-1``, None
        before ``last`` (the caller may release entries once used).
        """
        b, t, _, h, w = lq.shape
        state = lq.new_zeros(b, self.mid_channels, h, w)
        feats: list[Tensor | None] = [None] * t
        for i in range(t - 1, last - 1, -1):
            if i < t - 1:
                state = flow_warp(state, flows_backward[:, i])  # state of i+1 onto frame i
            state = self.backward_branch(torch.cat([lq[:, i], state], dim=1))
            feats[i] = state
        return feats

    def forward_states(self, lq: Tensor, flows_forward: Tensor) -> Iterator[Tensor]:
        """The forward branch's state ``(b, mid_channels, h, w)`` at frames 0, 1, …, lazily:
        frame i is computed when the caller asks for it (stop early to skip the rest)."""
        b, t, _, h, w = lq.shape
        state = lq.new_zeros(b, self.mid_channels, h, w)
        for i in range(t):
            if i > 0:
                state = flow_warp(state, flows_forward[:, i - 1])  # state of i-1 onto frame i
            state = self.forward_branch(torch.cat([lq[:, i], state], dim=1))
            yield state

    def fuse(self, backward_feat: Tensor, forward_state: Tensor) -> Tensor:
        """The 1x1 conv over both directions (+ LeakyReLU): two ``(b, c, h, w)`` → ``(b, c, h, w)``."""
        return self.lrelu(self.fusion(torch.cat([backward_feat, forward_state], dim=1)))


def propagate(
    spynet: SPyNet,
    propagation: BidirectionalPropagation,
    lq: Tensor,
    *,
    only: int | None = None,
    one_way: bool = False,
) -> Tensor:
    """Flows then bidirectional propagation; see :meth:`BidirectionalPropagation.forward`
    (``one_way``: see :func:`compute_flows`)."""
    check_lq(lq)
    t = lq.shape[1]
    if only is not None and not 0 <= only < t:
        raise ValueError(f"expected a frame index in [0, {t}), got only={only}")
    if t == 1:
        empty = lq.new_zeros(lq.shape[0], 0, 2, *lq.shape[-2:])
        return propagation(lq, empty, empty, only=only)
    flows = compute_flows(spynet, lq, only=only, one_way=one_way)
    return propagation(lq, *flows, only=only)


class BasicVSR(nn.Module):
    """BasicVSR: ``(b, t, 3, h, w) → (b, t, 3, scale*h, scale*w)``; 6,291,311 parameters at default size.

    ``upsample_mode`` is the residual base of the reconstruction: ``"bilinear"`` as in BasicSR's
    and mmagic's BasicVSR (their published weights load with it), ``"bicubic"`` (default) as
    afvsr's own weights were trained. ``flow_mode``: ``"two-way"`` (default, the paper's) runs
    SPyNet in both directions of each frame pair; ``"one-way"`` runs it once per pair and derives
    the backward flow by warping the forward one (half the flow's cost; see :func:`compute_flows`).
    """

    # How the model runs over a clip (see afvsr.models).
    clip_modes: tuple[str, ...] = ()
    default_mode: str | None = None
    takes_frames = True

    def __init__(
        self,
        *,
        mid_channels: int = 64,
        num_blocks: int = 30,
        scale: int = 4,
        upsample_mode: str = "bicubic",
        flow_mode: str = "two-way",
        spynet: SPyNet | None = None,
    ) -> None:
        super().__init__()
        if mid_channels < 1 or num_blocks < 0:
            raise ValueError(
                f"expected mid_channels >= 1 and num_blocks >= 0, got {mid_channels}, {num_blocks}"
            )
        self.one_way = check_flow_mode(flow_mode)
        self.kwargs = constructor_kwargs(BasicVSR.__init__, locals())
        self.scale = check_scale(scale)
        self.spynet = spynet if spynet is not None else SPyNet()
        self.propagation = BidirectionalPropagation(
            mid_channels=mid_channels, num_blocks=num_blocks
        )
        self.reconstruction = Reconstruction(
            mid_channels=mid_channels, scale=scale, upsample_mode=upsample_mode
        )

    def propagate(self, lq: Tensor, *, only: int | None = None) -> Tensor:
        """``lq (b, t, 3, h, w)`` → fused LR features ``(b, t, mid_channels, h, w)``.

        With ``only=i``, the features of frame i alone, ``(b, mid_channels, h, w)``, at half the cost.
        """
        return propagate(self.spynet, self.propagation, lq, only=only, one_way=self.one_way)

    def forward(self, lq: Tensor, *, frames: slice | None = None) -> Tensor:
        """``lq (b, t, 3, h, w)`` in [0, 1] → ``(b, t, 3, scale*h, scale*w)``, every frame; with
        ``frames``, only those output frames ``(b, k, 3, scale*h, scale*w)`` are reconstructed
        (propagation still reads the whole clip: chunked upscaling drops its context frames)."""
        return reconstruct_frames(self.reconstruction, self.propagate(lq), lq, frames=frames)
