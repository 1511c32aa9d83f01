"""Synthetic flow pairs: the ground truth is exact, has the right sign, and is reproducible."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from afvsr.flow.synthetic import (
    FlowField,
    MotionRange,
    PhotometricRange,
    SyntheticFlowPairs,
    random_flow_field,
    render_pair,
)
from afvsr.models.common import flow_warp

STILL = MotionRange(
    max_translation=0,
    max_rotation_deg=0,
    max_zoom=0,
    max_shear=0,
    local_amplitude=0,
    num_bumps=0,
    max_flow=4,
)
NO_PHOTO = PhotometricRange(brightness=0, color=0, noise=0)


def textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random texture ``(3, h, w)`` in [0, 1]: a few sinusoids, no sharp edges."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((3, h, w))
    for c in range(3):
        for _ in range(4):
            fx, fy = g.uniform(-0.025, 0.025, size=2)
            img[c] += np.sin(2 * math.pi * (fx * x + fy * y) + g.uniform(0, 6.3))
    return torch.from_numpy(0.5 + 0.12 * img).float().clamp(0, 1)


def psnr(a, b):
    return -10 * math.log10(torch.mean((a - b) ** 2).item())


def translation(tx: float, ty: float, extent: int) -> FlowField:
    return FlowField(translation=(tx, ty), linear=((0, 0), (0, 0)), centre=(0, 0), extent=extent)


@pytest.mark.parametrize("render_scale", [1, 2])
def test_integer_translation_is_a_shift_with_the_right_sign(render_scale):
    patch, margin = 32, 8
    extent = patch + 2 * margin
    source = textured(extent * render_scale, extent * render_scale)
    ref, supp, flow = render_pair(
        source,
        translation(3, -2, extent),
        patch_size=patch,
        margin=margin,
        render_scale=render_scale,
    )
    # Constant flow (+3, -2): ref[y, x] = supp[y - 2, x + 3] — content of supp 3 px to the
    # right and 2 px up appears at (y, x) in ref.
    assert torch.allclose(flow[0], torch.full((patch, patch), 3.0))
    assert torch.allclose(flow[1], torch.full((patch, patch), -2.0))
    assert torch.allclose(ref[:, 2:, :-3], supp[:, :-2, 3:], atol=1e-5)
    warped = flow_warp(supp[None], flow[None])[0]
    assert torch.allclose(warped[:, 2:, :-3], ref[:, 2:, :-3], atol=1e-5)


def test_random_smooth_field_warp_reproduces_ref_away_from_borders():
    patch, r = 64, 2
    motion = MotionRange(max_flow=8.0)
    margin = 12
    extent = patch + 2 * margin
    source = textured(extent * r, extent * r, seed=1)
    for seed in range(3):
        field = random_flow_field(
            np.random.default_rng(seed), patch_size=patch, margin=margin, motion=motion
        )
        ref, supp, flow = render_pair(
            source, field, patch_size=patch, margin=margin, render_scale=r
        )
        assert flow.norm(dim=0).max() <= motion.max_flow + 1e-4
        assert flow.norm(dim=0).mean() > 0.1  # it does move
        warped = flow_warp(supp[None], flow[None])[0]
        inner = (slice(None), slice(10, -10), slice(10, -10))
        assert psnr(warped[inner], ref[inner]) > 40
        assert psnr(supp[inner], ref[inner]) < psnr(warped[inner], ref[inner]) - 10


def test_fields_stay_below_max_flow_and_fold_free():
    motion = MotionRange(max_translation=30.0, max_flow=10.0)
    for seed in range(20):
        field = random_flow_field(
            np.random.default_rng(seed), patch_size=64, margin=14, motion=motion
        )
        flow = field.on_grid(14, 14, 64, 64)
        assert flow.norm(dim=0).max() <= 10.0 + 1e-4
        # Jacobian of p -> p + flow(p) stays positive (no fold, hence no occlusion).
        dux = flow[0, :, 1:] - flow[0, :, :-1]
        dvy = flow[1, 1:, :] - flow[1, :-1, :]
        assert dux.min() > -0.8 and dvy.min() > -0.8


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for i in range(2):
        img = (textured(230, 260, seed=10 + i).permute(1, 2, 0).numpy() * 255).round()
        path = folder / f"{i:05d}.png"
        Image.fromarray(img.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def small_pairs(frames, **kwargs):
    kwargs.setdefault("motion", MotionRange(max_translation=4, max_flow=6.0))
    kwargs.setdefault("downscales", [2, 4])
    return SyntheticFlowPairs(frames, patch_size=32, render_scale=2, **kwargs)


def test_dataset_shapes_ranges_and_consistency(frames):
    ds = small_pairs(frames, seed=0, length=6, photometric=NO_PHOTO)
    assert len(ds) == 6
    for i in range(len(ds)):
        s = ds[i]
        assert s["ref"].shape == s["supp"].shape == (3, 32, 32)
        assert s["flow"].shape == (2, 32, 32)
        assert 0 <= s["ref"].min() and s["ref"].max() <= 1
        assert torch.equal(s["ref"], (s["ref"] * 255).round() / 255)  # 8-bit levels
        warped = flow_warp(s["supp"][None], s["flow"][None])[0]
        assert psnr(warped[:, 8:-8, 8:-8], s["ref"][:, 8:-8, 8:-8]) > 35


def test_dataset_is_reproducible_from_seed_and_index(frames):
    a, b = small_pairs(frames, seed=3, length=4), small_pairs(frames, seed=3, length=4)
    for i in (0, 3):
        assert all(torch.equal(a[i][k], b[i][k]) for k in ("ref", "supp", "flow"))
    assert not torch.equal(a[0]["flow"], a[1]["flow"])
    assert not torch.equal(a[0]["flow"], small_pairs(frames, seed=4, length=4)[0]["flow"])


def test_dataset_without_seed_follows_numpy_global_rng(frames):
    ds = small_pairs(frames)  # what the training loop uses: it seeds the global RNGs per sample
    np.random.seed(7)
    first = ds[1]
    np.random.seed(7)
    second = ds[1]
    assert all(torch.equal(first[k], second[k]) for k in ("ref", "supp", "flow"))
    assert not torch.equal(first["flow"], ds[1]["flow"])  # the global RNG has moved on


def test_frames_too_small_are_an_error_or_skipped(frames):
    with pytest.raises(ValueError, match="downscale 8 needs frames of at least"):
        small_pairs(frames, downscales=[2, 8])
    with pytest.raises(ValueError, match="patch_size"):
        SyntheticFlowPairs(frames, patch_size=48)
    ds = SyntheticFlowPairs(
        frames, patch_size=32, downscales=[2], motion=MotionRange(max_flow=4.0), skip_small=True
    )
    assert ds.skipped == 0 and len(ds) == 2
