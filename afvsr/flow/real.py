"""Real consecutive-frame pairs at LR scale, for unsupervised flow fine-tuning and evaluation.

The optional second half of stage 0: after supervised training on synthetic pairs
(``afvsr.flow.synthetic``), SPyNet can be fine-tuned on real motion (occlusions, independently
moving objects, motion blur) with the unsupervised loss of ``afvsr.flow.losses``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from afvsr.data.frames import frame_size, read_frame
from afvsr.flow.synthetic import sample_rng
from afvsr.imresize import imresize, quantize_uint8

__all__ = ["RealFramePairs"]

# LR pixels read around the patch so the downscaling kernel never mirrors at the crop's edge.
_KERNEL_PAD = 2


class RealFramePairs(Dataset):
    """Crops of consecutive real frames ``t, t+1`` downscaled ×s (MATLAB bicubic, 8-bit).

    ``ds[i] -> {"ref": (3, P, P), "supp": (3, P, P)}``: pair ``i`` of all consecutive pairs,
    the same crop of both frames, random downscale among ``downscales``, random flips, and
    ``ref``/``supp`` swapped half the time (so backward and forward motion are both seen).

    Args:
        sequences: frame files of each sequence, in display order.
        patch_size: LR patch side, a multiple of 32.
        downscales: integer source → LR factors, one drawn per pair among those that fit.
        seed: None (training: randomness from NumPy's global RNG, seeded by the loop) or an int
            (sample ``i`` depends on ``(seed, i)`` only).
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[str | Path]],
        *,
        patch_size: int = 64,
        downscales: Sequence[int] = (2, 3, 4),
        seed: int | None = None,
    ) -> None:
        if not isinstance(patch_size, int) or patch_size < 32 or patch_size % 32:
            raise ValueError(f"expected patch_size a positive multiple of 32, got {patch_size!r}")
        if not downscales or any(not isinstance(s, int) or s < 1 for s in downscales):
            raise ValueError(f"expected downscales a non-empty list of ints >= 1, got {downscales}")
        self.patch_size = patch_size
        self.seed = seed
        self.pairs: list[tuple[Path, Path, tuple[int, int]]] = []
        extent = patch_size + 2 * _KERNEL_PAD
        self.fits: list[list[int]] = []
        for frames in sequences:
            if len(frames) < 2:
                continue
            size = frame_size(frames[0])
            fit = [s for s in downscales if extent * s <= min(size)]
            if not fit:
                raise ValueError(
                    f"frames of {frames[0].parent if isinstance(frames[0], Path) else frames[0]} "
                    f"({size[1]}x{size[0]}) are too small for patch_size {patch_size} at any "
                    f"downscale in {list(downscales)}"
                )
            for a, b in zip(frames[:-1], frames[1:], strict=True):
                self.pairs.append((Path(a), Path(b), size))
                self.fits.append(fit)
        if not self.pairs:
            raise ValueError("expected at least one sequence of two or more frames, got none")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"expected an index in [0, {len(self.pairs)}), got {index}")
        rng: np.random.Generator = sample_rng(self.seed, index)
        first, second, (h, w) = self.pairs[index]
        s = int(rng.choice(self.fits[index]))
        extent = self.patch_size + 2 * _KERNEL_PAD
        side = extent * s
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        box = (top, left, side, side)
        pair = torch.stack([read_frame(first, box), read_frame(second, box)])  # (2, 3, side, side)
        if rng.uniform() < 0.5:
            pair = pair.flip(-1)
        if rng.uniform() < 0.5:
            pair = pair.flip(-2)
        if s > 1:
            pair = quantize_uint8(imresize(pair, size=(extent, extent)))
        pair = pair[..., _KERNEL_PAD:-_KERNEL_PAD, _KERNEL_PAD:-_KERNEL_PAD].contiguous()
        ref, supp = (pair[1], pair[0]) if rng.uniform() < 0.5 else (pair[0], pair[1])
        return {"ref": ref, "supp": supp}
