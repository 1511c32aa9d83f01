"""Flow losses on cases with a known answer."""

import math

import pytest
import torch

from afvsr.flow.losses import (
    census_transform,
    downsample_flow,
    epe,
    multiscale_epe_loss,
    pyramid_flows,
    smoothness_loss,
    unsupervised_loss,
    valid_mask,
)
from afvsr.models.spynet import SPyNet


def smooth_image(h=32, w=32, phase=0.0):
    y = torch.linspace(0, 3.0, h).view(h, 1)
    x = torch.linspace(0, 3.0, w).view(1, w)
    img = torch.stack(
        [torch.sin(2 * x + y + phase), torch.cos(x - 2 * y), torch.sin(3 * x) * torch.cos(y)]
    )
    return (img * 0.4 + 0.5)[None]  # (1, 3, h, w)


def constant_flow(u, v, h=8, w=8, b=1):
    flow = torch.zeros(b, 2, h, w)
    flow[:, 0], flow[:, 1] = u, v
    return flow


def test_epe_of_known_fields():
    assert epe(constant_flow(3, 4), torch.zeros(1, 2, 8, 8)).item() == pytest.approx(5.0)
    # Half the pixels off by (1, 0), half exact: mean 0.5.
    pred = torch.zeros(2, 2, 4, 4)
    pred[0, 0] = 1.0
    assert epe(pred, torch.zeros(2, 2, 4, 4)).item() == pytest.approx(0.5)
    assert epe(constant_flow(-1, 2), constant_flow(-1, 2)).item() == 0.0
    with pytest.raises(ValueError, match=r"expected pred and target of one shape"):
        epe(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))


def test_downsampled_flow_is_in_coarse_pixels():
    flow = constant_flow(6.0, -2.0, 16, 16)
    coarse = downsample_flow(flow, 4)
    assert coarse.shape == (1, 2, 4, 4)
    assert torch.allclose(coarse, constant_flow(1.5, -0.5, 4, 4))


def test_multiscale_loss_weights_levels_finest_first():
    target = constant_flow(4.0, 0.0, 16, 16)
    exact = [downsample_flow(target, 2**k) for k in (2, 1, 0)]  # coarse to fine
    loss, final = multiscale_epe_loss(exact, target, [1.0, 1.0, 1.0], eps=0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and final.item() == 0.0
    # Zero flow everywhere: level k's EPE is 4 / 2^k in its own pixels.
    zeros = [torch.zeros_like(f) for f in exact]
    loss, final = multiscale_epe_loss(zeros, target, [1.0, 0.5, 0.25], eps=0)
    assert final.item() == pytest.approx(4.0)
    assert loss.item() == pytest.approx(1.0 * 4 + 0.5 * 2 + 0.25 * 1)
    loss, _ = multiscale_epe_loss(zeros, target, [1.0], eps=0)  # missing levels weigh 0
    assert loss.item() == pytest.approx(4.0)


def test_pyramid_flows_end_in_compute_flow():
    net = SPyNet().eval()
    ref, supp = smooth_image(64, 64), smooth_image(64, 64, phase=0.3)
    with torch.no_grad():
        levels = pyramid_flows(net, ref, supp)
        assert [tuple(f.shape[-2:]) for f in levels] == [
            (2, 2),
            (4, 4),
            (8, 8),
            (16, 16),
            (32, 32),
            (64, 64),
        ]
        assert torch.allclose(levels[-1], net.compute_flow(ref, supp), atol=1e-6)
    assert all(len(m._forward_hooks) == 0 for m in net.basic_module)  # hooks removed


def test_valid_mask_marks_samples_outside_the_frame():
    mask = valid_mask(constant_flow(2.0, 0.0, 4, 6))
    assert mask.shape == (1, 1, 4, 6)
    assert mask[0, 0, :, :4].eq(1).all() and mask[0, 0, :, 4:].eq(0).all()


def test_unsupervised_loss_is_zero_when_aligned_and_grows_with_misalignment():
    img = smooth_image(40, 40)
    loss, logs = unsupervised_loss(img, img, torch.zeros(1, 2, 40, 40))
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert set(logs) == {"photo", "census", "smooth"}
    # supp = img shifted right by s px: the true flow is (+s, 0); zero flow is misaligned by s.
    losses = []
    for s in (0, 1, 2, 4):
        supp = torch.roll(img, shifts=s, dims=-1)
        loss, _ = unsupervised_loss(img, supp, torch.zeros(1, 2, 40, 40), smooth_weight=0)
        losses.append(loss.item())
    assert losses[0] == pytest.approx(0.0, abs=1e-7)
    assert losses[1] < losses[2] < losses[3]
    supp = torch.roll(img, shifts=2, dims=-1)
    right, _ = unsupervised_loss(img, supp, constant_flow(2.0, 0.0, 40, 40))
    wrong, _ = unsupervised_loss(img, supp, constant_flow(-2.0, 0.0, 40, 40))
    # Not exactly 0: the census windows of the last columns reach the warp's border padding.
    assert right.item() < 0.01 and right.item() < wrong.item() / 10


def test_smoothness_is_zero_for_constant_flow_and_edge_aware():
    img = smooth_image(16, 16)
    assert smoothness_loss(constant_flow(3.0, -1.0, 16, 16), img).item() == 0.0
    ramp = torch.zeros(1, 2, 16, 16)
    ramp[:, 0] = torch.arange(16.0).view(1, 16)  # du/dx = 1
    flat = torch.full((1, 3, 16, 16), 0.5)
    edges = torch.zeros(1, 3, 16, 16)
    edges[..., ::2] = 1.0  # a strong edge between every column: smoothness is relaxed there
    # |du/dx| = 1 on one of two channels, 0 along y: 0.5 · (0.5 + 0).
    assert smoothness_loss(ramp, flat).item() == pytest.approx(0.25, rel=1e-5)
    assert smoothness_loss(ramp, edges).item() < 1e-3


def test_census_ignores_brightness_offsets():
    img = smooth_image(24, 24)
    a, b = census_transform(img), census_transform((img + 0.1).clamp(0, 1))
    assert a.shape == (1, 49, 24, 24)
    assert torch.allclose(a[..., 3:-3, 3:-3], b[..., 3:-3, 3:-3], atol=1e-4)
    assert math.isfinite(a.abs().max().item()) and a.abs().max() < 1
