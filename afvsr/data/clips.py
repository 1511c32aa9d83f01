"""Clips on disk and the evaluation dataset of whole clips that every layout builds on.

A ``Clip`` is a named list of ground-truth frame files, optionally with matching low-resolution
files. ``ClipDataset`` checks every clip once (sizes read from file headers) and serves either
whole clips (evaluation) or the same crop of a few frames (training samples, see ``samples.py``).

Ground truth: the frame files, optionally shrunk x``gt_downscale`` first (antialiased bicubic,
rounded to 8 bits), then cropped at the bottom/right to a multiple of ``scale``.
Low resolution: the LR files when given (their size times ``scale`` must equal the GT size), else
made from the ground truth by the BI degradation (``afvsr.imresize.bi_degrade``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from afvsr.data.frames import frame_size, read_frame
from afvsr.errors import AfvsrError
from afvsr.imresize import bi_degrade, imresize, imresize_box, quantize_uint8, source_box

GT_DOWNSCALES = (1, 2)


@dataclass(frozen=True)
class Clip:
    """One sequence of frames on disk.

    Attributes:
        name: the clip's key, e.g. ``"000"`` (REDS) or ``"davis2016/blackswan"``.
        gt_paths: ground-truth frame files in display order.
        lq_paths: low-resolution frame files (same count), or None to make LR by BI.
        gt_downscale: 1, or 2 to shrink the ground truth x2 first (for JPEG sources).
    """

    name: str
    gt_paths: tuple[Path, ...]
    lq_paths: tuple[Path, ...] | None = None
    gt_downscale: int = 1


@dataclass(frozen=True)
class ClipGeometry:
    """Frame sizes ``(h, w)`` of one clip: the files, the ground truth and the LR frames."""

    num_frames: int
    source_size: tuple[int, int]
    gt_size: tuple[int, int]
    lq_size: tuple[int, int]


def _same_size(paths: Sequence[Path], clip: str) -> tuple[int, int]:
    size = frame_size(paths[0])
    for path in paths[1:]:
        other = frame_size(path)
        if other != size:
            raise AfvsrError(
                f"clip {clip}: frames of different sizes: {paths[0]} is {size[1]}x{size[0]}, "
                f"{path} is {other[1]}x{other[0]} (w x h)"
            )
    return size


def probe_clip(clip: Clip, scale: int) -> ClipGeometry:
    """Check one clip (non-empty, equal sizes, GT/LR counts and sizes agree) and size it."""
    if not clip.gt_paths:
        raise AfvsrError(f"empty clip: {clip.name} has no frames")
    if clip.gt_downscale not in GT_DOWNSCALES:
        raise ValueError(f"expected gt_downscale in {GT_DOWNSCALES}, got {clip.gt_downscale!r}")
    source = _same_size(clip.gt_paths, clip.name)
    shrunk = [-(-n // clip.gt_downscale) for n in source]  # ceil, as imresize
    gt_size = (shrunk[0] - shrunk[0] % scale, shrunk[1] - shrunk[1] % scale)
    if min(gt_size) < 1:
        raise AfvsrError(
            f"clip {clip.name}: frames of {source[1]}x{source[0]} are too small for scale {scale}"
        )
    lq_size = (gt_size[0] // scale, gt_size[1] // scale)
    if clip.lq_paths is not None:
        if len(clip.lq_paths) != len(clip.gt_paths):
            raise AfvsrError(
                f"clip {clip.name}: {len(clip.gt_paths)} GT frames but {len(clip.lq_paths)} LR "
                f"frames ({clip.gt_paths[0].parent} vs {clip.lq_paths[0].parent})"
            )
        if clip.gt_downscale != 1:
            raise ValueError(
                f"clip {clip.name}: expected gt_downscale 1 with LR frames from disk, "
                f"got {clip.gt_downscale}"
            )
        lq_file = _same_size(clip.lq_paths, clip.name)
        if (lq_file[0] * scale, lq_file[1] * scale) != source:
            raise AfvsrError(
                f"clip {clip.name}: LR x{scale} != GT: {clip.lq_paths[0]} is "
                f"{lq_file[1]}x{lq_file[0]}, {clip.gt_paths[0]} is {source[1]}x{source[0]} (w x h)"
            )
    return ClipGeometry(len(clip.gt_paths), source, gt_size, lq_size)


class ClipDataset(Dataset):
    """Whole clips for evaluation: ``ds[i] -> {"lq": (t, 3, h, w), "gt": (t, 3, s*h, s*w), "key"}``.

    Every clip is checked when the dataset is made (see ``probe_clip``), so a bad frame fails
    before any work starts. Layout classes (``REDS``, ``Vimeo90K``, ``FrameFolders``,
    ``SharedData``) only find the clips and call this constructor.
    """

    def __init__(
        self, clips: Sequence[Clip], *, name: str, scale: int = 4, round_uint8: bool = True
    ) -> None:
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"expected an integer scale >= 1, got {scale!r}")
        if not clips:
            raise AfvsrError(f"dataset {name}: no clips found")
        self.name = name
        self.scale = scale
        self.round_uint8 = round_uint8
        self.clips = list(clips)
        self.geometries = [probe_clip(clip, scale) for clip in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        return self.load(index)

    def num_frames(self, index: int) -> int:
        """Number of frames of clip ``index``."""
        return self.geometries[index].num_frames

    def load(self, index: int, *, start: int = 0, stop: int | None = None) -> dict:
        """Frames ``start:stop`` of clip ``index`` (all by default), for chunked evaluation.

        Returns:
            ``{"lq": (t, 3, h, w), "gt": (t, 3, scale*h, scale*w), "key": clip name}``.
        """
        clip, geo = self.clips[index], self.geometries[index]
        frames = range(geo.num_frames)[start:stop]
        if len(frames) == 0:
            raise ValueError(
                f"expected a non-empty frame range of clip {clip.name}, got {start}:{stop}"
            )
        gt_h, gt_w = geo.gt_size
        gt = torch.stack([read_frame(clip.gt_paths[f]) for f in frames])  # (t, 3, H0, W0)
        if clip.gt_downscale != 1:
            gt = quantize_uint8(imresize(gt, scale=1 / clip.gt_downscale))
        gt = gt[..., :gt_h, :gt_w].contiguous()  # (t, 3, s*h, s*w)
        if clip.lq_paths is None:
            lq = bi_degrade(gt, self.scale, round_uint8=self.round_uint8)
        else:
            lq = torch.stack([read_frame(clip.lq_paths[f]) for f in frames])
        return {"lq": lq, "gt": gt, "key": clip.name}

    def _read_gt_box(self, index: int, frame: int, box: tuple[int, int, int, int]) -> Tensor:
        """Part ``box`` (top, left, h, w) of ground-truth frame ``frame``: ``(3, h, w)``."""
        clip, geo = self.clips[index], self.geometries[index]
        if clip.gt_downscale == 1:
            return read_frame(clip.gt_paths[frame], box)
        factor = 1 / clip.gt_downscale
        src = source_box(geo.source_size, box, scale=factor)
        x = read_frame(clip.gt_paths[frame], src)
        gt = imresize_box(x, box, scale=factor, in_size=geo.source_size, origin=src[:2])
        return quantize_uint8(gt)

    def patches(
        self, index: int, frames: Sequence[int], box: tuple[int, int, int, int]
    ) -> tuple[Tensor, Tensor]:
        """The same crop of several frames of clip ``index``.

        Equal to cropping ``self.load(index)`` (the LR patch is made from just enough ground
        truth around it, see ``afvsr.imresize.imresize_box``), but reads and resizes far less.

        Args:
            frames: frame indices (repeats allowed).
            box: ``(top, left, height, width)`` in LR pixels.

        Returns:
            ``lq (n, 3, height, width)`` and ``gt (n, 3, scale*height, scale*width)``.
        """
        clip, geo = self.clips[index], self.geometries[index]
        s = self.scale
        top, left, height, width = box
        gt_box = (s * top, s * left, s * height, s * width)
        if clip.lq_paths is not None:
            lq = [read_frame(clip.lq_paths[f], box) for f in frames]
            gt = [read_frame(clip.gt_paths[f], gt_box) for f in frames]
            return torch.stack(lq), torch.stack(gt)
        # GT region the LR box reads (it contains the GT patch, the kernel reaches further).
        src = source_box(geo.gt_size, box, scale=1 / s)
        y0, x0 = min(src[0], gt_box[0]), min(src[1], gt_box[1])
        y1 = max(src[0] + src[2], gt_box[0] + gt_box[2])
        x1 = max(src[1] + src[3], gt_box[1] + gt_box[3])
        region = torch.stack(
            [self._read_gt_box(index, f, (y0, x0, y1 - y0, x1 - x0)) for f in frames]
        )
        lq = imresize_box(region, box, scale=1 / s, in_size=geo.gt_size, origin=(y0, x0))
        if self.round_uint8:
            lq = quantize_uint8(lq)
        gt = region[..., gt_box[0] - y0 : gt_box[0] - y0 + s * height, gt_box[1] - x0 :]
        return lq, gt[..., : s * width].contiguous()
