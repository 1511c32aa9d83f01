"""Training samples: random crops of frame windows (BasicVSR/IconVSR) or of frame-rate groups.

Both datasets draw every random choice (window start, crop, flips, transpose, temporal reversal)
from ``numpy.random.default_rng([seed, epoch, index])``: a sample depends only on those three
numbers, never on global random state, so it is the same in the main process and in any
DataLoader worker, and a resumed run sees the same samples. Call ``set_epoch(e)`` before each
epoch (as with ``DistributedSampler``); with ``persistent_workers=True`` the workers keep the
epoch they started with.

Crops: one crop box for every frame of a sample, LR patch ``patch_size`` and GT patch
``scale * patch_size``; the LR patch equals that crop of the LR frame (see ``ClipDataset.patches``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from afvsr.data.clips import ClipDataset
from afvsr.errors import AfvsrError
from afvsr.frame_groups import check_rates, group_indices


def _augment(x: Tensor, flips: Sequence[bool], time_dim: int | None) -> Tensor:
    """Apply hflip, vflip, transpose (h <-> w) and temporal reversal to ``(..., h, w)``."""
    hflip, vflip, transpose, reverse = flips
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if transpose:
        x = x.transpose(-2, -1)
    if reverse and time_dim is not None:
        x = x.flip(time_dim)
    return x.contiguous()


def check_intervals(interval_list: Sequence[int]) -> tuple[int, ...]:
    """``interval_list`` as a tuple; ValueError unless a non-empty list of positive integers."""
    ok = isinstance(interval_list, (list, tuple)) and len(interval_list) > 0
    if not ok or not all(type(i) is int and i >= 1 for i in interval_list):
        raise ValueError(f"expected a non-empty list of positive integers, got {interval_list!r}")
    return tuple(interval_list)


class _Samples(Dataset):
    """Shared parts: index -> (clip, frame), crop box and augmentation from the sample's rng."""

    def __init__(self, clips: ClipDataset, *, patch_size: int, augment: bool, seed: int) -> None:
        if not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"expected a positive integer patch_size, got {patch_size!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"expected a non-negative integer seed, got {seed!r}")
        for clip, geo in zip(clips.clips, clips.geometries, strict=True):
            if min(geo.lq_size) < patch_size:
                h, w = geo.lq_size
                raise AfvsrError(
                    f"clip {clip.name}: LR frames are {w}x{h}, smaller than patch_size {patch_size}"
                )
        self.clips = clips
        self.scale = clips.scale
        self.patch_size = patch_size
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._starts = np.cumsum([0] + [g.num_frames for g in clips.geometries]).tolist()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random draws ``__getitem__`` makes (see the module docstring)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._starts[-1]  # one sample per frame of every clip

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"expected a sample index in [0, {len(self)}), got {index}")
        clip = bisect.bisect_right(self._starts, index) - 1
        return clip, index - self._starts[clip]

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def _box(self, rng: np.random.Generator, clip: int) -> tuple[int, int, int, int]:
        h, w = self.clips.geometries[clip].lq_size
        p = self.patch_size
        return int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1)), p, p

    def _flips(self, rng: np.random.Generator) -> list[bool]:
        draws = rng.random(4) < 0.5  # hflip, vflip, transpose, temporal reversal
        return [bool(d) and self.augment for d in draws]


class SequenceSamples(_Samples):
    """Random windows of ``num_frames`` frames, for BasicVSR / IconVSR.

    Sample ``index`` belongs to the clip holding frame ``index`` of all clips laid end to end
    (so clips are drawn in proportion to their length); the window start is random. The window
    takes every ``interval``-th frame, ``interval`` drawn uniformly from ``interval_list``
    (BasicSR's key; ``(1,)``: consecutive frames; ``(1, 2)``: half the samples see twice the
    motion per step). The interval comes from its own generator, so a list of one interval
    draws exactly the samples of a sampler without the key.

    ``ds[i] -> {"lq": (num_frames, 3, p, p), "gt": (num_frames, 3, scale*p, scale*p),
    "key": "<clip>/<first frame>"}`` with ``p = patch_size``.
    """

    def __init__(
        self,
        clips: ClipDataset,
        *,
        num_frames: int,
        patch_size: int,
        interval_list: Sequence[int] = (1,),
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(clips, patch_size=patch_size, augment=augment, seed=seed)
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"expected a positive integer num_frames, got {num_frames!r}")
        self.intervals = check_intervals(interval_list)
        longest = max(self.intervals)
        span = (num_frames - 1) * longest + 1
        at = f" at interval {longest} ({span} frames)" if longest > 1 else ""
        for clip, geo in zip(clips.clips, clips.geometries, strict=True):
            if geo.num_frames < span:
                raise AfvsrError(
                    f"clip {clip.name} has {geo.num_frames} frames, fewer than num_frames "
                    f"{num_frames}{at}"
                )
        self.num_frames = num_frames

    def __getitem__(self, index: int) -> dict:
        clip, _ = self._locate(index)
        rng = self._rng(index)
        interval_rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        interval = self.intervals[int(interval_rng.integers(len(self.intervals)))]
        span = (self.num_frames - 1) * interval + 1
        start = int(rng.integers(0, self.clips.geometries[clip].num_frames - span + 1))
        box = self._box(rng, clip)
        flips = self._flips(rng)
        frames = range(start, start + span, interval)
        lq, gt = self.clips.patches(clip, frames, box)  # (t, 3, p, p), (t, 3, s*p, s*p)
        key = f"{self.clips.clips[clip].name}/{start}"
        return {"lq": _augment(lq, flips, 0), "gt": _augment(gt, flips, 0), "key": key}


class RateGroupSamples(_Samples):
    """Frame-rate-group samples around one reference frame, for AFVSR (the method).

    Sample ``index`` is reference frame ``t`` = frame ``index`` of all clips laid end to end.
    Group g holds frames ``t + rates[g] * k``, ``k = -(W//2)..W//2`` (``group_indices``,
    mirrored at the clip's ends); the target is frame t's ground truth. Temporal reversal
    reverses each group (k -> -k).

    ``ds[i] -> {"lq": (G, W, 3, p, p), "gt": (3, scale*p, scale*p), "key": "<clip>/<t>"}``.
    """

    def __init__(
        self,
        clips: ClipDataset,
        *,
        rates: Sequence[int],
        window: int,
        patch_size: int,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(clips, patch_size=patch_size, augment=augment, seed=seed)
        self.rates = check_rates(rates, window)
        self.window = window
        reach = max(self.rates) * (window // 2)
        for clip, geo in zip(clips.clips, clips.geometries, strict=True):
            if geo.num_frames <= reach:
                raise AfvsrError(
                    f"clip {clip.name} has {geo.num_frames} frames, too short for rates "
                    f"{list(self.rates)} and window {window} (needs at least {reach + 1})"
                )

    def __getitem__(self, index: int) -> dict:
        clip, t = self._locate(index)
        rng = self._rng(index)
        box = self._box(rng, clip)
        flips = self._flips(rng)
        n = self.clips.geometries[clip].num_frames
        groups = group_indices(t, n, rates=self.rates, window=self.window)  # [G][W]
        unique = sorted({f for group in groups for f in group} | {t})
        lq, gt = self.clips.patches(clip, unique, box)  # (u, 3, p, p), (u, 3, s*p, s*p)
        position = torch.tensor([[unique.index(f) for f in group] for group in groups])
        lq = lq[position]  # (G, W, 3, p, p)
        key = f"{self.clips.clips[clip].name}/{t}"
        return {
            "lq": _augment(lq, flips, 1),
            "gt": _augment(gt[unique.index(t)], flips, None),
            "key": key,
        }
