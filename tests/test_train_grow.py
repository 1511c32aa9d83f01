"""``[train] init_grow``: a deeper BasicVSR started from a shallower model file, the added residual
blocks as identities (``afvsr.train.grow``)."""

from __future__ import annotations

import pytest
import torch
from train_helpers import make_frames, tiny_trainer

from afvsr.checkpoint import save_model
from afvsr.errors import AfvsrError
from afvsr.models import BasicVSR
from afvsr.train.grow import load_grown_basicvsr


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


def _trained(tmp_path, **kwargs) -> tuple[BasicVSR, object]:
    """A BasicVSR with random (non-initial) weights, saved: (model, path)."""
    model = BasicVSR(**{"mid_channels": 4, "num_blocks": 1, **kwargs})
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    path = tmp_path / "start.safetensors"
    save_model(model, path)
    return model.eval(), path


def test_the_grown_model_computes_what_the_file_does(tmp_path):
    start, path = _trained(tmp_path)
    grown = BasicVSR(mid_channels=4, num_blocks=3)
    added = load_grown_basicvsr(grown, str(path))
    assert added == [
        f"propagation.{branch}_branch.blocks.{i}"
        for branch in ("backward", "forward")
        for i in (1, 2)
    ]
    for name in added:
        block = grown.get_submodule(name)
        assert not block.conv2.weight.any() and not block.conv2.bias.any()
        assert block.conv1.weight.abs().sum() > 0  # left to train, not zeroed
    mine = grown.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in start.state_dict().items())
    lq = torch.rand(1, 4, 3, 12, 16)
    with torch.no_grad():
        assert torch.allclose(grown.eval()(lq), start(lq), atol=1e-6)


def test_a_training_run_grows_and_switches_the_flow_mode(tmp_path, frames):
    start, path = _trained(tmp_path)
    trainer = tiny_trainer(
        tmp_path,
        frames,
        model={"num_blocks": 2, "flow_mode": "one-way"},
        train={"init_checkpoint": str(path), "init_grow": True},
    )
    try:
        state = trainer.model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in start.state_dict().items())
        assert not state["propagation.forward_branch.blocks.1.conv2.weight"].any()
        assert trainer.model.kwargs["flow_mode"] == "one-way"
    finally:
        trainer.close()
    # Without init_grow the depth must match, as before.
    with pytest.raises(AfvsrError, match="missing tensor 'propagation.backward_branch.blocks.1"):
        tiny_trainer(
            tmp_path, frames, model={"num_blocks": 2}, train={"init_checkpoint": str(path)}
        )


def test_refusals_are_one_line(tmp_path, frames):
    _, path = _trained(tmp_path, num_blocks=2)
    with pytest.raises(
        AfvsrError, match=r"the file has 2 blocks per branch, \[model\] num_blocks"
    ) as deeper:
        load_grown_basicvsr(BasicVSR(mid_channels=4, num_blocks=1), str(path))
    with pytest.raises(
        AfvsrError, match=r"the file has mid_channels = 4, \[model\] has 8"
    ) as wider:
        load_grown_basicvsr(BasicVSR(mid_channels=8, num_blocks=3), str(path))
    assert "\n" not in str(deeper.value) and "\n" not in str(wider.value)
    with pytest.raises(AfvsrError, match="init_grow starts a basicvsr from init_checkpoint"):
        tiny_trainer(tmp_path, frames, train={"init_grow": True})
    with pytest.raises(AfvsrError, match=r'\[model\] name = "basicvsr" \(got iconvsr\)'):
        tiny_trainer(
            tmp_path,
            frames,
            model={"name": "iconvsr", "mid_channels": 8},
            train={"init_checkpoint": str(path), "init_grow": True},
        )
