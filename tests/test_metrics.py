"""PSNR / SSIM / Y conversion against hand-computed values and an independent SSIM."""

import math

import numpy as np
import pytest
import torch

from afvsr.evaluation.metrics import frame_metrics, mean_metric, psnr, quantize, rgb_to_y, ssim

PSNR_ONE_LEVEL = 20 * math.log10(255)  # 48.1308 dB: every value off by one uint8 level


def levels(*shape, low=0, high=255, seed=0):
    """Random uint8 levels as floats in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high + 1, shape, generator=g).double() / 255


def test_identical_images_give_inf_psnr_and_ssim_one():
    x = levels(2, 3, 16, 18)
    m = frame_metrics(x, x.clone())
    assert m["psnr_rgb"].shape == (2,)
    assert torch.isinf(m["psnr_rgb"]).all() and torch.isinf(m["psnr_y"]).all()
    assert torch.equal(m["ssim_rgb"], torch.ones(2, dtype=torch.float64))
    assert torch.equal(m["ssim_y"], torch.ones(2, dtype=torch.float64))


def test_uniform_offset_of_one_level():
    gt = levels(3, 12, 12, high=254)
    pred = gt + 1 / 255
    assert psnr(pred, gt).item() == pytest.approx(PSNR_ONE_LEVEL, abs=1e-9)
    assert PSNR_ONE_LEVEL == pytest.approx(48.13, abs=0.005)
    # Y moves by (65.481 + 128.553 + 24.966) / 255 = 219/255 of a level.
    expected_y = 20 * math.log10(255 / (219 / 255))
    assert psnr(pred, gt, y_channel=True).item() == pytest.approx(expected_y, abs=1e-9)


def test_psnr_hand_computed_single_pixel():
    gt = torch.zeros(3, 2, 2)
    pred = gt.clone()
    pred[1, 0, 1] = 1.0  # one value off by 255 among 12: MSE = 255² / 12
    assert psnr(pred, gt).item() == pytest.approx(10 * math.log10(12), abs=1e-9)


def test_outputs_are_rounded_to_uint8_first():
    gt = levels(3, 12, 12)
    close = (gt + 0.4 / 255).clamp(0, 1)  # rounds back onto gt
    assert math.isinf(psnr(close, gt).item())
    over = (gt + 0.6 / 255).clamp(0, 1)  # rounds up a level (except where gt is 255)
    assert psnr(over, gt).item() > PSNR_ONE_LEVEL - 0.01
    # out-of-range values are clamped like an 8-bit image would be
    assert math.isinf(psnr(torch.full((3, 4, 4), 1.7), torch.ones(3, 4, 4)).item())
    # uint8 input is used as is
    u8 = (gt * 255).round().to(torch.uint8)
    assert math.isinf(psnr(u8, gt).item())


def test_y_of_pure_colours():
    colours = torch.tensor(
        [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.float64
    ).view(5, 3, 1, 1)
    y = rgb_to_y(colours).flatten().tolist()
    assert y == pytest.approx([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], abs=1e-9)


def test_border_crop_ignores_the_border():
    gt = levels(3, 20, 20)
    pred = gt.clone()
    pred[:, :2, :] = 1 - pred[:, :2, :]  # damage two rows at the top
    assert psnr(pred, gt).item() < 30
    assert math.isinf(psnr(pred, gt, border=2).item())
    assert ssim(pred, gt, border=2).item() == 1.0
    with pytest.raises(ValueError, match="border"):
        psnr(pred, gt, border=10)


def test_ssim_of_constant_images_is_the_luminance_term():
    # No variance: SSIM = (2 x y + C1) / (x² + y² + C1) everywhere.
    a, b = torch.full((1, 11, 13), 100 / 255), torch.full((1, 11, 13), 110 / 255)
    a, b = a.expand(3, 11, 13), b.expand(3, 11, 13)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-12)


def reference_ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM of one channel on 0–255, written out directly: for every 11x11 window
    position, Gaussian-weighted means, variances and covariance; then the mean of the map."""
    k, sigma = 11, 1.5
    r = np.arange(k) - (k - 1) / 2
    g1 = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g1, g1)
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(x.shape[0] - k + 1):
        for j in range(x.shape[1] - k + 1):
            px, py = x[i : i + k, j : j + k], y[i : i + k, j : j + k]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            vals.append(
                ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return float(np.mean(vals))


def test_ssim_matches_a_direct_implementation():
    gt = levels(3, 16, 14, seed=1)
    noise = levels(3, 16, 14, low=0, high=60, seed=2) - 30 / 255
    pred = (gt * 0.8 + 0.1 + noise).clamp(0, 1)
    a, b = quantize(pred).numpy(), quantize(gt).numpy()
    expected_rgb = np.mean([reference_ssim_channel(a[c], b[c]) for c in range(3)])
    assert ssim(pred, gt).item() == pytest.approx(expected_rgb, abs=1e-10)
    ya, yb = rgb_to_y(quantize(pred))[0].numpy(), rgb_to_y(quantize(gt))[0].numpy()
    assert ssim(pred, gt, y_channel=True).item() == pytest.approx(
        reference_ssim_channel(ya, yb), abs=1e-10
    )
    assert 0.0 < expected_rgb < 0.95  # a real difference, not a degenerate case


def test_batched_equals_per_frame():
    gt, pred = levels(2, 3, 3, 12, 15, seed=3), levels(2, 3, 3, 12, 15, seed=4)
    batched = frame_metrics(pred, gt)
    for name, values in batched.items():
        assert values.shape == (2, 3)
        single = frame_metrics(pred[1, 2], gt[1, 2])[name]
        assert values[1, 2].item() == pytest.approx(single.item(), abs=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="RGB"):
        psnr(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), y_channel=True)


def test_mean_metric():
    assert mean_metric([30.0, 32.0]) == 31.0
    assert math.isinf(mean_metric([30.0, math.inf]))
    with pytest.raises(ValueError):
        mean_metric([])
