"""Analytic FLOP counts against hand formulas; inference settings and their errors."""

import pytest
import torch

from afvsr.flops import count_flops
from afvsr.inference import check_precision, prepare_for_inference, resolve_device, run_model
from afvsr.models import BasicVSR


def conv_flops(cin, cout, k, hw):
    return 2 * cin * cout * k * k * hw


def test_basicvsr_propagation_and_reconstruction_flops_match_hand_count():
    c, nb, t, h, w, s = 8, 2, 5, 16, 24, 4
    hw = h * w
    flops = count_flops(BasicVSR(mid_channels=c, num_blocks=nb, scale=s), (1, t, 3, h, w))
    branch = conv_flops(c + 3, c, 3, hw) + 2 * nb * conv_flops(c, c, 3, hw)
    propagation = t * (2 * branch + conv_flops(2 * c, c, 1, hw))
    assert flops["propagation"] == propagation
    recon = t * (
        conv_flops(c, 4 * c, 3, hw)  # first ×2 stage
        + conv_flops(c, 4 * c, 3, 4 * hw)  # second ×2 stage
        + conv_flops(c, c, 3, 16 * hw)  # conv_hr
        + conv_flops(c, 3, 3, 16 * hw)  # conv_last
    )
    assert flops["reconstruction"] == recon
    assert flops["per_frame"] == flops["total"] / t


def test_full_size_basicvsr_is_about_075_tflop_per_frame():
    with torch.device("meta"):
        model = BasicVSR()
    flops = count_flops(model, (1, 20, 3, 180, 320))
    assert 0.74e12 < flops["per_frame"] < 0.76e12
    assert 0.51e12 < flops["propagation"] / 20 < 0.53e12


def test_run_model_matches_plain_forward_in_fp32_and_close_in_bf16():
    model = BasicVSR(mid_channels=8, num_blocks=1).eval()
    lq = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        ref = model(lq)
    fast = prepare_for_inference(model, precision="fp32")
    out = run_model(fast, lq, precision="fp32")
    assert torch.allclose(out, ref, atol=1e-5)
    out_bf16 = run_model(fast, lq, precision="bf16")
    assert out_bf16.dtype == torch.float32
    assert (out_bf16 - ref).abs().mean() < 0.02


def test_prepare_for_inference_keeps_afvsr_model_outputs():
    """Conv3d weights (the attention's dense block) are converted too, and values do not change."""
    from afvsr.models import AFVSR

    model = AFVSR(mid_channels=8, num_blocks=1, num_heads=2).eval()
    lq = torch.rand(1, 4, 3, 12, 12)
    with torch.no_grad():
        ref = model(lq)
    fast = prepare_for_inference(model)
    assert fast.attention.fusion.conv3d_1.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.allclose(run_model(fast, lq, precision="fp32", mode="sequence"), ref, atol=1e-5)


def test_precision_and_device_errors():
    with pytest.raises(ValueError, match="expected precision in"):
        check_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="fp16 needs --device cuda"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="expected device cpu or cuda"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch, capsys):
    import afvsr.inference as inference

    for flags, expected in [
        ({"avx512f", "avx512_bf16"}, "bf16"),
        ({"amx_bf16", "amx_tile"}, "bf16"),
        ({"avx2", "avx512f"}, "fp32"),
        (set(), "fp32"),
    ]:
        monkeypatch.setattr(inference, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert inference.resolve_precision("auto", "cpu") == expected
        assert inference.resolve_precision("fp32", "cpu") == "fp32"  # explicit choices stay
    check_precision("auto", "cpu")
    # bf16 forced where the CPU lacks it: one warning per process, saying how much slower.
    inference._warn_slow_bf16.cache_clear()
    for _ in range(2):
        check_precision("bf16", "cpu")
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "bf16 runs 10-100x slower than fp32" in err
