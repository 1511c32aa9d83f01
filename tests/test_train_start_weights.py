"""Start weights of a training run: IconVSR's extractor from a published EDVR-for-IconVSR file
(``[train] extractor_checkpoint``, issue #19), and ``init_checkpoint`` refusing a model file whose
constructor arguments differ from ``[model]``'s.

The published files are tiny fixtures in BasicSR's and mmagic's layouts, built from the key names
their sources declare (``afvsr.published.from_afvsr``); BasicSR itself is never imported.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from train_helpers import make_frames, tiny_config, tiny_trainer, write_config

from afvsr.checkpoint import save_model
from afvsr.cli import main
from afvsr.errors import AfvsrError
from afvsr.models import build_model
from afvsr.models.basicvsr import compute_flows
from afvsr.published import from_afvsr

# A few names of each project's EDVR-for-IconVSR extractor (BasicSR ``edvr_arch.py``,
# mmagic ``iconvsr_net.py``: its convs wrapped in ConvModule, ``….conv.weight``).
PUBLISHED_EXTRACTOR_KEYS = {
    "basicsr": (
        "conv_first.weight",
        "conv_l2_1.weight",
        "pcd_align.offset_conv1.l3.weight",
        "pcd_align.cas_dcnpack.conv_offset.weight",
        "fusion.feat_fusion.weight",
    ),
    "mmagic": (
        "conv_first.weight",
        "feat_l2_conv1.conv.weight",
        "pcd_alignment.offset_conv1.l3.conv.weight",
        "pcd_alignment.cas_dcnpack.conv_offset.weight",
        "fusion.feat_fusion.conv.weight",
    ),
}
ICONVSR = {"name": "iconvsr", "mid_channels": 8, "num_blocks": 1}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


def _published_extractor(tmp_path, layout: str) -> tuple[dict[str, torch.Tensor], object]:
    """An EDVR-for-IconVSR file of ``layout`` for ICONVSR's extractor: (afvsr state, path)."""
    extractor = build_model(**ICONVSR).extractor
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in extractor.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    container = from_afvsr("edvr", {}, extractor.state_dict(), layout)
    state = container["params" if layout == "basicsr" else "state_dict"]
    assert set(PUBLISHED_EXTRACTOR_KEYS[layout]) <= set(state)
    path = tmp_path / f"edvr_for_iconvsr_{layout}.pth"
    torch.save(container, path)
    return extractor.state_dict(), path


@pytest.mark.parametrize("layout", ["basicsr", "mmagic"])
def test_extractor_checkpoint_fills_iconvsr_and_waits_with_spynet(tmp_path, frames, layout):
    want, path = _published_extractor(tmp_path, layout)
    trainer = tiny_trainer(
        tmp_path,
        frames,
        model=ICONVSR,
        train={"extractor_checkpoint": str(path), "spynet_freeze_iters": 3, "lr": 2e-4},
    )
    try:
        model = trainer.model
        mine = model.extractor.state_dict()
        assert mine.keys() == want.keys()
        assert all(torch.equal(mine[k], v) for k, v in want.items())
        groups = {g.name: g for g in trainer.groups}
        assert groups["extractor"].modules == [model.extractor]
        assert groups["extractor"].lr == pytest.approx(2e-4)
        for step, frozen in [(0, True), (2, True), (3, False)]:
            trainer.step = step
            trainer._update_trainable()
            assert {p.requires_grad for p in model.extractor.parameters()} == {not frozen}
            assert {p.requires_grad for p in model.spynet.parameters()} == {not frozen}
            assert {p.requires_grad for p in model.propagation.parameters()} == {True}
    finally:
        trainer.close()


def test_extractor_checkpoint_from_an_iconvsr_model_file(tmp_path, frames):
    icon = build_model(**ICONVSR)
    for i, p in enumerate(icon.extractor.parameters()):
        p.data.fill_(0.001 * (i + 1))
    save_model(icon, tmp_path / "icon.safetensors")
    trainer = tiny_trainer(
        tmp_path,
        frames,
        model=ICONVSR,
        train={"extractor_checkpoint": str(tmp_path / "icon.safetensors")},
    )
    try:
        mine = trainer.model.extractor.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in icon.extractor.state_dict().items())
        # Only the extractor: the rest starts fresh.
        assert not torch.equal(
            trainer.model.propagation.backward_fusion.weight,
            icon.propagation.backward_fusion.weight,
        )
    finally:
        trainer.close()
    # Without the key the extractor trains from the first step; only SPyNet waits.
    trainer = tiny_trainer(
        tmp_path, frames, model=ICONVSR, train={"spynet_freeze_iters": 3}, run={"name": "fresh"}
    )
    try:
        starts = {g.name: g.trainable_from for g in trainer.groups}
        assert starts == {"spynet": 3, "extractor": 0, "propagation": 0, "reconstruction": 0}
    finally:
        trainer.close()


def test_extractor_checkpoint_errors(tmp_path, frames):
    _, path = _published_extractor(tmp_path, "basicsr")
    with pytest.raises(AfvsrError, match=r"extractor_checkpoint fills IconVSR's extractor; model "):
        tiny_trainer(tmp_path, frames, train={"extractor_checkpoint": str(path)})  # a BasicVSR
    with pytest.raises(AfvsrError, match=r"\[train\] extractor_checkpoint: no file"):
        tiny_trainer(
            tmp_path,
            frames,
            model=ICONVSR,
            train={"extractor_checkpoint": str(tmp_path / "none.pth")},
        )
    wide = from_afvsr(
        "edvr", {}, build_model("iconvsr", mid_channels=16).extractor.state_dict(), "basicsr"
    )
    torch.save(wide, tmp_path / "wide.pth")
    with pytest.raises(AfvsrError, match=r"wide\.pth \(extractor\): tensor '.*' has shape"):
        tiny_trainer(
            tmp_path,
            frames,
            model=ICONVSR,
            train={"extractor_checkpoint": str(tmp_path / "wide.pth")},
        )
    basic = tmp_path / "basic.safetensors"
    save_model(build_model("basicvsr", mid_channels=8, num_blocks=1), basic)
    with pytest.raises(AfvsrError, match=r"expected an EDVR extractor or IconVSR model file"):
        tiny_trainer(tmp_path, frames, model=ICONVSR, train={"extractor_checkpoint": str(basic)})
    with pytest.raises(AfvsrError, match=r"leave spynet_checkpoint, backbone_checkpoint and extr"):
        tiny_trainer(
            tmp_path,
            frames,
            model=ICONVSR,
            train={"extractor_checkpoint": str(path), "init_checkpoint": str(basic)},
        )


def test_init_checkpoint_refuses_other_constructor_arguments(tmp_path, frames):
    bilinear = tmp_path / "bilinear.safetensors"
    start = build_model("basicvsr", mid_channels=4, num_blocks=1, upsample_mode="bilinear")
    save_model(start, bilinear)
    with pytest.raises(AfvsrError) as err:
        tiny_trainer(tmp_path, frames, train={"init_checkpoint": str(bilinear)})
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f'{bilinear}: the model file has upsample_mode = "bilinear", [model] has upsample_mode = '
        '"bicubic": set [model] upsample_mode = "bilinear" to start from it'
    )
    # The same [model] arguments start from it, every weight equal.
    trainer = tiny_trainer(
        tmp_path,
        frames,
        model={"upsample_mode": "bilinear"},
        train={"init_checkpoint": str(bilinear)},
    )
    try:
        mine = trainer.model.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in start.state_dict().items())
    finally:
        trainer.close()
    # IconVSR: keyframe_stride does not show in the weights' shapes; it is compared too.
    icon = tmp_path / "icon.safetensors"
    save_model(build_model("iconvsr", mid_channels=8, num_blocks=1, keyframe_stride=3), icon)
    with pytest.raises(AfvsrError, match=r"keyframe_stride = 3, \[model\] has keyframe_stride = 5"):
        tiny_trainer(tmp_path, frames, model=ICONVSR, train={"init_checkpoint": str(icon)})


def test_init_checkpoint_reads_an_argument_a_file_lacks_as_its_default(tmp_path, frames):
    """A model file written before ``upsample_mode`` existed has afvsr's bicubic base."""
    start = build_model("basicvsr", mid_channels=4, num_blocks=1)
    kwargs = dict(start.kwargs)
    del kwargs["upsample_mode"]
    old = tmp_path / "old.safetensors"
    meta = {"format_version": "1", "model": "basicvsr", "kwargs": json.dumps(kwargs)}
    save_file({k: v.contiguous() for k, v in start.state_dict().items()}, str(old), metadata=meta)
    trainer = tiny_trainer(tmp_path, frames, train={"init_checkpoint": str(old)})
    trainer.close()
    with pytest.raises(AfvsrError, match=r'has upsample_mode = "bicubic", \[model\] has'):
        tiny_trainer(
            tmp_path,
            frames,
            model={"upsample_mode": "bilinear"},
            train={"init_checkpoint": str(old)},
        )


def test_mismatch_is_one_line_exit_2_and_no_run_folder(tmp_path, frames, capsys):
    bilinear = tmp_path / "bilinear.safetensors"
    save_model(
        build_model("basicvsr", mid_channels=4, num_blocks=1, upsample_mode="bilinear"), bilinear
    )
    before = bilinear.read_bytes()
    raw = tiny_config(tmp_path, frames, train={"init_checkpoint": str(bilinear)})
    config = write_config(tmp_path / "t.toml", raw)
    assert main(["train", "-c", str(config)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("afvsr: error: "), lines
    assert "set [model] upsample_mode" in lines[0]
    assert not (tmp_path / "runs").exists()
    assert bilinear.read_bytes() == before


def _randomized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model


@pytest.mark.parametrize("layout", ["basicsr", "mmagic"])
def test_published_files_as_spynet_and_backbone_checkpoint(tmp_path, frames, layout):
    """Issue #19 item 1 through the training keys: a published SPyNet file fills SPyNet, a
    published BasicVSR file is stage 2's frozen backbone (with its bilinear residual base)."""
    spynet = _randomized(build_model("spynet"), seed=1)
    torch.save(from_afvsr("spynet", {}, spynet.state_dict(), layout), tmp_path / "spynet.pth")
    trainer = tiny_trainer(
        tmp_path, frames, train={"spynet_checkpoint": str(tmp_path / "spynet.pth")}
    )
    try:
        mine = trainer.model.spynet.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in spynet.state_dict().items())
    finally:
        trainer.close()

    basic = _randomized(
        build_model("basicvsr", mid_channels=64, num_blocks=1, upsample_mode="bilinear"), seed=2
    )
    path = tmp_path / "basicvsr.pth"
    torch.save(from_afvsr("basicvsr", basic.kwargs, basic.state_dict(), layout), path)
    model = {"name": "afvsr", "mid_channels": 64, "num_blocks": 1, "rates": [1, 2], "window": 3}
    sections = {
        "data": {"samples": "groups", "rates": [1, 2], "window": 3},
        "train": {"backbone_checkpoint": str(path)},
    }
    trainer = tiny_trainer(
        tmp_path,
        frames,
        model={**model, "upsample_mode": "bilinear"},
        run={"name": "s2"},
        **sections,
    )
    try:
        for name in ("spynet", "propagation", "reconstruction"):
            mine = getattr(trainer.model, name).state_dict()
            theirs = getattr(basic, name).state_dict()
            assert all(torch.equal(mine[k], v) for k, v in theirs.items()), name
    finally:
        trainer.close()
    with pytest.raises(
        AfvsrError, match=r'residual base.*set \[model\] upsample_mode = "bilinear"'
    ):
        tiny_trainer(tmp_path, frames, model=model, run={"name": "s2b"}, **sections)


def _random_basicvsr(path, **kwargs) -> torch.nn.Module:
    """A BasicVSR of ICONVSR's width and depth with random weights, saved to ``path``."""
    basic = build_model("basicvsr", mid_channels=8, num_blocks=1, **kwargs)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in basic.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    save_model(basic, path)
    return basic.eval()


def test_iconvsr_warm_start_from_basicvsr_is_its_branches_without_the_fusion(tmp_path, frames):
    basic = _random_basicvsr(tmp_path / "basic.safetensors")
    trainer = tiny_trainer(
        tmp_path,
        frames,
        model=ICONVSR,
        train={"backbone_checkpoint": str(tmp_path / "basic.safetensors")},
    )
    try:
        icon = trainer.model.eval()
        # every module trains from step 0, as in stage 1 (no stage-2 freezing)
        assert {g.name: g.trainable_from for g in trainer.groups} == {
            "spynet": 0,
            "extractor": 0,
            "propagation": 0,
            "reconstruction": 0,
        }
        lq = torch.rand(1, 6, 3, 12, 16, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            feats = icon.propagate(lq)
            flows_forward = compute_flows(basic.spynet, lq)[1]
            states = torch.stack(list(basic.propagation.forward_states(lq, flows_forward)), 1)
            out = icon(lq)
            want = basic.reconstruction(states.flatten(0, 1), lq.flatten(0, 1))
        # BasicVSR's forward branch, keyframe refill ignored, nothing from the backward features
        torch.testing.assert_close(feats, states, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.flatten(0, 1), want, rtol=1e-5, atol=1e-5)
        # the backward branch is BasicVSR's; the forward input starts blind to its features
        w = icon.propagation.forward_branch.conv_in.weight
        assert torch.count_nonzero(w[:, 3:11]) == 0 and torch.count_nonzero(w[:, 11:]) > 0
        assert torch.equal(
            icon.propagation.backward_branch.conv_in.weight,
            basic.propagation.backward_branch.conv_in.weight,
        )
    finally:
        trainer.close()


def test_iconvsr_warm_start_errors(tmp_path, frames):
    _random_basicvsr(tmp_path / "bilinear.safetensors", upsample_mode="bilinear")
    with pytest.raises(AfvsrError, match='set \\[model\\] upsample_mode = "bilinear"'):
        tiny_trainer(
            tmp_path,
            frames,
            model=ICONVSR,
            train={"backbone_checkpoint": str(tmp_path / "bilinear.safetensors")},
        )
    wide = build_model("basicvsr", mid_channels=16, num_blocks=1)
    save_model(wide, tmp_path / "wide.safetensors")
    with pytest.raises(AfvsrError, match="spynet|reconstruction|propagation"):
        tiny_trainer(
            tmp_path,
            frames,
            model=ICONVSR,
            train={"backbone_checkpoint": str(tmp_path / "wide.safetensors")},
            run={"name": "wide"},
        )
