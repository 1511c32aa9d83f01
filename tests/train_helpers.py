"""Tiny synthetic data and configs for the training tests (seconds on a CPU)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from afvsr.train.config import config_to_toml, resolve_config
from afvsr.train.loop import Trainer


def make_frames(
    root: Path, *, num_seqs: int = 2, num_frames: int = 6, size: tuple[int, int] = (48, 48)
) -> Path:
    """Sequences ``root/seq<i>/<f>.png``: a smooth random texture drifting 1-2 px per frame."""
    rng = np.random.default_rng(0)
    h, w = size
    for s in range(num_seqs):
        coarse = rng.random((h // 8 + 4, w // 8 + 4, 3))
        big = np.kron(coarse, np.ones((8, 8, 1)))  # blocky, then blurred by a box filter
        for axis in (0, 1):  # 5-tap box blur along each axis
            big = np.apply_along_axis(np.convolve, axis, big, np.ones(5) / 5, mode="same")
        big = big + 0.15 * rng.random(big.shape)
        dy, dx = rng.integers(1, 3, size=2)
        folder = root / f"seq{s}"
        folder.mkdir(parents=True)
        for f in range(num_frames):
            crop = big[f * dy % 16 : f * dy % 16 + h, f * dx % 16 : f * dx % 16 + w]
            pixels = np.clip(crop / crop.max() * 255, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{f:03d}.png")
    return root


def tiny_config(tmp_path: Path, frames: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A raw config for a tiny BasicVSR on ``frames``; ``sections`` update it per section."""
    cfg: dict[str, Any] = {
        "run": {"name": "tiny", "out_dir": str(tmp_path / "runs"), "threads": 1, "seed": 3},
        "model": {"name": "basicvsr", "mid_channels": 4, "num_blocks": 1},
        "data": {
            "dataset": "folder",
            "root": str(frames),
            "num_frames": 3,
            "patch_size": 8,
        },
        "train": {"iterations": 4, "batch_size": 2, "lr": 1e-3},
        "val": {"every": 0, "dataset": str(frames), "max_frames": 3, "num_images": 1},
        "log": {"every": 1, "checkpoint_every": 2, "keep_last": 2, "tensorboard": False},
    }
    cfg = copy.deepcopy(cfg)
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def tiny_trainer(tmp_path: Path, frames: Path, **sections: dict[str, Any]) -> Trainer:
    """A Trainer of :func:`tiny_config` (``sections`` update it); the caller closes it."""
    cfg = resolve_config(tiny_config(tmp_path, frames, **sections), "test.toml")
    return Trainer(cfg, source="test.toml")


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(config_to_toml(raw), encoding="utf-8")
    return path
