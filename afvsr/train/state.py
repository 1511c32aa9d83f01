"""Training checkpoints: one safetensors file per checkpoint, nothing pickled.

Tensors (prefix ``model/``, ``ema/``, ``optim/<parameter name>/<state key>``, ``rng/``) are stored
as safetensors; everything else (step, config, optimizer hyper-parameters, scheduler, GradScaler,
Python/NumPy RNG states, sampler position, best metric) as one JSON document in the header
metadata under ``afvsr_training``. Files are written atomically (``afvsr.io_utils.atomic_path``):
a crash while saving leaves the previous checkpoint as it was and no partial file.

Optimizer state is stored by parameter *name* and loaded by name: a checkpoint whose parameter
groups or names do not match the current model fails loudly instead of loading by position.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from afvsr.errors import AfvsrError
from afvsr.io_utils import atomic_path

FORMAT_VERSION = 1
META_KEY = "afvsr_training"


def capture_rng_state() -> tuple[dict[str, Any], dict[str, Tensor]]:
    """All RNG states: Python and NumPy as JSON, torch CPU and every CUDA device as tensors."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": {"version": version, "state": list(mt), "gauss_next": gauss},
        "numpy": {
            "name": name,
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    tensors = {"rng/torch": torch.random.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    return meta, tensors


def restore_rng_state(meta: dict[str, Any], tensors: dict[str, Tensor]) -> None:
    py = meta["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    n = meta["numpy"]
    np.random.set_state(
        (
            n["name"],
            np.array(n["keys"], dtype=np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.random.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


def optimizer_to_flat(
    optimizer: torch.optim.Optimizer, names: dict[int, str]
) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Optimizer state → (JSON param groups with parameter names, ``optim/<name>/<key>`` tensors).

    ``names`` maps ``id(parameter)`` to its name in ``model.named_parameters()``.
    """
    groups = []
    for group in optimizer.param_groups:
        entry = {k: v for k, v in group.items() if k != "params"}
        entry["betas"] = list(entry.get("betas", ()))
        entry["params"] = [names[id(p)] for p in group["params"]]
        groups.append(entry)
    tensors: dict[str, Tensor] = {}
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if not isinstance(value, Tensor):
                raise ValueError(f"optimizer state {key!r} of {names[id(p)]} is not a tensor")
            tensors[f"optim/{names[id(p)]}/{key}"] = value
    return groups, tensors


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer,
    names: dict[int, str],
    groups: list[dict[str, Any]],
    tensors: dict[str, Tensor],
    *,
    source: str,
) -> None:
    """Load what :func:`optimizer_to_flat` stored into ``optimizer``, matching parameters by name."""
    own = [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]
    saved = [g["params"] for g in groups]
    if own != saved:
        own_names = [g.get("name") for g in optimizer.param_groups]
        raise AfvsrError(
            f"{source}: the checkpoint's optimizer groups {[g.get('name') for g in groups]} do not "
            f"hold the same parameters as this run's {own_names} (different model or freezing "
            "settings?)"
        )
    index = {name: i for i, name in enumerate(n for g in own for n in g)}
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        pname, _, skey = key[len("optim/") :].rpartition("/")
        if pname not in index:
            raise AfvsrError(f"{source}: optimizer state for unknown parameter '{pname}'")
        state.setdefault(index[pname], {})[skey] = value
    param_groups = []
    start = 0
    for g in groups:
        entry = dict(g)
        entry["betas"] = tuple(entry.get("betas", ()))
        entry["params"] = list(range(start, start + len(g["params"])))
        start += len(g["params"])
        param_groups.append(entry)
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema_model: nn.Module | None,
    meta: dict[str, Any],
) -> None:
    """Write the whole training state to ``path`` atomically.

    ``meta`` holds the JSON part (step, config, scheduler, scaler, sampler, best, …); the RNG
    states are added here.
    """
    names = {id(p): n for n, p in model.named_parameters()}
    groups, optim_tensors = optimizer_to_flat(optimizer, names)
    rng_meta, rng_tensors = capture_rng_state()
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    if ema_model is not None:
        tensors.update({f"ema/{k}": v for k, v in ema_model.state_dict().items()})
    tensors.update(optim_tensors)
    tensors.update(rng_tensors)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    doc = {
        "format_version": FORMAT_VERSION,
        **meta,
        "optimizer": {"param_groups": groups},
        "rng": rng_meta,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(doc)})


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(meta, tensors)`` of a training checkpoint; one-line AfvsrError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (KeyError, json.JSONDecodeError):
        raise AfvsrError(
            f"{path}: not an afvsr training checkpoint (no {META_KEY} metadata)"
        ) from None
    except Exception as exc:  # safetensors raises several types for a non-safetensors file
        raise AfvsrError(f"{path}: not a safetensors training checkpoint ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise AfvsrError(
            f"{path}: training checkpoint format {meta.get('format_version')!r}, this afvsr "
            f"reads {FORMAT_VERSION}"
        )
    return meta, tensors


def prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix`` (e.g. ``"model/"``) with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def restore_checkpoint(
    meta: dict[str, Any],
    tensors: dict[str, Tensor],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema_model: nn.Module | None,
    source: str,
) -> None:
    """Model, EMA, optimizer and RNG states from a checkpoint read by :func:`read_checkpoint`."""
    from afvsr.checkpoint import load_state_dict_strict

    load_state_dict_strict(model, prefixed(tensors, "model/"), source=source)
    if ema_model is not None:
        ema = prefixed(tensors, "ema/")
        if not ema:
            raise AfvsrError(f"{source}: the checkpoint has no EMA weights but ema_decay > 0")
        load_state_dict_strict(ema_model, ema, source=source)
    names = {id(p): n for n, p in model.named_parameters()}
    optimizer_from_flat(
        optimizer,
        names,
        meta["optimizer"]["param_groups"],
        {k: v for k, v in tensors.items() if k.startswith("optim/")},
        source=source,
    )
    restore_rng_state(meta["rng"], tensors)
