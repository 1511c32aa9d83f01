"""The development data beside the project (``../shared/data``) with its recommended split.

Layout (see that folder's README)::

    davis2016/<sequence>/00000.jpg ...        20 DAVIS-2016 sequences, 854x480 JPEG
    basketballpass/im1.png ... im100.png       416x240 PNG
    vimeo_septuplet/<00001>/<0001>/im1..7.png  16 Vimeo-90K septuplets, 448x256 PNG

Split: validation = DAVIS blackswan, car-roundabout, soapbox + basketballpass + all 16 Vimeo
septuplets; training = the other 17 DAVIS sequences. ``val-long`` is the validation clips longer
than an 11-frame window (the three DAVIS ones and basketballpass: 50 to 100 frames), where
windows of 5, 7 and 11 frames differ from the whole clip. There is no LR copy: LR is always made
by BI.
``gt_downscale=2`` shrinks the DAVIS ground truth x2 first (its JPEG blocking is visible at full
size); the PNG sequences are used as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

from afvsr.data.clips import Clip, ClipDataset
from afvsr.data.frames import list_frames
from afvsr.data.vimeo import septuplet_folders
from afvsr.io_utils import natural_sort_key

SHARED_DATA_ENV = "AFVSR_SHARED_DATA"
DAVIS_VAL = ("blackswan", "car-roundabout", "soapbox")
SPLITS = ("train", "val", "val-long")
LONG_CLIP_FRAMES = 12  # val-long: clips of at least this many frames


def shared_data_root() -> Path | None:
    """Where the shared development data is, or None when absent.

    ``$AFVSR_SHARED_DATA`` when set (and only then), else ``../shared/data`` next to the current
    directory, else next to the repository this package is in.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env) if Path(env).is_dir() else None
    repo = Path(__file__).resolve().parents[2]
    for candidate in (Path.cwd().parent / "shared" / "data", repo.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


def require_shared_data_root(root: str | Path | None = None) -> Path:
    """``root`` if given, else ``shared_data_root()``; FileNotFoundError when missing."""
    if root is not None:
        if not Path(root).is_dir():
            raise FileNotFoundError(f"missing shared data folder: {root}")
        return Path(root)
    found = shared_data_root()
    if found is None:
        env = os.environ.get(SHARED_DATA_ENV)
        where = f"${SHARED_DATA_ENV}={env}" if env else "../shared/data"
        raise FileNotFoundError(
            f"shared development data not found ({where}); set ${SHARED_DATA_ENV} or pass a root"
        )
    return found


def shared_clips(root: Path, split: str, *, gt_downscale: int = 1) -> list[Clip]:
    """The clips of ``split`` ("train", "val" or "val-long"), named like ``davis2016/blackswan``."""
    if split not in SPLITS:
        raise ValueError(f"expected split in {SPLITS}, got {split!r}")
    davis_root = root / "davis2016"
    if not davis_root.is_dir():
        raise FileNotFoundError(f"missing folder: {davis_root}")
    davis = sorted((p for p in davis_root.iterdir() if p.is_dir()), key=lambda p: p.name)
    missing = [name for name in DAVIS_VAL if not (davis_root / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"missing DAVIS validation sequences in {davis_root}: {missing}")

    def davis_clip(folder: Path) -> Clip:
        return Clip(f"davis2016/{folder.name}", list_frames(folder), None, gt_downscale)

    if split == "train":
        return [davis_clip(p) for p in davis if p.name not in DAVIS_VAL]
    clips = [davis_clip(davis_root / name) for name in DAVIS_VAL]
    clips.append(Clip("basketballpass", list_frames(root / "basketballpass")))
    for folder in septuplet_folders(root / "vimeo_septuplet"):
        key = "/".join(folder.parts[-2:])
        clips.append(Clip(f"vimeo_septuplet/{key}", list_frames(folder)))
    if split == "val-long":
        clips = [c for c in clips if len(c.gt_paths) >= LONG_CLIP_FRAMES]
    return sorted(clips, key=lambda c: natural_sort_key(c.name))


class SharedData(ClipDataset):
    """The shared development data, split as its README recommends; LR made by BI.

    ``ds[i] -> {"lq": (t, 3, h, w), "gt": (t, 3, scale*h, scale*w), "key": e.g. "basketballpass"}``.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        split: str = "val",
        scale: int = 4,
        gt_downscale: int = 1,
    ) -> None:
        root = require_shared_data_root(root)
        clips = shared_clips(root, split, gt_downscale=gt_downscale)
        super().__init__(clips, name=f"shared:{split}", scale=scale)
