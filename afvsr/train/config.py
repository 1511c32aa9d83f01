"""Training config files: TOML or YAML, one schema dict per section, validated before any work.

A config is a table of sections. ``[run]``, ``[train]`` and ``[log]`` have fixed schemas below;
``[model]`` is ``name`` plus the keyword arguments of that model's constructor (checked against
its signature); ``[data]`` and ``[val]`` belong to the task (``Task.data_defaults`` /
``Task.val_defaults``). A schema maps each key to its default; the default's type is the type the
key must have (an ``int`` default accepts integers only, a ``float`` default accepts integers too,
a list default accepts a list of items of its first item's type). ``REQUIRED(type)`` marks a key
without a default; ``""`` is the "not set" value of optional paths (TOML has no null).

Every error names the key and the file (or the ``--set`` option) it came from.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from afvsr.errors import AfvsrError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class REQUIRED:
    """Schema value of a key that has no default and must be given, with its type."""

    def __init__(self, type_: type) -> None:
        self.type = type_

    def __repr__(self) -> str:
        return f"REQUIRED({self.type.__name__})"


RUN_DEFAULTS: dict[str, Any] = {
    "name": "",  # run folder name; "" = the config file's stem
    "out_dir": "runs",  # run folder = out_dir/name (relative to the current directory)
    "task": "vsr",  # a key of afvsr.train.tasks.TASKS
    "seed": 0,  # drives Python, NumPy, torch, the sampler and every sample's augmentation
    "deterministic": True,  # deterministic algorithms (bit-exact resume on CPU)
    "device": "auto",  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1", …
    "threads": 0,  # torch intra-op threads per process; 0 = torch's default
    "num_workers": 0,  # DataLoader worker processes per training process
}

TRAIN_DEFAULTS: dict[str, Any] = {
    "iterations": REQUIRED(int),  # optimizer steps
    "batch_size": 8,  # samples per micro-step summed over all processes (global batch)
    "accumulate": 1,  # micro-steps per optimizer step (gradient accumulation)
    "lr": 2e-4,
    "betas": [0.9, 0.99],
    "weight_decay": 0.0,  # Adam's L2 penalty
    "scheduler": "cosine",  # "cosine" (stepped every iteration) | "constant"
    "warmup_iters": 0,  # linear warm-up from lr/warmup_iters to lr
    "eta_min": 1e-7,  # cosine floor (absolute, for every group)
    "grad_clip": 0.0,  # max global gradient norm; 0 = no clipping
    "precision": "fp32",  # "fp32" | "bf16" (autocast) | "fp16" (autocast + GradScaler; CUDA)
    "ema_decay": 0.0,  # EMA of the weights (e.g. 0.999); 0 = off. On: validation/export use it
    "loss": "charbonnier",  # "charbonnier" | "l1" | "mse" (VSR task)
    "charbonnier_eps": 1e-12,  # sqrt((x - y)^2 + eps), as BasicVSR's CharbonnierLoss
    "spynet_freeze_iters": 0,  # SPyNet frozen for the first N steps (BasicVSR: 5000)
    "spynet_lr_mult": 1.0,  # SPyNet's lr = spynet_lr_mult × lr (BasicVSR: 0.125)
    "spynet_checkpoint": "",  # initial SPyNet weights (a SPyNet or BasicVSR model file)
    "backbone_checkpoint": "",  # stage 2: BasicVSR model file -> spynet, propagation, reconstruction
    "unfreeze_all": False,  # stage 2: train the backbone too (at lr_finetune)
    "lr_base": 0.0,  # stage 2: the attention module's lr; 0 = lr
    "lr_finetune": 0.0,  # stage 2: reconstruction's (warm-started) lr; 0 = lr
}

LOG_DEFAULTS: dict[str, Any] = {
    "every": 100,  # steps between loss lines in metrics.jsonl / TensorBoard
    "checkpoint_every": 1000,  # steps between training checkpoints (and always at the end)
    "keep_last": 3,  # step checkpoints kept (the best is kept as well)
    "tensorboard": True,  # TensorBoard event files in the run folder
}

CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("train", "scheduler"): ("cosine", "constant"),
    ("train", "precision"): ("fp32", "bf16", "fp16"),
    ("train", "loss"): ("charbonnier", "l1", "mse"),
}

# Keys that must be > 0 / >= 0 (the schema's types cannot say it).
POSITIVE = {("train", "iterations"), ("train", "batch_size"), ("train", "accumulate")}
NON_NEGATIVE = {
    ("run", "threads"),
    ("run", "num_workers"),
    ("train", "lr"),
    ("train", "weight_decay"),
    ("train", "warmup_iters"),
    ("train", "eta_min"),
    ("train", "grad_clip"),
    ("train", "ema_decay"),
    ("train", "spynet_freeze_iters"),
    ("train", "spynet_lr_mult"),
    ("train", "lr_base"),
    ("train", "lr_finetune"),
    ("log", "every"),
    ("log", "checkpoint_every"),
    ("log", "keep_last"),
}

SECTIONS = ("run", "model", "data", "train", "val", "log")


def _type_name(t: type) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        t, f"a {t.__name__}"
    )


def _expected_type(default: Any) -> type:
    if isinstance(default, REQUIRED):
        return default.type
    if isinstance(default, tuple):
        return list
    return type(default)


def check_value(value: Any, default: Any, where: str) -> Any:
    """``value`` converted to the type of ``default`` (see the module doc), else AfvsrError."""
    t = _expected_type(default)
    ok = False
    if t is bool:
        ok = isinstance(value, bool)
    elif t is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif t is str:
        ok = isinstance(value, str)
    elif t is list:
        ok = isinstance(value, (list, tuple))
        items = list(default) if isinstance(default, (list, tuple)) else []
        if ok and items:
            value = [check_value(v, items[0], f"{where}[{i}]") for i, v in enumerate(value)]
        elif ok:
            value = list(value)
    else:
        ok = isinstance(value, t)
    if not ok:
        raise AfvsrError(f"{where}: expected {_type_name(t)}, got {value!r}")
    return value


def check_section(
    values: dict[str, Any], schema: dict[str, Any], section: str, source: str
) -> dict[str, Any]:
    """Defaults filled in, types checked, unknown keys and missing required keys rejected."""
    if not isinstance(values, dict):
        raise AfvsrError(f"{source}: [{section}] must be a table of keys, got {values!r}")
    for key in values:
        if key not in schema:
            raise AfvsrError(
                f"{source}: [{section}] unknown key '{key}' (known keys: {', '.join(schema)})"
            )
    out: dict[str, Any] = {}
    for key, default in schema.items():
        where = f"{source}: [{section}] {key}"
        if key in values:
            out[key] = check_value(values[key], default, where)
        elif isinstance(default, REQUIRED):
            raise AfvsrError(f"{source}: [{section}] missing required key '{key}'")
        else:
            out[key] = copy.deepcopy(list(default) if isinstance(default, tuple) else default)
        choices = CHOICES.get((section, key))
        if choices and out[key] not in choices:
            raise AfvsrError(f"{where}: expected one of {list(choices)}, got {out[key]!r}")
        if (section, key) in POSITIVE and not out[key] > 0:
            raise AfvsrError(f"{where}: expected a value > 0, got {out[key]!r}")
        if (section, key) in NON_NEGATIVE and not out[key] >= 0:
            raise AfvsrError(f"{where}: expected a value >= 0, got {out[key]!r}")
    return out


def model_schema(name: str, source: str) -> dict[str, Any]:
    """``{"name": name, <constructor keyword>: <its default>, …}`` for model family ``name``.

    Constructor arguments whose default is None (sub-networks passed in, like ``spynet``) are not
    config keys.
    """
    from afvsr.models import MODELS

    if name not in MODELS:
        raise AfvsrError(f"{source}: [model] name: expected one of {sorted(MODELS)}, got {name!r}")
    schema: dict[str, Any] = {"name": name}
    for p in inspect.signature(MODELS[name].__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            schema[p.name] = REQUIRED(int)
        elif p.default is not None:
            schema[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return schema


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file into a dict of sections."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise AfvsrError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    elif path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AfvsrError(f"{path}: not valid TOML ({exc})") from None
    else:
        raise AfvsrError(f"{path}: expected a .toml, .yaml or .yml config file")
    if not isinstance(data, dict):
        raise AfvsrError(f"{path}: expected a table of sections, got {type(data).__name__}")
    return data


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
    from afvsr.train.tasks import TASKS

    raw = copy.deepcopy(raw)
    for section in raw:
        if section not in SECTIONS:
            raise AfvsrError(
                f"{source}: unknown section [{section}] (known sections: {', '.join(SECTIONS)})"
            )
    origin: dict[tuple[str, str], str] = {}
    as_text: dict[tuple[str, str], str] = {}  # the override's value as typed
    for text in overrides or []:
        section, name, value = parse_override(text)
        if section not in SECTIONS:
            raise AfvsrError(
                f"--set {text}: unknown section '{section}' (known sections: {', '.join(SECTIONS)})"
            )
        raw.setdefault(section, {})[name] = value
        origin[(section, name)] = f"--set {text}"
        as_text[(section, name)] = text.partition("=")[2].strip()

    def src(section: str, key: str) -> str:
        return origin.get((section, key), source)

    def checked(section: str, schema: dict[str, Any]) -> dict[str, Any]:
        values = raw.get(section, {})
        if not isinstance(values, dict):
            raise AfvsrError(f"{source}: [{section}] must be a table of keys, got {values!r}")
        for key, value in values.items():  # each key's error names where that key was set
            if key not in schema:
                raise AfvsrError(
                    f"{src(section, key)}: [{section}] unknown key '{key}' "
                    f"(known keys: {', '.join(schema)})"
                )
            if (
                (section, key) in as_text
                and _expected_type(schema[key]) is str
                and not isinstance(value, str)
            ):
                values[key] = value = as_text[(section, key)]  # run.name=2024 stays a string
            check_section({key: value}, {key: schema[key]}, section, src(section, key))
        return check_section(values, schema, section, source)

    cfg: dict[str, Any] = {}
    cfg["run"] = checked("run", RUN_DEFAULTS)
    task_name = cfg["run"]["task"]
    if task_name not in TASKS:
        raise AfvsrError(
            f"{src('run', 'task')}: [run] task: expected one of {sorted(TASKS)}, got {task_name!r}"
        )
    task_cls = TASKS[task_name]
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict) or "name" not in model_raw:
        raise AfvsrError(f"{source}: [model] missing required key 'name'")
    name = check_value(model_raw["name"], "", f"{src('model', 'name')}: [model] name")
    cfg["model"] = checked("model", model_schema(name, src("model", "name")))
    data_overrides = [origin[k] for k in origin if k[0] == "data"]
    data_source = source + (f" (with {', '.join(data_overrides)})" if data_overrides else "")
    cfg["data"] = task_cls.check_data(raw.get("data", {}), data_source)
    cfg["train"] = checked("train", TRAIN_DEFAULTS)
    cfg["val"] = checked("val", task_cls.val_defaults)
    cfg["log"] = checked("log", LOG_DEFAULTS)
    if not cfg["run"]["name"]:
        cfg["run"]["name"] = Path(config_path).stem if config_path else "run"
    betas = cfg["train"]["betas"]
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise AfvsrError(
            f"{src('train', 'betas')}: [train] betas: expected two numbers in [0, 1), got {betas}"
        )
    if cfg["train"]["ema_decay"] >= 1:
        raise AfvsrError(
            f"{src('train', 'ema_decay')}: [train] ema_decay: expected a value in [0, 1), "
            f"got {cfg['train']['ema_decay']}"
        )
    task_cls.check_config(cfg, source)
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
