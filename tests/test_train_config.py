"""Config files: validation errors name the key and the file; overrides are type-checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from train_helpers import make_frames, tiny_config, write_config

from afvsr.errors import AfvsrError
from afvsr.train.config import (
    TRAIN_DEFAULTS,
    config_to_toml,
    load_config,
    parse_override,
    read_config_file,
    resolve_config,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


def _write(tmp_path: Path, frames: Path, **sections) -> Path:
    return write_config(tmp_path / "exp.toml", tiny_config(tmp_path, frames, **sections))


def _error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(AfvsrError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_resolved_config_fills_every_default(tmp_path, frames):
    cfg = load_config(_write(tmp_path, frames))
    assert cfg["train"]["iterations"] == 4
    assert cfg["train"]["betas"] == [0.9, 0.99]
    assert cfg["train"]["charbonnier_eps"] == 1e-12
    assert set(cfg["train"]) == set(TRAIN_DEFAULTS)
    # [model] is the constructor's keyword arguments, defaults included.
    assert cfg["model"] == {"name": "basicvsr", "mid_channels": 4, "num_blocks": 1, "scale": 4}
    assert cfg["data"]["samples"] == "sequence" and cfg["data"]["patch_size"] == 8
    assert cfg["run"]["task"] == "vsr"


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("train", {"lrr": 1.0}, "[train] unknown key 'lrr'"),
        ("train", {"lr": "fast"}, "[train] lr: expected a number, got 'fast'"),
        ("train", {"iterations": 2.5}, "[train] iterations: expected an integer, got 2.5"),
        ("train", {"betas": [0.9, "x"]}, "[train] betas[1]: expected a number"),
        ("train", {"scheduler": "step"}, "[train] scheduler: expected one of"),
        ("train", {"batch_size": 0}, "[train] batch_size: expected a value > 0"),
        ("run", {"deterministic": 1}, "[run] deterministic: expected a boolean, got 1"),
        ("model", {"mid_chanels": 8}, "[model] unknown key 'mid_chanels'"),
        ("model", {"num_blocks": "5"}, "[model] num_blocks: expected an integer"),
        ("log", {"every": -1}, "[log] every: expected a value >= 0"),
        ("val", {"best": "lpips"}, "[val] best: expected psnr_rgb"),
        ("data", {"patch_size": "big"}, "data.patch_size"),
        ("data", {"samples": "groups"}, "[data] samples: model basicvsr trains on 'sequence'"),
    ],
)
def test_errors_name_key_and_file(tmp_path, frames, section, values, expected):
    path = _write(tmp_path, frames, **{section: values})
    message = _error(path)
    assert str(path) in message
    assert expected in message


def test_missing_required_key_and_unknown_section(tmp_path, frames):
    raw = tiny_config(tmp_path, frames)
    del raw["train"]["iterations"]
    path = write_config(tmp_path / "a.toml", raw)
    assert _error(path) == f"{path}: [train] missing required key 'iterations'"
    raw = tiny_config(tmp_path, frames)
    raw["optim"] = {"lr": 1.0}
    path = write_config(tmp_path / "b.toml", raw)
    assert _error(path).startswith(f"{path}: unknown section [optim]")


def test_unknown_model_and_bad_syntax(tmp_path, frames):
    path = _write(tmp_path, frames, model={"name": "edsr"})
    assert "[model] name: expected one of" in _error(path) and str(path) in _error(path)
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\niterations = 3\n")
    assert _error(bad).startswith(f"{bad}: not valid TOML")
    with pytest.raises(FileNotFoundError, match="no config file"):
        load_config(tmp_path / "missing.toml")


def test_overrides_are_typed_and_named(tmp_path, frames):
    path = _write(tmp_path, frames)
    cfg = load_config(
        path,
        [
            "train.lr=1e-3",
            "train.betas=[0.8, 0.9]",
            "run.name=2024",
            "model.num_blocks=2",
            "train.unfreeze_all=true",
        ],
    )
    assert cfg["train"]["lr"] == 1e-3
    assert cfg["train"]["betas"] == [0.8, 0.9]
    assert cfg["run"]["name"] == "2024"  # a string key keeps the text as typed
    assert cfg["model"]["num_blocks"] == 2
    assert cfg["train"]["unfreeze_all"] is True
    assert (
        _error(path, ["train.lr=fast"])
        == "--set train.lr=fast: [train] lr: expected a number, got 'fast'"
    )
    assert _error(path, ["train.nope=1"]).startswith(
        "--set train.nope=1: [train] unknown key 'nope'"
    )
    assert _error(path, ["lr=1"]).startswith("--set lr=1: expected SECTION.KEY=VALUE")
    assert parse_override("val.dataset=shared:val") == ("val", "dataset", "shared:val")


def test_saved_config_round_trips_and_yaml_reads_the_same(tmp_path, frames):
    cfg = load_config(_write(tmp_path, frames, train={"lr": 3e-4, "eta_min": 1e-7}))
    saved = tmp_path / "saved.toml"
    saved.write_text(config_to_toml(cfg))
    assert load_config(saved) == cfg
    as_yaml = tmp_path / "exp.yaml"
    as_yaml.write_text(yaml.safe_dump(tiny_config(tmp_path, frames, train={"lr": 3e-4})))
    assert load_config(as_yaml) == cfg


def test_stage2_checks(tmp_path, frames):
    raw = tiny_config(
        tmp_path,
        frames,
        model={"name": "fusion", "rates": [1, 2], "window": 3},
        data={"samples": "groups", "rates": [1, 2], "window": 5},
    )
    message = _error(write_config(tmp_path / "f.toml", raw))
    assert "[data] rates/window [1, 2]/5 must equal [model] rates/window [1, 2]/3" in message
    path = _write(tmp_path, frames, train={"backbone_checkpoint": "x.safetensors"})
    assert "[train] backbone_checkpoint is for stage 2 (model fusion)" in _error(path)


def test_shipped_configs_are_valid():
    configs = sorted((REPO / "configs").rglob("*.toml"))
    assert len(configs) >= 2
    for path in configs:
        cfg = resolve_config(read_config_file(path), str(path), config_path=path)
        assert cfg["train"]["iterations"] > 0, path
