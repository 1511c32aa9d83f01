"""Every video model at a tiny size: shapes, values, gradients, determinism, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from afvsr.models import AFVSR, MODELS, BasicVSR, Bicubic, SPyNet, build_model

TINY = {"mid_channels": 8, "num_blocks": 1}


def tiny(name: str, scale: int = 4, **extra):
    if name == "bicubic":
        return Bicubic(scale=scale)
    return build_model(name, scale=scale, **TINY, **extra)


VIDEO_MODELS = [
    ("basicvsr", {}),
    ("basicvsr", {"flow_mode": "one-way"}),
    ("afvsr", {}),
    ("afvsr", {"num_heads": 2}),
    ("afvsr", {"rates": [1, 3, 5]}),
    ("afvsr", {"rates": [2], "window": 3}),
    ("afvsr", {"flow_mode": "one-way"}),
]
if "iconvsr" in MODELS:
    VIDEO_MODELS.append(("iconvsr", {}))


def test_default_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(SPyNet()) == 1_440_300
    assert count(BasicVSR()) == 6_291_311
    assert count(AFVSR()) == 6_844_719
    assert count(AFVSR().attention) == 553_408
    assert count(AFVSR(num_heads=4)) == 7_767_215
    assert count(Bicubic()) == 0


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name,extra", VIDEO_MODELS)
def test_forward_backward_every_parameter_gets_gradient(name, extra, scale):
    model = tiny(name, scale, **extra)
    lq = torch.rand(1, 4, 3, 13, 11)
    out = model(lq)
    assert out.shape == (1, 4, 3, 13 * scale, 11 * scale)
    assert torch.isfinite(out).all()
    # At initialisation the network adds a small residual to the bicubic upsampling.
    base = F.interpolate(lq[0], scale_factor=scale, mode="bicubic", align_corners=False)
    assert (out[0] - base).abs().mean() < 0.5
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name,extra", VIDEO_MODELS)
def test_odd_size_eval_is_deterministic(name, extra):
    model = tiny(name, 4, **extra).eval()
    lq = torch.rand(1, 3, 3, 37, 53)
    with torch.no_grad():
        a, b = model(lq), model(lq)
    assert a.shape == (1, 3, 3, 148, 212)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name,extra", VIDEO_MODELS)
def test_frames_rebuilds_only_those_output_frames(name, extra):
    torch.manual_seed(0)
    model = tiny(name, 2, **extra).eval()
    lq = torch.rand(1, 7, 3, 16, 18)
    modes = [{"mode": "sequence"}, {"mode": "window"}] if name == "afvsr" else [{}]
    with torch.no_grad():
        for kwargs in modes:
            whole = model(lq, **kwargs)
            for keep in (slice(2, 5), slice(0, 7), slice(6, 7)):
                part = model(lq, frames=keep, **kwargs)
                torch.testing.assert_close(part, whole[:, keep], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_model_matches_imresize_and_range(scale):
    from afvsr.imresize import imresize

    lq = torch.rand(2, 3, 3, 9, 7)
    out = Bicubic(scale=scale)(lq)
    assert out.shape == (2, 3, 3, 9 * scale, 7 * scale)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out, imresize(lq, scale=scale).clamp(0, 1))
    # A constant clip stays constant.
    const = torch.full((1, 2, 3, 5, 6), 0.3)
    assert torch.allclose(
        Bicubic(scale=scale)(const), torch.full_like(Bicubic(scale=scale)(const), 0.3), atol=1e-6
    )


def test_basicvsr_single_frame_and_batch_independence():
    model = tiny("basicvsr").eval()
    a, b = torch.rand(1, 3, 3, 16, 16), torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        both = model(torch.cat([a, b]))
        assert torch.allclose(both[0:1], model(a), atol=1e-5)
        assert model(a[:, :1]).shape == (1, 1, 3, 64, 64)


def test_basicvsr_propagates_information_both_ways():
    model = tiny("basicvsr").eval()
    lq = torch.rand(1, 5, 3, 16, 16)
    changed = lq.clone()
    changed[:, 4] = 0.0
    with torch.no_grad():
        a, b = model(lq), model(changed)
    # Frame 0 sees frame 4 through the backward branch.
    assert (a[:, 0] - b[:, 0]).abs().max() > 0


@pytest.mark.parametrize("flow_mode", ["two-way", "one-way"])
def test_only_matches_full_propagation(flow_mode):
    model = tiny("basicvsr", flow_mode=flow_mode).eval()
    with torch.no_grad():
        for p in model.spynet.parameters():
            p.add_(0.05 * torch.randn_like(p))  # a real flow, not SPyNet's initial zeros
    lq = torch.rand(2, 5, 3, 12, 14)
    with torch.no_grad():
        full = model.propagate(lq)
        for i in range(5):
            assert torch.allclose(model.propagate(lq, only=i), full[:, i], atol=1e-6)


def test_sliced_flow_and_reconstruction_match_one_call():
    """Memory bounds (SPyNet.max_pixels, reconstruct_frames' max_pixels) change no value."""
    from afvsr.models.common import reconstruct_frames

    torch.manual_seed(0)
    model = tiny("basicvsr")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # SPyNet's zero-initialised last convs included
    lq = torch.rand(1, 5, 3, 12, 14)
    ref, supp = lq[0, :-1], lq[0, 1:]
    one_call = model.spynet(ref, supp)
    model.spynet.max_pixels = 2 * 32 * 32  # frames padded to 32x32: slices of 2, 2 pairs
    sliced = model.spynet(ref, supp)
    assert one_call.abs().max() > 1e-3  # a real flow, not zeros
    assert torch.allclose(sliced, one_call, atol=1e-6)

    feats = model.propagate(lq)
    whole = reconstruct_frames(model.reconstruction, feats, lq, max_pixels=1 << 30)
    parts = reconstruct_frames(model.reconstruction, feats, lq, max_pixels=2 * 48 * 56)
    assert torch.allclose(parts, whole, atol=1e-6)
    parts.square().mean().backward()  # slices written into one buffer still carry gradients
    assert model.reconstruction.conv_last.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.rand(3, 3, 16, 16), "5 dims"),
        (torch.rand(1, 3, 4, 16, 16), "3 .RGB. channels"),
        (torch.rand(1, 0, 3, 16, 16), "non-empty"),
    ],
)
@pytest.mark.parametrize("name,extra", VIDEO_MODELS[:3] + [("bicubic", {})])
def test_bad_inputs_raise_value_error(name, extra, bad, match):
    with pytest.raises(ValueError, match=match):
        tiny(name, **extra)(bad)


@pytest.mark.parametrize("name", ["basicvsr", "afvsr", "bicubic"])
def test_unsupported_scale(name):
    with pytest.raises(ValueError, match="scale 2, 3 or 4, got 5"):
        tiny(name, scale=5)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="expected a model name"):
        build_model("edsr")
