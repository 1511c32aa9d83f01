"""``flow_mode = "one-way"`` (BasicVSR, IconVSR, AFVSR): SPyNet once per frame pair, the backward
flow derived from the forward one by warping (``afvsr.models.basicvsr.compute_flows``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from afvsr.models import BasicVSR, build_model
from afvsr.models.basicvsr import compute_flows


class FixedFlow(nn.Module):
    """A stand-in for SPyNet: returns ``flow (2, h, w)`` for every pair and counts the pairs."""

    def __init__(self, flow: torch.Tensor) -> None:
        super().__init__()
        self.flow = flow
        self.pairs = 0

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        self.pairs += ref.shape[0]
        return self.flow.expand(ref.shape[0], -1, -1, -1).clone()


def test_a_uniform_motion_reverses_exactly():
    flow = torch.tensor([1.5, -0.5]).view(2, 1, 1).expand(2, 6, 8)
    spynet = FixedFlow(flow)
    backward, forward = compute_flows(spynet, torch.rand(2, 4, 3, 6, 8), one_way=True)
    assert spynet.pairs == 2 * 3  # b * (t - 1): one SPyNet pass per pair
    assert torch.equal(forward, flow.expand(2, 3, 2, 6, 8))
    assert torch.allclose(backward, -forward, atol=1e-6)


def test_the_backward_flow_is_read_where_the_motion_comes_from():
    """Columns 4.. move 1 px left between frame i and i+1 (forward flow +1 in x there). On frame
    i's grid the moving part starts one column later: ``f_b(p) = -f_f(p - f_f(p))``, so column 4
    of the backward flow is 0, not -1 (what plain negation would give)."""
    flow = torch.zeros(2, 5, 8)
    flow[0, :, 4:] = 1.0
    backward, _ = compute_flows(FixedFlow(flow), torch.rand(1, 2, 3, 5, 8), one_way=True)
    expected = torch.zeros(2, 5, 8)
    expected[0, :, 5:] = -1.0
    assert torch.allclose(backward[0, 0], expected, atol=1e-6)


def test_two_way_is_the_default_and_one_way_halves_the_spynet_pairs():
    torch.manual_seed(0)
    two = BasicVSR(mid_channels=4, num_blocks=1).eval()
    one = BasicVSR(mid_channels=4, num_blocks=1, flow_mode="one-way").eval()
    with torch.no_grad():
        for p in two.parameters():
            p.add_(0.05 * torch.randn_like(p))  # SPyNet's last convs start at zero
    one.load_state_dict(two.state_dict())
    pairs = {}
    for name, model in (("two", two), ("one", one)):
        model.spynet.register_forward_hook(
            lambda m, args, out, name=name: pairs.__setitem__(name, args[0].shape[0])
        )
    lq = torch.rand(1, 5, 3, 16, 16)
    with torch.no_grad():
        a, b = two(lq), one(lq)
    assert pairs == {"two": 8, "one": 4}
    assert two.kwargs["flow_mode"] == "two-way"
    assert 0 < (a - b).abs().max() < 0.5  # the same weights, a close but different flow


@pytest.mark.parametrize("family", ["basicvsr", "iconvsr", "afvsr"])
def test_an_unknown_flow_mode_is_refused(family):
    with pytest.raises(ValueError, match=r"expected flow_mode in \('two-way', 'one-way'\)"):
        build_model(family, mid_channels=8, num_blocks=1, flow_mode="both")


def test_a_one_way_file_is_refused_as_a_two_way_backbone_and_noted_on_convert(tmp_path, capsys):
    from afvsr.checkpoint import load_backbone, save_model
    from afvsr.cli import main
    from afvsr.errors import AfvsrError
    from afvsr.models import AFVSR

    path = tmp_path / "one_way.safetensors"
    backbone = BasicVSR(mid_channels=64, num_blocks=1, flow_mode="one-way")
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(0.02 * torch.randn_like(p))  # a real flow, not SPyNet's initial zeros
    save_model(backbone, path)
    with pytest.raises(AfvsrError, match="trained with one-way flow, AFVSR computes two-way flow"):
        load_backbone(AFVSR(num_blocks=1, rates=(1, 2), window=3), path)
    # A one-way AFVSR takes it, and its rate-1 group is the backbone's own propagation.
    method = AFVSR(num_blocks=1, rates=(1, 2), window=3, flow_mode="one-way")
    load_backbone(method, path)
    lq = torch.rand(1, 4, 3, 12, 16)
    with torch.no_grad():
        own = backbone.eval().propagate(lq)
        assert torch.allclose(method.eval().sequence_features(lq)[:, :, 0], own, atol=1e-6)
    assert main(["convert", str(path), str(tmp_path / "b.pth"), "--to", "basicsr"]) == 0
    said = capsys.readouterr().out
    assert "its backward flow is derived from the forward one" in said
