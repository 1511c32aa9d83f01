"""Flow losses: end-point error, SPyNet's multi-scale supervised loss, and an unsupervised
photometric + smoothness loss for real consecutive frames.

Provenance:
- EPE and the per-level supervision: SPyNet (Ranjan & Black, CVPR 2017, Sec. 3) trains each
  pyramid level on the end-point error of its flow against the ground truth downsampled to that
  level. Differs: all levels are trained at once, the loss is a weighted sum over levels.
- Unsupervised loss: the photometric term of UnFlow (Meister et al., AAAI 2018): a generalised
  Charbonnier on colour plus a soft ternary census distance, averaged over pixels whose sample
  stays inside the frame; edge-aware first-order smoothness as in Godard et al. (CVPR 2017).
  Differs: no forward-backward occlusion check, one scale only.

Flows are ``(b, 2, h, w)`` in pixels from ``ref`` to ``supp`` (``flow_warp(supp, flow) ≈ ref``).
Every loss is computed in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afvsr.models.common import flow_warp, make_grid

__all__ = [
    "census_distance",
    "census_transform",
    "epe",
    "multiscale_epe_loss",
    "photometric_loss",
    "pyramid_flows",
    "smoothness_loss",
    "unsupervised_loss",
    "valid_mask",
]


def _check_flow(flow: Tensor, name: str = "flow") -> None:
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"expected {name} of shape (b, 2, h, w), got {tuple(flow.shape)}")


def epe(pred: Tensor, target: Tensor, *, eps: float = 0.0) -> Tensor:
    """Mean end-point error ``mean ||pred - target||_2`` over batch and pixels (a scalar).

    ``eps > 0`` adds it under the square root so the gradient is defined at zero error (for
    training; metrics use 0).
    """
    _check_flow(pred, "pred")
    if pred.shape != target.shape:
        raise ValueError(
            f"expected pred and target of one shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    diff = pred.float() - target.float()
    return torch.sqrt((diff * diff).sum(dim=1) + eps).mean()


def downsample_flow(flow: Tensor, factor: int) -> Tensor:
    """Average ``factor × factor`` blocks and divide by ``factor`` (pixels of the coarser grid):
    ``(b, 2, h, w) -> (b, 2, h/factor, w/factor)``, as SPyNet's pyramid pools its frames."""
    if factor == 1:
        return flow
    return F.avg_pool2d(flow, factor, factor) / factor


def pyramid_flows(spynet: nn.Module, ref: Tensor, supp: Tensor) -> list[Tensor]:
    """SPyNet's flow after every pyramid level, coarse (h/32) to fine (h).

    Runs ``spynet.compute_flow(ref, supp)`` once and records, at each level, the module's
    input flow (its last 2 input channels, see ``SPyNetBasicModule``) plus the residual it
    predicts — exactly the flow that level hands to the next. The last entry *is*
    ``compute_flow``'s result (checked).

    Args:
        ref, supp: ``(n, 3, h, w)`` in [0, 1], h and w multiples of 32.

    Returns:
        ``[(n, 2, h/32, w/32), (n, 2, h/16, w/16), …, (n, 2, h, w)]``.
    """
    levels: list[Tensor] = []

    def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        levels.append(inputs[0][:, 6:8] + output)

    handles = [m.register_forward_hook(record) for m in spynet.basic_module]
    try:
        flow = spynet.compute_flow(ref, supp)
    finally:
        for handle in handles:
            handle.remove()
    if len(levels) != len(spynet.basic_module) or levels[-1].shape != flow.shape:
        raise RuntimeError(
            f"expected one flow per SPyNet level ending in {tuple(flow.shape)}, got "
            f"{[tuple(f.shape) for f in levels]}"
        )
    levels[-1] = flow  # the same values; keep the tensor compute_flow returned
    return levels


def multiscale_epe_loss(
    flows: Sequence[Tensor], target: Tensor, weights: Sequence[float], *, eps: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Weighted sum over pyramid levels of the EPE against the downsampled ground truth.

    Args:
        flows: per-level predictions, coarse to fine (``pyramid_flows``); level ``k`` from the
            finest has ``1/2^k`` the resolution, and its EPE is measured in its own pixels.
        target: ``(b, 2, h, w)`` the ground truth at the finest level.
        weights: one weight per level, **finest first**; missing levels weigh 0.

    Returns:
        ``(loss, epe)``: the weighted sum, and the plain EPE of the finest level (no eps).
    """
    _check_flow(target, "target")
    if flows[-1].shape != target.shape:
        raise ValueError(
            f"expected the finest flow to match target {tuple(target.shape)}, "
            f"got {tuple(flows[-1].shape)}"
        )
    total = target.new_zeros((), dtype=torch.float32)
    for k, flow in enumerate(reversed(flows)):
        if k >= len(weights) or weights[k] == 0:
            continue
        total = total + weights[k] * epe(flow, downsample_flow(target.float(), 2**k), eps=eps)
    with torch.no_grad():
        final = epe(flows[-1], target)
    return total, final


def valid_mask(flow: Tensor) -> Tensor:
    """``(b, 1, h, w)``: 1 where ``p + flow[p]`` lies inside the frame (the sample is real)."""
    _check_flow(flow)
    _, _, h, w = flow.shape
    coords = make_grid(h, w, device=flow.device, dtype=torch.float32) + flow.float()
    inside = (
        (coords[:, 0] >= 0)
        & (coords[:, 0] <= w - 1)
        & (coords[:, 1] >= 0)
        & (coords[:, 1] <= h - 1)
    )
    return inside[:, None].float()


def _masked_mean(value: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``value (b, c, h, w)`` over the pixels where ``mask (b, 1, h, w)`` is 1."""
    weight = mask.expand_as(value)
    return (value * weight).sum() / weight.sum().clamp_min(1.0)


def photometric_loss(
    ref: Tensor, warped: Tensor, mask: Tensor, *, eps: float = 0.01, power: float = 0.45
) -> Tensor:
    """Generalised Charbonnier ``(d² + eps²)^power - eps^(2·power)`` on colour, masked mean.

    Zero for identical images (the constant is subtracted); robust to outliers (power < 0.5).
    """
    diff = ref.float() - warped.float()
    value = (diff * diff + eps * eps) ** power - eps ** (2 * power)
    return _masked_mean(value, mask)


def census_transform(image: Tensor, *, radius: int = 3) -> Tensor:
    """Soft ternary census of the grey image: ``(b, 3, h, w) -> (b, (2r+1)², h, w)``.

    Each channel is a neighbour's difference to the centre, squashed to (-1, 1) by
    ``d / sqrt(0.81 + d²)`` (on 0–255 grey levels), so it ignores brightness changes.
    """
    grey = (
        image.float() * torch.tensor([0.299, 0.587, 0.114], device=image.device).view(1, 3, 1, 1)
    ).sum(dim=1, keepdim=True) * 255  # (b, 1, h, w)
    size = 2 * radius + 1
    b, _, h, w = grey.shape
    patches = F.unfold(F.pad(grey, [radius] * 4, mode="replicate"), size)  # (b, size², h·w)
    diff = patches.view(b, size * size, h, w) - grey
    return diff / torch.sqrt(0.81 + diff * diff)


def census_distance(census_a: Tensor, census_b: Tensor, mask: Tensor) -> Tensor:
    """Soft Hamming distance ``Σ d²/(0.1 + d²)`` over the neighbours, masked mean over pixels,
    divided by the number of neighbours (so it lies in [0, 1))."""
    d2 = (census_a - census_b) ** 2
    per_pixel = (d2 / (0.1 + d2)).mean(dim=1, keepdim=True)  # (b, 1, h, w)
    return _masked_mean(per_pixel, mask)


def smoothness_loss(flow: Tensor, image: Tensor, *, edge_alpha: float = 10.0) -> Tensor:
    """Edge-aware first-order smoothness: ``mean |∂flow| · exp(-edge_alpha · mean_c |∂image|)``
    over both axes, in pixels per pixel. Zero for a constant flow."""
    flow, image = flow.float(), image.float()
    dfx = (flow[..., :, 1:] - flow[..., :, :-1]).abs()  # (b, 2, h, w-1)
    dfy = (flow[..., 1:, :] - flow[..., :-1, :]).abs()  # (b, 2, h-1, w)
    wx = torch.exp(-edge_alpha * (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, True))
    wy = torch.exp(-edge_alpha * (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, True))
    return 0.5 * ((dfx * wx).mean() + (dfy * wy).mean())


def unsupervised_loss(
    ref: Tensor,
    supp: Tensor,
    flow: Tensor,
    *,
    photo_weight: float = 1.0,
    census_weight: float = 1.0,
    smooth_weight: float = 0.05,
    edge_alpha: float = 10.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Photometric (Charbonnier + census) alignment of ``warp(supp, flow)`` to ``ref`` plus
    edge-aware smoothness, for real frame pairs with no ground truth.

    Args:
        ref, supp: ``(b, 3, h, w)`` in [0, 1] (``ref`` is frame t, ``supp`` frame t±1).
        flow: ``(b, 2, h, w)`` predicted flow from ``ref`` to ``supp``.

    Returns:
        ``(loss, logs)``; ``logs`` has the three terms (``photo``, ``census``, ``smooth``).
        The loss is 0 for identical frames and zero flow, and grows with misalignment.
    """
    _check_flow(flow)
    if ref.shape != supp.shape or ref.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"expected ref, supp (b, 3, h, w) and flow (b, 2, h, w) of one size, got "
            f"{tuple(ref.shape)}, {tuple(supp.shape)}, {tuple(flow.shape)}"
        )
    mask = valid_mask(flow.detach())
    warped = flow_warp(supp.float(), flow.float(), padding_mode="border")
    photo = photometric_loss(ref, warped, mask)
    census = census_distance(census_transform(ref), census_transform(warped), mask)
    smooth = smoothness_loss(flow, ref, edge_alpha=edge_alpha)
    loss = photo_weight * photo + census_weight * census + smooth_weight * smooth
    return loss, {"photo": photo.detach(), "census": census.detach(), "smooth": smooth.detach()}
