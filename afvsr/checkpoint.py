"""Model files: safetensors weights with the constructor arguments in the header metadata.

``save_model(model, path)`` and ``load_model(path_or_name)`` need nothing else: the metadata names
the model family (a key of ``afvsr.models.MODELS``) and its keyword arguments. Nothing is ever
unpickled. Shipped weights live in ``afvsr/weights/<name>.safetensors`` and load by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from afvsr.errors import AfvsrError
from afvsr.io_utils import atomic_path

FORMAT_VERSION = "1"
WEIGHTS_DIR = Path(__file__).parent / "weights"

# Shipped models, best first: the first one present is the default of `afvsr upscale` and `demo`.
SHIPPED_MODELS: tuple[str, ...] = (
    "fusion-multihead-small",
    "fusion-single-small",
    "fusion-rates135-small",
    "basicvsr-small",
    "iconvsr-small",
)


def model_family(model: nn.Module) -> str:
    """The key of ``afvsr.models.MODELS`` whose class ``model`` is."""
    from afvsr.models import MODELS

    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"expected a model of one of {sorted(MODELS)}, got {type(model).__name__}")


def shipped_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.safetensors"


def available_models() -> list[str]:
    """Names accepted by ``load_model`` besides file paths: shipped weights present, and bicubic."""
    return [n for n in SHIPPED_MODELS if shipped_path(n).is_file()] + ["bicubic"]


def default_model_name() -> str:
    """The best shipped model, or ``"bicubic"`` when the package ships no weights."""
    return available_models()[0]


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    extra: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write ``model``'s weights and constructor arguments to ``path`` (safetensors), atomically.

    ``dtype=torch.float16`` stores floating-point weights at half size (shipped weights); loading
    casts them back to the model's fp32 parameters.
    """
    meta = {
        "format_version": FORMAT_VERSION,
        "model": model_family(model),
        "kwargs": json.dumps(model.kwargs),
    }
    meta.update(extra or {})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_state_dict_strict(
    model: nn.Module, state: dict[str, torch.Tensor], *, source: str
) -> None:
    """Load ``state`` into ``model`` by name; fail naming the first missing, unexpected or
    mis-shaped tensor."""
    own = model.state_dict()
    for name, tensor in own.items():
        if name not in state:
            raise AfvsrError(f"{source}: missing tensor '{name}' {tuple(tensor.shape)}")
        if state[name].shape != tensor.shape:
            raise AfvsrError(
                f"{source}: tensor '{name}' has shape {tuple(state[name].shape)}, "
                f"the model expects {tuple(tensor.shape)}"
            )
    for name in state:
        if name not in own:
            raise AfvsrError(f"{source}: unexpected tensor '{name}' not in the model")
    model.load_state_dict(state, strict=True)


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name or a file path → an existing file, else a one-line error."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if shipped_path(str(name_or_path)).is_file():
        return shipped_path(str(name_or_path))
    raise AfvsrError(
        f"no model file or shipped model named '{name_or_path}' "
        f"(shipped: {', '.join(available_models())})"
    )


def load_model(
    name_or_path: str | os.PathLike, *, map_location: str | torch.device = "cpu", scale: int = 4
) -> nn.Module:
    """Build a model from a checkpoint file or a shipped name (``"bicubic"`` needs ``scale``).

    Returns the model in eval mode on ``map_location``.
    """
    from afvsr.models import MODELS, Bicubic

    if str(name_or_path) == "bicubic":
        return Bicubic(scale=scale).eval()
    path = resolve_model_path(name_or_path)
    try:
        meta = read_metadata(path)
    except Exception as exc:  # safetensors raises several types for a non-safetensors file
        raise AfvsrError(f"{path}: not a safetensors model file ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION or meta.get("model") not in MODELS:
        raise AfvsrError(
            f"{path}: expected afvsr model metadata (format_version {FORMAT_VERSION}, model in "
            f"{sorted(MODELS)}), got format_version={meta.get('format_version')!r} "
            f"model={meta.get('model')!r}"
        )
    kwargs = json.loads(meta["kwargs"])
    model = MODELS[meta["model"]](**kwargs)
    load_state_dict_strict(model, read_tensors(path), source=str(path))
    return model.to(map_location).eval()
