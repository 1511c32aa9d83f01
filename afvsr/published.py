"""Published checkpoints: BasicSR's and mmagic's (MMEditing's) BasicVSR, IconVSR, SPyNet and
IconVSR's EDVR extractor, read into afvsr's models and written back.

Containers: BasicSR ``{"params": …}`` / ``{"params_ema": …}`` (``params_ema`` preferred when both
exist, as BasicSR's test scripts do), mmagic ``{"meta": …, "state_dict": {"generator.…": …}}``,
or a bare state dict of either layout. ``.pth`` files are read with
``torch.load(weights_only=True)`` only: tensors and plain containers, never arbitrary pickles.

The family and its sizes come from the tensor names and shapes: ``mid_channels`` from the
direction-fusion conv, ``num_blocks`` by counting residual blocks, IconVSR's
``temporal_padding`` from its TSA fusion conv; both projects' networks are ×4 with a bilinear
residual base
(``upsample_mode="bilinear"``). IconVSR's keyframe stride is not in the weights: it is 5 (both
projects' published models) unless overridden. Published SPyNet files have no ``mean``/``std``
buffers (expected); those inside full models are checked to be ImageNet's and dropped (afvsr's
are constants).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from afvsr.errors import AfvsrError
from afvsr.published_keys import LAYOUTS, published_name

FAMILIES = ("spynet", "basicvsr", "iconvsr", "edvr")
DEFAULT_KEYFRAME_STRIDE = 5  # BasicSR's and mmagic's published IconVSR
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
# Container keys that hold a state dict, in the order they are preferred.
KEY_SETS = ("params_ema", "params", "state_dict")


@dataclass
class Published:
    """A published checkpoint read into afvsr's names.

    ``family``: "spynet" | "basicvsr" | "iconvsr" | "edvr" (IconVSR's extractor on its own);
    ``layout``: "basicsr" | "mmagic"; ``key_set``: the container key used ("params_ema",
    "params", "state_dict" or "bare"); ``kwargs``: the afvsr constructor arguments; ``tensors``:
    afvsr names → tensors; ``ignored``: tensors of the file that are not weights of the network
    (e.g. mmagic's ``step_counter``, SPyNet's normalisation buffers).
    """

    family: str
    layout: str
    key_set: str
    kwargs: dict
    tensors: dict[str, Tensor]
    ignored: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: family, layout, sizes and key set."""
        sizes = ", ".join(f"{k}={v}" for k, v in self.kwargs.items()) or "no size arguments"
        n = sum(t.numel() for t in self.tensors.values())
        return (
            f"{self.family} ({self.layout} layout, key set {self.key_set}): {sizes}; "
            f"{len(self.tensors)} tensors, {n:,} parameters"
        )


def is_torch_file(path: str | os.PathLike) -> bool:
    """True for a ``torch.save`` file (zip archive or legacy pickle), by its first bytes."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head[8:9] == b"{":  # safetensors: an 8-byte header length, then the JSON header
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def read_pth(path: str | os.PathLike) -> dict:
    """``torch.load(path, weights_only=True)``; a file that needs more (arbitrary pickled
    objects) or is not a torch file is refused with one line."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AfvsrError(
            f"{path}: refused: this checkpoint holds more than tensors and plain containers, "
            f"and afvsr reads .pth files with torch.load(weights_only=True) only ({first})"
        ) from None
    except Exception as exc:  # zip/pickle errors of a damaged file come in many types
        raise AfvsrError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if not isinstance(obj, dict):
        raise AfvsrError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def unwrap(obj: dict, *, source: str) -> tuple[dict[str, Tensor], str, list[str]]:
    """The state dict inside a checkpoint container → ``(state, key_set, ignored names)``.

    Strips mmagic's ``generator.`` and DataParallel's ``module.`` prefixes.
    """
    key_set = next((k for k in KEY_SETS if isinstance(obj.get(k), dict)), "bare")
    state = obj if key_set == "bare" else obj[key_set]
    if key_set == "params_ema" and isinstance(obj.get("params"), dict):
        key_set = "params_ema, preferred over params"
    ignored: list[str] = []
    if any(k.startswith("generator.") for k in state):
        ignored = [k for k in state if not k.startswith("generator.")]
        state = {k[len("generator.") :]: v for k, v in state.items() if k.startswith("generator.")}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    for k, v in state.items():
        if not isinstance(v, Tensor):
            raise AfvsrError(f"{source}: entry '{k}' is a {type(v).__name__}, expected a tensor")
    if not state:
        raise AfvsrError(f"{source}: no tensors found (keys: {sorted(obj)[:5]})")
    return state, key_set, ignored


def _count(state: dict[str, Tensor], pattern: str) -> int:
    """1 + the largest index captured by ``pattern`` among the names (0 if none)."""
    found = [int(m[1]) for k in state if (m := re.fullmatch(pattern, k))]
    return max(found) + 1 if found else 0


def _first(state: dict[str, Tensor], *names: str) -> Tensor | None:
    return next((state[n] for n in names if n in state), None)


def infer_family(state: dict[str, Tensor], *, source: str) -> str:
    """ "spynet" | "basicvsr" | "iconvsr" | "edvr" from the tensor names, else one-line error."""
    names = set(state)
    if names and all(k.startswith("basic_module.") or k in IMAGENET for k in names):
        return "spynet"
    has_trunk = any(re.match(r"backward_(trunk|resblocks)\.main\.", k) for k in names)
    if (
        has_trunk
        and "backward_fusion.weight" in names
        and any(k.startswith("edvr.") for k in names)
    ):
        return "iconvsr"
    if has_trunk and "fusion.weight" in names:
        return "basicvsr"
    if "conv_first.weight" in names and any(k.startswith("pcd_align") for k in names):
        return "edvr"
    raise AfvsrError(
        f"{source}: not a BasicVSR, IconVSR, SPyNet or EDVR-extractor checkpoint of BasicSR or "
        f"mmagic (first tensors: {', '.join(sorted(names)[:3])})"
    )


def _edvr_sizes(state: dict[str, Tensor], prefix: str, mid: int, *, source: str) -> dict:
    fusion = _first(
        state, f"{prefix}fusion.feat_fusion.weight", f"{prefix}fusion.feat_fusion.conv.weight"
    )
    if mid < 1 or fusion is None or fusion.ndim != 4 or fusion.shape[1] % mid != 0:
        raise AfvsrError(f"{source}: cannot read the EDVR extractor's TSA fusion conv")
    return {"num_frames": fusion.shape[1] // mid}


def infer_kwargs(family: str, state: dict[str, Tensor], *, source: str) -> dict:
    """The afvsr constructor arguments of a published state dict of ``family``."""
    if family == "spynet":
        return {}
    if family == "edvr":
        mid = state["conv_first.weight"].shape[0]
        offset = _first(
            state,
            "pcd_align.cas_dcnpack.conv_offset.weight",
            "pcd_alignment.cas_dcnpack.conv_offset.weight",
        )
        groups = offset.shape[0] // 27 if offset is not None else 8  # 3·G·(3×3) channels
        return {
            "mid_channels": mid,
            **_edvr_sizes(state, "", mid, source=source),
            "num_blocks": _count(state, r"feature_extraction\.(\d+)\.conv1\.weight"),
            "deform_groups": groups,
        }
    fusion = state["fusion.weight" if family == "basicvsr" else "backward_fusion.weight"]
    mid = fusion.shape[0]
    kwargs = {
        "mid_channels": mid,
        "num_blocks": _count(state, r"backward_(?:trunk|resblocks)\.main\.2\.(\d+)\.conv1\.weight"),
        "scale": 4,
    }
    kwargs["upsample_mode"] = "bilinear"  # both projects' residual base
    if family == "iconvsr":
        frames = _edvr_sizes(state, "edvr.", mid, source=source)["num_frames"]
        kwargs["keyframe_stride"] = DEFAULT_KEYFRAME_STRIDE
        kwargs["temporal_padding"] = (frames - 1) // 2
        kwargs["boundary"] = "reference"  # their clip-end windows and spatial padding
    return kwargs


def build(family: str, kwargs: dict, *, device: str | torch.device = "cpu") -> nn.Module:
    """The afvsr module of a published family (``"edvr"``: IconVSR's extractor on its own)."""
    from afvsr.models import MODELS
    from afvsr.models.edvr import EDVRFeatureExtractor

    with torch.device(device):
        if family == "edvr":
            return EDVRFeatureExtractor(**kwargs)
        return MODELS[family](**kwargs)


def _check_imagenet(name: str, value: Tensor, *, source: str) -> None:
    want = torch.tensor(IMAGENET[name.rsplit(".", 1)[-1]]).view(1, 3, 1, 1)
    if value.shape != want.shape or not torch.allclose(value.float(), want, atol=1e-6):
        raise AfvsrError(
            f"{source}: tensor '{name}' is not ImageNet's {name.rsplit('.', 1)[-1]} "
            f"{IMAGENET[name.rsplit('.', 1)[-1]]}; afvsr's SPyNet normalises with those constants"
        )


def _norm_buffers(family: str) -> list[str]:
    if family == "spynet":
        return list(IMAGENET)
    if family in ("basicvsr", "iconvsr"):
        return [f"spynet.{k}" for k in IMAGENET]
    return []


def to_afvsr(
    family: str, kwargs: dict, state: dict[str, Tensor], *, source: str
) -> tuple[str, dict[str, Tensor], list[str]]:
    """Published names → afvsr names, checking every tensor's shape against the model ``kwargs``
    describe (built on the meta device, nothing allocated). Returns ``(layout, tensors,
    ignored)``; errors name the first missing, mis-shaped or unexpected tensor."""
    try:
        model = build(family, kwargs, device="meta")
    except (ValueError, TypeError) as exc:
        raise AfvsrError(f"{source}: its tensors describe no valid {family}: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    maps = {lay: {published_name(family, k, lay): k for k in expected} for lay in LAYOUTS}
    layout = max(LAYOUTS, key=lambda lay: len(maps[lay].keys() & state.keys()))
    names = maps[layout]
    ignored = []
    for k, v in state.items():
        if k in names:
            continue
        if k in _norm_buffers(family):
            _check_imagenet(k, v, source=source)
            ignored.append(k)
            continue
        raise AfvsrError(f"{source}: unexpected tensor '{k}' for a {layout} {family} with {kwargs}")
    out = {}
    for theirs, ours in names.items():
        if theirs not in state:
            raise AfvsrError(f"{source}: missing tensor '{theirs}' ({layout} {family}, {kwargs})")
        if tuple(state[theirs].shape) != expected[ours]:
            raise AfvsrError(
                f"{source}: tensor '{theirs}' has shape {tuple(state[theirs].shape)}, a {family} "
                f"with {kwargs} needs {expected[ours]}"
            )
        out[ours] = state[theirs].float() if state[theirs].is_floating_point() else state[theirs]
    return layout, out, ignored


def read_published(path: str | os.PathLike, *, keyframe_stride: int | None = None) -> Published:
    """Read a BasicSR or mmagic ``.pth`` file (see the module doc); one-line AfvsrError for
    anything else. ``keyframe_stride`` overrides IconVSR's default (5)."""
    source = str(path)
    state, key_set, ignored = unwrap(read_pth(path), source=source)
    family = infer_family(state, source=source)
    kwargs = infer_kwargs(family, state, source=source)
    if keyframe_stride is not None:
        if family != "iconvsr":
            raise AfvsrError(f"{source}: keyframe_stride applies to IconVSR, this is {family}")
        kwargs["keyframe_stride"] = keyframe_stride
    from afvsr.checkpoint import check_kwargs

    if family != "edvr":
        check_kwargs(family, kwargs, source=source)
    layout, tensors, dropped = to_afvsr(family, kwargs, state, source=source)
    return Published(family, layout, key_set, kwargs, tensors, ignored + dropped)


def from_afvsr(family: str, kwargs: dict, state: dict[str, Tensor], layout: str) -> dict:
    """An afvsr state dict of ``family`` → the checkpoint BasicSR (``{"params": …}``) or mmagic
    (``{"meta": …, "state_dict": …}``, ``generator.`` prefixes for whole networks) loads
    strictly: whole networks get SPyNet's ``mean``/``std`` buffers, as their SPyNet holds them.

    ValueError for what their networks cannot hold (not ×4 with 64 channels, or a family with no
    published counterpart, e.g. AFVSR).
    """
    if family not in FAMILIES:
        raise ValueError(f"BasicSR and mmagic have no {family!r} network; expected {FAMILIES}")
    if family in ("basicvsr", "iconvsr") and (
        kwargs.get("scale") != 4 or kwargs.get("mid_channels") != 64
    ):
        raise ValueError(
            "BasicSR's and mmagic's BasicVSR/IconVSR are x4 with 64-channel reconstruction convs; "
            f"this model has scale={kwargs.get('scale')}, mid_channels={kwargs.get('mid_channels')}"
        )
    out = {
        published_name(family, k, layout): v.detach().cpu().contiguous() for k, v in state.items()
    }
    for name in _norm_buffers(family) if family != "spynet" else []:
        out[name] = torch.tensor(IMAGENET[name.rsplit(".", 1)[-1]]).view(1, 3, 1, 1)
    if layout == "basicsr":
        return {"params": out}
    if family in ("basicvsr", "iconvsr"):
        out = {f"generator.{k}": v for k, v in out.items()}
    return {"meta": {"afvsr_family": family}, "state_dict": out}
