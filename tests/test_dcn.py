"""Modulated deformable convolution against a hand-written reference, and EDVR's DCN pack."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from afvsr.models.dcn import ModulatedDCNPack, ModulatedDeformConv2d, modulated_deform_conv2d


def bilinear_zero_padded(img: list[list[float]], y: float, x: float) -> float:
    """Bilinear sample of ``img[row][col]`` at (y, x); each corner outside the image reads 0."""
    h, w = len(img), len(img[0])
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    value = 0.0
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                value += wy * wx * img[yy][xx]
    return value


def reference_dcn(x, offset, mask, weight, bias, *, padding, dilation, deform_groups):
    """DCNv2 by explicit loops over images, output pixels, taps, groups and channels."""
    n, c_in, h, w = x.shape
    c_out, _, ks, _ = weight.shape
    g, kk = deform_groups, ks * ks
    cpg = c_in // g
    h_out, w_out = offset.shape[-2:]
    xs, offs, masks = x.tolist(), offset.tolist(), mask.tolist()
    wts, bs = weight.tolist(), bias.tolist()
    out = torch.zeros(n, c_out, h_out, w_out, dtype=torch.float64)
    for b in range(n):
        for i in range(h_out):
            for j in range(w_out):
                acc = list(bs)
                for grp in range(g):
                    for ki in range(ks):
                        for kj in range(ks):
                            k = ki * ks + kj
                            dy = offs[b][2 * (grp * kk + k)][i][j]
                            dx = offs[b][2 * (grp * kk + k) + 1][i][j]
                            m = masks[b][grp * kk + k][i][j]
                            py = i - padding + ki * dilation + dy
                            px = j - padding + kj * dilation + dx
                            for ch in range(grp * cpg, (grp + 1) * cpg):
                                v = m * bilinear_zero_padded(xs[b][ch], py, px)
                                for o in range(c_out):
                                    acc[o] += wts[o][ch][ki][kj] * v
                for o in range(c_out):
                    out[b, o, i, j] = acc[o]
    return out


def random_case(*, n, c_in, c_out, ks, h, w, padding, dilation, groups, offset_scale=2.5):
    h_out, w_out = h + 2 * padding - dilation * (ks - 1), w + 2 * padding - dilation * (ks - 1)
    kk = ks * ks
    d = torch.float64
    x = torch.randn(n, c_in, h, w, dtype=d)
    # Non-integer offsets, large enough that many taps land partly or wholly outside the input.
    offset = torch.randn(n, 2 * groups * kk, h_out, w_out, dtype=d) * offset_scale
    mask = torch.rand(n, groups * kk, h_out, w_out, dtype=d)
    weight = torch.randn(c_out, c_in, ks, ks, dtype=d)
    bias = torch.randn(c_out, dtype=d)
    return x, offset, mask, weight, bias


CASES = [
    # n, c_in, c_out, ks, h, w, padding, dilation, groups
    (2, 4, 3, 3, 5, 6, 1, 1, 2),
    (1, 2, 2, 3, 4, 5, 2, 2, 1),
    (1, 3, 2, 1, 3, 4, 0, 1, 3),
    (1, 2, 3, 3, 6, 5, 0, 1, 2),
    (1, 2, 1, 3, 1, 2, 1, 1, 1),  # a one-row input: every vertical offset leaves the image
]


@pytest.mark.parametrize("n,c_in,c_out,ks,h,w,padding,dilation,groups", CASES)
def test_matches_loop_reference(n, c_in, c_out, ks, h, w, padding, dilation, groups):
    x, offset, mask, weight, bias = random_case(
        n=n,
        c_in=c_in,
        c_out=c_out,
        ks=ks,
        h=h,
        w=w,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    got = modulated_deform_conv2d(
        x, offset, mask, weight, bias, padding=padding, dilation=dilation, deform_groups=groups
    )
    want = reference_dcn(
        x, offset, mask, weight, bias, padding=padding, dilation=dilation, deform_groups=groups
    )
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-10, rtol=0), (got - want).abs().max()
    # Computed in bands of output rows (one row, then two rows per band): the same values.
    for rows in (1, 2):
        banded = modulated_deform_conv2d(
            x,
            offset,
            mask,
            weight,
            bias,
            padding=padding,
            dilation=dilation,
            deform_groups=groups,
            max_pixels=rows * n * want.shape[-1],
        )
        assert torch.allclose(banded, want, atol=1e-10, rtol=0), (banded - want).abs().max()
    # The offsets really moved the samples: a plain conv gives something else.
    plain = F.conv2d(x, weight, bias, padding=padding, dilation=dilation)
    assert (got - plain).abs().max() > 1e-2


def test_reference_bilinear_known_values():
    img = [[1.0, 2.0], [3.0, 4.0]]
    assert bilinear_zero_padded(img, 0.5, 0.5) == 2.5
    assert bilinear_zero_padded(img, 0.0, 1.5) == 1.0  # half of the right neighbour is outside
    assert bilinear_zero_padded(img, -1.0, 0.0) == 0.0
    assert bilinear_zero_padded(img, 1.0, 0.25) == 3.25


@pytest.mark.parametrize("padding,dilation", [(1, 1), (2, 2), (0, 1)])
def test_zero_offset_unit_mask_is_conv2d(padding, dilation):
    x = torch.randn(2, 6, 7, 9)
    conv = ModulatedDeformConv2d(
        in_channels=6, out_channels=5, padding=padding, dilation=dilation, deform_groups=3
    )
    want = F.conv2d(x, conv.weight, conv.bias, padding=padding, dilation=dilation)
    offset = torch.zeros(2, 2 * 3 * 9, *want.shape[-2:])
    mask = torch.ones(2, 3 * 9, *want.shape[-2:])
    assert torch.allclose(conv(x, offset, mask), want, atol=1e-5)


def test_integer_and_half_pixel_shifts():
    x = torch.randn(1, 2, 5, 6)
    conv = ModulatedDeformConv2d(in_channels=2, out_channels=3, padding=1)
    offset = torch.zeros(1, 18, 5, 6)
    mask = torch.ones(1, 9, 5, 6)
    padded = F.pad(x, (1, 1, 1, 1))  # what a plain conv with padding 1 reads
    shifted = F.pad(x, (0, 2, 1, 1))  # the same, one column further right (zeros past the edge)
    offset[:, 1::2] = 1.0  # every tap reads one column to the right
    want = F.conv2d(shifted, conv.weight, conv.bias)
    assert torch.allclose(conv(x, offset, mask), want, atol=1e-5)
    offset[:, 1::2] = 0.5  # half a column: the mean of the two neighbours
    want = F.conv2d((padded + shifted) / 2, conv.weight, conv.bias)
    assert torch.allclose(conv(x, offset, mask), want, atol=1e-5)
    # A mask of 0.25 on every tap scales the conv (not the bias).
    offset.zero_()
    want = F.conv2d(x, conv.weight * 0.25, conv.bias, padding=1)
    assert torch.allclose(conv(x, offset, mask * 0.25), want, atol=1e-5)


def test_samples_far_outside_read_zero():
    x = torch.randn(1, 4, 4, 4)
    conv = ModulatedDeformConv2d(in_channels=4, out_channels=2, padding=1, deform_groups=2)
    offset = torch.full((1, 36, 4, 4), 100.0)
    out = conv(x, offset, torch.ones(1, 18, 4, 4))
    assert torch.equal(out, conv.bias.view(1, 2, 1, 1).expand(1, 2, 4, 4))


def test_gradcheck_all_inputs():
    x, offset, mask, weight, bias = random_case(
        n=1, c_in=2, c_out=2, ks=3, h=3, w=3, padding=1, dilation=1, groups=2, offset_scale=0.7
    )
    args = [t.requires_grad_() for t in (x, offset, mask, weight, bias)]
    for max_pixels in (1 << 16, 1):  # one piece, then one output row per band
        assert torch.autograd.gradcheck(
            lambda *a, m=max_pixels: modulated_deform_conv2d(
                *a, padding=1, deform_groups=2, max_pixels=m
            ),
            args,
            fast_mode=True,
        )


def test_pack_starts_as_half_weighted_conv_and_its_offsets_learn():
    pack = ModulatedDCNPack(in_channels=8, out_channels=6, cond_channels=5, deform_groups=4)
    x, cond = torch.randn(2, 8, 6, 7), torch.randn(2, 5, 6, 7)
    out = pack(x, cond)
    # Offsets start at 0 and the mask at sigmoid(0) = 0.5.
    want = F.conv2d(x, 0.5 * pack.dcn.weight, pack.dcn.bias, padding=1)
    assert torch.allclose(out, want, atol=1e-5)
    out.square().mean().backward()
    g = pack.conv_offset.weight.grad
    offsets_grad = g[: pack.num_offsets].abs().sum()
    mask_grad = g[pack.num_offsets :].abs().sum()
    assert offsets_grad > 0 and mask_grad > 0  # the zero init does not block its own gradient
    # Once the predictor moves, the offsets depend on the conditioning feature.
    with torch.no_grad():
        pack.conv_offset.weight.normal_(std=0.1)
    a, b = pack(x, cond), pack(x, cond + 1)
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"offset": torch.zeros(1, 17, 4, 4)}, r"expected offset \(1, 18, 4, 4\)"),
        ({"mask": torch.zeros(1, 9, 3, 4)}, r"mask \(1, 9, 4, 4\)"),
        ({"weight": torch.zeros(2, 3, 3, 3)}, "square weight"),
        ({"deform_groups": 3}, "deform_groups >= 1 dividing the 2 input channels, got 3"),
    ],
)
def test_bad_shapes_raise_value_error(kwargs, match):
    args = {
        "x": torch.zeros(1, 2, 4, 4),
        "offset": torch.zeros(1, 18, 4, 4),
        "mask": torch.zeros(1, 9, 4, 4),
        "weight": torch.zeros(2, 2, 3, 3),
        "deform_groups": 1,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        modulated_deform_conv2d(
            args["x"],
            args["offset"],
            args["mask"],
            args["weight"],
            padding=1,
            deform_groups=args["deform_groups"],
        )


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="dividing in_channels=6, got 4"):
        ModulatedDeformConv2d(in_channels=6, out_channels=2, deform_groups=4)
    with pytest.raises(ValueError, match="odd kernel_size"):
        ModulatedDCNPack(in_channels=8, out_channels=8, cond_channels=8, kernel_size=2)
