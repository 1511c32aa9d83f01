"""Frame folders (Vid4-style): a root with one folder of frames per sequence.

Layout::

    <root>/<sequence>/<any names, sorted naturally>.png|.jpg   ground truth
    <lq_root>/<sequence>/...                                  optional LR frames (same names count)

A root that holds frame files itself (no sub-folders) is read as one sequence.
"""

from __future__ import annotations

from pathlib import Path

from afvsr.data.clips import Clip, ClipDataset
from afvsr.data.frames import list_frames
from afvsr.errors import AfvsrError
from afvsr.io_utils import natural_sort_key


def sequence_folders(root: Path) -> list[Path]:
    """The sequence folders of ``root`` in natural order, or ``[root]`` if it holds frames."""
    if not root.is_dir():
        raise FileNotFoundError(f"missing folder: {root}")
    entries = sorted(root.iterdir(), key=lambda p: natural_sort_key(p.name))
    folders = [p for p in entries if p.is_dir()]
    others = [p for p in entries if not p.is_dir()]
    if folders and others:
        raise AfvsrError(
            f"{root} mixes sequence folders and files (e.g. {others[0].name}); expected one "
            "folder of frames per sequence, or only frame files"
        )
    if folders:
        return folders
    if not others:
        raise AfvsrError(f"empty folder: {root} has no sequences or frames")
    return [root]  # one sequence; list_frames names any non-image file in it


class FrameFolders(ClipDataset):
    """Sequences stored as folders of frames; LR from ``lq_root`` or made by BI.

    ``ds[i] -> {"lq": (t, 3, h, w), "gt": (t, 3, scale*h, scale*w), "key": folder name}``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        scale: int = 4,
        lq_root: str | Path | None = None,
        gt_downscale: int = 1,
        name: str | None = None,
    ) -> None:
        root = Path(root)
        folders = sequence_folders(root)
        if lq_root is not None and folders != [root]:
            lq_names = {p.name for p in sequence_folders(Path(lq_root))}
            extra = sorted(lq_names - {p.name for p in folders}, key=natural_sort_key)
            if extra:
                raise AfvsrError(f"LR sequences without ground truth in {root}: {', '.join(extra)}")
        clips = []
        for folder in folders:
            lq_paths = None
            if lq_root is not None:
                lq_folder = Path(lq_root) if folder == root else Path(lq_root) / folder.name
                lq_paths = list_frames(lq_folder)
            clips.append(Clip(folder.name, list_frames(folder), lq_paths, gt_downscale))
        super().__init__(clips, name=name or root.name, scale=scale)
