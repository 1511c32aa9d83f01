"""Vimeo-90K septuplets.

Layout (the official one; ``sequences/`` may also be the root itself)::

    <root>/sequences/<00001>/<0001>/im1.png ... im7.png
    <root>/sep_trainlist.txt, <root>/sep_testlist.txt   lines like "00001/0001"
    <lq_root>/[sequences/]<00001>/<0001>/im1.png ...     optional LR frames, same layout

Splits: "test" = the test list when present, else every septuplet; "train" = the train list when
present, else every septuplet not in the test list (all of them when neither list exists).
"""

from __future__ import annotations

from pathlib import Path

from afvsr.data.clips import Clip, ClipDataset
from afvsr.data.frames import list_frames
from afvsr.errors import AfvsrError

SPLITS = ("train", "test")
SEPTUPLET_FRAMES = 7


def _sequences_dir(root: Path) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(f"missing folder: {root}")
    return root / "sequences" if (root / "sequences").is_dir() else root


def septuplet_folders(root: str | Path) -> list[Path]:
    """Every ``<00001>/<0001>`` folder under ``root`` (or ``root/sequences``), sorted."""
    seq = _sequences_dir(Path(root))
    folders = sorted(p for group in seq.iterdir() if group.is_dir() for p in group.iterdir())
    for p in folders:
        if not p.is_dir():
            raise AfvsrError(f"expected septuplet folders <group>/<clip>/ in {seq}, found file {p}")
    if not folders:
        raise AfvsrError(f"no septuplets in {seq} (expected <00001>/<0001>/im1.png ...)")
    return folders


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def vimeo_keys(root: str | Path, split: str) -> list[str]:
    """Septuplet keys (``"00001/0001"``) of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"expected split in {SPLITS}, got {split!r}")
    root = Path(root)
    lists = {s: root / f"sep_{s}list.txt" for s in SPLITS}
    if lists[split].is_file():
        return _read_list(lists[split])
    every = ["/".join(p.parts[-2:]) for p in septuplet_folders(root)]
    if split == "train" and lists["test"].is_file():
        test = set(_read_list(lists["test"]))
        return [k for k in every if k not in test]
    return every


class Vimeo90K(ClipDataset):
    """Vimeo-90K septuplets of ``split``; LR from ``lq_root`` or made by BI.

    ``ds[i] -> {"lq": (7, 3, h, w), "gt": (7, 3, scale*h, scale*w), "key": "00001/0001"}``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        split: str = "test",
        scale: int = 4,
        lq_root: str | Path | None = None,
    ) -> None:
        root = Path(root)
        seq = _sequences_dir(root)
        lq_seq = None if lq_root is None else _sequences_dir(Path(lq_root))
        clips = []
        for key in vimeo_keys(root, split):
            gt_paths = list_frames(seq / key)
            if len(gt_paths) != SEPTUPLET_FRAMES:
                raise AfvsrError(
                    f"septuplet {seq / key}: expected {SEPTUPLET_FRAMES} frames, "
                    f"found {len(gt_paths)}"
                )
            lq_paths = None if lq_seq is None else list_frames(lq_seq / key)
            clips.append(Clip(key, gt_paths, lq_paths))
        super().__init__(clips, name=f"vimeo:{split}", scale=scale)
