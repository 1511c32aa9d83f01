"""torchrun: 2 processes (gloo, CPU) reach the weights of 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from train_helpers import make_frames, tiny_config, write_config

from afvsr.train.config import resolve_config
from afvsr.train.loop import train
from afvsr.train.state import read_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")
def test_two_processes_match_one(tmp_path):
    frames = make_frames(tmp_path / "frames")
    # Global batch 4 (2 per process); SPyNet unfreezes after step 1, so DDP is rebuilt mid-run.
    sections = {
        "train": {"iterations": 3, "batch_size": 4, "lr": 1e-3, "spynet_freeze_iters": 1},
        "log": {"every": 1, "checkpoint_every": 3},
    }
    one = tiny_config(tmp_path, frames, run={"name": "one"}, **sections)
    assert train(resolve_config(one, "one.toml"), source="one.toml") == 0

    two = tiny_config(tmp_path, frames, run={"name": "two"}, **sections)
    config = write_config(tmp_path / "two.toml", two)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "afvsr", "train", "-c", str(config),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-4000:]

    _, ref = read_checkpoint(tmp_path / "runs/one/checkpoints/step_00000003.safetensors")
    meta, got = read_checkpoint(tmp_path / "runs/two/checkpoints/step_00000003.safetensors")
    assert meta["world_size"] == 2
    weights = [k for k in ref if k.startswith(("model/", "optim/"))]
    assert any(k.startswith("optim/spynet.") for k in weights)
    for key in weights:
        torch.testing.assert_close(got[key], ref[key], rtol=1e-4, atol=1e-6, msg=key)
    # Only rank 0 logs: each step once in the metrics file, with the global mean loss.
    lines = (tmp_path / "runs/two/metrics.jsonl").read_text().splitlines()
    losses_two = [json.loads(x)["loss"] for x in lines]
    lines = (tmp_path / "runs/one/metrics.jsonl").read_text().splitlines()
    losses_one = [json.loads(x)["loss"] for x in lines]
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
