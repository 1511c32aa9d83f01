"""The "flow" training task: stage 0, SPyNet trained from scratch without downloaded weights.

``[data] pairs = "synthetic"`` (the main stage): supervised multi-scale EPE on synthetic pairs
made from the training frames (``afvsr.flow.synthetic``). ``pairs = "real"`` (optional
fine-tuning, started from the synthetic stage with ``[train] spynet_checkpoint``): unsupervised
photometric + smoothness loss on real consecutive frames (``afvsr.flow.losses``). The ``[data]``
keys are ``afvsr.flow.pairs.DATA_FIELDS``; the loss weights are this task's ``[train]`` keys.

Validation (both stages): EPE on held-out synthetic pairs from the validation frames (the best
checkpoint has the lowest), and the PSNR of real frame t+1 warped onto frame t against zero flow
(``afvsr.flow.evaluate``). See ``docs/TRAINING_TASKS.md`` for the interface.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from afvsr.checkpoint import load_state_dict_strict, module_tensors, read_model_tensors
from afvsr.errors import AfvsrError
from afvsr.flow.evaluate import flow_to_rgb, real_val_pairs, synthetic_metrics, warp_metrics
from afvsr.flow.losses import multiscale_epe_loss, pyramid_flows, unsupervised_loss
from afvsr.flow.pairs import (
    DATA_FIELDS,
    check_data_relations,
    held_out_synthetic,
    real_pairs,
    synthetic_pairs,
)
from afvsr.models import build_model
from afvsr.models.common import flow_warp
from afvsr.schema import ConfigError, Field
from afvsr.train.task import ModuleGroup, Task, ValResult


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


class FlowTask(Task):
    """SPyNet on synthetic flow (supervised) or real pairs (unsupervised).

    The best checkpoint has the lowest held-out EPE (synthetic stage) or the highest warp PSNR
    on real validation pairs (real stage), unless ``[val] best`` says otherwise.
    """

    name = "flow"
    data_fields = DATA_FIELDS
    train_fields: dict[str, Field] = {
        "spynet_checkpoint": Field("", help="initial SPyNet weights (e.g. the synthetic stage's)"),
        # Supervised loss: EPE per pyramid level in its own pixels, weights finest first.
        "level_weights": Field(
            [1.0] * 6, ge=0, length=(1, 6), help="EPE weight per level, finest first, not all 0"
        ),
        # Unsupervised loss (pairs = "real"):
        "photo_weight": Field(1.0, ge=0, help="generalised Charbonnier on colour"),
        "census_weight": Field(1.0, ge=0, help="soft ternary census distance"),
        "smooth_weight": Field(0.05, ge=0, help="edge-aware first-order smoothness"),
        "edge_alpha": Field(10.0, ge=0, help="edge weighting of the smoothness"),
    }
    moved_keys = {
        key: ("data", "train")
        for key in ("level_weights", "photo_weight", "census_weight", "smooth_weight", "edge_alpha")
    }
    val_fields: dict[str, Field] = {
        "every": Field(500, ge=0, help="steps between validations; 0 = never"),
        "num_pairs": Field(128, ge=1, help="held-out synthetic pairs (validation frames)"),
        "seed": Field(12345, help="their seed (fixed: every validation sees the same pairs)"),
        "num_real_pairs": Field(48, ge=0, help="real LR pairs for the warp PSNR; 0 = all"),
        "scale": Field(4, choices=(2, 3, 4), help="BI downscale of those real frames"),
        "gt_downscale": Field(1, choices=(1, 2), help="2: shrink DAVIS x2 first"),
        "border": Field(4, ge=0, help="LR pixels left out of the warp PSNR"),
        "batch_size": Field(16, ge=1, help="synthetic pairs per validation batch"),
        "best": Field(
            "",
            choices=("", "epe", "warp_psnr"),
            help='"epe" (lowest) or "warp_psnr" (highest); "" = epe for synthetic pairs, '
            "warp_psnr for real pairs",
        ),
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
    def check_config(cls, cfg: dict[str, Any]) -> None:
        if cfg["model"]["name"] != "spynet":
            raise ConfigError(
                f"[model] name: the flow task trains spynet, got {cfg['model']['name']!r}"
            )
        check_data_relations(cfg["data"])
        if max(cfg["train"]["level_weights"]) == 0:
            raise ConfigError(
                f"[train] level_weights: expected 1 to 6 weights >= 0 (finest level first), "
                f"not all 0, got {cfg['train']['level_weights']}"
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
            return real_pairs(data, "train")
        except ValueError as exc:
            raise AfvsrError(f"[data] {exc}") from None

    def param_groups(self, model: nn.Module) -> list[ModuleGroup]:
        return [ModuleGroup("spynet", [model], self.cfg["train"]["lr"])]

    # ------------------------------------------------------------------ loss

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Synthetic batch ``{"ref", "supp" (b, 3, p, p), "flow" (b, 2, p, p)}``: multi-scale EPE
        (logs the finest level's ``epe``). Real batch ``{"ref", "supp"}``: unsupervised loss."""
        weights = self.cfg["train"]
        ref, supp = batch["ref"], batch["supp"]
        if "flow" in batch:
            flows = pyramid_flows(model, ref, supp)
            loss, final = multiscale_epe_loss(flows, batch["flow"], weights["level_weights"])
            return loss, {"epe": final}
        flow = model(ref, supp)
        return unsupervised_loss(
            ref,
            supp,
            flow,
            photo_weight=weights["photo_weight"],
            census_weight=weights["census_weight"],
            smooth_weight=weights["smooth_weight"],
            edge_alpha=weights["edge_alpha"],
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
