"""The "vsr" task: BasicVSR, IconVSR and AFVSR (the method) on (lq, gt) samples.

Stage 1 (BasicVSR, IconVSR, or AFVSR from scratch): every top-level module of the
model is a parameter group at ``lr``, except SPyNet, which is frozen for the first
``spynet_freeze_iters`` steps and then trains at ``spynet_lr_mult × lr`` (the BasicVSR recipe:
5,000 steps, 0.125). ``[train] init_checkpoint`` starts every weight from a model file (or shipped
model name) of the same family, strictly by name: continued training of a shipped model.
IconVSR's ``[train] extractor_checkpoint`` starts its EDVR extractor from BasicSR's or mmagic's
published EDVR-for-IconVSR file (or an IconVSR model file); the extractor then waits, frozen, for
the same ``spynet_freeze_iters`` steps as SPyNet (BasicSR's and mmagic's IconVSR recipe).
IconVSR's ``[train] backbone_checkpoint`` warm-starts it from a trained BasicVSR of its width and
depth (:func:`afvsr.checkpoint.load_iconvsr_backbone`); every module then trains as in stage 1.

Stage 2 of the method (``[train] backbone_checkpoint`` set, model ``afvsr``): ``spynet``,
``propagation`` and ``reconstruction`` are loaded from a trained BasicVSR model file, module by
module and strictly; SPyNet and propagation are frozen (``unfreeze_all = true`` trains them at
``lr_finetune``, SPyNet at ``spynet_lr_mult × lr_finetune``), the attention module trains at
``lr_base`` and the warm-started reconstruction at ``lr_finetune``.

Samples: ``[data] samples = "sequence"`` (``lq (b, t, 3, p, p)``, ``gt (b, t, 3, sp, sp)``: every
frame's output is supervised) for BasicVSR/IconVSR, ``"groups"`` (``lq (b, G, W, 3, p, p)``,
``gt (b, 3, sp, sp)``: the reference frame through ``forward_groups``, the method's recipe) for
AFVSR. AFVSR also trains on ``"sequence"`` samples, through its ``sequence`` mode (each rate
propagated over the whole clip, then fused per frame): the way it runs at inference.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afvsr.checkpoint import (
    kwargs_mismatch,
    load_backbone,
    load_extractor,
    load_iconvsr_backbone,
    load_spynet,
    load_state_dict_strict,
    read_model_file,
    resolve_model_path,
)
from afvsr.data.build import (
    TRAIN_DATA_DEFAULTS,
    build_train_dataset,
    check_data_relations,
    open_eval_dataset,
)
from afvsr.errors import AfvsrError
from afvsr.evaluation.evaluate import evaluate
from afvsr.imresize import imresize
from afvsr.models import Bicubic, build_model
from afvsr.schema import ConfigError, Field
from afvsr.train.grow import load_grown_basicvsr
from afvsr.train.task import ModuleGroup, Task, ValResult, charbonnier

SEQUENCE_MODELS = ("basicvsr", "iconvsr")
VAL_METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")


def load_whole_model(model: nn.Module, name_or_path: str, family: str) -> None:
    """Every weight of ``model`` from a model file (or shipped model name) of model family
    ``family``, strictly by name: a missing, unexpected or mis-shaped tensor is an error, and so
    is a constructor argument of the file that differs from ``[model]``'s (``upsample_mode``,
    ``keyframe_stride``, …: what the weights' shapes do not show), named with the fix."""
    path = str(resolve_model_path(name_or_path))
    found = read_model_file(path)
    if found.family != family:
        raise AfvsrError(
            f"{path}: expected a {family} model file to start from, got {found.family!r}"
        )
    load_state_dict_strict(model, found.tensors, source=path)
    mismatch = kwargs_mismatch(model, found.kwargs)
    if mismatch is not None:
        name, theirs, ours = mismatch
        raise AfvsrError(
            f"{path}: the model file has {name} = {json.dumps(theirs)}, [model] has "
            f"{name} = {json.dumps(ours)}: set [model] {name} = {json.dumps(theirs)} to start "
            "from it"
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
    data_fields = TRAIN_DATA_DEFAULTS
    train_fields: dict[str, Field] = {
        "loss": Field("charbonnier", choices=("charbonnier", "l1", "mse"), help="on the HR frames"),
        "charbonnier_eps": Field(1e-12, ge=0, help="sqrt((x - y)^2 + eps), as BasicVSR's"),
        "spynet_freeze_iters": Field(0, ge=0, help="SPyNet frozen for the first N steps"),
        "spynet_lr_mult": Field(1.0, ge=0, help="SPyNet's lr = spynet_lr_mult x lr"),
        "spynet_checkpoint": Field("", help="initial SPyNet weights (SPyNet or BasicVSR file)"),
        "backbone_checkpoint": Field(
            "",
            help="BasicVSR file -> spynet, propagation, reconstruction (AFVSR: stage 2; "
            "IconVSR: warm start)",
        ),
        "init_checkpoint": Field(
            "", help="every weight from a model file (or shipped name) of the same family"
        ),
        "init_grow": Field(
            False,
            help="basicvsr: init_checkpoint may have fewer blocks (added ones start as "
            "identities) or the other flow_mode",
        ),
        "extractor_checkpoint": Field(
            "",
            help="IconVSR: extractor weights (EDVR-for-IconVSR or IconVSR file), "
            "frozen for spynet_freeze_iters",
        ),
        "unfreeze_all": Field(False, help="stage 2: train the backbone too (at lr_finetune)"),
        "lr_base": Field(0.0, ge=0, help="stage 2: the attention module's lr; 0 = lr"),
        "lr_finetune": Field(0.0, ge=0, help="stage 2: reconstruction's lr; 0 = lr"),
    }
    val_fields: dict[str, Field] = {
        "every": Field(1000, ge=0, help="steps between validations; 0 = never"),
        "dataset": Field(
            "shared:val", help="an afvsr.data.open_eval_dataset spec (name or folder)"
        ),
        "root": Field("", help='the dataset\'s folder where the spec needs one ("" = none)'),
        "gt_downscale": Field(1, choices=(1, 2), help="2: shrink the ground truth x2 first"),
        "max_clips": Field(0, ge=0, help="score only the first N clips; 0 = all"),
        "max_frames": Field(0, ge=0, help="score only the first N frames of a clip; 0 = all"),
        "mode": Field("sequence", choices=("sequence", "window"), help="AFVSR only"),
        "best": Field("psnr_y", choices=VAL_METRICS, help="picks the best checkpoint (highest)"),
        "num_images": Field(2, ge=0, help="clips whose middle frame goes to TensorBoard"),
    }
    best_mode = "max"

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.best_metric = cfg["val"]["best"]
        self._val_data = None
        self._bicubic: dict[str, float] | None = None

    # ------------------------------------------------------------------ config

    @classmethod
    def data_schema(cls, model: dict[str, Any]) -> dict[str, Field]:
        """``scale``, ``rates``, ``window`` and ``samples`` default from ``[model]``."""
        follow = {"scale": model["scale"]}
        if model["name"] == "afvsr":
            follow.update(samples="groups", rates=list(model["rates"]), window=model["window"])
        return {
            k: replace(f, default=follow[k]) if k in follow else f
            for k, f in cls.data_fields.items()
        }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        model, data = cfg["model"], cfg["data"]
        name = model["name"]
        if name not in (*SEQUENCE_MODELS, "afvsr"):
            raise ConfigError(
                f"[model] name: the vsr task trains basicvsr, iconvsr or afvsr, got {name!r}"
            )
        check_data_relations(data)
        if model["scale"] != data["scale"]:
            raise ConfigError(
                f"[model] scale {model['scale']} and [data] scale {data['scale']} differ"
            )
        allowed = ("groups", "sequence") if name == "afvsr" else ("sequence",)
        if data["samples"] not in allowed:
            raise ConfigError(
                f"[data] samples: model {name} trains on "
                f"{' or '.join(repr(a) for a in allowed)} samples, got {data['samples']!r}"
            )
        if (
            name == "afvsr"
            and data["samples"] == "groups"
            and (list(data["rates"]) != list(model["rates"]) or data["window"] != model["window"])
        ):
            raise ConfigError(
                f"[data] rates/window {data['rates']}/{data['window']} must equal "
                f"[model] rates/window {model['rates']}/{model['window']}"
            )
        cls._check_start_weights(name, cfg["train"])

    @staticmethod
    def _check_start_weights(name: str, tcfg: dict[str, Any]) -> None:
        if tcfg["backbone_checkpoint"] and name not in ("afvsr", "iconvsr"):
            raise ConfigError(
                f"[train] backbone_checkpoint is for stage 2 (model afvsr) or an IconVSR warm "
                f"start, not {name}"
            )
        if tcfg["extractor_checkpoint"] and name != "iconvsr":
            raise ConfigError(
                f"[train] extractor_checkpoint fills IconVSR's extractor; model {name} has none"
            )
        if tcfg["init_grow"] and (name != "basicvsr" or not tcfg["init_checkpoint"]):
            raise ConfigError(
                "[train] init_grow starts a basicvsr from init_checkpoint: set both, "
                f'[model] name = "basicvsr" (got {name})'
            )
        parts = ("spynet_checkpoint", "backbone_checkpoint", "extractor_checkpoint")
        if tcfg["init_checkpoint"] and any(tcfg[k] for k in parts):
            raise ConfigError(
                "[train] init_checkpoint loads every weight: leave spynet_checkpoint, "
                "backbone_checkpoint and extractor_checkpoint unset"
            )

    # ------------------------------------------------------------------ model and data

    def build_model(self) -> nn.Module:
        kwargs = {k: v for k, v in self.cfg["model"].items() if k != "name"}
        model = build_model(self.cfg["model"]["name"], **kwargs)
        tcfg = self.cfg["train"]
        for key in ("spynet_checkpoint", "backbone_checkpoint", "extractor_checkpoint"):
            if tcfg[key] and not Path(tcfg[key]).is_file():
                raise ConfigError(
                    f"[train] {key}: no file {tcfg[key]} (train that stage first, or "
                    f"--set train.{key}='\"\"' to start without it)"
                )
        if tcfg["init_grow"]:
            load_grown_basicvsr(model, tcfg["init_checkpoint"])
        elif tcfg["init_checkpoint"]:
            load_whole_model(model, tcfg["init_checkpoint"], self.cfg["model"]["name"])
        if tcfg["spynet_checkpoint"]:
            load_spynet(model, tcfg["spynet_checkpoint"])
        if tcfg["backbone_checkpoint"] and self.cfg["model"]["name"] == "iconvsr":
            load_iconvsr_backbone(model, tcfg["backbone_checkpoint"])
        elif tcfg["backbone_checkpoint"]:
            load_backbone(model, tcfg["backbone_checkpoint"])
        if tcfg["extractor_checkpoint"]:
            load_extractor(model, tcfg["extractor_checkpoint"])
        return model.train()

    def build_train_dataset(self) -> torch.utils.data.Dataset:
        try:
            return build_train_dataset(self.cfg["data"])
        except (AfvsrError, ValueError) as exc:
            raise AfvsrError(f"[data] {exc}") from None

    def param_groups(self, model: nn.Module) -> list[ModuleGroup]:
        tcfg = self.cfg["train"]
        lr, mult = tcfg["lr"], tcfg["spynet_lr_mult"]
        if tcfg["backbone_checkpoint"] and self.cfg["model"]["name"] == "afvsr":  # stage 2
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
            elif child is getattr(model, "extractor", None) and tcfg["extractor_checkpoint"]:
                # a pretrained extractor waits with SPyNet (BasicSR's and mmagic's IconVSR recipe)
                groups.append(ModuleGroup(name, [child], lr, tcfg["spynet_freeze_iters"]))
            else:
                groups.append(ModuleGroup(name, [child], lr))
        return groups

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, gt = batch["lq"], batch["gt"]
        if lq.ndim == 6:  # (b, G, W, 3, p, p) frame-rate groups -> (b, 3, sp, sp)
            pred = model.forward_groups(lq)
        else:  # (b, t, 3, p, p) -> (b, t, 3, sp, sp); AFVSR: sequence mode
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
        v = self.cfg["val"]
        data = self._dataset()
        max_frames = v["max_frames"] or None
        mode = v["mode"] if self.cfg["model"]["name"] == "afvsr" else None
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
