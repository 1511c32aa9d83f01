"""The "flow" training task: stage 0, SPyNet trained from scratch without downloaded weights.

``[data] pairs = "synthetic"`` (the main stage): supervised multi-scale EPE on synthetic pairs
made from the training frames (``afvsr.flow.synthetic``). ``pairs = "real"`` (optional
fine-tuning, started from the synthetic stage with ``[train] spynet_checkpoint``): unsupervised
photometric + smoothness loss on real consecutive frames (``afvsr.flow.losses``).

Validation (both stages): EPE on held-out synthetic pairs from the validation frames (the best
checkpoint has the lowest), and the PSNR of real frame t+1 warped onto frame t against zero flow
(``afvsr.flow.evaluate``). See ``docs/TRAINING_TASKS.md`` for the interface.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from afvsr.checkpoint import load_state_dict_strict
from afvsr.data.shared import require_shared_data_root, shared_clips
from afvsr.errors import AfvsrError
from afvsr.flow.evaluate import flow_to_rgb, real_val_pairs, synthetic_metrics, warp_metrics
from afvsr.flow.losses import multiscale_epe_loss, pyramid_flows, unsupervised_loss
from afvsr.flow.real import RealFramePairs
from afvsr.flow.synthetic import MotionRange, PhotometricRange, SyntheticFlowPairs
from afvsr.models import build_model
from afvsr.models.common import flow_warp
from afvsr.train.task import ModuleGroup, Task, ValResult
from afvsr.train.vsr_task import module_tensors, read_model_tensors

PAIRS = ("synthetic", "real")


def _motion(data: dict[str, Any]) -> MotionRange:
    return MotionRange(
        max_translation=data["max_translation"],
        max_rotation_deg=data["max_rotation_deg"],
        max_zoom=data["max_zoom"],
        max_shear=data["max_shear"],
        local_amplitude=data["local_amplitude"],
        local_grid_max=data["local_grid_max"],
        num_bumps=data["num_bumps"],
        bump_amplitude=data["bump_amplitude"],
        bump_sigma=tuple(data["bump_sigma"]),
        max_flow=data["max_flow"],
    )


def _photometric(data: dict[str, Any]) -> PhotometricRange:
    return PhotometricRange(brightness=data["brightness"], color=data["color"], noise=data["noise"])


def _clips(data: dict[str, Any], split: str):
    return shared_clips(require_shared_data_root(data["root"] or None), split)


def he_init_(spynet: nn.Module) -> nn.Module:
    """Re-initialise SPyNet for training from scratch: He (Kaiming) normal weights and zero biases
    for the ReLU convs of every level, the last conv left at zero (no residual at first).

    Why: PyTorch's default conv init is scaled for no gain, so across a level's four ReLU layers
    the activations shrink about 17x and the bias dominates them; from there SPyNet sat at the
    zero-flow error for 500-1200+ steps in our CPU runs (and the escape step varied from run to
    run). With He init the same runs left the plateau within 150 steps. See He et al., ICCV 2015.
    """
    for level in spynet.basic_module:
        convs = [m for m in level.modules() if isinstance(m, nn.Conv2d)]
        for conv in convs[:-1]:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(convs[-1].weight)
        nn.init.zeros_(convs[-1].bias)
    return spynet


def synthetic_pairs(data: dict[str, Any], split: str, **kwargs) -> SyntheticFlowPairs:
    """``SyntheticFlowPairs`` over the frames of ``split`` ("train"/"val") with the ``[data]``
    settings; ``kwargs`` go to its constructor (``length``, ``seed``, ``skip_small``)."""
    frames = [path for clip in _clips(data, split) for path in clip.gt_paths]
    return SyntheticFlowPairs(
        frames,
        patch_size=data["patch_size"],
        downscales=data["downscales"],
        render_scale=data["render_scale"],
        motion=_motion(data),
        photometric=_photometric(data),
        **kwargs,
    )


def held_out_synthetic(data: dict[str, Any], *, num_pairs: int, seed: int) -> SyntheticFlowPairs:
    """The held-out synthetic pairs: ``num_pairs`` from the validation frames, a fixed ``seed``
    (frames too small for every downscale, e.g. Vimeo's at ×4, are left out)."""
    return synthetic_pairs(data, "val", length=num_pairs, seed=seed, skip_small=True)


class FlowTask(Task):
    """SPyNet on synthetic flow (supervised) or real pairs (unsupervised).

    The best checkpoint has the lowest held-out EPE (synthetic stage) or the highest warp PSNR
    on real validation pairs (real stage), unless ``[val] best`` says otherwise.
    """

    name = "flow"
    data_defaults: dict[str, Any] = {
        "root": "",  # shared data folder; "" = $AFVSR_SHARED_DATA or ../shared/data
        "pairs": "synthetic",  # "synthetic" (supervised) | "real" (unsupervised fine-tuning)
        "patch_size": 64,  # LR patch side, a multiple of 32
        "downscales": [2, 3, 4],  # source -> LR factors, one drawn per pair (BI x4 is the target)
        "render_scale": 2,  # warp rendered at this multiple of LR, then downscaled (<= downscales)
        # Synthetic flow fields, in LR pixels (afvsr.flow.synthetic.MotionRange):
        "max_translation": 12.0,  # length = max * U(0,1)^2, uniform direction
        "max_rotation_deg": 3.0,
        "max_zoom": 0.05,
        "max_shear": 0.03,
        "local_amplitude": 1.5,  # std of a coarse random displacement grid (bicubic upsampled)
        "local_grid_max": 5,  # that grid has 2..local_grid_max nodes per axis
        "num_bumps": 3,  # up to this many Gaussian bumps of local motion
        "bump_amplitude": 3.0,
        "bump_sigma": [6.0, 20.0],  # (min, max) width of a bump
        "max_flow": 16.0,  # fields are scaled down to at most this displacement
        # Photometric changes, independent per frame:
        "brightness": 0.05,  # gain 1 +- brightness
        "color": 0.02,  # per-channel gain 1 +- color
        "noise": 0.01,  # Gaussian noise std ~ U(0, noise)
        # Supervised loss: EPE per pyramid level in its own pixels, weights finest first.
        "level_weights": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        # Unsupervised loss (pairs = "real"):
        "photo_weight": 1.0,  # generalised Charbonnier on colour
        "census_weight": 1.0,  # soft ternary census distance
        "smooth_weight": 0.05,  # edge-aware first-order smoothness
        "edge_alpha": 10.0,
    }
    val_defaults: dict[str, Any] = {
        "every": 500,  # steps between validations; 0 = never
        "num_pairs": 128,  # held-out synthetic pairs (validation frames)
        "seed": 12345,  # their seed (fixed, so every validation sees the same pairs)
        "num_real_pairs": 48,  # real consecutive LR pairs for the warp PSNR (0 = all, ~416)
        "scale": 4,  # BI downscale of those real frames
        "gt_downscale": 1,  # 2: shrink DAVIS x2 first (as configs/cpu/basicvsr.toml does)
        "border": 4,  # LR pixels left out of the warp PSNR
        "batch_size": 16,
        "best": "",  # "epe" (lowest) or "warp_psnr" (highest); "" = epe for synthetic pairs,
        # warp_psnr for real pairs (the unsupervised stage does not see synthetic flow)
    }
    best_metric = "epe"
    best_mode = "min"

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        best = cfg["val"]["best"] or ("epe" if cfg["data"]["pairs"] == "synthetic" else "warp_psnr")
        self.best_metric = best
        self.best_mode = "min" if best == "epe" else "max"
        self._val_synthetic: list[dict[str, Tensor]] | None = None
        self._val_real: list[tuple[str, Tensor, Tensor]] | None = None

    @classmethod
    def check_config(cls, cfg: dict[str, Any], source: str) -> None:
        model, data, val = cfg["model"], cfg["data"], cfg["val"]
        if model["name"] != "spynet":
            raise AfvsrError(
                f"{source}: [model] name: the flow task trains spynet, got {model['name']!r}"
            )
        if data["pairs"] not in PAIRS:
            raise AfvsrError(
                f"{source}: [data] pairs: expected one of {list(PAIRS)}, got {data['pairs']!r}"
            )
        p = data["patch_size"]
        if p < 32 or p % 32:
            raise AfvsrError(
                f"{source}: [data] patch_size: expected a positive multiple of 32, got {p}"
            )
        scales = data["downscales"]
        if not scales or min(scales) < 1:
            raise AfvsrError(f"{source}: [data] downscales: expected integers >= 1, got {scales}")
        if not 1 <= data["render_scale"] <= min(scales):
            raise AfvsrError(
                f"{source}: [data] render_scale: expected 1 .. min(downscales) = {min(scales)}, "
                f"got {data['render_scale']}"
            )
        if len(data["bump_sigma"]) != 2:
            raise AfvsrError(
                f"{source}: [data] bump_sigma: expected [min, max], got {data['bump_sigma']}"
            )
        weights = data["level_weights"]
        if not 1 <= len(weights) <= 6 or min(weights) < 0 or max(weights) == 0:
            raise AfvsrError(
                f"{source}: [data] level_weights: expected 1 to 6 weights >= 0 (finest level "
                f"first), not all 0, got {weights}"
            )
        try:
            _motion(data)
            _photometric(data)
        except ValueError as exc:
            raise AfvsrError(f"{source}: [data] {exc}") from None
        for key in ("photo_weight", "census_weight", "smooth_weight", "edge_alpha"):
            if data[key] < 0:
                raise AfvsrError(f"{source}: [data] {key}: expected a value >= 0, got {data[key]}")
        if val["num_pairs"] < 1 or val["num_real_pairs"] < 0 or val["batch_size"] < 1:
            raise AfvsrError(
                f"{source}: [val] expected num_pairs >= 1, num_real_pairs >= 0 and batch_size >= 1, "
                f"got {val['num_pairs']}, {val['num_real_pairs']}, {val['batch_size']}"
            )
        if val["best"] not in ("", "epe", "warp_psnr"):
            raise AfvsrError(
                f'{source}: [val] best: expected "epe" or "warp_psnr" (or ""), got {val["best"]!r}'
            )
        if val["scale"] not in (2, 3, 4) or val["gt_downscale"] not in (1, 2):
            raise AfvsrError(
                f"{source}: [val] expected scale 2, 3 or 4 and gt_downscale 1 or 2, got "
                f"{val['scale']} and {val['gt_downscale']}"
            )

    # ------------------------------------------------------------------ model and data

    def build_model(self) -> nn.Module:
        model = build_model("spynet")
        path = self.cfg["train"]["spynet_checkpoint"]
        if path:  # e.g. the synthetic stage's model_best, to fine-tune on real pairs
            family, tensors = read_model_tensors(path)
            state = tensors if family == "spynet" else module_tensors(tensors, "spynet")
            load_state_dict_strict(model, state, source=f"{path} (spynet)")
        else:
            he_init_(model)
        return model.train()

    def build_train_dataset(self) -> torch.utils.data.Dataset:
        data = self.cfg["data"]
        try:
            if data["pairs"] == "synthetic":
                return synthetic_pairs(data, "train")
            return RealFramePairs(
                [clip.gt_paths for clip in _clips(data, "train")],
                patch_size=data["patch_size"],
                downscales=data["downscales"],
            )
        except ValueError as exc:
            raise AfvsrError(f"[data] {exc}") from None

    def param_groups(self, model: nn.Module) -> list[ModuleGroup]:
        return [ModuleGroup("spynet", [model], self.cfg["train"]["lr"])]

    # ------------------------------------------------------------------ loss

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Synthetic batch ``{"ref", "supp" (b, 3, p, p), "flow" (b, 2, p, p)}``: multi-scale EPE
        (logs the finest level's ``epe``). Real batch ``{"ref", "supp"}``: unsupervised loss."""
        data = self.cfg["data"]
        ref, supp = batch["ref"], batch["supp"]
        if "flow" in batch:
            flows = pyramid_flows(model, ref, supp)
            loss, final = multiscale_epe_loss(flows, batch["flow"], data["level_weights"])
            return loss, {"epe": final}
        flow = model(ref, supp)
        return unsupervised_loss(
            ref,
            supp,
            flow,
            photo_weight=data["photo_weight"],
            census_weight=data["census_weight"],
            smooth_weight=data["smooth_weight"],
            edge_alpha=data["edge_alpha"],
        )

    # ------------------------------------------------------------------ validation

    def _validation_data(self) -> tuple[list[dict[str, Tensor]], list[tuple[str, Tensor, Tensor]]]:
        val, data = self.cfg["val"], self.cfg["data"]
        if self._val_synthetic is None:
            pairs = held_out_synthetic(data, num_pairs=val["num_pairs"], seed=val["seed"])
            self._val_synthetic = [pairs[i] for i in range(len(pairs))]
        if self._val_real is None:
            self._val_real = real_val_pairs(
                data["root"] or None,
                scale=val["scale"],
                num_pairs=val["num_real_pairs"],
                gt_downscale=val["gt_downscale"],
            )
        return self._val_synthetic, self._val_real

    def validate(self, model: nn.Module, device: torch.device) -> ValResult:
        val = self.cfg["val"]
        synthetic, real = self._validation_data()
        metrics = synthetic_metrics(model, synthetic, batch_size=val["batch_size"], device=device)
        metrics.update(warp_metrics(model, real, border=val["border"], device=device))
        # A few images: one synthetic pair's flow (ground truth | predicted), one real pair.
        sample = synthetic[0]
        pred = model(sample["ref"][None].to(device), sample["supp"][None].to(device))[0].cpu()
        top = max(sample["flow"].norm(dim=0).max().item(), 1e-6)
        images = {
            "synthetic_flow_gt_pred": torch.cat(
                [flow_to_rgb(sample["flow"], max_flow=top), flow_to_rgb(pred, max_flow=top)], dim=-1
            )
        }
        key, ref, supp = real[len(real) // 2]
        flow = model(ref[None].to(device), supp[None].to(device)).float()
        warped = flow_warp(supp[None].to(device).float(), flow, padding_mode="border")[0].cpu()
        images["real_ref_warped_flow"] = torch.cat(
            [ref, warped.clamp(0, 1), flow_to_rgb(flow[0].cpu())], dim=-1
        )
        return ValResult(metrics, images)
