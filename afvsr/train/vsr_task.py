"""The "vsr" task: BasicVSR, IconVSR and the attention-fusion model on (lq, gt) samples.

Stage 1 (BasicVSR, IconVSR, or the fusion model from scratch): every top-level module of the
model is a parameter group at ``lr``, except SPyNet, which is frozen for the first
``spynet_freeze_iters`` steps and then trains at ``spynet_lr_mult × lr`` (the BasicVSR recipe:
5,000 steps, 0.125).

Stage 2 of the method (``[train] backbone_checkpoint`` set, fusion model): ``spynet``,
``propagation`` and ``reconstruction`` are loaded from a trained BasicVSR model file, module by
module and strictly; SPyNet and propagation are frozen (``unfreeze_all = true`` trains them at
``lr_finetune``, SPyNet at ``spynet_lr_mult × lr_finetune``), the attention module trains at
``lr_base`` and the warm-started reconstruction at ``lr_finetune``.

Samples: ``[data] samples = "sequence"`` (``lq (b, t, 3, p, p)``, ``gt (b, t, 3, sp, sp)``: every
frame's output is supervised) for BasicVSR/IconVSR, ``"groups"`` (``lq (b, G, W, 3, p, p)``,
``gt (b, 3, sp, sp)``: the reference frame through ``forward_groups``) for the fusion model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afvsr.errors import AfvsrError
from afvsr.train.task import ModuleGroup, Task, ValResult, charbonnier

SEQUENCE_MODELS = ("basicvsr", "iconvsr")
BACKBONE_MODULES = ("spynet", "propagation", "reconstruction")


def _data_defaults() -> dict[str, Any]:
    from afvsr.data import TRAIN_DATA_DEFAULTS

    return {key: spec.default for key, spec in TRAIN_DATA_DEFAULTS.items()}


def read_model_tensors(path: str) -> tuple[str, dict[str, Tensor]]:
    """``(model family, tensors)`` of a model file written by ``afvsr.save_model``."""
    from afvsr.checkpoint import read_metadata, read_tensors

    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file {path}")
    try:
        family = read_metadata(path).get("model", "")
    except Exception as exc:  # safetensors raises several types for a non-safetensors file
        raise AfvsrError(f"{path}: not a safetensors model file ({exc})") from None
    return family, read_tensors(path)


def module_tensors(tensors: dict[str, Tensor], module: str) -> dict[str, Tensor]:
    """The state dict of submodule ``module`` of a whole-model state dict (prefix ``module.``)."""
    prefix = module + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_spynet(model: nn.Module, path: str) -> None:
    """``model.spynet`` from a SPyNet model file, or from the ``spynet`` module of a VSR model file."""
    from afvsr.checkpoint import load_state_dict_strict

    family, tensors = read_model_tensors(path)
    state = tensors if family == "spynet" else module_tensors(tensors, "spynet")
    load_state_dict_strict(model.spynet, state, source=f"{path} (spynet)")


def load_backbone(model: nn.Module, path: str) -> None:
    """spynet, propagation and reconstruction of ``model`` from a BasicVSR (or fusion) model file,
    each module strictly by name."""
    from afvsr.checkpoint import load_state_dict_strict

    family, tensors = read_model_tensors(path)
    if family not in ("basicvsr", "fusion"):
        raise AfvsrError(f"{path}: expected a BasicVSR model file as backbone, got {family!r}")
    for name in BACKBONE_MODULES:
        load_state_dict_strict(
            getattr(model, name), module_tensors(tensors, name), source=f"{path} ({name})"
        )


class _Subset:
    """The first ``n`` clips of an evaluation dataset (``len``, ``[i]``, ``name``)."""

    def __init__(self, dataset, n: int) -> None:
        self.dataset, self.n = dataset, n
        self.name = getattr(dataset, "name", None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]


class VSRTask(Task):
    """Video super-resolution: Charbonnier (or L1/MSE) loss on the HR frames; PSNR/SSIM on clips."""

    name = "vsr"
    data_defaults = _data_defaults()
    val_defaults: dict[str, Any] = {
        "every": 1000,  # steps between validations; 0 = never
        "dataset": "shared:val",  # an afvsr.data.open_eval_dataset spec (name or folder)
        "root": "",  # the dataset's folder where the spec needs one ("" = none)
        "gt_downscale": 1,  # 2: shrink the ground truth x2 first (DAVIS)
        "max_clips": 0,  # score only the first N clips; 0 = all
        "max_frames": 0,  # score only the first N frames of each clip; 0 = all
        "mode": "sequence",  # fusion model: "sequence" | "window"
        "best": "psnr_y",  # metric that picks the best checkpoint (higher is better)
        "num_images": 2,  # clips whose middle frame goes to TensorBoard
    }
    best_mode = "max"

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.best_metric = cfg["val"]["best"]
        self._val_data = None
        self._bicubic: dict[str, float] | None = None

    # ------------------------------------------------------------------ config

    @classmethod
    def check_data(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        from afvsr.data import check_train_data_config

        try:
            return check_train_data_config(values)
        except ValueError as exc:
            raise AfvsrError(f"{source}: [data] {exc}") from None

    @classmethod
    def check_config(cls, cfg: dict[str, Any], source: str) -> None:
        model, data, val = cfg["model"], cfg["data"], cfg["val"]
        name = model["name"]
        if name not in (*SEQUENCE_MODELS, "fusion"):
            raise AfvsrError(
                f"{source}: [model] name: the vsr task trains basicvsr, iconvsr or fusion, "
                f"got {name!r}"
            )
        if model["scale"] != data["scale"]:
            raise AfvsrError(
                f"{source}: [model] scale {model['scale']} and [data] scale {data['scale']} differ"
            )
        want = "groups" if name == "fusion" else "sequence"
        if data["samples"] != want:
            raise AfvsrError(
                f"{source}: [data] samples: model {name} trains on {want!r} samples, "
                f"got {data['samples']!r}"
            )
        if name == "fusion" and (
            list(data["rates"]) != list(model["rates"]) or data["window"] != model["window"]
        ):
            raise AfvsrError(
                f"{source}: [data] rates/window {data['rates']}/{data['window']} must equal "
                f"[model] rates/window {model['rates']}/{model['window']}"
            )
        if name == "fusion" and val["mode"] not in ("sequence", "window"):
            raise AfvsrError(
                f'{source}: [val] mode: expected "sequence" or "window", got {val["mode"]!r}'
            )
        if val["best"] not in ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"):
            raise AfvsrError(
                f"{source}: [val] best: expected psnr_rgb, ssim_rgb, psnr_y or ssim_y, "
                f"got {val['best']!r}"
            )
        tcfg = cfg["train"]
        if tcfg["backbone_checkpoint"] and name != "fusion":
            raise AfvsrError(
                f"{source}: [train] backbone_checkpoint is for stage 2 (model fusion), not {name}"
            )
        if val["gt_downscale"] not in (1, 2):
            raise AfvsrError(
                f"{source}: [val] gt_downscale: expected 1 or 2, got {val['gt_downscale']!r}"
            )

    # ------------------------------------------------------------------ model and data

    def build_model(self) -> nn.Module:
        from afvsr.models import build_model

        kwargs = {k: v for k, v in self.cfg["model"].items() if k != "name"}
        model = build_model(self.cfg["model"]["name"], **kwargs)
        tcfg = self.cfg["train"]
        if tcfg["spynet_checkpoint"]:
            load_spynet(model, tcfg["spynet_checkpoint"])
        if tcfg["backbone_checkpoint"]:
            load_backbone(model, tcfg["backbone_checkpoint"])
        return model.train()

    def build_train_dataset(self) -> torch.utils.data.Dataset:
        from afvsr.data import build_train_dataset

        return build_train_dataset(self.cfg["data"])

    def param_groups(self, model: nn.Module) -> list[ModuleGroup]:
        tcfg = self.cfg["train"]
        lr, mult = tcfg["lr"], tcfg["spynet_lr_mult"]
        if tcfg["backbone_checkpoint"]:  # stage 2 of the method
            lr_base = tcfg["lr_base"] or lr
            lr_finetune = tcfg["lr_finetune"] or lr
            backbone_from = 0 if tcfg["unfreeze_all"] else None
            return [
                ModuleGroup("spynet", [model.spynet], mult * lr_finetune, backbone_from),
                ModuleGroup("propagation", [model.propagation], lr_finetune, backbone_from),
                ModuleGroup("attention", [model.attention], lr_base),
                ModuleGroup("reconstruction", [model.reconstruction], lr_finetune),
            ]
        if any(True for _ in model.parameters(recurse=False)):
            raise ValueError(
                f"{type(model).__name__} has parameters outside its submodules; "
                "expected every parameter inside a named module"
            )
        groups = []
        for name, child in model.named_children():
            if not any(True for _ in child.parameters()):
                continue
            if child is getattr(model, "spynet", None):
                groups.append(
                    ModuleGroup("spynet", [child], mult * lr, tcfg["spynet_freeze_iters"])
                )
            else:
                groups.append(ModuleGroup(name, [child], lr))
        return groups

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, gt = batch["lq"], batch["gt"]
        if lq.ndim == 6:  # (b, G, W, 3, p, p) frame-rate groups -> (b, 3, sp, sp)
            pred = model.forward_groups(lq)
        else:  # (b, t, 3, p, p) -> (b, t, 3, sp, sp)
            pred = model(lq)
        kind = self.cfg["train"]["loss"]
        if kind == "charbonnier":
            loss = charbonnier(pred, gt, self.cfg["train"]["charbonnier_eps"])
        elif kind == "l1":
            loss = F.l1_loss(pred.float(), gt.float())
        else:
            loss = F.mse_loss(pred.float(), gt.float())
        return loss, {}

    # ------------------------------------------------------------------ validation

    def _dataset(self):
        if self._val_data is None:
            from afvsr.data import open_eval_dataset

            v = self.cfg["val"]
            ds = open_eval_dataset(
                v["dataset"],
                scale=self.cfg["model"]["scale"],
                root=v["root"] or None,
                gt_downscale=v["gt_downscale"],
            )
            n = len(ds) if not v["max_clips"] else min(v["max_clips"], len(ds))
            self._val_data = _Subset(ds, n)
        return self._val_data

    def validate(self, model: nn.Module, device: torch.device) -> ValResult:
        from afvsr.evaluation.evaluate import evaluate
        from afvsr.models import Bicubic

        v = self.cfg["val"]
        data = self._dataset()
        max_frames = v["max_frames"] or None
        mode = v["mode"] if self.cfg["model"]["name"] == "fusion" else None
        results = evaluate(model, data, mode=mode, max_frames=max_frames)
        metrics = {k: float(x) for k, x in results["mean"].items()}
        if self._bicubic is None:
            base = evaluate(Bicubic(scale=model.scale), data, max_frames=max_frames)["mean"]
            self._bicubic = {
                f"bicubic_{k}": float(x) for k, x in base.items() if k != "ms_per_frame"
            }
        metrics.update(self._bicubic)
        return ValResult(metrics, self._images(model, data, device, mode))

    def _images(self, model, data, device, mode) -> dict[str, Tensor]:
        """[bicubic | output | ground truth] of the middle frame of the first clips."""
        from afvsr.imresize import imresize

        images = {}
        for i in range(min(self.cfg["val"]["num_images"], len(data))):
            clip = data[i]
            t = clip["lq"].shape[0]
            if self.cfg["val"]["max_frames"]:
                t = min(t, self.cfg["val"]["max_frames"])
            lo, hi = max(0, t // 2 - 3), min(t, t // 2 + 4)  # up to 7 frames around the middle
            lq = clip["lq"][lo:hi].to(device, torch.float32)
            kwargs = {} if mode is None else {"mode": mode}
            out = model(lq[None], **kwargs)[0, t // 2 - lo].clamp(0, 1).float().cpu()
            ref = clip["lq"][t // 2].float()
            bic = imresize(ref, scale=model.scale).clamp(0, 1)
            gt = clip["gt"][t // 2].float()
            images[str(clip["key"]).replace("/", "_")] = torch.cat([bic, out, gt], dim=-1)
        return images
