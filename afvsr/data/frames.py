"""Frame files: list a folder of frames in natural order, read one frame (or part of it) fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from afvsr.errors import AfvsrError
from afvsr.io_utils import natural_sort_key

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Pillow modes read as RGB: 8-bit colour, 8-bit grey (copied to 3 channels), 8-bit palette.
_READABLE_MODES = ("RGB", "L", "P")


def list_frames(folder: str | Path) -> tuple[Path, ...]:
    """The frame files of one sequence folder, sorted naturally (``im2`` before ``im10``).

    Raises:
        FileNotFoundError: the folder does not exist.
        AfvsrError: the folder holds anything but PNG/JPEG files (named), or nothing at all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"missing frame folder: {folder}")
    entries = sorted(folder.iterdir(), key=lambda p: natural_sort_key(p.name))
    for entry in entries:
        if not entry.is_file() or entry.suffix.lower() not in IMAGE_EXTENSIONS:
            kind = "folder" if entry.is_dir() else "non-image file"
            raise AfvsrError(
                f"{kind} among frames: {entry} (expected only {'/'.join(IMAGE_EXTENSIONS)} files)"
            )
    if not entries:
        raise AfvsrError(f"empty clip: no frames in {folder}")
    return tuple(entries)


def frame_size(path: str | Path) -> tuple[int, int]:
    """``(h, w)`` of an image file, read from its header only."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError) as exc:
        raise AfvsrError(f"cannot read image {path}: {exc}") from exc


def read_frame(path: str | Path, box: tuple[int, int, int, int] | None = None) -> Tensor:
    """Read an image file as float32 RGB in [0, 1].

    Args:
        path: PNG or JPEG file (8-bit RGB, grey or palette).
        box: optional ``(top, left, height, width)`` to return only that part (inside the image).

    Returns:
        ``(3, h, w)`` (or ``(3, height, width)`` with ``box``).
    """
    try:
        with Image.open(path) as img:
            if img.mode not in _READABLE_MODES:
                raise AfvsrError(
                    f"unsupported image mode {img.mode} in {path} (expected 8-bit RGB, grey or "
                    "palette)"
                )
            if box is not None:
                top, left, height, width = box
                if top < 0 or left < 0 or top + height > img.height or left + width > img.width:
                    raise ValueError(
                        f"expected a box inside the {img.height}x{img.width} image {path}, "
                        f"got (top, left, h, w) = {box}"
                    )
                img = img.crop((left, top, left + width, top + height))
            if img.mode != "RGB":
                img = img.convert("RGB")
            array = np.asarray(img)  # (h, w, 3) uint8
    except (UnidentifiedImageError, OSError) as exc:
        raise AfvsrError(f"cannot read image {path}: {exc}") from exc
    return torch.from_numpy(uint8_to_float(array))


def uint8_to_float(array: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 -> ``(3, h, w)`` float32 in [0, 1] (exactly ``k / 255``).

    Done in NumPy, single-threaded: torch's intra-op threads only slow such small copies down.
    """
    out = array.transpose(2, 0, 1).astype(np.float32, order="C")  # (3, h, w) copy
    return np.divide(out, np.float32(255), out=out)
