"""The method, AFVSR: group indices, window vs sequence mode, attention weights, warm start."""

import pytest
import torch

from afvsr.frame_groups import group_indices, mirror_index
from afvsr.models import AFVSR, BasicVSR
from afvsr.models.basicvsr import propagate

TINY = {"mid_channels": 8, "num_blocks": 1}


def test_group_indices_rates_123_and_135():
    assert group_indices(10, 30, rates=(1, 2, 3), window=5) == [
        [8, 9, 10, 11, 12],
        [6, 8, 10, 12, 14],
        [4, 7, 10, 13, 16],
    ]
    assert group_indices(10, 30, rates=(1, 3, 5), window=5) == [
        [8, 9, 10, 11, 12],
        [4, 7, 10, 13, 16],
        [0, 5, 10, 15, 20],
    ]
    # Mirrored at the ends, the edge frame not repeated.
    assert group_indices(0, 30, rates=(1, 3), window=5) == [[2, 1, 0, 1, 2], [6, 3, 0, 3, 6]]
    assert group_indices(29, 30, rates=(2,), window=3) == [[27, 29, 27]]


def test_mirror_index_far_out_and_one_frame():
    assert [mirror_index(i, 4) for i in range(-7, 11)] == [
        1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2,
    ]  # fmt: skip
    assert mirror_index(-5, 1) == 0


def test_window_equals_sequence_for_one_rate1_group_at_the_middle():
    model = AFVSR(**TINY, rates=(1,), window=5).eval()
    lq = torch.rand(1, 5, 3, 16, 20)
    with torch.no_grad():
        win, seq = model(lq, mode="window"), model(lq, mode="sequence")
    assert torch.allclose(win[:, 2], seq[:, 2], atol=1e-6)
    # Elsewhere they differ: window mode mirrors, sequence mode sees the real clip end.
    assert (win[:, 0] - seq[:, 0]).abs().max() > 1e-5


def test_sequence_mode_uses_phase_subsequences():
    """With rates (2,), frame 2's feature depends on frames 0, 2, 4 only, never on 1 or 3."""
    model = AFVSR(**TINY, rates=(2,), window=3).eval()
    lq = torch.rand(1, 5, 3, 16, 16)
    changed = lq.clone()
    changed[:, [1, 3]] = torch.rand(1, 2, 3, 16, 16)
    with torch.no_grad():
        a, b = model(lq), model(changed)
    assert torch.allclose(a[:, 2], b[:, 2], atol=1e-6)
    assert (a[:, 1] - b[:, 1]).abs().max() > 1e-4


def test_attention_weights_are_a_softmax_over_groups():
    model = AFVSR(**TINY, rates=(1, 2, 3), num_heads=2).eval()
    groups = torch.rand(2, 3, 5, 3, 12, 12)
    with torch.no_grad():
        out, maps = model.forward_groups(groups, return_attention=True)
    assert out.shape == (2, 3, 48, 48)
    attn = maps["attention"]
    assert attn.shape == (2, 2, 3, 8, 12, 12)  # (b, heads, G, c, h, w)
    assert torch.allclose(attn.sum(dim=2), torch.ones(2, 2, 8, 12, 12), atol=1e-5)
    assert torch.allclose(maps["output"], attn * maps["projection"], atol=1e-6)


def test_single_head_attention_is_numerically_stable():
    model = AFVSR(**TINY).eval()
    feats = torch.randn(1, 3, 8, 6, 6) * 1e4  # huge scores must not give NaN
    with torch.no_grad():
        out, maps = model.attention(feats, return_attention=True)
    assert torch.isfinite(out).all() and torch.isfinite(maps["attention"]).all()


def test_mean_group_fusion_ablation_reconstructs_the_mean_of_the_groups():
    model = AFVSR(**TINY, group_fusion="mean").eval()
    assert sum(p.numel() for p in model.attention.parameters()) == 0
    assert model.kwargs["group_fusion"] == "mean"
    groups = torch.rand(2, 3, 5, 3, 12, 12)
    with torch.no_grad():
        out, maps = model.forward_groups(groups, return_attention=True)
        feats = torch.stack(
            [propagate(model.spynet, model.propagation, groups[:, g])[:, 2] for g in range(3)],
            dim=1,
        )  # (b, G, c, h, w): each group's feature at its reference (middle) frame
        expected = model.reconstruction(feats.mean(dim=1), groups[:, 0, 2])
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(maps["attention"], torch.full_like(maps["attention"], 1 / 3))


def test_window_mode_matches_forward_groups():
    model = AFVSR(**TINY).eval()
    lq = torch.rand(1, 6, 3, 12, 12)
    with torch.no_grad():
        out = model(lq, mode="window")
        idx = torch.tensor(model.group_indices(4, 6))
        ref = model.forward_groups(lq[:, idx])
    assert torch.allclose(out[:, 4], ref, atol=1e-6)


def test_warm_start_from_basicvsr_by_module():
    basic = BasicVSR(**TINY)
    afvsr = AFVSR(**TINY)
    for name in ("spynet", "propagation", "reconstruction"):
        getattr(afvsr, name).load_state_dict(getattr(basic, name).state_dict())
    # One rate-1 group of length 1 and a single frame clip: propagation of 1 frame, same as BasicVSR.
    lq = torch.rand(1, 1, 3, 12, 12)
    with torch.no_grad():
        feats_b = basic.propagate(lq)
        feats_f = afvsr.sequence_features(lq)[:, :, 0]
    assert torch.allclose(feats_b, feats_f, atol=1e-6)


@pytest.mark.parametrize("num_heads", [1, 2])
def test_residual_fusion_starts_as_its_backbone_and_then_departs(num_heads):
    torch.manual_seed(0)
    basic = BasicVSR(**TINY).eval()
    model = AFVSR(**TINY, num_heads=num_heads, residual_fusion=True).eval()
    # every backbone tensor loads by name; nothing else is needed
    assert not model.load_state_dict(basic.state_dict(), strict=False).unexpected_keys
    assert model.kwargs["residual_fusion"] is True
    lq = torch.rand(1, 7, 3, 12, 12)
    with torch.no_grad():
        whole = basic(lq)
        assert torch.allclose(model(lq, mode="sequence"), whole, atol=1e-5)
        windowed = model(lq, mode="window")
        for ref in (0, 3, 6):  # window mode: BasicVSR on the rate-1 group's 5 frames
            idx = torch.tensor(model.group_indices(ref, 7))
            expected = basic(lq[:, idx[0]])[:, 2]
            assert torch.allclose(windowed[:, ref], expected, atol=1e-5)
        torch.nn.init.normal_(model.attention.fusion.conv2d_2.weight, std=0.1)
        assert not torch.allclose(model(lq, mode="sequence"), whole, atol=1e-3)
    # the default is the paper's module: its output replaces the backbone's feature
    with torch.no_grad():
        plain = AFVSR(**TINY, num_heads=num_heads)
        plain.load_state_dict(basic.state_dict(), strict=False)
        assert not torch.allclose(plain.eval()(lq), whole, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rates": []}, "non-empty list of positive integer rates"),
        ({"rates": [1, 0]}, "positive integer rates"),
        ({"rates": [1, -2]}, "positive integer rates"),
        ({"window": 4}, "odd window"),
        ({"window": 0}, "odd window"),
        ({"num_heads": 0}, "num_heads >= 1"),
        ({"group_fusion": "max"}, "expected group_fusion in"),
        ({"group_fusion": "mean", "num_heads": 2}, "group_fusion 'mean' has no heads"),
        ({"group_fusion": "mean", "residual_fusion": True}, "group_fusion 'mean' has no residual"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AFVSR(**TINY, **kwargs)


def test_bad_mode_and_group_shape():
    model = AFVSR(**TINY)
    with pytest.raises(ValueError, match="expected mode"):
        model(torch.rand(1, 3, 3, 8, 8), mode="frames")
    with pytest.raises(ValueError, match="expected 3 groups of 5 frames, got 2 of 5"):
        model.forward_groups(torch.rand(1, 2, 5, 3, 8, 8))


@pytest.mark.parametrize(
    "cin,cout,kernel,padding,depth",
    [
        (8, 6, 3, 1, 3),
        (12, 5, (3, 3, 3), (0, 1, 1), 3),
        (4, 4, (2, 3, 3), (0, 1, 1), 2),
        (6, 3, 3, 1, 1),
    ],
)
def test_conv3d_as_2d_equals_conv3d(cin, cout, kernel, padding, depth):
    from afvsr.models.attention import conv3d_as_2d

    conv = torch.nn.Conv3d(cin, cout, kernel, 1, padding)
    x = torch.randn(2, cin, depth, 7, 9)
    with torch.no_grad():
        assert torch.allclose(conv3d_as_2d(conv, x), conv(x), atol=1e-5)
