"""Model files and every helper that reads weights from them (one home for checkpoint reading).

afvsr model files are safetensors weights with the constructor arguments in the header metadata:
``save_model(model, path)`` and ``load_model(path_or_name)`` need nothing else. The metadata names
the model family (a key of ``afvsr.models.MODELS``) and its keyword arguments; both are
validated (types, ranges) and every tensor's shape is checked against the model they describe,
computed on the meta device, before anything is allocated. Shipped weights live in
``afvsr/weights/<name>.safetensors`` and load by name. ``load_model`` also reads BasicSR's and
mmagic's published ``.pth`` checkpoints (``afvsr.published``), with ``torch.load(weights_only=True)``
only. Training uses :func:`load_spynet`, :func:`load_backbone`, :func:`load_iconvsr_backbone` and
:func:`load_extractor`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from afvsr.errors import AfvsrError
from afvsr.io_utils import atomic_path
from afvsr.names import current_kwargs, current_name

FORMAT_VERSION = "1"
WEIGHTS_DIR = Path(__file__).parent / "weights"

# Shipped models, by validation PSNR-Y. The default of `afvsr upscale`, `eval` and `demo` is
# computed from their recorded figures (afvsr.shipped.default_model), not from this order.
SHIPPED_MODELS: tuple[str, ...] = (
    "basicvsr-small",
    "iconvsr-small",
    "afvsr-single-small",
    "afvsr-rates135-small",
    "afvsr-multihead-small",
)


def model_family(model: nn.Module) -> str:
    """The key of ``afvsr.models.MODELS`` whose class ``model`` is."""
    from afvsr.models import MODELS

    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"expected a model of one of {sorted(MODELS)}, got {type(model).__name__}")


def shipped_path(name: str) -> Path:
    """Where shipped model ``name`` (or its old name, ``fusion-single-small``) lives."""
    return WEIGHTS_DIR / f"{current_name(name)}.safetensors"


def available_models() -> list[str]:
    """Names accepted by ``load_model`` besides file paths: shipped weights present, and bicubic."""
    return [n for n in SHIPPED_MODELS if shipped_path(n).is_file()] + ["bicubic"]


def default_model_name() -> str:
    """The fastest shipped model within 0.1 dB PSNR-Y of the best present (``afvsr.shipped``),
    or ``"bicubic"`` when the package ships no weights."""
    from afvsr.shipped import default_model

    return default_model(available_models()[:-1]) or available_models()[0]


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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def open_safetensors(path: str | os.PathLike, *, what: str = "model file") -> Iterator:
    """``safe_open(path)``, the one handler for safetensors' several error types: a file that
    is not safetensors, or whose tensors cannot be read inside the ``with`` block (cut short or
    changed since it was opened), is a one-line AfvsrError naming it."""
    try:
        f = safe_open(str(path), framework="pt")
    except Exception as exc:  # safetensors raises several types for a non-safetensors file
        raise AfvsrError(f"{path}: not a safetensors {what} ({_one_line(exc)})") from None
    with f:
        try:
            yield f
        except SafetensorError as exc:
            raise AfvsrError(f"{path}: cannot read its tensors ({_one_line(exc)})") from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header metadata of a safetensors file (``{}`` if it has none)."""
    with open_safetensors(path) as f:
        return dict(f.metadata() or {})


def read_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape from the safetensors header, without reading the tensors."""
    with open_safetensors(path) as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` (e.g. ``"model/"``) with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def module_tensors(tensors: dict[str, torch.Tensor], module: str) -> dict[str, torch.Tensor]:
    """The state dict of submodule ``module`` of a whole-model state dict (prefix ``module.``)."""
    return prefixed(tensors, module + ".")


def load_state_dict_strict(
    model: nn.Module, state: dict[str, torch.Tensor], *, source: str
) -> None:
    """Load ``state`` into ``model`` by name; fail naming the first missing, unexpected or
    mis-shaped tensor (:func:`check_tensor_shapes`)."""
    check_tensor_shapes(
        {k: tuple(v.shape) for k, v in model.state_dict().items()},
        {k: tuple(v.shape) for k, v in state.items()},
        source=source,
    )
    model.load_state_dict(state, strict=True)


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file."""
    with open_safetensors(path) as f:
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


# What a model file may declare, beyond the types its constructor's signature gives: far above
# any real model, far below what would exhaust memory (shapes are checked against the file's
# tensors before anything is built, too).
KWARG_RANGES: dict[str, tuple[int, int]] = {
    "mid_channels": (1, 1024),
    "num_blocks": (0, 512),
    "scale": (2, 4),
    "keyframe_stride": (1, 10_000),
    "temporal_padding": (0, 16),
    "window": (1, 99),
    "num_heads": (1, 64),
    "rates": (1, 99),  # each rate
}
MAX_LIST = 16  # items of a list argument (rates)


def _check_argument(name: str, value, default, *, where: str) -> None:
    """``value`` must have the type of the constructor's ``default`` and lie in KWARG_RANGES."""
    if isinstance(default, (tuple, list)):
        ok = isinstance(value, list) and 0 < len(value) <= MAX_LIST
        items = value if ok else []
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in items)
        kind = f"a list of 1 to {MAX_LIST} integers"
    elif isinstance(default, bool):
        items, ok, kind = [], isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        items, kind = [value], "an integer"
    elif isinstance(default, str):
        items, ok, kind = [], isinstance(value, str), "a string"
    else:
        items, ok, kind = [], isinstance(value, (int, float)), "a number"
    if not ok:
        raise AfvsrError(f"{where}: argument {name!r} must be {kind}, got {value!r}")
    lo, hi = KWARG_RANGES.get(name, (None, None))
    for v in items if lo is not None else []:
        if not lo <= v <= hi:
            raise AfvsrError(f"{where}: argument {name!r} must be in [{lo}, {hi}], got {value!r}")


def check_kwargs(family: str, kwargs, *, source: str) -> dict:
    """Validate a model file's constructor arguments for ``family`` (a key of ``MODELS``): a
    mapping of known keyword arguments with the right types and sane ranges; else AfvsrError."""
    from afvsr.models import MODELS

    if not isinstance(kwargs, dict):
        raise AfvsrError(
            f"{source}: metadata 'kwargs' must be a mapping of constructor arguments, "
            f"got {type(kwargs).__name__}"
        )
    params = {
        n: p.default
        for n, p in inspect.signature(MODELS[family].__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not None
    }
    for name, value in kwargs.items():
        if name not in params:
            raise AfvsrError(
                f"{source}: unknown argument {name!r} for model {family!r} "
                f"(it takes {', '.join(sorted(params)) or 'none'})"
            )
        _check_argument(name, value, params[name], where=source)
    return kwargs


def kwargs_mismatch(model: nn.Module, kwargs: dict) -> tuple[str, object, object] | None:
    """The first constructor argument on which a model file's ``kwargs`` and ``model.kwargs``
    differ, as ``(name, the file's value, the model's value)``; None when they agree. An argument
    the file does not record (written before it existed) counts as the constructor's default."""
    defaults = {
        n: list(p.default) if isinstance(p.default, tuple) else p.default
        for n, p in inspect.signature(type(model).__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not None
    }
    for name, ours in model.kwargs.items():
        theirs = kwargs.get(name, defaults.get(name))
        if theirs != ours:
            return name, theirs, ours
    return None


def expected_shapes(family: str, kwargs: dict, *, source: str) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape of the model ``MODELS[family](**kwargs)``, built on the meta device
    (nothing allocated); a constructor's refusal is a one-line AfvsrError."""
    from afvsr.models import MODELS

    try:
        with torch.device("meta"):
            model = MODELS[family](**kwargs)
    except (ValueError, TypeError) as exc:
        raise AfvsrError(
            f"{source}: its metadata describes no valid {family} model: {exc}"
        ) from None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_tensor_shapes(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    *,
    source: str,
    model: str = "the model",
) -> None:
    """Every ``expected`` tensor name is in ``found`` with its shape, and nothing else is; else
    an AfvsrError naming the first missing, mis-shaped or unexpected tensor, and both counts
    when they differ. ``model`` says what the expected shapes are of (``"the model"``)."""
    counts = (
        f" ({len(found)} tensors, {model} has {len(expected)})"
        if len(found) != len(expected)
        else ""
    )
    for name, shape in expected.items():
        if name not in found:
            raise AfvsrError(f"{source}: missing tensor '{name}' {shape}{counts}")
        if found[name] != shape:
            raise AfvsrError(
                f"{source}: tensor '{name}' has shape {found[name]}, {model} expects {shape}"
            )
    for name in found:
        if name not in expected:
            raise AfvsrError(f"{source}: unexpected tensor '{name}' not in the model{counts}")


@dataclass
class ModelFile:
    """A model file read into afvsr's names: ``family`` (a key of ``MODELS``, or ``"edvr"`` for
    IconVSR's extractor on its own), constructor ``kwargs``, ``tensors``, and ``description``
    (where it came from: afvsr file, or a published layout and key set)."""

    family: str
    kwargs: dict
    tensors: dict[str, torch.Tensor]
    description: str


def read_afvsr_metadata(path: Path) -> tuple[str, dict]:
    """``(family, kwargs)`` of an afvsr model file, validated (see :func:`check_kwargs`)."""
    from afvsr.models import MODELS

    meta = read_metadata(path)
    family = current_name(meta.get("model"))  # files written before the rename say "fusion"
    if meta.get("format_version") != FORMAT_VERSION or family not in MODELS:
        raise AfvsrError(
            f"{path}: expected afvsr model metadata (format_version {FORMAT_VERSION}, model in "
            f"{sorted(MODELS)}), got format_version={meta.get('format_version')!r} "
            f"model={meta.get('model')!r}"
        )
    if "kwargs" not in meta:
        raise AfvsrError(
            f"{path}: the metadata has no 'kwargs' (the model's constructor arguments)"
        )
    try:
        kwargs = json.loads(meta["kwargs"])
    except json.JSONDecodeError as exc:
        raise AfvsrError(f"{path}: metadata 'kwargs' is not JSON ({exc})") from None
    return family, check_kwargs(family, current_kwargs(family, kwargs), source=str(path))


def read_model_file(
    name_or_path: str | os.PathLike, *, keyframe_stride: int | None = None
) -> ModelFile:
    """An afvsr model file (or shipped name), or a BasicSR/mmagic ``.pth`` checkpoint, checked
    tensor by tensor against the model it describes before any tensor is read."""
    from afvsr.published import is_torch_file, read_published

    path = resolve_model_path(name_or_path)
    if is_torch_file(path):
        pub = read_published(path, keyframe_stride=keyframe_stride)
        return ModelFile(pub.family, pub.kwargs, pub.tensors, pub.describe())
    family, kwargs = read_afvsr_metadata(path)
    if keyframe_stride is not None:
        if family != "iconvsr":
            raise AfvsrError(f"{path}: keyframe_stride applies to IconVSR, this is {family}")
        kwargs = {**kwargs, "keyframe_stride": keyframe_stride}
    check_tensor_shapes(
        expected_shapes(family, kwargs, source=str(path)),
        read_shapes(path),
        source=str(path),
        model="the model its metadata describes",
    )
    return ModelFile(family, kwargs, read_tensors(path), f"{family} (afvsr model file): {kwargs}")


def read_model_tensors(path: str | os.PathLike) -> tuple[str, dict[str, torch.Tensor]]:
    """``(model family, tensors)`` of a model file (afvsr's or a published one)."""
    found = read_model_file(path)
    return found.family, found.tensors


def load_model(
    name_or_path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    scale: int = 4,
    keyframe_stride: int | None = None,
) -> nn.Module:
    """Build a model from a model file, a shipped name (``"bicubic"`` needs ``scale``), or a
    BasicSR/mmagic checkpoint (``keyframe_stride`` overrides IconVSR's, default 5).

    Returns the model in eval mode on ``map_location``.
    """
    from afvsr.models import MODELS, Bicubic

    if str(name_or_path) == "bicubic":
        return Bicubic(scale=scale).eval()
    found = read_model_file(name_or_path, keyframe_stride=keyframe_stride)
    source = str(resolve_model_path(name_or_path))
    if found.family not in MODELS:
        raise AfvsrError(
            f"{source}: an EDVR feature extractor (IconVSR's information-refill), not a whole "
            "model; it starts IconVSR training, see afvsr.checkpoint.load_extractor"
        )
    model = MODELS[found.family](**found.kwargs)
    load_state_dict_strict(model, found.tensors, source=source)
    return model.to(map_location).eval()


def load_upscaler(
    name_or_path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    scale: int = 4,
    keyframe_stride: int | None = None,
) -> nn.Module:
    """:func:`load_model` for commands that upscale video: a SPyNet (stage 0) file is refused
    with one line naming it."""
    model = load_model(
        name_or_path, map_location=map_location, scale=scale, keyframe_stride=keyframe_stride
    )
    if model_family(model) == "spynet":
        raise AfvsrError(
            f"{resolve_model_path(name_or_path)}: a SPyNet (optical flow, training stage 0) "
            "model file cannot upscale; give a BasicVSR, IconVSR or AFVSR model"
        )
    return model


def load_spynet(model: nn.Module, path: str | os.PathLike) -> None:
    """``model.spynet`` from a SPyNet file, or from the ``spynet`` of a BasicVSR-family file
    (afvsr's, BasicSR's or mmagic's)."""
    found = read_model_file(path)
    state = found.tensors if found.family == "spynet" else module_tensors(found.tensors, "spynet")
    load_state_dict_strict(model.spynet, state, source=f"{path} (spynet)")


BACKBONE_MODULES = ("spynet", "propagation", "reconstruction")


def load_backbone(model: nn.Module, path: str | os.PathLike) -> None:
    """spynet, propagation and reconstruction of ``model`` from a BasicVSR (or AFVSR) model
    file, afvsr's or a published one, each module strictly by name. The file's residual base
    (``upsample_mode``) must be the model's, so the frozen backbone computes what it did."""
    found = read_backbone_file(model, path, families=("basicvsr", "afvsr"))
    for name in BACKBONE_MODULES:
        load_state_dict_strict(
            getattr(model, name), module_tensors(found.tensors, name), source=f"{path} ({name})"
        )


def read_backbone_file(
    model: nn.Module, path: str | os.PathLike, *, families: tuple[str, ...]
) -> ModelFile:
    """The model file a backbone comes from: one of ``families``, with the model's residual
    base (``upsample_mode``) and flow mode, so the warm-started modules compute what they did."""
    found = read_model_file(path)
    if found.family not in families:
        raise AfvsrError(
            f"{path}: expected a BasicVSR model file as backbone, got {found.family!r}"
        )
    theirs = found.kwargs.get("upsample_mode", "bicubic")
    ours = model.kwargs.get("upsample_mode", "bicubic")
    if theirs != ours:
        raise AfvsrError(
            f"{path}: the backbone adds a {theirs} residual base, the model a {ours} one: set "
            f'[model] upsample_mode = "{theirs}"'
        )
    theirs = found.kwargs.get("flow_mode", "two-way")
    ours = model.kwargs.get("flow_mode", "two-way")
    if theirs != ours:
        raise AfvsrError(
            f"{path}: the backbone was trained with {theirs} flow, {type(model).__name__} "
            f"computes {ours} flow"
        )
    return found


def load_iconvsr_backbone(model: nn.Module, path: str | os.PathLike) -> None:
    """An IconVSR warm-started from a trained BasicVSR file of the same width and depth.

    ``spynet``, the backward branch and ``reconstruction`` load strictly by name. The coupled
    forward branch takes BasicVSR's forward branch: its input conv reads ``[frame (3), backward
    feature (c), state (c)]`` where BasicVSR's reads ``[frame, state]``, so the frame and state
    weights are copied and the backward-feature weights start at zero. Both refill fusions
    (conv3x3 over ``[state, refill]``) start as the identity on the state. Before training, the
    model is BasicVSR's two branches without the 1x1 direction fusion: the forward features go
    straight to the reconstruction, as IconVSR's do. The extractor is left as it is.
    """
    found = read_backbone_file(model, path, families=("basicvsr",))
    prop = module_tensors(found.tensors, "propagation")
    for name in ("spynet", "reconstruction"):
        load_state_dict_strict(
            getattr(model, name), module_tensors(found.tensors, name), source=f"{path} ({name})"
        )
    src = f"{path} (propagation)"
    ours = model.propagation
    load_state_dict_strict(ours.backward_branch, prefixed(prop, "backward_branch."), source=src)
    forward = prefixed(prop, "forward_branch.")
    c = ours.mid_channels
    w_in = forward.get("conv_in.weight")
    if w_in is None or tuple(w_in.shape) != (c, c + 3, 3, 3):
        got = None if w_in is None else tuple(w_in.shape)
        raise AfvsrError(f"{src}: forward_branch.conv_in.weight {got}, expected {(c, c + 3, 3, 3)}")
    coupled = w_in.new_zeros(c, 2 * c + 3, 3, 3)
    coupled[:, :3], coupled[:, 3 + c :] = w_in[:, :3], w_in[:, 3:]
    load_state_dict_strict(ours.forward_branch, {**forward, "conv_in.weight": coupled}, source=src)
    with torch.no_grad():
        for fusion in (ours.backward_fusion, ours.forward_fusion):
            fusion.weight.zero_()
            fusion.bias.zero_()
            fusion.weight[torch.arange(c), torch.arange(c), 1, 1] = 1.0


def load_extractor(model: nn.Module, path: str | os.PathLike) -> None:
    """IconVSR's ``extractor`` from an EDVR-for-IconVSR file (BasicSR's or mmagic's published
    extractor) or from the extractor of an IconVSR model file, strictly by name."""
    found = read_model_file(path)
    if found.family == "iconvsr":
        state = module_tensors(found.tensors, "extractor")
    elif found.family == "edvr":
        state = found.tensors
    else:
        raise AfvsrError(
            f"{path}: expected an EDVR extractor or IconVSR model file, got {found.family!r}"
        )
    load_state_dict_strict(model.extractor, state, source=f"{path} (extractor)")
