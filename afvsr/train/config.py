"""Training config files: TOML or YAML, one ``afvsr.schema.Field`` per key, validated before any work.

A config is a table of sections. ``[run]``, ``[log]`` and the loop's keys of ``[train]`` have the
schemas below; ``[model]`` is ``name`` plus the keyword arguments of that model's constructor
(checked against its signature); the task (``[run] task``, ``afvsr.train.tasks.TASKS``) owns
``[data]``, ``[val]`` and its own keys of ``[train]`` (``Task.data_fields``, ``val_fields``,
``train_fields``). ``""`` is the "not set" value of optional paths and names (TOML has no null).

Every error names the key and the file (or the ``--set`` option) it came from:
``<file>: [<section>] <key>: expected …, got …``. ``afvsr train --print-config`` lists every key.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from afvsr.checkpoint import KWARG_RANGES, MAX_LIST
from afvsr.errors import AfvsrError, RenamedWarning
from afvsr.models import MODELS
from afvsr.names import current_name, kwarg_renames
from afvsr.schema import ConfigError, Field, check_section, read_config_file
from afvsr.train.task import Task
from afvsr.train.tasks import TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


RUN_DEFAULTS: dict[str, Field] = {
    "name": Field("", help='run folder name; "" = the config file\'s stem'),
    "out_dir": Field("runs", help="run folder = out_dir/name (relative to the current directory)"),
    "task": Field("vsr", choices=tuple(TASKS), help="the training task (afvsr.train.tasks.TASKS)"),
    "seed": Field(0, help="drives Python, NumPy, torch, the sampler and every augmentation"),
    "deterministic": Field(True, help="deterministic algorithms (bit-exact resume on CPU)"),
    "device": Field("auto", help='"auto" (CUDA if present), "cpu", "cuda", "cuda:1", …'),
    "threads": Field(0, ge=0, help="torch intra-op threads per process; 0 = torch's default"),
    "num_workers": Field(0, ge=0, help="DataLoader worker processes per training process"),
}

# The loop's keys of [train]; each task adds its own (Task.train_fields).
TRAIN_DEFAULTS: dict[str, Field] = {
    "iterations": Field(type=int, gt=0, help="optimizer steps (required)"),
    "batch_size": Field(8, gt=0, help="samples per micro-step over all processes (global batch)"),
    "accumulate": Field(1, gt=0, help="micro-steps per optimizer step (gradient accumulation)"),
    "lr": Field(2e-4, ge=0, help="base learning rate"),
    "betas": Field([0.9, 0.99], ge=0, lt=1, length=(2, 2), help="Adam's betas"),
    "weight_decay": Field(0.0, ge=0, help="Adam's L2 penalty"),
    "scheduler": Field("cosine", choices=("cosine", "constant"), help="stepped every iteration"),
    "warmup_iters": Field(0, ge=0, help="linear warm-up from lr/warmup_iters to lr"),
    "eta_min": Field(1e-7, ge=0, help="cosine floor (absolute, for every group)"),
    "grad_clip": Field(0.0, ge=0, help="max global gradient norm; 0 = no clipping"),
    "precision": Field(
        "fp32",
        choices=("fp32", "bf16", "fp16", "auto"),
        help="bf16: autocast; fp16: + GradScaler (CUDA); auto: bf16 where native, else fp32",
    ),
    "ema_decay": Field(0.0, ge=0, lt=1, help="EMA of the weights (e.g. 0.999); 0 = off"),
    "ema_warmup": Field(
        False,
        help="EMA decay min(ema_decay, (1 + n) / (10 + n)) after n steps (TensorFlow's num_updates)",
    ),
    "channels_last": Field(
        True, help="conv weights in channels-last memory (same model; faster on CPU and GPU)"
    ),
}

LOG_DEFAULTS: dict[str, Field] = {
    "every": Field(100, ge=0, help="steps between loss lines in metrics.jsonl / TensorBoard"),
    "checkpoint_every": Field(1000, ge=0, help="steps between checkpoints (and at the end)"),
    "keep_last": Field(3, ge=0, help="step checkpoints kept (the best is kept as well)"),
    "tensorboard": Field(True, help="TensorBoard event files in the run folder"),
}

SECTIONS = ("run", "model", "data", "train", "val", "log")

# [train] keys every task had before each task owned its keys, with their defaults then: a config
# written by that afvsr (a run's config.toml, a checkpoint's) holds them all; where the task has
# no such key and the value is that default, it is dropped on reading.
EARLIER_TRAIN_DEFAULTS: dict[str, Any] = {
    "loss": "charbonnier",
    "charbonnier_eps": 1e-12,
    "spynet_freeze_iters": 0,
    "spynet_lr_mult": 1.0,
    "spynet_checkpoint": "",
    "backbone_checkpoint": "",
    "init_checkpoint": "",
    "unfreeze_all": False,
    "lr_base": 0.0,
    "lr_finetune": 0.0,
}


def model_schema(name: str, source: str) -> dict[str, Field]:
    """``{"name": …, <constructor keyword>: Field(<its default>), …}`` for model ``name``.

    Constructor arguments whose default is None (sub-networks passed in, like ``spynet``) are not
    config keys.
    """
    if name not in MODELS:
        raise ConfigError(f"{source}: [model] name: expected one of {sorted(MODELS)}, got {name!r}")
    schema: dict[str, Field] = {"name": Field(name, choices=(name,), help="model family")}
    for p in inspect.signature(MODELS[name].__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            schema[p.name] = Field(type=int, ge=0)
        elif p.default is not None:
            default = list(p.default) if isinstance(p.default, tuple) else p.default
            lo, hi = KWARG_RANGES.get(p.name, (None, None))  # sane sizes: nothing huge is built
            length = (1, MAX_LIST) if isinstance(default, list) else None
            schema[p.name] = Field(default, ge=lo, le=hi, length=length)
    return schema


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"train.lr=1e-4"`` → ``("train", "lr", 1e-4)``; the value is read as a TOML value, or as
    a plain string when it is not one (so ``run.name=foo`` needs no quotes)."""
    key, sep, raw = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise AfvsrError(f"--set {text}: expected SECTION.KEY=VALUE, e.g. --set train.lr=1e-4")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, name, value


class _RawConfig:
    """The raw sections with ``--set`` overrides applied, and where each key was set."""

    def __init__(self, raw: dict[str, Any], source: str, overrides: list[str]) -> None:
        self.raw, self.source = copy.deepcopy(raw), source
        self.origin: dict[tuple[str, str], str] = {}
        self.as_text: dict[tuple[str, str], str] = {}  # an override's value as typed
        for section in self.raw:
            if section not in SECTIONS:
                raise ConfigError(
                    f"{source}: unknown section [{section}] (known sections: {', '.join(SECTIONS)})"
                )
        for text in overrides:
            section, name, value = parse_override(text)
            if section not in SECTIONS:
                raise ConfigError(
                    f"--set {text}: unknown section '{section}' "
                    f"(known sections: {', '.join(SECTIONS)})"
                )
            self.section(section)[name] = value
            self.origin[(section, name)] = f"--set {text}"
            self.as_text[(section, name)] = text.partition("=")[2].strip()

    def src(self, section: str, key: str) -> str:
        """Where ``section.key`` was set: a ``--set`` option or the file."""
        return self.origin.get((section, key), self.source)

    def section(self, name: str) -> dict[str, Any]:
        values = self.raw.setdefault(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{self.source}: [{name}] must be a table of keys, got {values!r}")
        return values

    def checked(self, name: str, fields: dict[str, Field]) -> dict[str, Any]:
        """The section checked against ``fields``; each key's error names where it was set."""
        values = self.section(name)
        for key, value in values.items():
            where = self.src(name, key)
            if key not in fields:
                raise ConfigError(
                    f"{where}: [{name}] unknown key '{key}' (known keys: {', '.join(fields)})"
                )
            if (
                (name, key) in self.as_text
                and fields[key].kind is str
                and not isinstance(value, str)
            ):
                values[key] = self.as_text[(name, key)]  # run.name=2024 stays a string
            check_section({key: values[key]}, {key: fields[key]}, name, where)
        return check_section(values, fields, name, self.source)

    def upgrade(self, task: type[Task]) -> None:
        """Read a config written for an earlier layout (see ``EARLIER_TRAIN_DEFAULTS``)."""
        for key, (old, new) in task.moved_keys.items():
            if key in self.section(old):
                if key in self.section(new):
                    raise ConfigError(
                        f"{self.source}: [{old}] {key}: is a [{new}] key now; set it there only"
                    )
                self.section(new)[key] = self.section(old).pop(key)
        train, own = self.section("train"), {**TRAIN_DEFAULTS, **task.train_fields}
        for key, default in EARLIER_TRAIN_DEFAULTS.items():
            if key in train and key not in own and train[key] == default:
                del train[key]
        self.rename_model()

    def rename_model(self) -> None:
        """Old ``[model]`` names read as the current ones (``afvsr.names``): ``name = "fusion"``
        as ``"afvsr"``; the argument ``fusion`` as ``group_fusion``, with a RenamedWarning (a
        FutureWarning)."""
        model = self.section("model")
        name = model.get("name")
        if not isinstance(name, str):
            return
        for old, new in kwarg_renames(name, model).items():
            warnings.warn(
                f"{self.src('model', old)}: [model] {old} is named {new} now; read as {new}",
                RenamedWarning,
                stacklevel=2,
            )
            model[new] = model.pop(old)
            for table in (self.origin, self.as_text):
                if ("model", old) in table:
                    table[("model", new)] = table.pop(("model", old))
        model["name"] = current_name(name)


def resolve_config(
    raw: dict[str, Any],
    source: str,
    *,
    overrides: list[str] | None = None,
    config_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Validate ``raw`` sections, apply ``--set`` overrides, fill every default.

    Returns the resolved config: a dict of the six sections, every key present. ``source`` names
    the file in error messages.
    """
    raw_cfg = _RawConfig(raw, source, overrides or [])
    run = raw_cfg.checked("run", RUN_DEFAULTS)
    if run["task"] not in TASKS:
        raise ConfigError(
            f"{raw_cfg.src('run', 'task')}: [run] task: expected one of {sorted(TASKS)}, "
            f"got {run['task']!r}"
        )
    task = TASKS[run["task"]]
    raw_cfg.upgrade(task)
    model_raw = raw_cfg.section("model")
    if "name" not in model_raw:
        raise ConfigError(f"{source}: [model] missing required key 'name'")
    where = raw_cfg.src("model", "name")
    name = Field("").check(model_raw["name"], f"{where}: [model] name")
    model = raw_cfg.checked("model", model_schema(name, where))
    cfg = {
        "run": run,
        "model": model,
        "data": raw_cfg.checked("data", task.data_schema(model)),
        "train": raw_cfg.checked("train", {**TRAIN_DEFAULTS, **task.train_fields}),
        "val": raw_cfg.checked("val", task.val_fields),
        "log": raw_cfg.checked("log", LOG_DEFAULTS),
    }
    if not run["name"]:
        run["name"] = Path(config_path).stem if config_path else "run"
    try:
        task.check_config(cfg)
    except ConfigError as exc:
        overridden = [text for text in raw_cfg.origin.values()]
        also = f" (with {', '.join(overridden)})" if overridden else ""
        raise ConfigError(f"{source}{also}: {exc}") from None
    return cfg


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read, validate and resolve the config file at ``path`` (see :func:`resolve_config`)."""
    return resolve_config(read_config_file(path), str(path), overrides=overrides, config_path=path)


# ---------------------------------------------------------------- writing the resolved config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) as a TOML value")


def config_to_toml(cfg: dict[str, Any]) -> str:
    """The resolved config as a TOML document (every key explicit; loadable with ``-c``)."""
    lines = ["# Resolved afvsr training config (every default filled in).", ""]
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        # None (a default TOML cannot spell) is left out: reading the file back gives it again.
        lines += [f"{key} = {_toml_value(v)}" for key, v in values.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``section.key`` of every value that differs between two resolved configs."""
    keys = []
    for section in sorted(set(a) | set(b)):
        sa, sb = a.get(section, {}), b.get(section, {})
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key, ...) != sb.get(key, ...):
                keys.append(f"{section}.{key}")
    return keys


def saved_config(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """A config stored by an earlier run (a checkpoint's), resolved as this afvsr reads it, so
    comparing it with the current one shows real differences only; as stored if it no longer
    resolves (the comparison then shows what changed)."""
    try:
        return resolve_config(raw, source)
    except AfvsrError:
        return raw
