"""How good is a SPyNet: EPE on held-out synthetic pairs, and real frames warped onto each other.

Two numbers, both on the validation split of ``../shared/data`` (DAVIS blackswan, car-roundabout,
soapbox; BasketballPass; the 16 Vimeo septuplets), never seen in training:

- ``epe``: mean end-point error (LR pixels) on synthetic pairs made from the validation frames
  exactly as the training pairs are (``afvsr.flow.synthetic``), with a fixed seed. ``epe_zero_flow``
  is the same for a network that predicts no motion (the mean ground-truth flow length).
- ``warp_psnr``: PSNR of real frame t+1 warped onto frame t with the predicted flow, against
  frame t, on BI ×``scale`` LR frames (the frames SPyNet sees inside the VSR models);
  ``warp_psnr_zero_flow`` compares frame t+1 with frame t unwarped. A border of ``border`` LR
  pixels is left out (content entering the frame cannot be predicted by any flow). Per-pair PSNR,
  averaged; also per source (``warp_psnr/davis2016`` …).

Command line (results as JSON on stdout; ``python -m afvsr.flow.evaluate`` is the same)::

    afvsr flow-eval runs/spynet_cpu/model_best.safetensors
    afvsr flow-eval zero            # the zero-flow baseline only
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from afvsr.checkpoint import load_model
from afvsr.data.shared import SharedData
from afvsr.errors import AfvsrError
from afvsr.models import SPyNet
from afvsr.models.common import flow_warp

__all__ = ["flow_to_rgb", "load_flow_model", "real_val_pairs", "synthetic_metrics", "warp_metrics"]


def _float_psnr(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of two float images in [0, 1], not quantised (inf when equal); unlike
    ``afvsr.evaluation.metrics.psnr``, which scores 8-bit levels as published VSR numbers do."""
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return math.inf if mse == 0 else -10 * math.log10(mse)


def zero_flow(ref: Tensor, supp: Tensor) -> Tensor:
    """The no-motion baseline: ``(n, 2, h, w)`` zeros for frames ``(n, 3, h, w)``."""
    return ref.new_zeros(ref.shape[0], 2, *ref.shape[2:])


@torch.no_grad()
def synthetic_metrics(
    model: Callable[[Tensor, Tensor], Tensor],
    pairs: Dataset,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """EPE of ``model(ref, supp)`` (a SPyNet, or ``zero_flow``) on a dataset of ``{"ref", "supp", "flow"}`` samples.

    Returns:
        ``{"epe", "epe_zero_flow", "outliers_3px"}``: mean EPE (LR pixels) over all pixels, the
        same for zero flow, and the fraction of pixels with an EPE above 3 pixels.
    """
    total = zero = outliers = 0.0
    count = 0
    for start in range(0, len(pairs), batch_size):
        items = [pairs[i] for i in range(start, min(start + batch_size, len(pairs)))]
        ref = torch.stack([it["ref"] for it in items]).to(device)
        supp = torch.stack([it["supp"] for it in items]).to(device)
        target = torch.stack([it["flow"] for it in items]).to(device)
        flow = model(ref, supp).float()
        err = (flow - target).norm(dim=1)  # (b, h, w)
        n = err.numel()
        total += err.sum().item()
        zero += target.norm(dim=1).sum().item()
        outliers += (err > 3).sum().item()
        count += n
    return {"epe": total / count, "epe_zero_flow": zero / count, "outliers_3px": outliers / count}


def real_val_pairs(
    root=None, *, scale: int = 4, num_pairs: int = 0, gt_downscale: int = 1
) -> list[tuple[str, Tensor, Tensor]]:
    """Consecutive LR frame pairs ``(key, frame t, frame t+1)`` of the validation split.

    Args:
        root: the shared data folder (None: ``$AFVSR_SHARED_DATA`` or ``../shared/data``).
        scale: BI downscale of the LR frames.
        num_pairs: that many pairs spread evenly over all of them (0 = all, about 416).
        gt_downscale: 2 shrinks the DAVIS frames ×2 before the BI downscale (as the CPU VSR
            presets do against its JPEG blocking); 1 uses them as they are.

    Returns:
        ``[(clip key, (3, h, w), (3, h, w)), …]``.
    """
    data = SharedData(root, split="val", scale=scale, gt_downscale=gt_downscale)
    index = [(c, t) for c in range(len(data)) for t in range(data.num_frames(c) - 1)]
    if 0 < num_pairs < len(index):
        index = [index[(k * len(index)) // num_pairs] for k in range(num_pairs)]
    pairs = []
    for c, t in index:
        lq = data.load(c, start=t, stop=t + 2)["lq"]  # (2, 3, h, w)
        pairs.append((data.clips[c].name, lq[0], lq[1]))
    return pairs


@torch.no_grad()
def warp_metrics(
    model: nn.Module | None,
    pairs: Sequence[tuple[str, Tensor, Tensor]],
    *,
    border: int = 4,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean PSNR of frame t+1 warped onto frame t (predicted flow) and unwarped (zero flow).

    Args:
        model: a SPyNet (``model(ref, supp)`` → flow from ref to supp), or None for zero flow only.
        pairs: ``(key, frame t, frame t+1)`` as from ``real_val_pairs``.
        border: LR pixels left out on every side.

    Returns:
        ``{"warp_psnr", "warp_psnr_zero_flow", "warp_psnr/<source>", "warp_psnr_zero_flow/<source>"}``
        where ``<source>`` is the first part of the clip key (``davis2016``, ``basketballpass``,
        ``vimeo_septuplet``); without a model only the zero-flow keys.
    """
    inner = (slice(None), slice(border, -border or None), slice(border, -border or None))
    per_source: dict[str, list[tuple[float, float]]] = {}
    for key, ref, supp in pairs:
        ref, supp = ref.to(device), supp.to(device)
        zero = _float_psnr(supp[inner], ref[inner])
        warped = math.nan
        if model is not None:
            flow = model(ref[None], supp[None]).float()
            aligned = flow_warp(supp[None].float(), flow, padding_mode="border")[0]
            warped = _float_psnr(aligned[inner], ref[inner])
        per_source.setdefault(key.split("/")[0], []).append((warped, zero))

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    every = [v for values in per_source.values() for v in values]
    out: dict[str, float] = {}
    if model is not None:
        out["warp_psnr"] = mean([w for w, _ in every])
    out["warp_psnr_zero_flow"] = mean([z for _, z in every])
    for source, values in sorted(per_source.items()):
        if model is not None:
            out[f"warp_psnr/{source}"] = mean([w for w, _ in values])
        out[f"warp_psnr_zero_flow/{source}"] = mean([z for _, z in values])
    return out


def flow_to_rgb(flow: Tensor, *, max_flow: float | None = None) -> Tensor:
    """Colour-code a flow ``(2, h, w)`` as ``(3, h, w)`` in [0, 1]: hue = direction,
    saturation = length / ``max_flow`` (default: the largest length), white = no motion."""
    u, v = flow[0].float(), flow[1].float()
    mag = torch.sqrt(u * u + v * v)
    scale = max_flow if max_flow is not None else max(mag.max().item(), 1e-6)
    sat = (mag / scale).clamp(0, 1)
    hue = (torch.atan2(-v, -u) / math.pi + 1) * 3  # [0, 6)
    # HSV → RGB with value 1: each channel is 1 - sat · clamp(...) of the hue distance.
    k = torch.stack([(5 + hue) % 6, (3 + hue) % 6, (1 + hue) % 6])  # (3, h, w)
    rgb = 1 - sat * torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return rgb


def load_flow_model(path: str) -> nn.Module:
    """A SPyNet from an afvsr model file, or the SPyNet inside a BasicVSR-family model file
    (in eval mode)."""
    model = load_model(path)
    if isinstance(model, SPyNet):
        return model.eval()
    spynet = getattr(model, "spynet", None)
    if isinstance(spynet, SPyNet):
        return spynet.eval()
    raise AfvsrError(
        f"{path}: expected a SPyNet or a model with a SPyNet, got {type(model).__name__}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m afvsr.flow.evaluate ARGS``: the earlier spelling of ``afvsr flow-eval ARGS``."""
    from afvsr.cli import main as afvsr_main  # here: only this old spelling needs the CLI

    return afvsr_main(["flow-eval", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
