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

import contextlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from afvsr.checkpoint import load_state_dict_strict, open_safetensors, prefixed
from afvsr.errors import AfvsrError
from afvsr.io_utils import RANDOM_PART, atomic_path

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


class CheckpointError(AfvsrError):
    """A training checkpoint that cannot be read or does not fit (corrupt, crafted, other run)."""


def read_checkpoint_header(
    path: str | os.PathLike,
) -> tuple[dict[str, Any], dict[str, tuple[str, list[int]]]]:
    """``(meta, {tensor name: (dtype, shape)})`` of a training checkpoint, reading no tensor
    data; CheckpointError naming the file if it is not one (:func:`check_meta` checks the
    fields a run resumes from)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        with open_safetensors(path, what="training checkpoint") as f:
            text = (f.metadata() or {}).get(META_KEY)
            shapes = {}
            for k in f.keys():
                piece = f.get_slice(k)
                shapes[k] = (piece.get_dtype(), list(piece.get_shape()))
    except AfvsrError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        meta = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not an afvsr training checkpoint (no {META_KEY} metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: training checkpoint format {meta.get('format_version')!r}, this afvsr "
            f"reads {FORMAT_VERSION}"
        )
    return meta, shapes


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(meta, tensors)`` of a training checkpoint; one-line CheckpointError if it is not one."""
    meta, _ = read_checkpoint_header(path)
    return meta, read_checkpoint_tensors(path)


def read_checkpoint_tensors(path: str | os.PathLike) -> dict[str, Tensor]:
    """Every tensor of a checkpoint whose header :func:`read_checkpoint_header` accepted."""
    try:  # the file may have been cut short or changed since its header was read
        with open_safetensors(path, what="training checkpoint") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except AfvsrError as exc:
        raise CheckpointError(str(exc)) from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_meta(meta: dict[str, Any], source: str) -> None:
    """The JSON part has the types :func:`save_checkpoint` writes; CheckpointError naming the
    first field that does not."""
    opt = meta.get("optimizer")
    groups = opt.get("param_groups") if isinstance(opt, dict) else None
    rng = meta.get("rng")
    py = rng.get("python") if isinstance(rng, dict) else None
    npy = rng.get("numpy") if isinstance(rng, dict) else None
    best = meta.get("best")
    checks = [
        ("step", _is_int(meta.get("step")) and meta["step"] >= 0, "an integer >= 0"),
        ("config", isinstance(meta.get("config"), dict), "a table of sections"),
        ("optimizer", isinstance(groups, list) and bool(groups), "the optimizer state"),
        ("rng", isinstance(py, dict) and isinstance(npy, dict), "the RNG states"),
        ("best", isinstance(best, dict), "the best metric's record"),
        ("scaler", meta.get("scaler") is None or isinstance(meta["scaler"], dict), "a table"),
    ]
    for key, ok, what in checks:
        if not ok:
            found = "nothing" if key not in meta else repr(meta[key])[:60]
            raise CheckpointError(f"{source}: field '{key}': expected {what}, got {found}")
    for i, g in enumerate(groups):
        ok = (
            isinstance(g, dict)
            and isinstance(g.get("params"), list)
            and all(isinstance(n, str) for n in g["params"])
            and _is_number(g.get("lr"))
            and isinstance(g.get("betas"), list)
            and len(g["betas"]) == 2
            and all(_is_number(b) for b in g["betas"])
        )
        if not ok:
            raise CheckpointError(
                f"{source}: optimizer group {i}: expected params (names), lr and betas, "
                f"got {repr(g)[:80]}"
            )
    rng_ok = (
        _is_int(py.get("version"))
        and isinstance(py.get("state"), list)
        and len(py["state"]) == 625
        and all(_is_int(v) for v in py["state"])
        and (py.get("gauss_next") is None or _is_number(py["gauss_next"]))
        and isinstance(npy.get("name"), str)
        and isinstance(npy.get("keys"), list)
        and len(npy["keys"]) == 624
        and all(_is_int(v) and 0 <= v < 2**32 for v in npy["keys"])
        and _is_int(npy.get("pos"))
        and _is_int(npy.get("has_gauss"))
        and _is_number(npy.get("cached_gaussian"))
    )
    if not rng_ok:
        raise CheckpointError(f"{source}: field 'rng': not the Python and NumPy RNG states")
    best_ok = (
        best.get("mode") in ("max", "min")
        and isinstance(best.get("metric"), str)
        and (best.get("value") is None or _is_number(best["value"]))
        and (best.get("step") is None or _is_int(best["step"]))
    )
    if not best_ok:
        raise CheckpointError(f"{source}: field 'best': expected metric, mode, value and step")


ADAM_STATE = {"step": lambda shape: [], "exp_avg": list, "exp_avg_sq": list}


def check_tensors(
    shapes: dict[str, tuple[str, list[int]]],
    meta: dict[str, Any],
    *,
    model: nn.Module,
    ema_model: nn.Module | None,
    source: str,
) -> None:
    """The checkpoint's tensors (names and shapes from its header, nothing allocated) are the
    ones this run's model, EMA and Adam state need; CheckpointError naming the first that is not.
    """
    expected: dict[str, list[int]] = {}
    for prefix, module in (("model/", model), ("ema/", ema_model)):
        if module is not None:
            expected.update({prefix + k: list(v.shape) for k, v in module.state_dict().items()})
    params = {n: list(p.shape) for n, p in model.named_parameters()}
    by_param: dict[str, set[str]] = {}
    for name in shapes:
        if name.startswith("optim/"):
            pname, _, key = name[len("optim/") :].rpartition("/")
            if pname not in params or key not in ADAM_STATE:
                raise CheckpointError(
                    f"{source}: tensor '{name}': not a state of this model's Adam"
                )
            expected[name] = ADAM_STATE[key](params[pname])
            by_param.setdefault(pname, set()).add(key)
    expected["rng/torch"] = list(torch.random.get_rng_state().shape)
    for name, shape in expected.items():
        if name not in shapes:
            raise CheckpointError(
                f"{source}: tensor '{name}' is missing ({len(shapes)} tensors in the file)"
            )
        if shapes[name][1] != shape:
            raise CheckpointError(
                f"{source}: tensor '{name}' has shape {shapes[name][1]}, this run needs {shape}"
            )
    ignored = ("rng/cuda/",) if ema_model is not None else ("rng/cuda/", "ema/")
    extra = [k for k in shapes if k not in expected and not k.startswith(ignored)]
    if extra:
        raise CheckpointError(
            f"{source}: tensor '{extra[0]}' is not part of this run's model "
            f"({len(extra)} unexpected tensors)"
        )
    for pname, keys in by_param.items():
        if keys != set(ADAM_STATE):
            missing = sorted(set(ADAM_STATE) - keys)[0]
            raise CheckpointError(f"{source}: tensor 'optim/{pname}/{missing}' is missing")
    if meta["step"] > 0 and not by_param:
        raise CheckpointError(
            f"{source}: no optimizer state (tensors 'optim/…') at step {meta['step']}"
        )


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


CHECKPOINT_RE = re.compile(r"^step_(\d+)\.safetensors$")
# afvsr.io_utils.atomic_path's temporary names for checkpoints: .step_NNNNNNNN.<random>.tmp…
_TEMP_RE = re.compile(r"^\.(step_\d+|best)\." + RANDOM_PART + r"\.tmp(\.safetensors)?$")


def find_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step_NNNNNNNN.safetensors`` in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return sorted(found)


def readable_earlier_checkpoint(path: Path) -> Path | None:
    """The newest step checkpoint next to ``path`` and older than it (any, for ``best``) whose
    header and metadata read correctly; None if there is none."""
    match = CHECKPOINT_RE.match(path.name)
    limit = int(match.group(1)) if match else None
    for step, other in reversed(find_checkpoints(path.parent)):
        if other == path or (limit is not None and step >= limit):
            continue
        try:
            check_meta(read_checkpoint_header(other)[0], str(other))
        except (AfvsrError, OSError):
            continue
        return other
    return None


def remove_stale_checkpoint_temps(folder: Path, *, older_than: float) -> list[Path]:
    """Remove the temporary checkpoint files (afvsr's own pattern only) that a killed run left in
    ``folder``, if modified before ``older_than`` (a ``time.time()``); returns them."""
    removed = []
    for entry in folder.iterdir():
        if not _TEMP_RE.match(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.lstat().st_mtime < older_than:
                entry.unlink()
                removed.append(entry)
    return removed
