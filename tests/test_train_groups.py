"""Parameter groups by module, learning rates, SPyNet freezing, stage-2 warm start."""

from __future__ import annotations

import math

import pytest
import torch
from train_helpers import make_frames, tiny_config, tiny_trainer

from afvsr.checkpoint import load_model, save_model
from afvsr.errors import AfvsrError
from afvsr.models import build_model
from afvsr.train.config import resolve_config
from afvsr.train.loop import Trainer, train
from afvsr.train.schedule import lr_at


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


def _lrs(trainer: Trainer) -> dict[str, float]:
    return trainer._set_lrs()


def _requires_grad(module: torch.nn.Module) -> set[bool]:
    return {p.requires_grad for p in module.parameters()}


def test_cosine_schedule_with_warmup():
    cfg = {"iterations": 110, "warmup_iters": 10, "scheduler": "cosine", "eta_min": 1e-6}
    assert lr_at(0, 1e-3, cfg) == pytest.approx(1e-4)  # warm-up: lr * 1/10
    assert lr_at(9, 1e-3, cfg) == pytest.approx(1e-3)
    assert lr_at(10, 1e-3, cfg) == pytest.approx(1e-3)  # cosine starts at the base lr
    assert lr_at(60, 1e-3, cfg) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)  # half way
    assert lr_at(110, 1e-3, cfg) == pytest.approx(1e-6)
    # the same curve as torch's CosineAnnealingLR, stepped every iteration
    cfg = {"iterations": 50, "warmup_iters": 0, "scheduler": "cosine", "eta_min": 1e-7}
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=1e-7)
    for step in range(50):
        assert opt.param_groups[0]["lr"] == pytest.approx(lr_at(step, 2e-4, cfg), rel=1e-9)
        opt.step()
        sched.step()
    assert lr_at(7, 2e-4, {**cfg, "scheduler": "constant"}) == 2e-4


def test_basicvsr_groups_spynet_frozen_then_at_mult_lr(tmp_path, frames):
    trainer = tiny_trainer(
        tmp_path,
        frames,
        train={"iterations": 100, "lr": 2e-4, "spynet_freeze_iters": 5, "spynet_lr_mult": 0.125},
    )
    try:
        model = trainer.model
        groups = {g.name: g for g in trainer.groups}
        assert list(groups) == ["spynet", "propagation", "reconstruction"]
        assert groups["spynet"].modules == [model.spynet]
        assert groups["propagation"].modules == [model.propagation]
        assert groups["spynet"].lr == pytest.approx(2.5e-5)
        assert groups["propagation"].lr == groups["reconstruction"].lr == 2e-4
        # The optimizer holds exactly the parameters of each module, by module.
        by_name = {g["name"]: g["params"] for g in trainer.optimizer.param_groups}
        for name in ("spynet", "propagation", "reconstruction"):
            assert {id(p) for p in by_name[name]} == {
                id(p) for p in getattr(model, name).parameters()
            }
        for step, frozen in [(0, True), (4, True), (5, False), (50, False)]:
            trainer.step = step
            trainer._update_trainable()
            lrs = _lrs(trainer)
            assert _requires_grad(model.spynet) == {not frozen}, step
            assert _requires_grad(model.propagation) == {True}
            assert lrs["spynet"] == pytest.approx(lr_at(step, 2.5e-5, trainer.tcfg))
            assert lrs["propagation"] == pytest.approx(lr_at(step, 2e-4, trainer.tcfg))
        assert lr_at(50, 2e-4, trainer.tcfg) == pytest.approx(
            1e-7 + (2e-4 - 1e-7) * 0.5 * (1 + math.cos(math.pi * 0.5))
        )
    finally:
        trainer.close()


def test_spynet_stays_unchanged_while_frozen(tmp_path, frames):
    from afvsr.train.loop import train

    cfg = resolve_config(
        tiny_config(tmp_path, frames, train={"iterations": 2, "spynet_freeze_iters": 2}),
        "t.toml",
    )
    torch.manual_seed(cfg["run"]["seed"])  # the run builds its model right after this seeding
    initial = build_model("basicvsr", mid_channels=4, num_blocks=1)
    assert train(cfg, source="t.toml") == 0
    from afvsr.checkpoint import load_model

    trained = load_model(tmp_path / "runs" / "tiny" / "model_final.safetensors")
    for (name, a), b in zip(
        trained.spynet.state_dict().items(), initial.spynet.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    changed = [
        not torch.equal(a, b)
        for a, b in zip(
            trained.propagation.parameters(), initial.propagation.parameters(), strict=True
        )
    ]
    assert all(changed)


def _afvsr_sections(tmp_path, backbone, **train):
    return {
        "model": {
            "name": "afvsr",
            "mid_channels": 4,
            "num_blocks": 1,
            "rates": [1, 2],
            "window": 3,
        },
        "data": {"samples": "groups", "rates": [1, 2], "window": 3},
        "train": {
            "backbone_checkpoint": str(backbone),
            "lr": 1e-3,
            "lr_base": 4e-4,
            "lr_finetune": 5e-5,
            "spynet_lr_mult": 0.5,
            **train,
        },
    }


def test_stage2_loads_backbone_by_module_and_freezes_it(tmp_path, frames):
    basic = build_model("basicvsr", mid_channels=4, num_blocks=1)
    for p in basic.parameters():  # distinctive weights
        p.data.uniform_(-1, 1)
    backbone = tmp_path / "basic.safetensors"
    save_model(basic, backbone)
    trainer = tiny_trainer(tmp_path, frames, **_afvsr_sections(tmp_path, backbone))
    try:
        model = trainer.model
        for name in ("spynet", "propagation", "reconstruction"):
            mine, theirs = getattr(model, name).state_dict(), getattr(basic, name).state_dict()
            assert all(torch.equal(mine[k], theirs[k]) for k in theirs), name
        trainer._update_trainable()
        assert _requires_grad(model.spynet) == {False}
        assert _requires_grad(model.propagation) == {False}
        assert _requires_grad(model.attention) == {True}
        assert _requires_grad(model.reconstruction) == {True}
        lrs = _lrs(trainer)
        assert set(lrs) == {"attention", "reconstruction"}  # frozen groups are not optimized
        assert lrs["attention"] == pytest.approx(4e-4)
        assert lrs["reconstruction"] == pytest.approx(5e-5)
    finally:
        trainer.close()
    trainer = tiny_trainer(
        tmp_path,
        frames,
        **_afvsr_sections(tmp_path, backbone, unfreeze_all=True),
        run={"name": "all"},
    )
    try:
        trainer._update_trainable()
        assert _requires_grad(trainer.model.spynet) == {True}
        assert _requires_grad(trainer.model.propagation) == {True}
        lrs = _lrs(trainer)
        assert lrs["spynet"] == pytest.approx(2.5e-5)  # spynet_lr_mult x lr_finetune
        assert lrs["propagation"] == pytest.approx(5e-5)
        assert lrs["attention"] == pytest.approx(4e-4)
    finally:
        trainer.close()


def test_stage2_rejects_a_mismatched_backbone(tmp_path, frames):
    wide = build_model("basicvsr", mid_channels=8, num_blocks=1)
    backbone = tmp_path / "wide.safetensors"
    save_model(wide, backbone)
    with pytest.raises(AfvsrError, match=r"wide\.safetensors \(propagation\): tensor"):
        tiny_trainer(tmp_path, frames, **_afvsr_sections(tmp_path, backbone))


def test_spynet_checkpoint_loads_into_the_spynet_module(tmp_path, frames):
    spynet = build_model("spynet")
    for p in spynet.parameters():
        p.data.fill_(0.25)
    path = tmp_path / "spynet.safetensors"
    save_model(spynet, path)
    trainer = tiny_trainer(tmp_path, frames, train={"spynet_checkpoint": str(path)})
    try:
        assert all(torch.all(p == 0.25) for p in trainer.model.spynet.parameters())
        assert not any(torch.all(p == 0.25) for p in trainer.model.propagation.parameters())
    finally:
        trainer.close()


def test_init_checkpoint_loads_every_weight_and_rejects_a_mismatch(tmp_path, frames):
    start = build_model("basicvsr", mid_channels=4, num_blocks=1)
    for i, p in enumerate(start.parameters()):
        p.data.fill_(0.01 * (i + 1))
    path = tmp_path / "start.safetensors"
    save_model(start, path)
    trainer = tiny_trainer(tmp_path, frames, train={"init_checkpoint": str(path)})
    try:
        mine = trainer.model.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in start.state_dict().items())
    finally:
        trainer.close()
    wide = tmp_path / "wide.safetensors"
    save_model(build_model("basicvsr", mid_channels=8, num_blocks=1), wide)
    with pytest.raises(AfvsrError, match=r"wide\.safetensors: tensor '.*' has shape"):
        tiny_trainer(tmp_path, frames, train={"init_checkpoint": str(wide)})
    spynet = tmp_path / "spynet.safetensors"
    save_model(build_model("spynet"), spynet)
    with pytest.raises(AfvsrError, match=r"expected a basicvsr model file to start from"):
        tiny_trainer(tmp_path, frames, train={"init_checkpoint": str(spynet)})
    with pytest.raises(AfvsrError, match=r"init_checkpoint loads every weight"):
        tiny_trainer(
            tmp_path, frames, train={"init_checkpoint": str(path), "spynet_checkpoint": str(spynet)}
        )


def test_stage2_mean_ablation_trains_only_the_reconstruction(tmp_path, frames):
    basic = build_model("basicvsr", mid_channels=4, num_blocks=1)
    backbone = tmp_path / "basic.safetensors"
    save_model(basic, backbone)
    sections = _afvsr_sections(tmp_path, backbone)
    sections["model"]["group_fusion"] = "mean"
    sections["train"]["iterations"] = 2
    cfg = resolve_config(tiny_config(tmp_path, frames, **sections), "test.toml")
    assert train(cfg, source="test.toml") == 0
    final = load_model(tmp_path / "runs" / "tiny" / "model_final.safetensors")
    assert final.kwargs["group_fusion"] == "mean"
    for name, changed in (("spynet", False), ("propagation", False), ("reconstruction", True)):
        mine, theirs = getattr(final, name).state_dict(), getattr(basic, name).state_dict()
        assert any(not torch.equal(mine[k], theirs[k]) for k in theirs) == changed, name


def test_stage2_on_sequence_samples_trains_the_fusion_as_inference_runs_it(tmp_path, frames):
    basic = build_model("basicvsr", mid_channels=4, num_blocks=1)
    backbone = tmp_path / "basic.safetensors"
    save_model(basic, backbone)
    sections = _afvsr_sections(tmp_path, backbone, iterations=2)
    sections["data"] = {"samples": "sequence", "num_frames": 5}
    trainer = tiny_trainer(tmp_path, frames, **sections)
    try:
        model, items = trainer.model, [trainer.dataset[i] for i in range(2)]
        batch = {k: torch.stack([item[k] for item in items]) for k in ("lq", "gt")}
        assert batch["lq"].shape[:2] == (2, 5) and batch["gt"].shape[:2] == (2, 5)
        loss, _ = trainer.task.loss(model, batch)  # every frame, through sequence mode
        with torch.no_grad():
            expected = (model(batch["lq"], mode="sequence") - batch["gt"]).pow(2).add(1e-12)
        assert loss.item() == pytest.approx(expected.sqrt().mean().item(), rel=1e-5)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        trainer.run()
        after = model.state_dict()
        for name in ("spynet.", "propagation."):  # frozen
            assert all(torch.equal(after[k], v) for k, v in before.items() if k.startswith(name))
        for name in ("attention.", "reconstruction."):  # trained
            assert any(
                not torch.equal(after[k], v) for k, v in before.items() if k.startswith(name)
            )
    finally:
        trainer.close()
