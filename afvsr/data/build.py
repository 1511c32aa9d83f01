"""Entry points other packages use: ``open_eval_dataset`` (evaluation) and
``build_train_dataset`` (training, from the ``[data]`` section of a config)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from afvsr.data.clips import GT_DOWNSCALES, ClipDataset
from afvsr.data.folders import FrameFolders
from afvsr.data.reds import LQ_SOURCES, REDS
from afvsr.data.samples import RateGroupSamples, SequenceSamples, check_rates
from afvsr.data.shared import SharedData
from afvsr.data.vimeo import Vimeo90K

SCALES = (2, 3, 4)


def _required_root(spec: str, root: str | Path | None) -> Path:
    if root is None:
        raise ValueError(f"dataset {spec} needs root (the folder holding it), got None")
    return Path(root)


def _reds(split: str) -> Callable[..., ClipDataset]:
    def make(root, scale, lq, gt_downscale):
        _no_gt_downscale(split, gt_downscale)
        return REDS(_required_root(split, root), split=split, scale=scale, lq=lq or "disk")

    return make


def _vimeo(split: str) -> Callable[..., ClipDataset]:
    def make(root, scale, lq, gt_downscale):
        _bi_only(f"vimeo:{split}", lq)
        _no_gt_downscale(f"vimeo:{split}", gt_downscale)
        return Vimeo90K(_required_root(f"vimeo:{split}", root), split=split, scale=scale)

    return make


def _shared(split: str) -> Callable[..., ClipDataset]:
    def make(root, scale, lq, gt_downscale):
        _bi_only(f"shared:{split}", lq)
        return SharedData(root, split=split, scale=scale, gt_downscale=gt_downscale)

    return make


def _bi_only(spec: str, lq: str | None) -> None:
    if lq not in (None, "bi"):
        raise ValueError(
            f"dataset {spec} makes LR by BI only: expected lq None or 'bi', got {lq!r}"
        )


def _no_gt_downscale(spec: str, gt_downscale: int) -> None:
    if gt_downscale != 1:
        raise ValueError(f"dataset {spec}: expected gt_downscale 1, got {gt_downscale!r}")


# Named evaluation datasets: spec -> maker(root, scale, lq, gt_downscale).
EVAL_SPECS: dict[str, Callable[..., ClipDataset]] = {
    "REDS4": _reds("REDS4"),
    "REDSval4": _reds("REDSval4"),
    "vimeo:test": _vimeo("test"),
    "vimeo:train": _vimeo("train"),
    "shared:val": _shared("val"),
    "shared:train": _shared("train"),
}


def open_eval_dataset(
    spec: str,
    *,
    scale: int = 4,
    root: str | Path | None = None,
    lq: str | None = None,
    gt_downscale: int = 1,
) -> ClipDataset:
    """Whole clips for evaluation: ``ds[i] -> {"lq": (t, 3, h, w), "gt": (t, 3, s*h, s*w), "key"}``.

    Args:
        spec: a name in ``EVAL_SPECS`` ("REDS4", "REDSval4", "vimeo:test", "vimeo:train",
            "shared:val", "shared:train"; case-insensitive), or a folder of sequences (GT only,
            LR made by BI).
        scale: 2, 3 or 4.
        root: the dataset's folder (REDS and Vimeo need it; "shared:*" finds ``../shared/data``).
        lq: REDS only: "disk" (default, the published LR frames) or "bi" (made from GT).
        gt_downscale: 2 shrinks the ground truth x2 first (DAVIS in "shared:*", or a folder).

    Returns:
        A ``ClipDataset`` with ``len(ds)``, ``ds[i]`` and ``ds.name``.
    """
    if scale not in SCALES:
        raise ValueError(f"expected scale in {SCALES}, got {scale!r}")
    if gt_downscale not in GT_DOWNSCALES:
        raise ValueError(f"expected gt_downscale in {GT_DOWNSCALES}, got {gt_downscale!r}")
    by_lower = {name.lower(): name for name in EVAL_SPECS}
    name = by_lower.get(str(spec).lower())
    if name is not None:
        return EVAL_SPECS[name](root, scale, lq, gt_downscale)
    if Path(spec).is_dir():
        _bi_only(str(spec), lq)
        return FrameFolders(spec, scale=scale, gt_downscale=gt_downscale)
    raise ValueError(
        f"expected a dataset name ({', '.join(EVAL_SPECS)}) or an existing folder of sequences, "
        f"got {spec!r}"
    )


@dataclass(frozen=True)
class DataKey:
    """One key of the ``[data]`` config section: its default, accepted types and meaning."""

    default: object
    types: tuple[type, ...]
    help: str


TRAIN_DATA_DEFAULTS: dict[str, DataKey] = {
    "dataset": DataKey("shared", (str,), "shared | reds | vimeo | folder"),
    "root": DataKey(None, (str, type(None)), "dataset folder (shared: found when None)"),
    "lq": DataKey("bi", (str,), "LR source: bi (made from GT) | disk (reds, or folder/vimeo)"),
    "lq_root": DataKey(None, (str, type(None)), "folder/vimeo: LR frames when lq = disk"),
    "include_val": DataKey(False, (bool,), "reds: also train on val clips except REDSval4"),
    "scale": DataKey(4, (int,), "upscaling factor: 2, 3 or 4"),
    "samples": DataKey("sequence", (str,), "sequence (BasicVSR/IconVSR) | groups (fusion)"),
    "num_frames": DataKey(7, (int,), "sequence samples: frames per window"),
    "rates": DataKey([1, 2, 3], (list,), "groups samples: frame rates, one group each"),
    "window": DataKey(5, (int,), "groups samples: frames per group (odd)"),
    "patch_size": DataKey(64, (int,), "LR patch side; GT patch is scale * patch_size"),
    "gt_downscale": DataKey(1, (int,), "1, or 2 to shrink GT x2 first (shared: DAVIS only)"),
    "augment": DataKey(True, (bool,), "random flips, transpose and temporal reversal"),
    "seed": DataKey(0, (int,), "seed of crops and augmentation (with epoch and index)"),
}
DATASETS = ("shared", "reds", "vimeo", "folder")
SAMPLES = ("sequence", "groups")


def check_train_data_config(cfg: dict) -> dict:
    """Validate the ``[data]`` section and fill in defaults; returns a new dict.

    Raises ValueError naming the key for an unknown key, a wrong type or a bad value.
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"expected the [data] section as a dict, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(TRAIN_DATA_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown key data.{unknown[0]}; expected one of {', '.join(TRAIN_DATA_DEFAULTS)}"
        )
    out = {key: spec.default for key, spec in TRAIN_DATA_DEFAULTS.items()}
    for key, value in cfg.items():
        types = TRAIN_DATA_DEFAULTS[key].types
        bad_bool = isinstance(value, bool) and bool not in types  # True is an int in Python
        if isinstance(value, tuple) and list in types:
            value = list(value)
        if bad_bool or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"expected data.{key} to be {names}, got {value!r}")
        out[key] = value
    choices = {"dataset": DATASETS, "samples": SAMPLES, "lq": LQ_SOURCES, "scale": SCALES}
    choices["gt_downscale"] = GT_DOWNSCALES
    for key, allowed in choices.items():
        if out[key] not in allowed:
            raise ValueError(f"expected data.{key} in {allowed}, got {out[key]!r}")
    for key in ("num_frames", "patch_size"):
        if out[key] < 1:
            raise ValueError(f"expected data.{key} >= 1, got {out[key]!r}")
    if out["seed"] < 0:
        raise ValueError(f"expected data.seed >= 0, got {out['seed']!r}")
    try:
        check_rates(out["rates"], out["window"])
    except ValueError as exc:
        raise ValueError(f"data.rates / data.window: {exc}") from None
    if out["dataset"] != "shared" and out["root"] is None:
        raise ValueError(f"expected data.root (the dataset folder) for dataset {out['dataset']!r}")
    if out["lq"] == "disk" and out["dataset"] in ("folder", "vimeo") and out["lq_root"] is None:
        raise ValueError(f"expected data.lq_root with lq = 'disk' for dataset {out['dataset']!r}")
    if out["lq"] == "disk" and out["dataset"] == "shared":
        raise ValueError("expected data.lq = 'bi' for dataset 'shared' (it has no LR frames)")
    if out["lq_root"] is not None and out["lq"] != "disk":
        raise ValueError("expected data.lq = 'disk' when data.lq_root is set")
    return out


def _train_clips(cfg: dict) -> ClipDataset:
    dataset, root, scale = cfg["dataset"], cfg["root"], cfg["scale"]
    if dataset == "shared":
        return SharedData(root, split="train", scale=scale, gt_downscale=cfg["gt_downscale"])
    if dataset == "folder":
        lq_root = cfg["lq_root"] if cfg["lq"] == "disk" else None
        return FrameFolders(root, scale=scale, lq_root=lq_root, gt_downscale=cfg["gt_downscale"])
    _no_gt_downscale(dataset, cfg["gt_downscale"])
    if dataset == "reds":
        return REDS(root, split="train", scale=scale, lq=cfg["lq"], include_val=cfg["include_val"])
    lq_root = cfg["lq_root"] if cfg["lq"] == "disk" else None
    return Vimeo90K(root, split="train", scale=scale, lq_root=lq_root)


def build_train_dataset(cfg: dict) -> SequenceSamples | RateGroupSamples:
    """Training samples from the ``[data]`` config section (keys: ``TRAIN_DATA_DEFAULTS``).

    Returns:
        ``SequenceSamples`` (``samples = "sequence"``: ``lq (t, 3, p, p)``, ``gt (t, 3, s*p, s*p)``)
        or ``RateGroupSamples`` (``samples = "groups"``: ``lq (G, W, 3, p, p)``,
        ``gt (3, s*p, s*p)``).
    """
    cfg = check_train_data_config(cfg)
    clips = _train_clips(cfg)
    common = {"patch_size": cfg["patch_size"], "augment": cfg["augment"], "seed": cfg["seed"]}
    if cfg["samples"] == "sequence":
        return SequenceSamples(clips, num_frames=cfg["num_frames"], **common)
    return RateGroupSamples(clips, rates=cfg["rates"], window=cfg["window"], **common)
