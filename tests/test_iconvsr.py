"""IconVSR and its EDVR feature extractor at tiny sizes: shapes, gradients, refill, checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import afvsr
from afvsr.models import MODELS, IconVSR, SPyNet
from afvsr.models.dcn import ModulatedDCNPack
from afvsr.models.edvr import EDVRFeatureExtractor
from afvsr.models.iconvsr import keyframe_indices

TINY = {"mid_channels": 8, "num_blocks": 1}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_default_parameter_count_and_layout():
    model = IconVSR()
    assert count(model) == 8_694_991  # the reference IconVSR: 8.70M
    assert count(model.spynet) == 1_440_300
    assert count(model.extractor) == 2_227_488
    assert count(model.propagation) == 4_693_120
    assert count(model.reconstruction) == 334_083
    # Coupled propagation: the forward branch reads [LR frame, backward feature, state].
    assert model.propagation.forward_branch.conv_in.in_channels == 2 * 64 + 3
    assert model.propagation.backward_branch.conv_in.in_channels == 64 + 3
    assert MODELS["iconvsr"] is IconVSR
    assert model.kwargs == {
        "mid_channels": 64,
        "num_blocks": 30,
        "scale": 4,
        "keyframe_stride": 5,
        "temporal_padding": 2,
        # recorded since issue #19 (published weights: "bilinear", "reference")
        "upsample_mode": "bicubic",
        "boundary": "mirror",
        "flow_mode": "two-way",
    }


def test_shared_spynet_is_used_and_not_in_kwargs():
    spynet = SPyNet()
    model = IconVSR(**TINY, spynet=spynet)
    assert model.spynet is spynet and "spynet" not in model.kwargs


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_odd_size_shape_deterministic_eval(scale):
    model = IconVSR(**TINY, scale=scale).eval()
    lq = torch.rand(1, 3, 3, 37, 53)  # 3 frames: shorter than the extractor's 5-frame window
    with torch.no_grad():
        a, b = model(lq), model(lq)
    assert a.shape == (1, 3, 3, 37 * scale, 53 * scale)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    # At initialisation the network adds a small residual to the bicubic upsampling.
    base = F.interpolate(lq[0], scale_factor=scale, mode="bicubic", align_corners=False)
    assert (a[0] - base).abs().mean() < 0.5


@pytest.mark.parametrize("shape", [(2, 7, 3, 13, 11), (1, 1, 3, 5, 6), (1, 2, 3, 1, 1)])
def test_any_clip_length_and_tiny_frames(shape):
    model = IconVSR(**TINY, scale=2).eval()
    with torch.no_grad():
        out = model(torch.rand(*shape))
    b, t, _, h, w = shape
    assert out.shape == (b, t, 3, 2 * h, 2 * w)
    assert torch.isfinite(out).all()


def test_every_parameter_gets_a_gradient_and_offsets_can_learn():
    model = IconVSR(**TINY, scale=2)
    lq = torch.rand(1, 6, 3, 13, 11)  # keyframes 0, 5
    model(lq).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # The zero-initialised offset/mask predictors of every DCN pack get a real gradient...
    packs = [m for m in model.modules() if isinstance(m, ModulatedDCNPack)]
    assert len(packs) == 4
    for pack in packs:
        assert pack.conv_offset.weight.grad.abs().sum() > 0
    # ...and once they leave zero (after a first step), so do the offset convs feeding them.
    model.zero_grad()
    with torch.no_grad():
        for pack in packs:
            pack.conv_offset.weight.normal_(std=1e-2)
    model(lq).square().mean().backward()
    for name, p in model.extractor.named_parameters():
        assert p.grad.abs().sum() > 0, name


def test_keyframes_and_their_mirrored_windows():
    assert keyframe_indices(12, stride=5) == [0, 5, 10, 11]
    assert keyframe_indices(11, stride=5) == [0, 5, 10]
    assert keyframe_indices(1, stride=5) == [0]
    model = IconVSR(**TINY)
    assert model.keyframe_windows(3) == [[2, 1, 0, 1, 2], [0, 1, 2, 1, 0]]
    assert model.keyframe_windows(1) == [[0, 0, 0, 0, 0]]
    assert model.keyframe_windows(8)[1] == [3, 4, 5, 6, 7]
    assert IconVSR(**TINY, temporal_padding=1).keyframe_windows(2) == [[1, 0, 1], [0, 1, 0]]


def test_refill_features_are_the_extractor_on_each_window():
    model = IconVSR(**TINY).eval()
    lq = torch.rand(2, 3, 3, 9, 10)
    with torch.no_grad():
        refill = model.refill_features(lq)
        assert sorted(refill) == [0, 2]
        for key, window in zip([0, 2], model.keyframe_windows(3), strict=True):
            want = model.extractor(lq[:, window])
            assert refill[key].shape == (2, 8, 9, 10)
            assert torch.allclose(refill[key], want, atol=1e-6)
        # Splitting the windows over several extractor calls changes nothing.
        small = model.refill_features(lq, max_pixels=1)
        for key in refill:
            assert torch.allclose(small[key], refill[key], atol=1e-6)


def test_refill_and_coupling_reach_the_output():
    model = IconVSR(**TINY, keyframe_stride=3).eval()
    lq = torch.rand(1, 7, 3, 12, 12)  # keyframes 0, 3, 6
    with torch.no_grad():
        base = model(lq)
        # Frame 0 sees frame 6 through the backward branch, coupled into the forward branch.
        changed = lq.clone()
        changed[:, 6] = 0.0
        assert (model(changed)[:, 0] - base[:, 0]).abs().max() > 0
        # Silencing the refill (extractor features → 0) changes every frame.
        model.propagation.forward_fusion.weight[:, 8:].zero_()
        model.propagation.backward_fusion.weight[:, 8:].zero_()
        no_refill = model(lq)
    assert ((no_refill - base).abs().flatten(2).amax(-1) > 0).all()


def test_extractor_pads_to_multiple_of_four_and_crops_back():
    extractor = EDVRFeatureExtractor(mid_channels=8).eval()
    frames = torch.rand(2, 5, 3, 8, 12)
    with torch.no_grad():
        out = extractor(frames)
        assert out.shape == (2, 8, 8, 12)
        # A frame of size 7x10 is edge-padded to 8x12 internally; cropping gives the same
        # features as running the edge-padded frames directly, in the uncropped area.
        small = frames[..., :7, :10]
        padded = F.pad(small.reshape(10, 3, 7, 10), (0, 2, 0, 1), mode="replicate")
        direct = extractor(padded.view(2, 5, 3, 8, 12))
        assert torch.allclose(extractor(small), direct[..., :7, :10], atol=1e-6)
    with pytest.raises(ValueError, match=r"expected windows \(n, 5, 3, h, w\)"):
        extractor(frames[:, :3])


def test_save_load_roundtrip(tmp_path):
    model = IconVSR(**TINY, scale=3, keyframe_stride=2, temporal_padding=1).eval()
    path = tmp_path / "iconvsr.safetensors"
    afvsr.save_model(model, path)
    loaded = afvsr.load_model(path)
    assert isinstance(loaded, IconVSR) and not loaded.training
    assert loaded.kwargs == model.kwargs
    lq = torch.rand(1, 4, 3, 10, 9)
    with torch.no_grad():
        assert torch.equal(model(lq), loaded(lq))


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.rand(3, 3, 16, 16), "5 dims"),
        (torch.rand(1, 3, 4, 16, 16), "3 .RGB. channels"),
        (torch.rand(1, 0, 3, 16, 16), "non-empty"),
        ([[0.0]], "expected a torch.Tensor"),
    ],
)
def test_bad_inputs_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        IconVSR(**TINY)(bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"scale": 5}, "scale 2, 3 or 4, got 5"),
        ({"mid_channels": 12}, "multiple of 8 .* got 12"),
        ({"num_blocks": -1}, "num_blocks >= 0, got 8, -1"),
        ({"keyframe_stride": 0}, "keyframe_stride >= 1 .* got 0, 2"),
        ({"temporal_padding": -1}, "temporal_padding >= 0, got 5, -1"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IconVSR(**{**TINY, **kwargs})
