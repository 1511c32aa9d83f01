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
from afvsr.train.vsr_task import VSRTask

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
    assert set(cfg["train"]) == set(TRAIN_DEFAULTS) | set(VSRTask.train_fields)
    # [model] is the constructor's keyword arguments, defaults included.
    assert cfg["model"] == {
        "name": "basicvsr",
        "mid_channels": 4,
        "num_blocks": 1,
        "scale": 4,
        "upsample_mode": "bicubic",  # a constructor argument since issue #19
        "flow_mode": "two-way",
    }
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
        ("val", {"best": "lpips"}, "[val] best: expected one of ['psnr_rgb'"),
        ("data", {"patch_size": "big"}, "[data] patch_size"),
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
        model={"name": "afvsr", "rates": [1, 2], "window": 3},
        data={"samples": "groups", "rates": [1, 2], "window": 5},
    )
    message = _error(write_config(tmp_path / "f.toml", raw))
    assert "[data] rates/window [1, 2]/5 must equal [model] rates/window [1, 2]/3" in message
    path = _write(tmp_path, frames, train={"backbone_checkpoint": "x.safetensors"})
    assert "[train] backbone_checkpoint is for stage 2 (model afvsr) or an IconVSR" in _error(path)


def test_shipped_configs_are_valid():
    configs = sorted((REPO / "configs").rglob("*.toml"))
    assert len(configs) >= 2
    for path in configs:
        cfg = resolve_config(read_config_file(path), str(path), config_path=path)
        assert cfg["train"]["iterations"] > 0, path


def test_data_rates_window_scale_and_samples_follow_the_model(tmp_path, frames):
    raw = tiny_config(tmp_path, frames, model={"name": "afvsr", "rates": [1, 3], "window": 3})
    cfg = resolve_config(raw, "f.toml")
    assert cfg["data"]["samples"] == "groups"
    assert (cfg["data"]["rates"], cfg["data"]["window"], cfg["data"]["scale"]) == ([1, 3], 3, 4)
    raw = tiny_config(tmp_path, frames, model={"scale": 2})
    assert resolve_config(raw, "b.toml")["data"]["scale"] == 2
    raw = tiny_config(tmp_path, frames, model={"scale": 2}, data={"scale": 3})
    with pytest.raises(
        AfvsrError, match=r"^b\.toml: \[model\] scale 2 and \[data\] scale 3 differ"
    ):
        resolve_config(raw, "b.toml")


def test_every_key_is_declared_once_with_its_help():
    from afvsr.schema import Field
    from afvsr.train.reference import config_reference
    from afvsr.train.tasks import TASKS

    reference = config_reference()
    sections = [TRAIN_DEFAULTS] + [
        fields
        for task in TASKS.values()
        for fields in (task.data_fields, task.train_fields, task.val_fields)
    ]
    for fields in sections:
        for key, field in fields.items():
            assert isinstance(field, Field) and field.help, key
            assert f"| `{key}` |" in reference, key
    for task in TASKS.values():  # the loop's keys are not the task's
        assert not set(task.train_fields) & set(TRAIN_DEFAULTS), task.name
    # docs/training.md carries the reference between its "generated" markers, word for word.
    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    begin = "<!-- generated: afvsr train --print-config -->\n"
    assert docs[docs.index(begin) + len(begin) : docs.index("<!-- end generated -->")] == reference


def test_configs_of_the_earlier_layout_still_load(tmp_path, frames):
    # A flow config with its loss weights in [data], as written before each task owned its keys.
    old = {
        "run": {"task": "flow"},
        "model": {"name": "spynet"},
        "data": {"patch_size": 32, "level_weights": [1.0, 0.5], "smooth_weight": 0.1},
        "train": {"iterations": 3, "loss": "charbonnier", "lr_base": 0.0, "unfreeze_all": False},
    }
    cfg = resolve_config(old, "old.toml")
    assert cfg["train"]["level_weights"] == [1.0, 0.5] and cfg["train"]["smooth_weight"] == 0.1
    assert "level_weights" not in cfg["data"] and "loss" not in cfg["train"]
    both = {**old, "train": {"iterations": 3, "level_weights": [1.0]}}
    with pytest.raises(AfvsrError, match=r"old\.toml: \[data\] level_weights: is a \[train\] key"):
        resolve_config(both, "old.toml")
    # A VSR key set to a value that would matter is still an error for the flow task.
    odd = {**old, "train": {"iterations": 3, "loss": "l1"}}
    with pytest.raises(AfvsrError, match=r"\[train\] unknown key 'loss'"):
        resolve_config(odd, "odd.toml")
    # null (YAML) is "not set", as "" is.
    raw = tiny_config(tmp_path, frames, data={"lq_root": None})
    assert resolve_config(raw, "n.toml")["data"]["lq_root"] == ""
