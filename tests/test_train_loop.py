"""The loop end to end on a tiny problem: the loss goes down, the run folder, NaN, atomic saves."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import make_frames, tiny_config, tiny_trainer

from afvsr import inference
from afvsr.checkpoint import load_model
from afvsr.errors import AfvsrError
from afvsr.train import state as train_state
from afvsr.train.config import resolve_config
from afvsr.train.loop import train
from afvsr.train.schedule import ema_decay_at
from afvsr.train.state import read_checkpoint
from afvsr.train.vsr_task import VSRTask


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


def _metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_loss_goes_down_and_the_run_folder_is_complete(tmp_path, frames):
    # SPyNet frozen (it is the costly part); everything else fits one clip's crops.
    raw = tiny_config(
        tmp_path,
        frames,
        train={"iterations": 16, "lr": 2e-3, "spynet_freeze_iters": 100},
        val={"every": 8, "max_frames": 3},
        log={"every": 1, "checkpoint_every": 8, "tensorboard": True},
    )
    cfg = resolve_config(raw, "t.toml")
    assert train(cfg, source="t.toml") == 0
    run_dir = tmp_path / "runs" / "tiny"
    records = _metrics(run_dir)
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 16
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, (first, last)
    vals = [r for r in records if "val/psnr_y" in r]
    assert [r["step"] for r in vals] == [8, 16]
    assert {"val/psnr_rgb", "val/ssim_rgb", "val/ssim_y", "val/bicubic_psnr_y"} <= set(vals[0])
    # Run folder: resolved config, log, TensorBoard, checkpoints, exported models.
    assert (
        resolve_config(__import__("tomllib").loads((run_dir / "config.toml").read_text()), "saved")
        == cfg
    )
    assert (run_dir / "train.log").read_text().count("validation") == 2
    assert list((run_dir / "tensorboard").iterdir())
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["best.safetensors", "step_00000008.safetensors", "step_00000016.safetensors"]
    meta, tensors = read_checkpoint(run_dir / "checkpoints" / "step_00000016.safetensors")
    assert meta["step"] == 16 and meta["config"] == cfg
    assert meta["sampler"]["next_micro_batch"] == 16
    assert "rng/torch" in tensors and len(meta["rng"]["python"]["state"]) == 625
    best_step = max(vals, key=lambda r: r["val/psnr_y"])["step"]
    assert meta["best"]["step"] == best_step
    final = load_model(run_dir / "model_final.safetensors")
    best = load_model(run_dir / "model_best.safetensors")
    # upsample_mode recorded since issue #19 (the residual base; published weights: "bilinear")
    assert final.kwargs == {
        "mid_channels": 4,
        "num_blocks": 1,
        "scale": 4,
        "upsample_mode": "bicubic",
        "flow_mode": "two-way",
    }
    assert type(best).__name__ == "BasicVSR"
    out = final(torch.rand(1, 2, 3, 8, 8))
    assert out.shape == (1, 2, 3, 32, 32)


def test_a_second_run_in_the_same_folder_needs_resume(tmp_path, frames):
    cfg = resolve_config(
        tiny_config(tmp_path, frames, train={"iterations": 2, "spynet_freeze_iters": 9}), "t.toml"
    )
    assert train(cfg, source="t.toml") == 0
    with pytest.raises(AfvsrError, match="already has checkpoints.*--resume"):
        train(cfg, source="t.toml")
    # --resume of a finished run does nothing more and keeps its weights.
    assert train(cfg, source="t.toml", resume=True) == 0


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(
    tmp_path, frames, monkeypatch
):
    calls = {"n": 0}
    real_loss = VSRTask.loss

    def flaky_loss(self, model, batch):
        calls["n"] += 1
        loss, logs = real_loss(self, model, batch)
        return (loss * float("nan") if calls["n"] == 3 else loss), logs

    monkeypatch.setattr(VSRTask, "loss", flaky_loss)
    cfg = resolve_config(
        tiny_config(
            tmp_path,
            frames,
            train={"iterations": 6, "spynet_freeze_iters": 9},
            log={"checkpoint_every": 2},
        ),
        "t.toml",
    )
    with pytest.raises(AfvsrError) as info:
        train(cfg, source="t.toml")
    message = str(info.value)
    assert "loss is nan at step 3" in message
    assert "step_00000002.safetensors" in message
    folder = tmp_path / "runs" / "tiny" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000002.safetensors"]
    meta, tensors = read_checkpoint(folder / "step_00000002.safetensors")
    assert meta["step"] == 2
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if k.startswith("model/"))
    assert not (tmp_path / "runs" / "tiny" / "model_final.safetensors").exists()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    path = tmp_path / "step_00000001.safetensors"
    train_state.save_checkpoint(path, model=model, optimizer=opt, ema_model=None, meta={"step": 1})
    before = path.read_bytes()

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(train_state, "save_file", broken_save)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        train_state.save_checkpoint(
            path, model=model, optimizer=opt, ema_model=None, meta={"step": 2}
        )
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    with pytest.raises(OSError):
        train_state.save_checkpoint(
            tmp_path / "new.safetensors", model=model, optimizer=opt, ema_model=None, meta={}
        )
    assert not (tmp_path / "new.safetensors").exists()


def test_checkpoint_round_trip_restores_optimizer_by_name(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(
        [
            {"params": model[0].parameters(), "name": "a"},
            {"params": model[1].parameters(), "name": "b"},
        ],
        lr=1e-2,
    )
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    path = tmp_path / "c.safetensors"
    train_state.save_checkpoint(path, model=model, optimizer=opt, ema_model=None, meta={"step": 3})
    meta, tensors = read_checkpoint(path)
    clone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt2 = torch.optim.Adam(
        [
            {"params": clone[0].parameters(), "name": "a"},
            {"params": clone[1].parameters(), "name": "b"},
        ],
        lr=1e-2,
    )
    train_state.restore_checkpoint(
        meta, tensors, model=clone, optimizer=opt2, ema_model=None, source=str(path)
    )
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["exp_avg_sq"], opt2.state[q]["exp_avg_sq"])
        assert torch.equal(opt.state[p]["step"], opt2.state[q]["step"])
    # groups holding other parameters: a loud error, not a load by position
    opt3 = torch.optim.Adam([{"params": clone.parameters(), "name": "all"}])
    with pytest.raises(AfvsrError, match="do not hold the same parameters"):
        train_state.restore_checkpoint(
            meta, tensors, model=clone, optimizer=opt3, ema_model=None, source=str(path)
        )
    with pytest.raises(AfvsrError, match="not an afvsr training checkpoint"):
        from afvsr.checkpoint import save_model  # a model file is not a training checkpoint
        from afvsr.models import build_model

        model_file = tmp_path / "m.safetensors"
        save_model(build_model("bicubic"), model_file)
        read_checkpoint(model_file)


def test_ema_and_accumulation_run(tmp_path, frames):
    cfg = resolve_config(
        tiny_config(
            tmp_path,
            frames,
            train={
                "iterations": 2,
                "accumulate": 2,
                "ema_decay": 0.5,
                "grad_clip": 0.1,
                "spynet_freeze_iters": 9,
                "warmup_iters": 1,
            },
        ),
        "t.toml",
    )
    assert train(cfg, source="t.toml") == 0
    run_dir = tmp_path / "runs" / "tiny"
    meta, tensors = read_checkpoint(run_dir / "checkpoints" / "step_00000002.safetensors")
    assert meta["sampler"]["next_micro_batch"] == 4
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema/")}
    live = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
    assert ema.keys() == live.keys()
    final = load_model(run_dir / "model_final.safetensors")  # the EMA weights are exported
    for name, value in final.state_dict().items():
        assert torch.equal(value, ema[name]), name
    assert any(not torch.equal(ema[k], live[k]) for k in ema)


def test_ema_decay_at_warms_up_by_the_update_count():
    assert ema_decay_at(1, 0.998, warmup=False) == 0.998
    assert ema_decay_at(1, 0.998, warmup=True) == pytest.approx(2 / 11)
    assert ema_decay_at(80, 0.998, warmup=True) == pytest.approx(0.9)
    assert ema_decay_at(10_000, 0.998, warmup=True) == 0.998


def test_ema_warmup_moves_the_average_to_the_trained_weights(tmp_path, frames):
    """One step from the same start: without warmup the EMA keeps 0.999 of the start, with it
    2/11 (the warm-up's first decay)."""
    ema, live = {}, {}
    for warmup in (False, True):
        cfg = tiny_config(
            tmp_path / str(warmup),
            frames,
            train={"iterations": 1, "ema_decay": 0.999, "ema_warmup": warmup},
            log={"every": 1, "checkpoint_every": 1, "keep_last": 1, "tensorboard": False},
        )
        assert train(resolve_config(cfg, "t.toml"), source="t.toml") == 0
        ckpt = (
            tmp_path / str(warmup) / "runs" / "tiny" / "checkpoints" / "step_00000001.safetensors"
        )
        _, tensors = read_checkpoint(ckpt)
        ema[warmup] = {k[4:]: v for k, v in tensors.items() if k.startswith("ema/")}
        live[warmup] = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
    moved = 0
    for k, trained in live[True].items():
        torch.testing.assert_close(trained, live[False][k])  # same start, same step
        start = (ema[False][k] - 0.001 * trained) / 0.999
        torch.testing.assert_close(ema[True][k], start * 2 / 11 + trained * 9 / 11)
        moved += int(not torch.equal(trained, start))
    assert moved > 0


@pytest.mark.parametrize(
    ("model", "data"),
    [
        ({"name": "iconvsr", "mid_channels": 8, "num_blocks": 1}, {}),
        (
            {"name": "afvsr", "mid_channels": 4, "num_blocks": 1, "rates": [1, 2], "window": 3},
            {"samples": "groups", "rates": [1, 2], "window": 3},
        ),
    ],
    ids=["iconvsr", "afvsr-from-scratch"],
)
def test_every_model_family_trains_and_validates(tmp_path, frames, model, data):
    cfg = resolve_config(
        tiny_config(
            tmp_path,
            frames,
            model=model,
            data=data,
            train={"iterations": 2, "spynet_freeze_iters": 9},
            val={"every": 2, "max_frames": 3, "max_clips": 1},
        ),
        "t.toml",
    )
    assert train(cfg, source="t.toml") == 0
    run_dir = tmp_path / "runs" / "tiny"
    records = _metrics(run_dir)
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if "loss" in r)
    groups = {k[3:] for r in records for k in r if k.startswith("lr/")}
    children = {
        n
        for n, m in load_model(run_dir / "model_final.safetensors").named_children()
        if any(True for _ in m.parameters())
    }
    assert groups == children  # one parameter group per top-level module
    assert "val/psnr_y" in records[-1]


def test_channels_last_trains_the_same_model(tmp_path, frames):
    """[train] channels_last (the default) changes the conv weights' memory layout only: the
    checkpoint and the exported model match a contiguous-layout run to float rounding."""
    weights = {}
    for layout in (True, False):
        out = tmp_path / str(layout)
        cfg = resolve_config(
            tiny_config(out, frames, train={"iterations": 3, "channels_last": layout}), "t.toml"
        )
        assert train(cfg, source="t.toml") == 0
        weights[layout] = load_model(out / "runs" / "tiny" / "model_final.safetensors").state_dict()
    assert weights[True].keys() == weights[False].keys()
    for name, value in weights[True].items():
        torch.testing.assert_close(value, weights[False][name], rtol=1e-4, atol=1e-5)


def test_the_trainer_keeps_conv_weights_channels_last(tmp_path, frames):
    for layout in (True, False):
        trainer = tiny_trainer(tmp_path / str(layout), frames, train={"channels_last": layout})
        try:
            convs = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]
            assert convs
            for conv in convs:
                is_cl = conv.weight.is_contiguous(memory_format=torch.channels_last)
                assert is_cl == (layout or conv.weight.shape[-2:] == (1, 1)), conv
            optimized = {q for g in trainer.optimizer.param_groups for q in g["params"]}
            assert all(p in optimized for p in trainer.model.parameters() if p.requires_grad)
        finally:
            trainer.close()


@pytest.mark.parametrize("flags, native", [({"avx2"}, False), ({"avx2", "avx512_bf16"}, True)])
def test_precision_auto_follows_the_cpu(tmp_path, frames, monkeypatch, flags, native):
    """precision = "auto" trains in bf16 where the CPU has it natively and in fp32 elsewhere (the
    same losses as that precision named), and bf16 named on a CPU without it gets a warning."""
    monkeypatch.setattr(inference, "cpu_flags", lambda: frozenset(flags))
    losses = {}
    for precision in ("auto", "fp32", "bf16"):
        out = tmp_path / precision
        raw = tiny_config(out, frames, train={"iterations": 2, "precision": precision})
        assert train(resolve_config(raw, "t.toml"), source="t.toml") == 0
        losses[precision] = [m["loss"] for m in _metrics(out / "runs" / "tiny") if "loss" in m]
        log = (out / "runs" / "tiny" / "train.log").read_text()
        expected = {"auto": "bf16" if native else "fp32"}.get(precision, precision)
        assert f"global batch 2 x 1, {expected}" in log
        assert ("no native bf16" in log) == (precision == "bf16" and not native)
    assert losses["fp32"] != losses["bf16"]
    assert losses["auto"] == losses["bf16" if native else "fp32"]
