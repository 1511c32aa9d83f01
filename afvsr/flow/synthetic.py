"""Synthetic optical-flow pairs made from real frames, with exact, occlusion-free ground truth.

Stage 0 of afvsr's recipe (issue 4): BasicVSR needs a SPyNet pretrained on optical flow, and no
flow data set or pretrained weights can be downloaded here. So we make supervision from the real
frames we have: a frame and a copy of it backward-warped by a random smooth flow field.

How one pair is made (sizes in LR pixels, the scale SPyNet sees inside the VSR models):

1. Pick a frame and a downscale factor ``s`` (e.g. 2, 3, 4: BI ×4 LR frames are the target
   scale, the others add texture variety). Read a square of ``R·s`` source pixels with
   ``R = patch_size + 2·margin`` and resize it (MATLAB bicubic, antialiased) to ``R·r`` pixels,
   the *render* resolution ``r`` times finer than LR.
2. Draw a smooth flow field ``f`` on LR coordinates: global affine motion (translation, small
   rotation, zoom, shear) plus a smooth local deformation (a coarse random grid upsampled
   bicubically, plus a few Gaussian bumps), scaled down if it exceeds ``max_flow``.
3. ``supp`` is the source; ``ref(q) = supp(q + f(q))`` is rendered at the render resolution with
   the flow converted to its pixels, then both are downscaled ×r (same kernel, so the bilinear
   interpolation of the warp leaves no blur that tells ``ref`` from ``supp``), and the central
   ``patch_size`` square of both is kept. The margin keeps every sample of ``ref`` inside the
   source, so the ground truth has no occlusions and no sample leaves the image.
4. Mild photometric changes (brightness and colour gain, Gaussian noise) are drawn independently
   for each frame, then both are rounded to 8-bit levels like real LR frames.

The result follows SPyNet's convention (``afvsr.models.spynet``): ``flow = spynet(ref, supp)``
and ``flow_warp(supp, flow) ≈ ref`` — away from the borders, where ``p + flow(p)`` may leave the
``patch_size`` crop of ``supp`` (as content leaving the frame does in real video).

Differs from SPyNet's own training data (Flying Chairs): real textures, smooth motion only
(no independently moving objects, hence no occlusions), LR scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from afvsr.data.frames import frame_size, read_frame
from afvsr.imresize import imresize, quantize_uint8
from afvsr.models.common import flow_warp, make_grid

__all__ = [
    "FlowField",
    "MotionRange",
    "PhotometricRange",
    "SyntheticFlowPairs",
    "apply_photometric",
    "margin_for",
    "random_flow_field",
    "render_pair",
    "sample_rng",
]


@dataclass(frozen=True)
class MotionRange:
    """The ranges random flow fields are drawn from (displacements in LR pixels).

    Attributes:
        max_translation: largest global translation; its length is ``max_translation · u²``
            with ``u ~ U(0, 1)`` (small motions are the common case), its direction uniform.
        max_rotation_deg: rotation angle ``~ U(-max, max)`` degrees about a random centre.
        max_zoom: relative scale change ``~ U(-max, max)``.
        max_shear: the two shear/stretch components, each ``~ U(-max, max)``.
        local_amplitude: standard deviation (times ``U(0, 1)`` per pair) of the displacements
            on a coarse random grid that is upsampled bicubically over the patch.
        local_grid_max: the grid has ``U{2..local_grid_max}`` nodes per axis.
        num_bumps: up to this many Gaussian bumps of local motion (``U{0..num_bumps}``).
        bump_amplitude: largest displacement at a bump's centre; also capped at half its width
            so the warp never folds over.
        bump_sigma: ``(min, max)`` width (standard deviation) of a bump.
        max_flow: the whole field is scaled down when it exceeds this anywhere in the patch;
            sets the margin (``margin_for``) and so the size of the source crop.
    """

    max_translation: float = 12.0
    max_rotation_deg: float = 3.0
    max_zoom: float = 0.05
    max_shear: float = 0.03
    local_amplitude: float = 1.5
    local_grid_max: int = 5
    num_bumps: int = 3
    bump_amplitude: float = 3.0
    bump_sigma: tuple[float, float] = (6.0, 20.0)
    max_flow: float = 16.0

    def __post_init__(self) -> None:
        for name in ("max_translation", "max_rotation_deg", "max_zoom", "max_shear"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"expected {name} >= 0, got {getattr(self, name)!r}")
        if not self.local_amplitude >= 0 or not self.bump_amplitude >= 0:
            raise ValueError(
                "expected local_amplitude and bump_amplitude >= 0, got "
                f"{self.local_amplitude!r} and {self.bump_amplitude!r}"
            )
        if self.local_grid_max < 2 or self.num_bumps < 0:
            raise ValueError(
                f"expected local_grid_max >= 2 and num_bumps >= 0, got {self.local_grid_max} "
                f"and {self.num_bumps}"
            )
        lo, hi = self.bump_sigma
        if not 0 < lo <= hi:
            raise ValueError(f"expected bump_sigma (min, max) with 0 < min <= max, got {lo, hi}")
        if not self.max_flow > 0:
            raise ValueError(f"expected max_flow > 0, got {self.max_flow!r}")


@dataclass(frozen=True)
class PhotometricRange:
    """Independent per-frame changes: gain ``1 ± brightness``, per-channel gain ``1 ± color``,
    Gaussian noise of standard deviation ``U(0, noise)``; then clamp and round to 8 bits."""

    brightness: float = 0.05
    color: float = 0.02
    noise: float = 0.01

    def __post_init__(self) -> None:
        if min(self.brightness, self.color, self.noise) < 0:
            raise ValueError(
                f"expected brightness, color and noise >= 0, got {self.brightness}, "
                f"{self.color}, {self.noise}"
            )


@dataclass(frozen=True)
class FlowField:
    """A smooth flow field defined at any point of the LR plane (not just on a pixel grid).

    ``f(x, y) = gain · (translation + linear @ ((x, y) - centre) + grid(x, y) + Σ bumps)``, in LR
    pixels. ``grid`` is a ``(2, gh, gw)`` tensor of displacements whose corners sit on
    ``(0, 0)`` and ``(extent - 1, extent - 1)``, interpolated bicubically; ``bumps`` is
    ``(k, 5)`` rows ``(mu_x, mu_y, sigma, amp_x, amp_y)``.
    """

    translation: tuple[float, float]
    linear: tuple[tuple[float, float], tuple[float, float]]
    centre: tuple[float, float]
    extent: int
    grid: Tensor | None = None
    bumps: Tensor | None = None
    gain: float = 1.0

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """Evaluate at points ``x, y`` (same shape ``S``, float) → ``(2, *S)`` (x then y)."""
        (a, b), (c, d) = self.linear
        dx, dy = x - self.centre[0], y - self.centre[1]
        u = self.translation[0] + a * dx + b * dy
        v = self.translation[1] + c * dx + d * dy
        if self.grid is not None:
            # align_corners=True: -1 and +1 are the centres of the first and last LR pixel.
            scale = 2.0 / max(self.extent - 1, 1)
            where = torch.stack([x * scale - 1, y * scale - 1], dim=-1).reshape(1, -1, 1, 2)
            local = F.grid_sample(
                self.grid[None].to(x.dtype),
                where,
                mode="bicubic",
                padding_mode="border",
                align_corners=True,
            )  # (1, 2, n, 1)
            u = u + local[0, 0, :, 0].reshape(x.shape)
            v = v + local[0, 1, :, 0].reshape(x.shape)
        if self.bumps is not None:
            for mx, my, sigma, ax, ay in self.bumps.tolist():
                weight = torch.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sigma * sigma))
                u = u + ax * weight
                v = v + ay * weight
        return self.gain * torch.stack([u, v])

    def on_grid(self, top: int, left: int, h: int, w: int) -> Tensor:
        """The field at the LR pixel centres of rows ``top..top+h``, columns ``left..left+w``:
        ``(2, h, w)``."""
        coords = make_grid(h, w, device=torch.device("cpu"), dtype=torch.float32)[0]
        return self(coords[0] + left, coords[1] + top)


def margin_for(max_flow: float) -> int:
    """LR pixels kept around the patch: the largest displacement, plus 2 for the reach of the
    ×r downscaling kernel and 2 for bilinear sampling and the edge of the resized source."""
    return math.ceil(max_flow) + 4


def random_flow_field(
    rng: np.random.Generator, *, patch_size: int, margin: int, motion: MotionRange
) -> FlowField:
    """Draw a smooth flow field over an LR region of ``patch_size + 2·margin`` pixels.

    The field is scaled down (all of it, so it stays smooth) when its largest displacement over
    the part of the region the pair reads exceeds ``motion.max_flow``.
    """
    extent = patch_size + 2 * margin
    mid = (extent - 1) / 2
    length = motion.max_translation * rng.uniform() ** 2
    angle = rng.uniform(0, 2 * math.pi)
    translation = (length * math.cos(angle), length * math.sin(angle))
    theta = math.radians(rng.uniform(-motion.max_rotation_deg, motion.max_rotation_deg))
    zoom = rng.uniform(-motion.max_zoom, motion.max_zoom)
    stretch, shear = rng.uniform(-motion.max_shear, motion.max_shear, size=2)
    # Small-motion form of rotation·zoom·shear: the displacement is (A - I) @ (p - centre).
    linear = ((zoom + stretch, -theta + shear), (theta + shear, zoom - stretch))
    centre = tuple(mid + rng.uniform(-patch_size / 2, patch_size / 2, size=2))

    grid = None
    if motion.local_amplitude > 0:
        gh, gw = rng.integers(2, motion.local_grid_max + 1, size=2)
        std = motion.local_amplitude * rng.uniform()
        grid = torch.from_numpy(rng.normal(0.0, std, size=(2, gh, gw)).astype(np.float32))
    bumps = None
    k = int(rng.integers(0, motion.num_bumps + 1))
    if k > 0 and motion.bump_amplitude > 0:
        rows = []
        for _ in range(k):
            mx, my = rng.uniform(margin, margin + patch_size, size=2)
            sigma = rng.uniform(*motion.bump_sigma)
            # |grad| of a·exp(-r²/2σ²) peaks at 0.61·a/σ: a <= σ/2 keeps it <= 0.3 (no folds).
            amp = rng.uniform(0, min(motion.bump_amplitude, sigma / 2))
            phi = rng.uniform(0, 2 * math.pi)
            rows.append((mx, my, sigma, amp * math.cos(phi), amp * math.sin(phi)))
        bumps = torch.tensor(rows, dtype=torch.float32)

    field = FlowField(
        translation=(float(translation[0]), float(translation[1])),
        linear=tuple(tuple(float(v) for v in row) for row in linear),
        centre=(float(centre[0]), float(centre[1])),
        extent=extent,
        grid=grid,
        bumps=bumps,
    )
    # The pair reads the field up to 3 LR pixels around the patch (see margin_for).
    reach = 3
    largest = (
        field.on_grid(
            margin - reach, margin - reach, patch_size + 2 * reach, patch_size + 2 * reach
        )
        .norm(dim=0)
        .max()
        .item()
    )
    if largest > motion.max_flow:
        field = replace(field, gain=motion.max_flow / largest)
    return field


def render_pair(
    source: Tensor, field: FlowField, *, patch_size: int, margin: int, render_scale: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Render ``(ref, supp, flow)`` from a source square at the render resolution.

    Args:
        source: ``(3, R·r, R·r)`` with ``R = patch_size + 2·margin``, ``r = render_scale``.
        field: flow in LR pixels on the LR grid of that square (``field.extent == R``).

    Returns:
        ``ref, supp (3, patch_size, patch_size)`` and ``flow (2, patch_size, patch_size)`` from
        ``ref`` to ``supp``: ``ref[p] = supp[p + flow[p]]`` (LR pixels).
    """
    r = render_scale
    extent = patch_size + 2 * margin
    if source.shape != (3, extent * r, extent * r) or field.extent != extent:
        raise ValueError(
            f"expected a source (3, {extent * r}, {extent * r}) and a field of extent {extent}, "
            f"got {tuple(source.shape)} and {field.extent}"
        )
    # Render pixel q sits at LR coordinate (q + 0.5)/r - 0.5 (imresize's pixel-centre rule), and
    # a displacement of one LR pixel is r render pixels.
    q = make_grid(extent * r, extent * r, device=source.device, dtype=torch.float32)[0]
    flow_render = r * field((q[0] + 0.5) / r - 0.5, (q[1] + 0.5) / r - 0.5)  # (2, Rr, Rr)
    ref = flow_warp(source[None], flow_render[None], padding_mode="border")[0]
    supp = source
    if r > 1:
        ref = imresize(ref, size=(extent, extent))
        supp = imresize(supp, size=(extent, extent))
    crop = slice(margin, margin + patch_size)
    flow = field.on_grid(margin, margin, patch_size, patch_size)
    return ref[:, crop, crop].contiguous(), supp[:, crop, crop].contiguous(), flow


def apply_photometric(rng: np.random.Generator, image: Tensor, photo: PhotometricRange) -> Tensor:
    """Gain, per-channel gain and noise drawn from ``rng``; clamped and rounded to 8 bits."""
    gain = 1 + rng.uniform(-photo.brightness, photo.brightness)
    gain = gain * (1 + rng.uniform(-photo.color, photo.color, size=3))
    out = image * torch.tensor(gain, dtype=image.dtype).view(3, 1, 1)
    sigma = rng.uniform(0, photo.noise)
    if sigma > 0:
        noise = rng.standard_normal(size=tuple(image.shape)).astype(np.float32)
        out = out + sigma * torch.from_numpy(noise)
    return quantize_uint8(out)


def sample_rng(seed: int | None, index: int) -> np.random.Generator:
    """The generator of sample ``index``.

    With a ``seed``: a function of ``(seed, index)`` only (held-out sets, tests). Without one:
    seeded from NumPy's global RNG, which the training loop seeds from (run seed, global sample
    number) before each sample, so samples do not depend on workers or resumption.
    """
    if seed is not None:
        return np.random.default_rng([seed, index])
    return np.random.default_rng(np.random.randint(0, 2**32, size=4, dtype=np.uint64))


class SyntheticFlowPairs(Dataset):
    """Synthetic ``(ref, supp, flow)`` pairs from real frames (see the module docstring).

    ``ds[i] -> {"ref": (3, P, P), "supp": (3, P, P), "flow": (2, P, P)}`` with P = patch_size,
    flow from ref to supp in LR pixels (``flow_warp(supp, flow) ≈ ref``).

    Args:
        frames: frame files (PNG/JPEG) to take textures from.
        patch_size: LR patch side, a multiple of 32 (SPyNet's coarsest level is 1/32).
        downscales: integer source → LR factors, one drawn per pair among those the frame is
            large enough for (each needs ``(patch_size + 2·margin)·s`` source pixels).
        render_scale: the warp is rendered at this multiple of LR resolution, then downscaled.
        motion, photometric: the random ranges.
        length: number of samples; sample ``i`` uses frame ``i·len(frames)//length`` (default:
            one sample per frame).
        seed: None (training): randomness from NumPy's global RNG, seeded by the loop; an int:
            sample ``i`` depends on ``(seed, i)`` only.
        skip_small: leave out frames too small for every downscale (``self.skipped`` counts
            them) instead of raising ValueError.
    """

    def __init__(
        self,
        frames: Sequence[str | Path],
        *,
        patch_size: int = 64,
        downscales: Sequence[int] = (2, 3, 4),
        render_scale: int = 2,
        motion: MotionRange = MotionRange(),  # noqa: B008 - frozen dataclass, immutable
        photometric: PhotometricRange = PhotometricRange(),  # noqa: B008
        length: int | None = None,
        seed: int | None = None,
        skip_small: bool = False,
    ) -> None:
        if not frames:
            raise ValueError("expected at least one frame file, got none")
        if not isinstance(patch_size, int) or patch_size < 32 or patch_size % 32:
            raise ValueError(f"expected patch_size a positive multiple of 32, got {patch_size!r}")
        if not downscales or any(not isinstance(s, int) or s < 1 for s in downscales):
            raise ValueError(f"expected downscales a non-empty list of ints >= 1, got {downscales}")
        if not isinstance(render_scale, int) or not 1 <= render_scale <= min(downscales):
            raise ValueError(
                f"expected an integer render_scale in [1, min(downscales) = {min(downscales)}], "
                f"got {render_scale!r}"
            )
        frames = [Path(p) for p in frames]
        self.patch_size = patch_size
        self.render_scale = render_scale
        self.motion = motion
        self.photometric = photometric
        self.margin = margin_for(motion.max_flow)
        self.seed = seed
        extent = patch_size + 2 * self.margin
        sizes = [frame_size(p) for p in frames]
        # Per frame, the downscales it is large enough for.
        fits = [[s for s in downscales if extent * s <= min(size)] for size in sizes]
        for s in downscales:
            if not any(s in fit for fit in fits):
                raise ValueError(
                    f"downscale {s} needs frames of at least {extent * s} pixels per side "
                    f"(patch_size {patch_size} + 2 × margin {self.margin}, times {s}); the "
                    f"largest frame is {max(min(size) for size in sizes)} px on its short side"
                )
        keep = [i for i, fit in enumerate(fits) if fit]
        if len(keep) < len(frames) and not skip_small:
            bad = next(i for i, fit in enumerate(fits) if not fit)
            raise ValueError(
                f"{len(frames) - len(keep)} frame(s) are too small for every downscale in "
                f"{list(downscales)}, e.g. {frames[bad]} ({sizes[bad][1]}x{sizes[bad][0]})"
            )
        self.skipped = len(frames) - len(keep)
        self.frames = [frames[i] for i in keep]
        self.sizes = [sizes[i] for i in keep]
        self.fits = [fits[i] for i in keep]
        self.length = len(self.frames) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"expected length >= 1, got {length!r}")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"expected an index in [0, {self.length}), got {index}")
        rng = sample_rng(self.seed, index)
        frame = index * len(self.frames) // self.length
        h, w = self.sizes[frame]
        s = int(rng.choice(self.fits[frame]))
        extent = self.patch_size + 2 * self.margin
        side = extent * s  # source pixels
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        source = read_frame(self.frames[frame], (top, left, side, side))  # (3, side, side)
        if rng.uniform() < 0.5:
            source = source.flip(-1)
        if rng.uniform() < 0.5:
            source = source.flip(-2)
        render = extent * self.render_scale
        if side != render:
            source = imresize(source, size=(render, render))
        field = random_flow_field(
            rng, patch_size=self.patch_size, margin=self.margin, motion=self.motion
        )
        ref, supp, flow = render_pair(
            source,
            field,
            patch_size=self.patch_size,
            margin=self.margin,
            render_scale=self.render_scale,
        )
        ref = apply_photometric(rng, ref, self.photometric)
        supp = apply_photometric(rng, supp, self.photometric)
        return {"ref": ref, "supp": supp, "flow": flow}
