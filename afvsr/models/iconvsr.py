"""IconVSR: BasicVSR with information-refill at keyframes and coupled propagation.

Provenance: Chan et al., "BasicVSR: The Search for Essential Components in Video
Super-Resolution and Beyond", CVPR 2021, Sec. 3.2 and Fig. 4: (1) information-refill — at
keyframes (every ``keyframe_stride``-th frame and the last) an EDVR-like extractor (PCD + TSA,
``afvsr.models.edvr``) reads the ``2·temporal_padding + 1`` frames around the keyframe, and a
conv3x3 fuses its features into the warped hidden state of each branch (``backward_fusion``,
``forward_fusion``); (2) coupled propagation — the forward branch also takes the backward
branch's features (input ``2·mid_channels + 3``), and its output goes straight to the
reconstruction (no 1x1 fusion of the directions as in BasicVSR). Differs: scale 2 and 3 are
supported; the extractor's window is mirrored at the clip's ends without repeating the edge frame
(``mirror_index``; the reference pads with frames 4, 3 …), which also serves clips shorter than the
window; the extractor pads frames to a multiple of 4 itself, so the rest of the network runs on
the frames as given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afvsr.models.basicvsr import check_flow_mode, compute_flows
from afvsr.models.common import (
    Reconstruction,
    ResidualBlocksWithInputConv,
    check_lq,
    check_scale,
    constructor_kwargs,
    flow_warp,
    reconstruct_frames,
)
from afvsr.models.edvr import EDVRFeatureExtractor
from afvsr.models.spynet import SPyNet
from afvsr.windows import window_indices

DEFORM_GROUPS = 8  # the extractor's PCD, as in EDVR-M and IconVSR
BOUNDARIES = ("mirror", "reference")


def keyframe_indices(num_frames: int, *, stride: int) -> list[int]:
    """Keyframes of a clip: ``0, stride, 2·stride, …`` and always the last frame."""
    keys = list(range(0, num_frames, stride))
    if keys[-1] != num_frames - 1:
        keys.append(num_frames - 1)
    return keys


def reference_window(key: int, num_frames: int, p: int) -> list[int]:
    """BasicSR's and mmagic's extractor window around ``key`` (``num_frames >= 2p + 1``): the
    clip padded with frames ``2p, 2p-1 … p+1`` before it and ``n-p-2, n-p-3 … n-2p-1`` after
    (``x[:, [4, 3]]`` and ``x[:, [-4, -5]]`` for p = 2), then ``2p + 1`` frames from ``key``."""
    n = num_frames
    padded = [*range(2 * p, p, -1), *range(n), *range(n - p - 2, n - 2 * p - 2, -1)]
    return padded[key : key + 2 * p + 1]


class CoupledPropagation(nn.Module):
    """IconVSR's two recurrent branches with refill fusion (BasicVSR paper Sec. 3.2, Fig. 4).

    Backward branch: ``ResidualBlocksWithInputConv(3 + c → c)`` on [LR frame, state]. Forward
    branch (coupled): ``ResidualBlocksWithInputConv(3 + 2c → c)`` on [LR frame, backward feature,
    state]. At a keyframe the warped state is first replaced by
    ``{backward,forward}_fusion([state; refill feature])`` (conv3x3, 2c → c, no activation).
    """

    def __init__(self, *, mid_channels: int, num_blocks: int) -> None:
        super().__init__()
        c = mid_channels
        self.mid_channels = c
        self.backward_fusion = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.backward_branch = ResidualBlocksWithInputConv(
            in_channels=c + 3, mid_channels=c, num_blocks=num_blocks
        )
        self.forward_fusion = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.forward_branch = ResidualBlocksWithInputConv(
            in_channels=2 * c + 3, mid_channels=c, num_blocks=num_blocks
        )

    def forward(
        self,
        lq: Tensor,
        flows_backward: Tensor,
        flows_forward: Tensor,
        refill: dict[int, Tensor],
    ) -> Tensor:
        """Propagate over a clip.

        Args:
            lq: ``(b, t, 3, h, w)``.
            flows_backward, flows_forward: ``(b, t-1, 2, h, w)`` as from
                :func:`afvsr.models.basicvsr.compute_flows` (entry i of ``flows_backward`` warps
                frame i+1's state onto frame i; of ``flows_forward``, frame i's onto i+1).
            refill: keyframe index → extractor features ``(b, mid_channels, h, w)``.

        Returns:
            ``(b, t, mid_channels, h, w)`` the forward branch's output for every frame.
        """
        b, t, _, h, w = lq.shape
        state = lq.new_zeros(b, self.mid_channels, h, w)
        backward_feats: list[Tensor] = [state] * t
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                state = flow_warp(state, flows_backward[:, i])  # state of i+1 onto frame i
            if i in refill:
                state = self.backward_fusion(torch.cat([state, refill[i]], dim=1))
            state = self.backward_branch(torch.cat([lq[:, i], state], dim=1))
            backward_feats[i] = state

        state = lq.new_zeros(b, self.mid_channels, h, w)
        feats: list[Tensor] = []
        for i in range(t):
            if i > 0:
                state = flow_warp(state, flows_forward[:, i - 1])  # state of i-1 onto frame i
            if i in refill:
                state = self.forward_fusion(torch.cat([state, refill[i]], dim=1))
            state = self.forward_branch(torch.cat([lq[:, i], backward_feats[i], state], dim=1))
            feats.append(state)
        return torch.stack(feats, dim=1)  # (b, t, mid_channels, h, w)


class IconVSR(nn.Module):
    """IconVSR: ``(b, t, 3, h, w) → (b, t, 3, scale*h, scale*w)``; 8,694,991 parameters at default size.

    Submodules: ``spynet`` (SPyNet), ``extractor`` (EDVRFeatureExtractor, the information-refill),
    ``propagation`` (CoupledPropagation, with the refill fusion convs), ``reconstruction``
    (Reconstruction). ``mid_channels`` must be a multiple of 8 (the extractor's deformable groups).
    ``upsample_mode``: the reconstruction's residual base, and ``flow_mode``, as in :class:`BasicVSR`.
    ``boundary``: ``"mirror"`` (afvsr's, any clip) or ``"reference"`` (BasicSR's and mmagic's,
    which their published weights were trained with): see :meth:`keyframe_windows`, and frames
    reflect-padded to a multiple of 4 for the whole network, then cropped.
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
        keyframe_stride: int = 5,
        temporal_padding: int = 2,
        upsample_mode: str = "bicubic",
        boundary: str = "mirror",
        flow_mode: str = "two-way",
        spynet: SPyNet | None = None,
    ) -> None:
        super().__init__()
        if mid_channels < 1 or mid_channels % DEFORM_GROUPS != 0 or num_blocks < 0:
            raise ValueError(
                f"expected mid_channels a positive multiple of {DEFORM_GROUPS} (the deformable "
                f"groups) and num_blocks >= 0, got {mid_channels}, {num_blocks}"
            )
        if keyframe_stride < 1 or temporal_padding < 0:
            raise ValueError(
                f"expected keyframe_stride >= 1 and temporal_padding >= 0, "
                f"got {keyframe_stride}, {temporal_padding}"
            )
        if boundary not in BOUNDARIES:
            raise ValueError(f"expected boundary in {BOUNDARIES}, got {boundary!r}")
        self.one_way = check_flow_mode(flow_mode)
        self.kwargs = constructor_kwargs(IconVSR.__init__, locals())
        self.boundary = boundary
        self.scale = check_scale(scale)
        self.keyframe_stride, self.temporal_padding = keyframe_stride, temporal_padding
        self.spynet = spynet if spynet is not None else SPyNet()
        self.extractor = EDVRFeatureExtractor(
            mid_channels=mid_channels,
            num_frames=2 * temporal_padding + 1,
            deform_groups=DEFORM_GROUPS,
        )
        self.propagation = CoupledPropagation(mid_channels=mid_channels, num_blocks=num_blocks)
        self.reconstruction = Reconstruction(
            mid_channels=mid_channels, scale=scale, upsample_mode=upsample_mode
        )

    def keyframe_indices(self, num_frames: int) -> list[int]:
        """``0, keyframe_stride, …`` and the last frame."""
        return keyframe_indices(num_frames, stride=self.keyframe_stride)

    def keyframe_windows(self, num_frames: int) -> list[list[int]]:
        """Frame indices the extractor reads for each keyframe: ``key - p … key + p``
        (``p = temporal_padding``), mirrored into the clip (so a 3-frame clip's window around
        frame 0 is ``[2, 1, 0, 1, 2]``, and a 1-frame clip repeats frame 0). With
        ``boundary="reference"`` and at least ``2p + 1`` frames, as BasicSR/mmagic:
        :func:`reference_window` (frame 0's window is ``[4, 3, 0, 1, 2]``)."""
        p = self.temporal_padding
        if self.boundary == "reference" and num_frames >= 2 * p + 1:
            return [
                reference_window(key, num_frames, p) for key in self.keyframe_indices(num_frames)
            ]
        return [
            window_indices(key, num_frames, 2 * p + 1) for key in self.keyframe_indices(num_frames)
        ]

    def refill_features(self, lq: Tensor, *, max_pixels: int = 1 << 19) -> dict[int, Tensor]:
        """The extractor's features at every keyframe, a few windows per batched call.

        Args:
            lq: ``(b, t, 3, h, w)``.
            max_pixels: at most this many LR frame pixels (windows × frames × h × w) per call.

        Returns:
            keyframe index → ``(b, mid_channels, h, w)``.
        """
        b, t, c, h, w = lq.shape
        keys = self.keyframe_indices(t)
        idx = torch.tensor(self.keyframe_windows(t), device=lq.device)  # (K, 2p+1)
        windows = lq[:, idx]  # (b, K, 2p+1, 3, h, w)
        windows = windows.transpose(0, 1).reshape(len(keys) * b, -1, c, h, w)  # key-major
        step = max(1, max_pixels // (windows.shape[1] * h * w))
        feats = torch.cat(
            [self.extractor(windows[i : i + step]) for i in range(0, len(windows), step)]
        )
        return dict(zip(keys, feats.view(len(keys), b, *feats.shape[1:]).unbind(0), strict=True))

    def compute_flows(self, lq: Tensor) -> tuple[Tensor, Tensor]:
        """``lq (b, t, 3, h, w)`` → ``(flows_backward, flows_forward)`` each ``(b, t-1, 2, h, w)``,
        all pairs in one SPyNet call (see :func:`afvsr.models.basicvsr.compute_flows`)."""
        if lq.shape[1] == 1:
            empty = lq.new_zeros(lq.shape[0], 0, 2, *lq.shape[-2:])
            return empty, empty
        return compute_flows(self.spynet, lq, one_way=self.one_way)

    def propagate(self, lq: Tensor) -> Tensor:
        """``lq (b, t, 3, h, w)`` → features ``(b, t, mid_channels, h, w)`` for reconstruction."""
        check_lq(lq)
        return self.propagation(lq, *self.compute_flows(lq), self.refill_features(lq))

    def forward(self, lq: Tensor, *, frames: slice | None = None) -> Tensor:
        """``lq (b, t, 3, h, w)`` in [0, 1], any t, h, w >= 1 → ``(b, t, 3, scale*h, scale*w)``;
        with ``frames``, only those output frames (as ``BasicVSR.forward``)."""
        check_lq(lq)
        h, w = lq.shape[-2:]
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4
        if self.boundary == "mirror" or ph == pw == 0:
            return reconstruct_frames(self.reconstruction, self.propagate(lq), lq, frames=frames)
        # BasicSR/mmagic: the whole network runs on frames reflect-padded to a multiple of 4.
        mode = "reflect" if min(h, w) > 3 else "replicate"  # reflect needs pad < size
        x = F.pad(lq.flatten(0, 1), (0, pw, 0, ph), mode=mode).view(*lq.shape[:3], h + ph, w + pw)
        out = reconstruct_frames(self.reconstruction, self.propagate(x), x, frames=frames)
        return out[..., : self.scale * h, : self.scale * w].contiguous()
