"""Tiny frame trees for the data tests (written into pytest's tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_image(path: Path, array: np.ndarray) -> None:
    """Write ``(h, w, 3)`` uint8 as PNG or JPEG (by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix == ".jpg" else {}
    Image.fromarray(array).save(path, **options)


def random_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """``(n, h, w, 3)`` random uint8 frames."""
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def coded_frames(n: int, h: int, w: int) -> np.ndarray:
    """``(n, h, w, 3)`` uint8 frames whose pixels name themselves: R = 2y, G = 2x, B = 10 * frame.

    (Even codes: bicubic x1/4 of a ramp 2y lands on integers, never on a rounding tie at .5.)
    """
    y, x = np.meshgrid(2 * np.arange(h), 2 * np.arange(w), indexing="ij")
    frames = np.stack([y, x, np.zeros_like(y)], axis=-1)[None].repeat(n, 0)
    frames[..., 2] = 10 * np.arange(n)[:, None, None]
    return frames.astype(np.uint8)


def write_clip(folder: Path, frames: np.ndarray, names: list[str] | None = None) -> list[Path]:
    """Write frames as ``00000000.png ...`` (or ``names``) into ``folder``."""
    names = names or [f"{i:08d}.png" for i in range(len(frames))]
    paths = [folder / name for name in names]
    for path, frame in zip(paths, frames, strict=True):
        write_image(path, frame)
    return paths


def as_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(..., h, w, 3)`` uint8 -> ``(..., 3, h, w)`` float in [0, 1], as the readers return."""
    return torch.from_numpy(frames).movedim(-1, -3).float() / 255
