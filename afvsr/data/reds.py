"""REDS (NTIRE 2019 video super-resolution), both common layouts, found automatically.

Layouts::

    method's (what `afvsr data prepare reds` makes)   BasicSR's (flat)
    <root>/train/train_sharp/<clip>/00000000.png       <root>/train_sharp/<clip>/...
    <root>/train/train_sharp_bicubic/X4/<clip>/...     <root>/train_sharp_bicubic/X4/<clip>/...
    <root>/val/val_sharp/<clip>/...                    <root>/val_sharp/<clip>/...
    <root>/val/val_sharp_bicubic/X4/<clip>/...         <root>/val_sharp_bicubic/X4/<clip>/...

Splits: "REDS4" = train clips 000, 011, 015, 020 (the standard test set); "REDSval4" = val clips
000, 001, 006, 017; "train" = every train clip except REDS4, plus (``include_val``) every val clip
except REDSval4. LR frames: ``lq="disk"`` reads the bicubic folders (``X{scale}``), ``lq="bi"``
makes them from the ground truth.
"""

from __future__ import annotations

from pathlib import Path

from afvsr.data.clips import Clip, ClipDataset
from afvsr.data.frames import list_frames
from afvsr.errors import AfvsrError

REDS4 = ("000", "011", "015", "020")
REDSVAL4 = ("000", "001", "006", "017")
SPLITS = ("REDS4", "REDSval4", "train")
LQ_SOURCES = ("disk", "bi")


def reds_folders(root: str | Path, scale: int = 4) -> dict[str, Path]:
    """GT and LR folders of both parts: keys ``train``, ``train_lq``, ``val``, ``val_lq``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"missing REDS folder: {root}")
    nested = {part: root / part / f"{part}_sharp" for part in ("train", "val")}
    flat = {part: root / f"{part}_sharp" for part in ("train", "val")}
    if any(p.is_dir() for p in nested.values()):
        gt = nested
    elif any(p.is_dir() for p in flat.values()):
        gt = flat
    else:
        raise FileNotFoundError(
            f"no REDS frames in {root}: expected {nested['train']} (method's layout) or "
            f"{flat['train']} (BasicSR's layout); see `afvsr data prepare reds`"
        )
    return {
        "train": gt["train"],
        "val": gt["val"],
        "train_lq": gt["train"].with_name("train_sharp_bicubic") / f"X{scale}",
        "val_lq": gt["val"].with_name("val_sharp_bicubic") / f"X{scale}",
    }


def _clip(folders: dict[str, Path], part: str, name: str, lq: str, key: str) -> Clip:
    gt_folder = folders[part] / name
    if not gt_folder.is_dir():
        raise FileNotFoundError(f"missing REDS clip folder: {gt_folder}")
    lq_paths = None
    if lq == "disk":
        lq_folder = folders[f"{part}_lq"] / name
        if not lq_folder.is_dir():
            raise FileNotFoundError(
                f"missing REDS LR folder: {lq_folder} (download {part}_sharp_bicubic, or use "
                "lq='bi' to make LR from the ground truth)"
            )
        lq_paths = list_frames(lq_folder)
    return Clip(key, list_frames(gt_folder), lq_paths)


def _all_clip_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"missing REDS folder: {folder}")
    names = sorted(p.name for p in folder.iterdir())
    files = [n for n in names if not (folder / n).is_dir()]
    if files:
        raise AfvsrError(f"expected only clip folders in {folder}, found file {folder / files[0]}")
    return names


def reds_clips(
    root: str | Path, split: str, *, scale: int = 4, lq: str = "disk", include_val: bool = False
) -> list[Clip]:
    """The clips of ``split``; REDS4/REDSval4 clips are named ``"000"``, train ones ``"train/000"``."""
    if split not in SPLITS:
        raise ValueError(f"expected split in {SPLITS}, got {split!r}")
    if lq not in LQ_SOURCES:
        raise ValueError(f"expected lq in {LQ_SOURCES}, got {lq!r}")
    folders = reds_folders(root, scale)
    if split == "REDS4":
        return [_clip(folders, "train", name, lq, name) for name in REDS4]
    if split == "REDSval4":
        return [_clip(folders, "val", name, lq, name) for name in REDSVAL4]
    parts = [("train", REDS4)] + ([("val", REDSVAL4)] if include_val else [])
    clips = []
    for part, held_out in parts:
        for name in _all_clip_names(folders[part]):
            if name not in held_out:
                clips.append(_clip(folders, part, name, lq, f"{part}/{name}"))
    if not clips:
        raise AfvsrError(f"no REDS training clips in {folders['train']} (besides REDS4)")
    return clips


class REDS(ClipDataset):
    """REDS clips of ``split``, each 100 frames of 1280x720 (LR 320x180 at x4).

    ``ds[i] -> {"lq": (100, 3, h, w), "gt": (100, 3, scale*h, scale*w), "key": "000"}``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        split: str = "REDS4",
        scale: int = 4,
        lq: str = "disk",
        include_val: bool = False,
    ) -> None:
        clips = reds_clips(root, split, scale=scale, lq=lq, include_val=include_val)
        super().__init__(clips, name=split, scale=scale)
