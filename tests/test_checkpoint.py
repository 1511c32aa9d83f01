"""save_model / load_model: roundtrip, metadata, strict loading by name, no pickle."""

import pytest
import torch
from safetensors.torch import save_file

import afvsr
from afvsr.checkpoint import default_model_name, read_metadata
from afvsr.errors import AfvsrError
from afvsr.models import AFVSR, BasicVSR


def test_roundtrip_needs_nothing_but_the_file(tmp_path):
    model = AFVSR(mid_channels=8, num_blocks=1, rates=(1, 3), num_heads=2, scale=2)
    path = tmp_path / "m.safetensors"
    afvsr.save_model(model, path)
    meta = read_metadata(path)
    assert meta["model"] == "afvsr"
    loaded = afvsr.load_model(path)
    assert isinstance(loaded, AFVSR) and not loaded.training
    assert loaded.kwargs == model.kwargs and loaded.rates == (1, 3)
    lq = torch.rand(1, 3, 3, 10, 10)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(lq), loaded(lq))
    assert not list(tmp_path.glob("*.tmp*"))


def test_mismatched_shape_names_the_first_tensor(tmp_path):
    path = tmp_path / "m.safetensors"
    afvsr.save_model(BasicVSR(mid_channels=8, num_blocks=1), path)
    from afvsr.checkpoint import load_state_dict_strict, read_tensors

    with pytest.raises(AfvsrError, match=r"'propagation.backward_branch.conv_in.weight' has shape"):
        load_state_dict_strict(
            BasicVSR(mid_channels=16, num_blocks=1), read_tensors(path), source="x"
        )
    with pytest.raises(AfvsrError, match=r"missing tensor 'propagation.backward_branch.blocks.1"):
        load_state_dict_strict(
            BasicVSR(mid_channels=8, num_blocks=2), read_tensors(path), source="x"
        )


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors at all")
    with pytest.raises(AfvsrError, match="not a safetensors model file"):
        afvsr.load_model(bad)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(AfvsrError, match="expected afvsr model metadata"):
        afvsr.load_model(plain)
    with pytest.raises(AfvsrError, match="no model file or shipped model named"):
        afvsr.load_model(tmp_path / "missing.safetensors")


def test_bicubic_by_name_and_default():
    assert afvsr.load_model("bicubic", scale=3).scale == 3
    assert default_model_name() in {"bicubic"} | set(afvsr.checkpoint.SHIPPED_MODELS)


def test_half_precision_file_loads_into_fp32_model(tmp_path):
    model = BasicVSR(mid_channels=8, num_blocks=1).eval()
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    afvsr.save_model(model, full)
    afvsr.save_model(model, half, dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert full.stat().st_mode & 0o044 and half.stat().st_mode & 0o044  # not mkstemp's 0600
    loaded = afvsr.load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32
    lq = torch.rand(1, 3, 3, 12, 12)
    with torch.no_grad():
        assert (loaded(lq) - model(lq)).abs().max() < 1e-2
