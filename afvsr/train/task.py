"""The task interface: what a training run trains (see ``docs/TRAINING_TASKS.md``).

The loop (``afvsr.train.loop``) owns the optimizer, schedule, freezing, sampler, DDP, checkpoints
and logging; a task owns the model, its training samples, the loss on one batch, its parameter
groups and its validation metrics. Tasks are listed in ``afvsr.train.tasks.TASKS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from afvsr.schema import Field


@dataclass
class ModuleGroup:
    """One optimizer parameter group: all parameters of whole modules (never chosen by name).

    Attributes:
        name: shown by ``-v`` and logged as ``lr/<name>`` (e.g. ``"spynet"``).
        modules: the modules whose parameters form the group; each parameter of the model must
            be in exactly one group.
        lr: base learning rate; the schedule multiplies it at every step.
        trainable_from: the first step at which the group trains (before it, its parameters have
            ``requires_grad=False``); None = frozen for the whole run (left out of the optimizer).
    """

    name: str
    modules: list[nn.Module]
    lr: float
    trainable_from: int | None = 0

    def parameters(self) -> list[nn.Parameter]:
        """The group's parameters, each once, in module order."""
        seen: dict[int, nn.Parameter] = {}
        for module in self.modules:
            for p in module.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())

    def trainable_at(self, step: int) -> bool:
        return self.trainable_from is not None and step >= self.trainable_from


@dataclass
class ValResult:
    """What validation returns: ``metrics`` without the ``val/`` prefix (``{"psnr_rgb": 28.1}``)
    and a few ``images`` (name → ``(3, h, w)`` in [0, 1]) for TensorBoard."""

    metrics: dict[str, float]
    images: dict[str, Tensor] = field(default_factory=dict)


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-12) -> Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps))``, computed in float32.

    ``eps = 1e-12`` is BasicVSR's (mmedit's ``CharbonnierLoss``): a smooth L1 whose gradient
    stays bounded by 1 and is defined at zero error.
    """
    diff = pred.float() - target.float()
    return torch.sqrt(diff * diff + eps).mean()


class Task:
    """Base class of a training task; subclasses override every method that raises here.

    The task owns the schema of the config keys it reads (``afvsr.schema.Field``): all of
    ``[data]`` (``data_fields``) and ``[val]`` (``val_fields``, which must contain ``"every"``),
    and its own keys of ``[train]`` (``train_fields``, next to the loop's generic ones in
    ``afvsr.train.config.TRAIN_DEFAULTS``). ``best_metric`` (a key of ``ValResult.metrics``)
    and ``best_mode`` (``"max"``/``"min"``) pick the best checkpoint.
    """

    name: str = ""
    data_fields: dict[str, Field] = {}
    train_fields: dict[str, Field] = {}
    val_fields: dict[str, Field] = {"every": Field(0, ge=0, help="steps between validations")}
    # Keys that an earlier afvsr read from another section: key -> (old section, section now).
    moved_keys: dict[str, tuple[str, str]] = {}
    best_metric: str = ""
    best_mode: str = "max"

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg

    @classmethod
    def data_schema(cls, model: dict[str, Any]) -> dict[str, Field]:
        """The ``[data]`` fields for the checked ``[model]`` section (defaults may follow it)."""
        return cls.data_fields

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        """Checks between keys (each key alone is checked by its Field); raise ConfigError
        ``[section] key: expected …, got …`` (the caller adds the file)."""

    def build_model(self) -> nn.Module:
        """The model on the CPU, in train mode, with any initial weights the config names."""
        raise NotImplementedError

    def build_train_dataset(self) -> torch.utils.data.Dataset:
        """Map-style dataset of dicts of tensors; randomness only from the global RNGs."""
        raise NotImplementedError

    def param_groups(self, model: nn.Module) -> list[ModuleGroup]:
        """One ModuleGroup per module (or list of modules), with base lr and freezing."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(scalar loss, extra scalar logs)`` for one collated batch already on the device."""
        raise NotImplementedError

    def validate(self, model: nn.Module, device: torch.device) -> ValResult:
        """Validation metrics (must contain ``best_metric``); model in eval mode, no grad."""
        raise NotImplementedError


def check_groups(model: nn.Module, groups: list[ModuleGroup]) -> None:
    """Every parameter of ``model`` in exactly one group, else ValueError naming it."""
    owner: dict[int, str] = {}
    for group in groups:
        for p in group.parameters():
            if id(p) in owner:
                name = next(n for n, q in model.named_parameters() if q is p)
                raise ValueError(
                    f"parameter {name} is in groups '{owner[id(p)]}' and '{group.name}'; "
                    "expected each parameter in exactly one group"
                )
            owner[id(p)] = group.name
    for name, p in model.named_parameters():
        if id(p) not in owner:
            raise ValueError(f"parameter {name} is in no parameter group")
