"""Entry points other packages use: ``open_eval_dataset`` (evaluation) and
``build_train_dataset`` (training, from the ``[data]`` section of a config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from afvsr.data.clips import GT_DOWNSCALES, ClipDataset
from afvsr.data.folders import FrameFolders
from afvsr.data.reds import LQ_SOURCES, REDS
from afvsr.data.samples import RateGroupSamples, SequenceSamples, check_rates
from afvsr.data.shared import SharedData
from afvsr.data.vimeo import Vimeo90K
from afvsr.schema import ConfigError, Field, check_section

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
    "shared:val-long": _shared("val-long"),
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
            "shared:val", "shared:val-long", "shared:train"; case-insensitive), or a folder of sequences (GT only,
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


DATASETS = ("shared", "reds", "vimeo", "folder")
SAMPLES = ("sequence", "groups")

# The [data] section of the "vsr" task. "" = not set (root: the shared data is found without it).
TRAIN_DATA_DEFAULTS: dict[str, Field] = {
    "dataset": Field("shared", choices=DATASETS, help="shared | reds | vimeo | folder"),
    "root": Field("", help='dataset folder ("" = shared: $AFVSR_SHARED_DATA or ../shared/data)'),
    "lq": Field("bi", choices=LQ_SOURCES, help="LR source: bi (made from GT) | disk"),
    "lq_root": Field("", help="folder/vimeo: the LR frames when lq = disk"),
    "include_val": Field(False, help="reds: also train on val clips except REDSval4"),
    "scale": Field(4, choices=SCALES, help="upscaling factor (default: [model] scale)"),
    "samples": Field(
        "sequence", choices=SAMPLES, help="sequence (any model) | groups (AFVSR, the default)"
    ),
    "num_frames": Field(7, ge=1, help="sequence samples: frames per window"),
    "interval_list": Field(
        [1],
        ge=1,
        length=(1, 16),
        help="sequence samples: frame intervals, one drawn per sample (BasicSR's key)",
    ),
    "rates": Field([1, 2, 3], help="groups samples: frame rates (default: [model] rates)"),
    "window": Field(5, help="groups samples: frames per group, odd (default: [model] window)"),
    "patch_size": Field(64, ge=1, help="LR patch side; the GT patch is scale * patch_size"),
    "gt_downscale": Field(1, choices=GT_DOWNSCALES, help="2: shrink GT x2 first (shared: DAVIS)"),
    "augment": Field(True, help="random flips, transpose and temporal reversal"),
    "seed": Field(0, ge=0, help="seed of crops and augmentation (with epoch and index)"),
}
DataKey = Field  # the earlier name of a [data] key's declaration


def check_data_relations(cfg: dict) -> None:
    """Checks between keys of a checked ``[data]`` section; ConfigError ``[data] …``."""

    def fail(message: str) -> None:
        raise ConfigError(f"[data] {message}")

    try:
        check_rates(cfg["rates"], cfg["window"])
    except ValueError as exc:
        fail(f"rates / window: {exc}")
    if cfg["samples"] == "groups" and list(cfg["interval_list"]) != [1]:
        fail("interval_list: expected [1] for groups samples (their rates set the intervals)")
    if cfg["dataset"] != "shared" and not cfg["root"]:
        fail(f"root: expected the dataset folder for dataset {cfg['dataset']!r}")
    if cfg["lq"] == "disk" and cfg["dataset"] in ("folder", "vimeo") and not cfg["lq_root"]:
        fail(f"lq_root: expected the LR folder with lq = 'disk' for dataset {cfg['dataset']!r}")
    if cfg["lq"] == "disk" and cfg["dataset"] == "shared":
        fail("lq: expected 'bi' for dataset 'shared' (it has no LR frames)")
    if cfg["lq_root"] and cfg["lq"] != "disk":
        fail("lq_root: expected lq = 'disk' when lq_root is set")


def check_train_data_config(cfg: dict, source: str | None = None) -> dict:
    """Validate the ``[data]`` section and fill in defaults; returns a new dict.

    Raises ConfigError (a ValueError) naming the key for an unknown key, a wrong type or a bad
    value (prefixed with ``source:`` when given).
    """
    out = check_section(cfg, TRAIN_DATA_DEFAULTS, "data", source)
    try:
        check_data_relations(out)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
    return out


def _train_clips(cfg: dict) -> ClipDataset:
    dataset, root, scale = cfg["dataset"], cfg["root"] or None, cfg["scale"]
    if dataset == "shared":
        return SharedData(root, split="train", scale=scale, gt_downscale=cfg["gt_downscale"])
    if dataset == "folder":
        lq_root = (cfg["lq_root"] or None) if cfg["lq"] == "disk" else None
        return FrameFolders(root, scale=scale, lq_root=lq_root, gt_downscale=cfg["gt_downscale"])
    _no_gt_downscale(dataset, cfg["gt_downscale"])
    if dataset == "reds":
        return REDS(root, split="train", scale=scale, lq=cfg["lq"], include_val=cfg["include_val"])
    lq_root = (cfg["lq_root"] or None) if cfg["lq"] == "disk" else None
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
        return SequenceSamples(
            clips, num_frames=cfg["num_frames"], interval_list=cfg["interval_list"], **common
        )
    return RateGroupSamples(clips, rates=cfg["rates"], window=cfg["window"], **common)
