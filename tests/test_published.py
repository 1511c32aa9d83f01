"""Published checkpoints (issue #19): BasicSR's and mmagic's SPyNet, BasicVSR, IconVSR and EDVR
extractor files load into afvsr, round-trip, and compute what their networks compute.

Fixtures are built here from the key names of BasicSR's and mmagic's sources (tiny sizes where
the layouts allow); BasicSR itself is never imported.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import afvsr
from afvsr.checkpoint import load_backbone, load_extractor, load_spynet, load_upscaler
from afvsr.cli import main
from afvsr.errors import AfvsrError
from afvsr.models import AFVSR, BasicVSR, IconVSR, SPyNet
from afvsr.models.basicvsr import propagate
from afvsr.models.common import flow_warp, reconstruct_frames
from afvsr.models.edvr import EDVRFeatureExtractor
from afvsr.models.iconvsr import reference_window
from afvsr.published import from_afvsr, read_published

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SPYNET_FILE = SHARED / "weights" / "spynet_sintel_final_basicsr_format.pth"


def randomized(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model.eval()


def published_basicvsr_keys(layout: str, num_blocks: int) -> dict[str, tuple[int, ...]]:
    """BasicVSR's tensor names and shapes as BasicSR's ``basicvsr_arch.py`` / mmagic's
    ``basicvsr_net.py`` declare them (64 channels, x4)."""
    c = 64
    keys: dict[str, tuple[int, ...]] = {}
    chans = [8, 32, 64, 32, 16, 2]
    for level in range(6):
        for j in range(5):
            name = (
                f"spynet.basic_module.{level}.basic_module.{2 * j}"
                if layout == "basicsr"
                else f"spynet.basic_module.{level}.basic_module.{j}.conv"
            )
            keys[f"{name}.weight"] = (chans[j + 1], chans[j], 7, 7)
            keys[f"{name}.bias"] = (chans[j + 1],)
    trunk = "trunk" if layout == "basicsr" else "resblocks"
    for d in ("backward", "forward"):
        keys[f"{d}_{trunk}.main.0.weight"] = (c, c + 3, 3, 3)
        keys[f"{d}_{trunk}.main.0.bias"] = (c,)
        for i in range(num_blocks):
            for conv in ("conv1", "conv2"):
                keys[f"{d}_{trunk}.main.2.{i}.{conv}.weight"] = (c, c, 3, 3)
                keys[f"{d}_{trunk}.main.2.{i}.{conv}.bias"] = (c,)
    keys["fusion.weight"], keys["fusion.bias"] = (c, 2 * c, 1, 1), (c,)
    up1, up2 = (
        ("upconv1", "upconv2")
        if layout == "basicsr"
        else ("upsample1.upsample_conv", "upsample2.upsample_conv")
    )
    for up in (up1, up2):
        keys[f"{up}.weight"], keys[f"{up}.bias"] = (4 * c, c, 3, 3), (4 * c,)
    keys["conv_hr.weight"], keys["conv_hr.bias"] = (c, c, 3, 3), (c,)
    keys["conv_last.weight"], keys["conv_last.bias"] = (3, c, 3, 3), (3,)
    return keys


def fixture_state(layout: str, num_blocks: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {
        k: torch.randn(shape, generator=g) * 0.02
        for k, shape in published_basicvsr_keys(layout, num_blocks).items()
    }
    state["spynet.mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    state["spynet.std"] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return state


@pytest.mark.parametrize("layout", ["basicsr", "mmagic"])
def test_documented_key_names_load_into_the_right_modules(tmp_path, layout):
    state = fixture_state(layout, num_blocks=2)
    if layout == "basicsr":
        path, container = tmp_path / "BasicVSR_REDS4.pth", {"params": state}
        trunk, up2 = "backward_trunk", "upconv2"
    else:
        generator = {f"generator.{k}": v for k, v in state.items()}
        container = {
            "meta": {"epoch": 1},
            "state_dict": {**generator, "step_counter": torch.ones(1)},
        }
        path, trunk, up2 = (
            tmp_path / "basicvsr_reds4.pth",
            "backward_resblocks",
            "upsample2.upsample_conv",
        )
    torch.save(container, path)
    model = afvsr.load_model(path)
    assert isinstance(model, BasicVSR)
    assert model.kwargs == {
        "mid_channels": 64,
        "num_blocks": 2,
        "scale": 4,
        "upsample_mode": "bilinear",
        "flow_mode": "two-way",  # the published models run SPyNet both ways
    }
    own = model.state_dict()
    assert torch.equal(
        own["propagation.backward_branch.blocks.1.conv2.weight"],
        state[f"{trunk}.main.2.1.conv2.weight"],
    )
    assert torch.equal(own["reconstruction.upsample.body.3.bias"], state[f"{up2}.bias"])
    spy = (
        "basic_module.3.basic_module.4"
        if layout == "basicsr"
        else "basic_module.3.basic_module.2.conv"
    )
    assert torch.equal(own["spynet.basic_module.3.body.4.weight"], state[f"spynet.{spy}.weight"])
    pub = read_published(path)
    assert (pub.layout, pub.family) == (layout, "basicvsr")
    assert "spynet.mean" in pub.ignored and ("step_counter" in pub.ignored) == (layout == "mmagic")


def test_both_layouts_compute_the_same_and_a_bilinear_base(tmp_path):
    state = fixture_state("basicsr")
    torch.save({"params": state}, tmp_path / "b.pth")
    model = afvsr.load_model(tmp_path / "b.pth")
    torch.save(
        from_afvsr("basicvsr", model.kwargs, model.state_dict(), "mmagic"), tmp_path / "m.pth"
    )
    other = afvsr.load_model(tmp_path / "m.pth")
    lq = torch.rand(1, 3, 3, 10, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, out2 = model(lq), other(lq)
        assert torch.equal(out, out2)
        # With conv_last zero the network adds nothing: the output is the bilinear base exactly.
        model.reconstruction.conv_last.weight.zero_()
        model.reconstruction.conv_last.bias.zero_()
        base = F.interpolate(lq[0], scale_factor=4, mode="bilinear", align_corners=False)
        assert torch.allclose(model(lq)[0], base, atol=1e-6)
        bicubic = F.interpolate(lq[0], scale_factor=4, mode="bicubic", align_corners=False)
        assert (model(lq)[0] - bicubic).abs().max() > 1e-3


def test_params_ema_is_preferred_and_said(tmp_path):
    ema, plain = fixture_state("basicsr", seed=1), fixture_state("basicsr", seed=2)
    torch.save({"params": plain, "params_ema": ema}, tmp_path / "both.pth")
    pub = read_published(tmp_path / "both.pth")
    assert pub.key_set.startswith("params_ema")
    assert "params_ema" in pub.describe() and "preferred over params" in pub.describe()
    assert torch.equal(pub.tensors["propagation.fusion.weight"], ema["fusion.weight"])


@pytest.mark.parametrize("layout", ["basicsr", "mmagic"])
@pytest.mark.parametrize("family", ["spynet", "basicvsr", "iconvsr", "edvr"])
def test_round_trip_is_the_identity(tmp_path, family, layout):
    model = {
        "spynet": lambda: SPyNet(),
        "basicvsr": lambda: BasicVSR(num_blocks=1, upsample_mode="bilinear"),
        "iconvsr": lambda: IconVSR(num_blocks=1, temporal_padding=3, boundary="reference"),
        "edvr": lambda: EDVRFeatureExtractor(mid_channels=16, num_frames=3, num_blocks=2),
    }[family]()
    randomized(model)
    kwargs = getattr(model, "kwargs", {})
    torch.save(from_afvsr(family, kwargs, model.state_dict(), layout), tmp_path / "x.pth")
    pub = read_published(tmp_path / "x.pth")
    assert (pub.family, pub.layout) == (family, layout)
    own = model.state_dict()
    assert pub.tensors.keys() == own.keys()
    assert all(torch.equal(pub.tensors[k], own[k]) for k in own)
    if family == "iconvsr":
        assert pub.kwargs["temporal_padding"] == 3 and pub.kwargs["keyframe_stride"] == 5
        assert pub.kwargs["upsample_mode"] == "bilinear" and pub.kwargs["boundary"] == "reference"
    if family == "edvr":
        assert pub.kwargs == {
            "mid_channels": 16,
            "num_frames": 3,
            "num_blocks": 2,
            "deform_groups": 8,
        }


def test_keyframe_stride_override_and_extractor_for_training(tmp_path):
    icon = randomized(IconVSR(num_blocks=1, upsample_mode="bilinear", boundary="reference"))
    torch.save(from_afvsr("iconvsr", icon.kwargs, icon.state_dict(), "basicsr"), tmp_path / "i.pth")
    assert afvsr.load_model(tmp_path / "i.pth", keyframe_stride=3).keyframe_stride == 3
    # A separately published EDVR-for-IconVSR extractor file (bare extractor keys) starts training.
    ext = randomized(EDVRFeatureExtractor(mid_channels=64), seed=3)
    torch.save(from_afvsr("edvr", {}, ext.state_dict(), "mmagic"), tmp_path / "edvr.pth")
    fresh = IconVSR(num_blocks=1)
    load_extractor(fresh, tmp_path / "edvr.pth")
    assert torch.equal(fresh.extractor.tsa.feat_fusion.weight, ext.tsa.feat_fusion.weight)
    with pytest.raises(AfvsrError, match="EDVR feature extractor"):
        afvsr.load_model(tmp_path / "edvr.pth")


def test_reference_windows_are_basicsr_padding():
    # BasicSR pads x[:, [4, 3]] before and x[:, [-4, -5]] after (temporal_padding 2).
    assert reference_window(0, 7, 2) == [4, 3, 0, 1, 2]
    assert reference_window(6, 7, 2) == [4, 5, 6, 3, 2]
    assert reference_window(0, 10, 3) == [6, 5, 4, 0, 1, 2, 3]
    model = IconVSR(mid_channels=8, num_blocks=1, boundary="reference")
    assert model.keyframe_windows(3) == IconVSR(mid_channels=8, num_blocks=1).keyframe_windows(3)


def test_reference_boundary_pads_frames_to_a_multiple_of_4():
    model = randomized(IconVSR(mid_channels=8, num_blocks=1, boundary="reference"))
    lq = torch.rand(1, 5, 3, 10, 7)
    with torch.no_grad():
        out = model(lq)
        padded = F.pad(lq.flatten(0, 1), (0, 1, 0, 2), mode="reflect").view(1, 5, 3, 12, 8)
        whole = model(padded)
    assert out.shape == (1, 5, 3, 40, 28)
    assert torch.allclose(out, whole[..., :40, :28], atol=1e-6)


def test_pickles_are_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    # An arbitrary object: loading it would run its class's code; weights_only refuses it.
    torch.save({"params": {"w": torch.zeros(1)}, "obj": argparse.Namespace(a=1)}, path)
    with pytest.raises(AfvsrError, match=r"weights_only=True") as err:
        afvsr.load_model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(path), str(out)]) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error: ") and err.count("\n") == 1


def test_unknown_missing_and_misshaped_tensors_are_named(tmp_path):
    state = fixture_state("basicsr")
    bad = dict(state, extra_thing=torch.zeros(1))
    torch.save({"params": bad}, tmp_path / "a.pth")
    with pytest.raises(AfvsrError, match="unexpected tensor 'extra_thing'"):
        afvsr.load_model(tmp_path / "a.pth")
    short = {k: v for k, v in state.items() if k != "conv_hr.bias"}
    torch.save({"params": short}, tmp_path / "b.pth")
    with pytest.raises(AfvsrError, match="missing tensor 'conv_hr.bias'"):
        afvsr.load_model(tmp_path / "b.pth")
    torch.save({"params": {"something.weight": torch.zeros(2)}}, tmp_path / "c.pth")
    with pytest.raises(AfvsrError, match="not a BasicVSR, IconVSR, SPyNet"):
        afvsr.load_model(tmp_path / "c.pth")


def test_convert_command_both_ways(tmp_path, capsys):
    torch.save({"params": fixture_state("basicsr")}, tmp_path / "BasicVSR_REDS4.pth")
    out = tmp_path / "b.safetensors"
    assert main(["convert", str(tmp_path / "BasicVSR_REDS4.pth"), str(out)]) == 0
    said = capsys.readouterr().out
    assert "basicvsr (basicsr layout, key set params)" in said
    assert "mid_channels=64, num_blocks=1" in said
    back = tmp_path / "b_mmagic.pth"
    assert main(["convert", str(out), str(back), "--to", "mmagic"]) == 0
    obj = torch.load(back, weights_only=True)
    assert "generator.backward_resblocks.main.2.0.conv1.weight" in obj["state_dict"]
    a, b = afvsr.load_model(out), afvsr.load_model(back)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    capsys.readouterr()
    assert main(["convert", str(out), str(out), "--to", "basicsr"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_frozen_backbone_from_a_basicsr_file_is_basicvsr(tmp_path):
    torch.save({"params": fixture_state("basicsr", num_blocks=1)}, tmp_path / "BasicVSR_REDS4.pth")
    basicvsr = afvsr.load_model(tmp_path / "BasicVSR_REDS4.pth")
    method = AFVSR(num_blocks=1, rates=(1, 2), window=3, upsample_mode="bilinear")
    load_backbone(method, tmp_path / "BasicVSR_REDS4.pth")
    lq = torch.rand(1, 4, 3, 9, 11, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        feats = propagate(method.spynet, method.propagation, lq)
        assert torch.equal(reconstruct_frames(method.reconstruction, feats, lq), basicvsr(lq))
    with pytest.raises(AfvsrError, match='upsample_mode = "bilinear"'):
        load_backbone(
            AFVSR(num_blocks=1, rates=(1, 2), window=3),
            tmp_path / "BasicVSR_REDS4.pth",
        )
    spynet_only = BasicVSR(mid_channels=8, num_blocks=1)
    load_spynet(spynet_only, tmp_path / "BasicVSR_REDS4.pth")
    assert torch.equal(
        spynet_only.spynet.basic_module[0].body[0].weight,
        basicvsr.spynet.basic_module[0].body[0].weight,
    )


def test_spynet_file_cannot_upscale(tmp_path):
    afvsr.save_model(SPyNet(), tmp_path / "spynet.safetensors")
    with pytest.raises(AfvsrError, match="SPyNet .* cannot upscale") as err:
        load_upscaler(tmp_path / "spynet.safetensors")
    assert str(tmp_path / "spynet.safetensors") in str(err.value)


@pytest.mark.skipif(
    not SPYNET_FILE.is_file() or not (SHARED / "data" / "basketballpass").is_dir(),
    reason="../shared/weights/spynet_sintel_final_basicsr_format.pth or ../shared/data absent",
)
@pytest.mark.parametrize("dx,dy", [(3, -2), (-5, 4)])
def test_published_spynet_recovers_a_whole_pixel_shift(dx, dy):
    import numpy as np
    from PIL import Image

    spynet = afvsr.load_model(SPYNET_FILE)
    assert isinstance(spynet, SPyNet)
    frame = np.asarray(Image.open(SHARED / "data" / "basketballpass" / "im1.png").convert("RGB"))
    img = torch.from_numpy(frame.copy()).permute(2, 0, 1).float()[None] / 255  # (1, 3, 240, 416)
    ref = img[:, :, 40:200, 60:316]  # (1, 3, 160, 256)
    # supp[y, x] = ref[y - dy, x - dx]: the content moves by (dx, dy), so the flow is (dx, dy).
    supp = img[:, :, 40 - dy : 200 - dy, 60 - dx : 316 - dx]
    with torch.no_grad():
        flow = spynet(ref, supp)
    inner = flow[0, :, 16:-16, 16:-16].flatten(1)
    median = inner.median(dim=1).values
    assert abs(median[0].item() - dx) < 0.1 and abs(median[1].item() - dy) < 0.1, median
    warped = flow_warp(supp, flow)
    assert (warped - ref)[..., 16:-16, 16:-16].abs().mean() < 0.05
    assert math.isfinite(flow.abs().max().item())
    # The same file as a training key (spynet_checkpoint) fills a model's SPyNet.
    model = BasicVSR(mid_channels=8, num_blocks=1)
    load_spynet(model, SPYNET_FILE)
    own, theirs = model.spynet.state_dict(), spynet.state_dict()
    assert all(torch.equal(own[k], theirs[k]) for k in own)
