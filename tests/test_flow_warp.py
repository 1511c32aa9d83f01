"""flow_warp and SPyNet's conventions on cases with a known answer."""

import torch
import torch.nn.functional as F

from afvsr.models.common import flow_warp
from afvsr.models.spynet import SPyNet


def smooth_image(h=32, w=40):
    y = torch.linspace(0, 3.14, h).view(h, 1)
    x = torch.linspace(0, 3.14, w).view(1, w)
    img = torch.stack([torch.sin(x + y), torch.cos(x - 2 * y), torch.sin(2 * x) * torch.cos(y)])
    return (img * 0.5 + 0.5)[None]  # (1, 3, h, w)


def test_integer_translation_recovers_shifted_image():
    img = smooth_image()
    shifted = torch.roll(img, shifts=(2, 3), dims=(2, 3))  # content moves right 3, down 2
    # To bring `shifted` back onto `img`, each output pixel p samples shifted at p + (3, 2).
    flow = torch.zeros(1, 2, 32, 40)
    flow[:, 0], flow[:, 1] = 3.0, 2.0
    warped = flow_warp(shifted, flow)
    assert torch.allclose(warped[..., :-2, :-3], img[..., :-2, :-3], atol=1e-5)
    # Samples past the border are zero with padding "zeros", the edge value with "border".
    assert warped[..., -1, -1].abs().max() == 0
    border = flow_warp(shifted, flow, padding_mode="border")
    assert torch.allclose(border[..., -1, -1], shifted[..., -1, -1])


def test_half_pixel_flow_is_the_bilinear_average():
    img = smooth_image()
    flow = torch.zeros(1, 2, 32, 40)
    flow[:, 0] = 0.5
    warped = flow_warp(img, flow)
    expected = 0.5 * (img[..., :-1] + img[..., 1:])
    assert torch.allclose(warped[..., :-1], expected, atol=1e-5)


def test_zero_flow_is_identity():
    img = smooth_image()
    assert torch.allclose(flow_warp(img, torch.zeros(1, 2, 32, 40)), img, atol=1e-6)


def test_spynet_output_size_and_rescaling():
    net = SPyNet().eval()
    for level in net.basic_module:  # untrained SPyNet predicts zero flow: give it some motion
        torch.nn.init.normal_(level.body[-1].weight, std=0.01)
        torch.nn.init.constant_(level.body[-1].bias, 0.3)
    ref = smooth_image(37, 53)
    with torch.no_grad():
        flow = net(ref, ref)
        assert flow.shape == (1, 2, 37, 53)
        # The x/y rescaling is by w/w_up and h/h_up.
        up = F.interpolate(ref, size=(64, 64), mode="bilinear", align_corners=False)
        inner = net.compute_flow(up, up)
        expected = F.interpolate(inner, size=(37, 53), mode="bilinear", align_corners=False)
        expected[:, 0] *= 53 / 64
        expected[:, 1] *= 37 / 64
        assert torch.allclose(flow, expected, atol=1e-5)


def test_untrained_spynet_predicts_zero_flow():
    img = smooth_image()
    assert torch.equal(SPyNet()(img, torch.roll(img, 3, dims=3)), torch.zeros(1, 2, 32, 40))


def test_spynet_rejects_mismatched_inputs():
    import pytest

    with pytest.raises(ValueError, match="expected ref and supp"):
        SPyNet()(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 16))
