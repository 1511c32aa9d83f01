"""Model files (issues #16 §4 and #17 §4): metadata validated and every tensor's shape checked
against the model the metadata describes before anything is built; every model in MODELS
round-trips through save_model/load_model with all its constructor arguments."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file

import afvsr
from afvsr.checkpoint import FORMAT_VERSION
from afvsr.errors import AfvsrError
from afvsr.models import MODELS, BasicVSR

# Non-default arguments for every family, so a dropped one would show.
EXAMPLES = {
    "bicubic": {"scale": 3},
    "spynet": {},
    "basicvsr": {
        "mid_channels": 8,
        "num_blocks": 2,
        "scale": 2,
        "upsample_mode": "bilinear",
        "flow_mode": "one-way",
    },
    "iconvsr": {
        "mid_channels": 8,
        "num_blocks": 1,
        "scale": 3,
        "keyframe_stride": 3,
        "temporal_padding": 1,
        "upsample_mode": "bilinear",
        "boundary": "reference",
        "flow_mode": "one-way",
    },
    "afvsr": {
        "mid_channels": 8,
        "num_blocks": 1,
        "scale": 4,
        "rates": [1, 3, 5],
        "window": 3,
        "num_heads": 2,
        "group_fusion": "attention",
        "residual_fusion": True,
        "upsample_mode": "bilinear",
        "flow_mode": "one-way",
    },
}


def test_examples_cover_every_model():
    assert set(EXAMPLES) == set(MODELS)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_every_model_round_trips_with_all_its_arguments(tmp_path, family):
    model = MODELS[family](**EXAMPLES[family]).eval()
    assert model.kwargs == EXAMPLES[family]  # recorded from the signature, every argument
    path = tmp_path / f"{family}.safetensors"
    afvsr.save_model(model, path)
    loaded = afvsr.load_model(path)
    assert type(loaded) is type(model) and loaded.kwargs == model.kwargs
    own, back = model.state_dict(), loaded.state_dict()
    assert own.keys() == back.keys() and all(torch.equal(own[k], back[k]) for k in own)


def write(path, tensors, *, kwargs, model="basicvsr", raw=None):
    meta = {"format_version": FORMAT_VERSION, "model": model}
    if kwargs is not None:
        meta["kwargs"] = json.dumps(kwargs) if raw is None else raw
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.fixture
def tiny(tmp_path):
    model = BasicVSR(mid_channels=4, num_blocks=1)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "kwargs,raw,message",
    [
        (None, None, "has no 'kwargs'"),
        ({}, "[4, 1]", "must be a mapping"),
        ({}, "{not json", "is not JSON"),
        ({"mid_channels": 4, "num_blocks": 1, "colour": 3}, None, "unknown argument 'colour'"),
        ({"mid_channels": "4", "num_blocks": 1}, None, "'mid_channels' must be an integer"),
        ({"mid_channels": True, "num_blocks": 1}, None, "'mid_channels' must be an integer"),
        ({"mid_channels": 4, "upsample_mode": 3}, None, "'upsample_mode' must be a string"),
        ({"mid_channels": 4, "upsample_mode": "nearest"}, None, "expected upsample_mode in"),
        ({"mid_channels": 4, "scale": 8}, None, r"'scale' must be in \[2, 4\]"),
    ],
)
def test_bad_metadata_is_one_line_naming_the_file(tmp_path, tiny, kwargs, raw, message):
    path = write(tmp_path / "m.safetensors", tiny, kwargs=kwargs, raw=raw)
    with pytest.raises(AfvsrError, match=message) as err:
        afvsr.load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_huge_sizes_are_refused_before_any_allocation(tmp_path, tiny):
    path = write(tmp_path / "m.safetensors", tiny, kwargs={"mid_channels": 1_000_000})
    start = time.perf_counter()
    with pytest.raises(AfvsrError, match=r"'mid_channels' must be in \[1, 1024\], got 1000000"):
        afvsr.load_model(path)
    assert time.perf_counter() - start < 2
    # In range but not what the tensors hold: found on the meta device, nothing allocated.
    path = write(tmp_path / "n.safetensors", tiny, kwargs={"mid_channels": 1024, "num_blocks": 512})
    with pytest.raises(
        AfvsrError, match="tensor 'propagation.backward_branch.conv_in.weight' has shape"
    ):
        afvsr.load_model(path)
    assert time.perf_counter() - start < 10


def test_count_and_shape_mismatches_name_the_first_tensor(tmp_path, tiny):
    kwargs = {"mid_channels": 4, "num_blocks": 1}
    extra = write(tmp_path / "a.safetensors", {**tiny, "zz.extra": torch.zeros(1)}, kwargs=kwargs)
    with pytest.raises(
        AfvsrError, match=r"unexpected tensor 'zz.extra' .*\(\d+ tensors, .* has \d+\)"
    ):
        afvsr.load_model(extra)
    first = next(iter(tiny))
    short = {k: v for k, v in tiny.items() if k != first}
    with pytest.raises(AfvsrError, match=f"missing tensor '{first}'"):
        afvsr.load_model(write(tmp_path / "b.safetensors", short, kwargs=kwargs))
    two_blocks = write(
        tmp_path / "c.safetensors", tiny, kwargs={"mid_channels": 4, "num_blocks": 2}
    )
    with pytest.raises(AfvsrError, match="missing tensor 'propagation.backward_branch.blocks.1"):
        afvsr.load_model(two_blocks)


def test_constructor_refusal_is_one_line(tmp_path, tiny):
    path = write(
        tmp_path / "m.safetensors", tiny, kwargs={"rates": [1, 2], "window": 2}, model="afvsr"
    )
    with pytest.raises(AfvsrError, match="describes no valid afvsr model") as err:
        afvsr.load_model(path)
    assert str(path) in str(err.value)


def test_old_files_without_upsample_mode_keep_the_bicubic_base(tmp_path, tiny):
    path = write(
        tmp_path / "old.safetensors", tiny, kwargs={"mid_channels": 4, "num_blocks": 1, "scale": 4}
    )
    model = afvsr.load_model(path)
    assert model.reconstruction.upsample_mode == "bicubic"


@pytest.mark.parametrize("family", sorted(set(MODELS) - {"spynet"}))
def test_declared_clip_contract_matches_forward(family):
    import inspect

    model = MODELS[family](**EXAMPLES[family]).eval()
    params = inspect.signature(model.forward).parameters
    assert bool(model.clip_modes) == ("mode" in params)
    assert model.takes_frames == ("frames" in params)
    if model.clip_modes:
        assert params["mode"].default == model.default_mode in model.clip_modes
    lq = torch.rand(1, 4, 3, 6, 5)
    with torch.no_grad():
        for mode in model.clip_modes or (None,):
            kwargs = {} if mode is None else {"mode": mode}
            full = model(lq, **kwargs)
            if model.takes_frames:
                part = model(lq, frames=slice(1, 3), **kwargs)
                assert torch.allclose(part, full[:, 1:3], atol=1e-5)


def test_upscale_refuses_a_spynet_file_in_one_line(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from afvsr.cli import main
    from afvsr.models import SPyNet

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(frames / f"{i}.png")
    spynet = tmp_path / "spynet.safetensors"
    afvsr.save_model(SPyNet(), spynet)
    before = spynet.read_bytes()
    assert main(["upscale", str(frames), "-o", str(tmp_path / "out"), "--model", str(spynet)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{spynet}: a SPyNet" in err and "cannot upscale" in err
    assert not (tmp_path / "out").exists() and spynet.read_bytes() == before
