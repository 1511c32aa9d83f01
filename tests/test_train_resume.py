"""Exact resume: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import make_frames, tiny_config, write_config

from afvsr.train.config import resolve_config
from afvsr.train.loop import train
from afvsr.train.state import read_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _steps_logged(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [0]
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            pass
    return max(steps)


def _losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    frames = make_frames(tmp_path / "frames")
    # SPyNet unfreezes at step 6, after the resume point: the freezing schedule must survive too.
    sections = {
        "train": {"iterations": 9, "lr": 1e-3, "spynet_freeze_iters": 6},
        "log": {"every": 1, "checkpoint_every": 3, "keep_last": 2},
    }
    ref_raw = tiny_config(tmp_path, frames, run={"name": "reference"}, **sections)
    assert train(resolve_config(ref_raw, "ref.toml"), source="ref.toml") == 0

    raw = tiny_config(tmp_path, frames, run={"name": "killed"}, **sections)
    config = write_config(tmp_path / "killed.toml", raw)
    run_dir = tmp_path / "runs" / "killed"
    cmd = [sys.executable, "-m", "afvsr", "train", "-c", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while _steps_logged(run_dir) < 4:  # past the step-3 checkpoint, before the end
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the run did not reach step 4"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "model_final.safetensors").exists()

    resumed = subprocess.run(
        [*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr

    ref_dir = tmp_path / "runs" / "reference"
    ref_meta, ref = read_checkpoint(ref_dir / "checkpoints" / "step_00000009.safetensors")
    meta, got = read_checkpoint(run_dir / "checkpoints" / "step_00000009.safetensors")
    # Weights, Adam moments, RNG states: every tensor of the final state, bit for bit.
    assert ref.keys() == got.keys()
    assert any(k.startswith("optim/spynet.") for k in ref)  # SPyNet did train after step 6
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
    assert meta["rng"] == ref_meta["rng"]
    # The metrics file reads as one run: every step once, the same losses.
    assert _losses(run_dir) == _losses(ref_dir)


def test_resume_may_change_precision_bf16_to_fp32(tmp_path):
    """A run started in bf16 continues in fp32 (a CPU without native bf16), EMA and all."""
    frames = make_frames(tmp_path / "frames")
    sections = {
        "train": {"iterations": 2, "precision": "bf16", "ema_decay": 0.9},
        "log": {"every": 1, "checkpoint_every": 2},
    }
    cfg = resolve_config(tiny_config(tmp_path, frames, **sections), "a.toml")
    assert train(cfg, source="a.toml") == 0
    sections["train"].update(iterations=4, precision="fp32")
    cfg = resolve_config(tiny_config(tmp_path, frames, **sections), "b.toml")
    assert train(cfg, source="b.toml", resume=True) == 0
    run_dir = tmp_path / "runs" / "tiny"
    meta, tensors = read_checkpoint(run_dir / "checkpoints" / "step_00000004.safetensors")
    assert meta["config"]["train"]["precision"] == "fp32"
    assert any(k.startswith("ema/") for k in tensors)
    assert sorted(_losses(run_dir)) == [1, 2, 3, 4]
    assert "train.precision" in (run_dir / "train.log").read_text()
