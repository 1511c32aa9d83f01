"""SPyNet: optical flow by a spatial pyramid of small CNNs.

Provenance: Ranjan & Black, "Optical Flow Estimation using a Spatial Pyramid Network", CVPR 2017,
Sec. 3 (six levels, each a 5-layer 7x7 CNN predicting a flow residual), in the form BasicVSR
uses it (Chan et al., CVPR 2021): ImageNet mean/std input normalisation, frames resized to a
multiple of 32 and the flow rescaled back. Differs: none in structure; the weights here are
trained by afvsr's own stage 0 (synthetic flow on real frames), not downloaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afvsr.models.common import constructor_kwargs, flow_warp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SPyNetBasicModule(nn.Module):
    """One pyramid level: [ref, warped supp, flow] (8 ch) → flow residual (2 ch), five 7x7 convs."""

    def __init__(self) -> None:
        super().__init__()
        chans = [8, 32, 64, 32, 16, 2]
        layers: list[nn.Module] = []
        for i in range(5):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], 7, 1, 3))
            if i < 4:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        # An untrained level predicts no residual, so an untrained SPyNet gives zero flow (the
        # identity warp) rather than random motion; training starts from there.
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(n, 8, h, w) -> (n, 2, h, w)``."""
        return self.body(x)


class SPyNet(nn.Module):
    """Coarse-to-fine flow over a 6-level pyramid (1,440,300 parameters)."""

    num_levels = 6
    # Finest-level pixels per compute_flow call: larger batches run in slices. Measured in
    # inference (channels-last, 1 thread) at 320x180: about 35 MB per pair, so 2**19 pixels (8
    # pairs) bound the flow's working memory to about 300 MB, where one call over a 50-frame
    # chunk's 98 pairs would take 3.5 GB, at the same speed per pair. Training batches of
    # patches (e.g. 192 pairs of 32x32) stay one call.
    max_pixels = 1 << 19

    def __init__(self) -> None:
        super().__init__()
        self.kwargs = constructor_kwargs(SPyNet.__init__, locals())
        self.scale = 1
        self.basic_module = nn.ModuleList([SPyNetBasicModule() for _ in range(self.num_levels)])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def compute_flow(self, ref: Tensor, supp: Tensor) -> Tensor:
        """Flow at a size that is a multiple of 32.

        Args:
            ref, supp: ``(n, 3, h, w)`` with h, w multiples of 32.

        Returns:
            ``(n, 2, h, w)`` flow from ``ref`` to ``supp`` (warps ``supp`` onto ``ref``).
        """
        n, _, h, w = ref.shape
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(self.num_levels - 1):
            refs.append(F.avg_pool2d(refs[-1], 2, 2, count_include_pad=False))
            supps.append(F.avg_pool2d(supps[-1], 2, 2, count_include_pad=False))
        refs, supps = refs[::-1], supps[::-1]  # coarse (h/32) to fine (h)

        flow = ref.new_zeros(n, 2, h // 32, w // 32)
        for level, module in enumerate(self.basic_module):
            if level > 0:
                # Each level doubles the resolution, so flow in pixels doubles too.
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2
            warped = flow_warp(supps[level], flow, padding_mode="border")
            flow = flow + module(torch.cat([refs[level], warped, flow], dim=1))
        return flow

    def forward(self, ref: Tensor, supp: Tensor) -> Tensor:
        """Flow between two batches of frames of any size.

        Args:
            ref: ``(n, 3, h, w)`` reference frames in [0, 1].
            supp: ``(n, 3, h, w)`` supporting frames in [0, 1].

        Returns:
            ``(n, 2, h, w)`` flow in pixels from ``ref`` to ``supp``: ``flow_warp(supp, flow)`` ≈ ``ref``.
        """
        if ref.shape != supp.shape or ref.ndim != 4 or ref.shape[1] != 3:
            raise ValueError(
                f"expected ref and supp of one shape (n, 3, h, w), got {tuple(ref.shape)} "
                f"and {tuple(supp.shape)}"
            )
        h, w = ref.shape[-2:]
        # Round up to a multiple of 32 (>= 32); written with positive operands only, as ONNX's
        # integer Div truncates where Python's // floors.
        h_up, w_up = (h + 31) // 32 * 32, (w + 31) // 32 * 32
        # A traced export (ONNX) keeps the resizes whatever the example size, so the graph is right
        # for every h, w: resizing to the same size is exact.
        resize = torch.jit.is_tracing() or (h_up, w_up) != (h, w)
        if resize:
            ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
            supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        per_call = max(1, self.max_pixels // (h_up * w_up))
        if ref.shape[0] <= per_call or torch.jit.is_tracing():
            flow = self.compute_flow(ref, supp)
        else:
            pairs = zip(ref.split(per_call), supp.split(per_call), strict=True)
            flow = torch.cat([self.compute_flow(r, s) for r, s in pairs])
        if resize:
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            # Per channel (x by w/w_up, y by h/h_up) with scalars, which a trace records from h, w.
            flow = torch.cat([flow[:, :1] * (w / w_up), flow[:, 1:] * (h / h_up)], dim=1)
        return flow
