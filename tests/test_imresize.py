"""MATLAB-compatible bicubic resize: cases derivable by hand, plus two independent references.

Checks (each documented in docs/data.md, "The BI degradation"):
- kernel weights: every row sums to one; the x1/2 and x4 rows equal hand-computed Keys weights;
- constant images stay constant everywhere; linear ramps stay linear away from the borders;
- output sizes: 720x576 at x1/4 is 180x144, odd sizes round up, x4 inverts x1/4 exactly;
- a direct loop over output pixels written from MATLAB's formula (1-based, as in its source
  description) agrees on small random images, shrinking and enlarging;
- Pillow's bicubic (same kernel, a = -0.5, but clipped borders) agrees away from the borders;
- a resized box of a patch equals the same box of the resized whole frame (used by samples);
- ``bi_degrade`` rounds to 8-bit levels and refuses sizes that are not multiples of the scale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from afvsr.imresize import (
    _axis_matrix,
    _axis_table,
    bi_degrade,
    cubic,
    imresize,
    imresize_box,
    mod_crop,
    source_box,
)


def matlab_loop_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Direct, slow MATLAB imresize (bicubic, antialiased) of a 2-D float64 array."""

    def keys(x: float) -> float:
        ax = abs(x)
        if ax <= 1:
            return 1.5 * ax**3 - 2.5 * ax**2 + 1
        if ax <= 2:
            return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
        return 0.0

    def contributions(n_in: int, n_out: int) -> list[list[tuple[int, float]]]:
        scale = n_out / n_in
        width = 4 / scale if scale < 1 else 4
        aux = list(range(1, n_in + 1)) + list(range(n_in, 0, -1))  # MATLAB's mirror table
        rows = []
        for x in range(1, n_out + 1):  # 1-based like MATLAB
            u = x / scale + 0.5 * (1 - 1 / scale)
            left = math.floor(u - width / 2)
            taps = []
            for p in range(math.ceil(width) + 2):
                j = left + p
                d = u - j
                wgt = scale * keys(scale * d) if scale < 1 else keys(d)
                taps.append((aux[(j - 1) % len(aux)] - 1, wgt))
            total = sum(wgt for _, wgt in taps)
            rows.append([(j, wgt / total) for j, wgt in taps])
        return rows

    rows_h = contributions(img.shape[0], out_h)
    rows_w = contributions(img.shape[1], out_w)
    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        for x in range(out_w):
            out[y, x] = sum(wy * wx * img[iy, ix] for iy, wy in rows_h[y] for ix, wx in rows_w[x])
    return out


def test_cubic_kernel_values() -> None:
    x = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5], dtype=torch.float64)
    expected = [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625]
    assert cubic(x).tolist() == expected


@pytest.mark.parametrize(
    "n_in,n_out", [(720, 180), (576, 144), (37, 10), (10, 40), (7, 13), (9, 5)]
)
def test_weights_sum_to_one(n_in: int, n_out: int) -> None:
    _, weight = _axis_table(n_in, n_out, n_out / n_in)
    torch.testing.assert_close(weight.sum(1), torch.ones(n_out, dtype=torch.float64))
    matrix = _axis_matrix(n_in, n_out, n_out / n_in, torch.float64, torch.device("cpu"))
    torch.testing.assert_close(matrix.sum(1), torch.ones(n_out, dtype=torch.float64))


def test_half_scale_weights_by_hand() -> None:
    # x1/2: kernel 0.5*cubic(x/2), taps at distances 0.5, 1.5, 2.5, 3.5 from the centre:
    # 0.5*cubic(0.25) = 0.43359375, 0.5*cubic(0.75) = 0.11328125,
    # 0.5*cubic(1.25) = -0.03515625, 0.5*cubic(1.75) = -0.01171875 (they sum to 1/2 per side).
    matrix = _axis_matrix(20, 10, 0.5, torch.float64, torch.device("cpu"))
    side = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
    row = matrix[5]  # output 5 is centred at input 10.5: taps 7..14
    assert row[7:15].tolist() == side + side[::-1]
    assert row[:7].abs().sum() == 0 and row[15:].abs().sum() == 0


def test_quadruple_scale_weights_by_hand() -> None:
    # x4: output 8 sits at input (8 + 0.5)/4 - 0.5 = 1.625; distances 1.625, 0.625, 0.375, 1.375.
    matrix = _axis_matrix(10, 40, 4.0, torch.float64, torch.device("cpu"))
    assert matrix[8, :4].tolist() == [-0.0439453125, 0.3896484375, 0.7275390625, -0.0732421875]
    assert matrix[8, 4:].abs().sum() == 0


@pytest.mark.parametrize("scale", [0.25, 0.5, 1 / 3, 0.7, 2, 4, 1.5])
def test_constant_image_stays_constant(scale: float) -> None:
    x = torch.full((2, 3, 23, 31), 0.37)
    y = imresize(x, scale=scale)
    torch.testing.assert_close(y, torch.full_like(y, 0.37))


@pytest.mark.parametrize("scale", [0.25, 0.5, 2, 4])
def test_linear_ramp_stays_linear_in_the_interior(scale: float) -> None:
    # Keys' cubic reproduces linear functions, and for integer factors the widened kernel is
    # sampled symmetrically, so away from the mirrored borders a*x + b maps to a*u + b with
    # u = (i + 0.5)/scale - 0.5, the input position that output pixel i samples.
    w = 64
    x = (0.01 * torch.arange(w, dtype=torch.float64) + 0.1).expand(1, 16, w)
    y = imresize(x, scale=scale)[0, 0]
    u = (torch.arange(y.numel(), dtype=torch.float64) + 0.5) / scale - 0.5
    margin = 2 * max(1 / scale, 1) + 1  # kernel half-width in input pixels, plus one
    inside = (u >= margin) & (u <= w - 1 - margin)
    assert inside.sum() >= 4
    torch.testing.assert_close(y[inside], 0.01 * u[inside] + 0.1)


def test_output_sizes() -> None:
    frame = torch.zeros(3, 576, 720)
    assert imresize(frame, scale=1 / 4).shape == (3, 144, 180)  # 720x576 -> 180x144
    assert imresize(torch.zeros(3, 144, 180), scale=4).shape == (3, 576, 720)  # exact inverse
    assert imresize(torch.zeros(3, 577, 721), scale=1 / 4).shape == (3, 145, 181)  # ceil
    assert imresize(torch.zeros(3, 575, 719), scale=1 / 4).shape == (3, 144, 180)
    assert imresize(torch.zeros(1, 300, 99), scale=1 / 3).shape == (1, 100, 33)  # no float noise
    assert imresize(torch.zeros(1, 10, 10), scale=1.1).shape == (1, 11, 11)
    assert imresize(torch.zeros(1, 7, 9), size=(3, 20)).shape == (1, 3, 20)


@pytest.mark.parametrize("out_size", [(3, 4), (6, 7), (4, 3), (22, 26), (44, 52), (17, 19), (8, 9)])
def test_matches_direct_matlab_loop(out_size: tuple[int, int]) -> None:
    img = np.random.default_rng(3).random((11, 13))
    expected = matlab_loop_resize(img, *out_size)
    got = imresize(torch.from_numpy(img)[None], size=out_size)[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2, 4])
def test_matches_pillow_away_from_borders(scale: float) -> None:
    # Pillow's BICUBIC is the same antialiased Keys kernel (a = -0.5) but clips it at the borders.
    a = np.random.default_rng(0).random((40, 52)).astype(np.float32)
    out_h, out_w = round(40 * scale), round(52 * scale)
    ref = np.asarray(Image.fromarray(a, mode="F").resize((out_w, out_h), Image.BICUBIC))
    got = imresize(torch.from_numpy(a)[None], scale=scale)[0].numpy()
    m = int(3 * max(scale, 1)) + 2  # output pixels that can see a border
    np.testing.assert_allclose(got[m:-m, m:-m], ref[m:-m, m:-m], atol=1e-5)
    assert np.abs(got - ref).max() > 1e-3  # and the borders do differ (mirrored vs clipped)


def test_batched_equals_per_image() -> None:
    x = torch.rand(2, 3, 3, 20, 24)
    y = imresize(x, scale=0.25)
    assert y.shape == (2, 3, 3, 5, 6)
    torch.testing.assert_close(y[1, 2], imresize(x[1, 2], scale=0.25))


@pytest.mark.parametrize("scale", [0.25, 0.5])
def test_box_of_patch_equals_box_of_whole_frame(scale: float) -> None:
    x = torch.rand(2, 3, 48, 60, dtype=torch.float64)
    full = imresize(x, scale=scale)
    for box in [(0, 0, 4, 5), (3, 4, 5, 3), (7, 10, 5, 5), (2, 0, 3, 7)]:
        box = tuple(int(v * 0.25 / scale) if i < 2 else v for i, v in enumerate(box))
        top, left, height, width = box
        src = source_box((48, 60), box, scale=scale)
        patch = x[..., src[0] : src[0] + src[2], src[1] : src[1] + src[3]]
        got = imresize_box(patch, box, scale=scale, in_size=(48, 60), origin=src[:2])
        torch.testing.assert_close(got, full[..., top : top + height, left : left + width])
    with pytest.raises(ValueError, match="cover"):
        imresize_box(x[..., 10:, :], (0, 0, 2, 2), scale=scale, in_size=(48, 60), origin=(10, 0))


def test_bi_degrade_rounds_to_uint8_levels() -> None:
    gt = torch.rand(2, 3, 16, 20)
    lq = bi_degrade(gt, scale=4)
    raw = bi_degrade(gt, scale=4, round_uint8=False)
    assert lq.shape == (2, 3, 4, 5)
    torch.testing.assert_close(raw, imresize(gt, scale=0.25))
    levels = lq * 255
    torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)
    torch.testing.assert_close(lq, raw.clamp(0, 1), atol=0.5 / 255 + 1e-6, rtol=0)
    assert (lq - raw.clamp(0, 1)).abs().max() > 0  # rounding did change something


def test_mod_crop_and_bad_inputs() -> None:
    assert mod_crop(torch.zeros(3, 481, 854), 4).shape == (3, 480, 852)
    with pytest.raises(ValueError, match="divisible by scale 4"):
        bi_degrade(torch.zeros(3, 18, 16), scale=4)
    with pytest.raises(ValueError, match="floating-point"):
        imresize(torch.zeros(3, 8, 8, dtype=torch.uint8), scale=0.5)
    with pytest.raises(ValueError, match="exactly one of scale or size"):
        imresize(torch.zeros(3, 8, 8), scale=0.5, size=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        imresize(torch.zeros(3, 8, 8), scale=-2)
