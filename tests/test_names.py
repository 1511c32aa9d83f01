"""The method's one name, AFVSR: old names ("fusion", ``fusion-*-small``, the argument
``fusion``) still load, to the same model and the same numbers, and live in one place only."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from train_helpers import make_frames, tiny_config, write_config

import afvsr
from afvsr.checkpoint import SHIPPED_MODELS, read_metadata, shipped_path
from afvsr.errors import AfvsrError
from afvsr.models import AFVSR, MODELS, AttentionFusionVSR, build_model
from afvsr.names import OLD_KWARGS, OLD_NAMES, current_kwargs, current_name
from afvsr.train.config import config_diff, resolve_config, saved_config

TINY = {"mid_channels": 4, "num_blocks": 1, "rates": [1, 2], "window": 3}
PACKAGE = Path(afvsr.__file__).parent


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


def old_model_file(model: AFVSR, path: Path) -> Path:
    """``model`` saved as afvsr wrote it before the rename: model "fusion", argument "fusion"."""
    afvsr.save_model(model, path)
    meta = read_metadata(path)
    kwargs = json.loads(meta["kwargs"])
    kwargs["fusion"] = kwargs.pop("group_fusion")
    meta.update(model="fusion", kwargs=json.dumps(kwargs))
    save_file(load_file(path), str(path), metadata=meta)
    return path


def test_one_name_across_class_key_and_old_alias():
    assert MODELS["afvsr"] is AFVSR and AttentionFusionVSR is AFVSR
    assert "fusion" not in MODELS
    assert current_name("fusion") == "afvsr" and current_name("basicvsr") == "basicvsr"
    assert current_name("fusion-single-small") == "afvsr-single-small"
    old = build_model("fusion", **TINY, fusion="mean")
    new = build_model("afvsr", **TINY, group_fusion="mean")
    assert type(old) is AFVSR and old.kwargs == new.kwargs
    assert old.kwargs["group_fusion"] == "mean" and "fusion" not in old.kwargs
    # Both spellings given: the old one is left to be refused, never silently dropped.
    assert current_kwargs("afvsr", {"fusion": "mean", "group_fusion": "attention"}) == {
        "fusion": "mean",
        "group_fusion": "attention",
    }
    with pytest.raises(TypeError, match="fusion"):
        build_model("afvsr", **TINY, fusion="mean", group_fusion="attention")


@pytest.mark.parametrize("group_fusion", ["attention", "mean"])
def test_a_model_file_from_before_the_rename_loads_to_the_same_numbers(tmp_path, group_fusion):
    torch.manual_seed(0)
    model = AFVSR(**TINY, group_fusion=group_fusion).eval()
    new = tmp_path / "new.safetensors"
    afvsr.save_model(model, new)
    old = old_model_file(model, tmp_path / "old.safetensors")
    assert read_metadata(new)["model"] == "afvsr" and read_metadata(old)["model"] == "fusion"
    a, b = afvsr.load_model(new), afvsr.load_model(old)
    assert type(b) is AFVSR and a.kwargs == b.kwargs == model.kwargs
    lq = torch.rand(1, 4, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(a(lq), b(lq)) and torch.equal(a(lq), model(lq))
    # Saving it again writes the current names.
    again = tmp_path / "again.safetensors"
    afvsr.save_model(b, again)
    assert read_metadata(again)["model"] == "afvsr"
    assert "group_fusion" in json.loads(read_metadata(again)["kwargs"])


@pytest.mark.parametrize("old", [n for n in OLD_NAMES if n.endswith("-small")])
def test_old_shipped_names_load_the_renamed_weights(old):
    new = current_name(old)
    assert new in SHIPPED_MODELS and new.startswith("afvsr-")
    if not shipped_path(new).is_file():
        pytest.skip(f"{new} is not shipped in this checkout")
    assert shipped_path(old) == shipped_path(new)
    assert read_metadata(shipped_path(new))["model"] in ("fusion", "afvsr")
    a, b = afvsr.load_model(new), afvsr.load_model(old)
    assert type(a) is AFVSR and a.kwargs == b.kwargs and "group_fusion" in a.kwargs
    lq = torch.rand(1, 3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(a(lq), b(lq))


def test_a_config_with_the_old_names_resolves_as_the_new_one(tmp_path, frames):
    data = {"samples": "groups", "rates": [1, 2], "window": 3}
    new = tiny_config(tmp_path, frames, model={"name": "afvsr", **TINY, "group_fusion": "mean"})
    old = tiny_config(tmp_path, frames, model={"name": "fusion", **TINY, "fusion": "mean"})
    new["data"].update(data)
    old["data"].update(data)
    with pytest.warns(FutureWarning, match=r"\[model\] fusion is named group_fusion now"):
        resolved_old = resolve_config(old, "old.toml")
    resolved_new = resolve_config(new, "new.toml")
    assert resolved_old == resolved_new
    assert resolved_old["model"]["name"] == "afvsr"
    assert resolved_old["model"]["group_fusion"] == "mean"
    with pytest.warns(FutureWarning, match="--set model.fusion=mean"):
        over = resolve_config(
            tiny_config(tmp_path, frames, model={"name": "afvsr", **TINY}, data=data),
            "o.toml",
            overrides=["model.fusion=mean"],
        )
    assert over["model"]["group_fusion"] == "mean"
    both = tiny_config(tmp_path, frames, model={"name": "afvsr", **TINY}, data=data)
    both["model"].update(fusion="mean", group_fusion="attention")
    with pytest.raises(AfvsrError, match=r"\[model\] unknown key 'fusion'"):
        resolve_config(both, "both.toml")


def test_the_command_prints_the_old_name_warning_as_one_line(tmp_path, frames, capsys):
    """`afvsr train` with a config from before the rename: one line `afvsr: warning: ...` (the
    run then stops at a bad --set value, one line too)."""
    from afvsr.cli import main

    data = {"samples": "groups", "rates": [1, 2], "window": 3}
    old = tiny_config(
        tmp_path, frames, model={"name": "fusion", **TINY, "fusion": "mean"}, data=data
    )
    path = write_config(tmp_path / "old.toml", old)
    assert main(["train", "-c", str(path), "--set", "model.num_blocks=-1"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"afvsr: warning: {path}: [model] fusion is named group_fusion now; read as group_fusion",
        "afvsr: error: --set model.num_blocks=-1: [model] num_blocks: expected a value >= 0, "
        "got -1",
    ]


def test_a_checkpoint_config_from_before_the_rename_resumes_without_a_model_difference(
    tmp_path, frames
):
    """A training checkpoint stores its resolved config; one written before the rename says
    model "fusion" and argument "fusion": resume sees the same model."""
    raw = tiny_config(tmp_path, frames, model={"name": "afvsr", **TINY})
    raw["data"].update(samples="groups", rates=[1, 2], window=3)
    current = resolve_config(raw, "now.toml")
    stored = json.loads(json.dumps(current))
    stored["model"]["name"] = "fusion"
    stored["model"]["fusion"] = stored["model"].pop("group_fusion")
    with pytest.warns(FutureWarning):
        assert config_diff(saved_config(stored, "step_2.safetensors"), current) == []


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_the_old_names_live_in_one_place_only():
    """No module but afvsr.names spells an old model key, shipped name or argument as a value."""
    old = set(OLD_NAMES) | {k for renames in OLD_KWARGS.values() for k in renames}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "names.py":
            continue
        found = old & _string_constants(path)
        assert not found, f"{path.relative_to(PACKAGE)} spells {sorted(found)}"
