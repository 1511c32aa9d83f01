"""What a user sees when training goes wrong (issue #16): interruptions exit 130/143 after a
clean stop, stale temporary checkpoints are removed, start-up errors leave no run folder, a
corrupt last checkpoint names (or falls back to) an earlier one, and crafted checkpoints are a
one-line error naming the file. Inputs are byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from train_helpers import make_frames, tiny_config, write_config

from afvsr.checkpoint import load_model
from afvsr.cli import main
from afvsr.train.config import resolve_config
from afvsr.train.loop import train
from afvsr.train.state import META_KEY, read_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return make_frames(tmp_path_factory.mktemp("frames"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, frames):
    """A finished 4-step run with checkpoints at steps 2 and 4 (and its config file)."""
    tmp = tmp_path_factory.mktemp("finished")
    raw = tiny_config(tmp, frames, train={"iterations": 4, "spynet_freeze_iters": 1})
    config = write_config(tmp / "tiny.toml", raw)
    assert train(resolve_config(raw, str(config)), source=str(config)) == 0
    return tmp, config


def _digest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path``)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(["train", *argv])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def _one_error_line(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    assert lines[0].startswith("afvsr: error: "), lines
    return lines[0]


# ---------------------------------------------------------------- interruptions


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_stops_cleanly_and_exits_128_plus_signal(tmp_path, frames, signum, code):
    raw = tiny_config(
        tmp_path,
        frames,
        train={"iterations": 100000, "ema_decay": 0.5},
        log={"every": 1, "checkpoint_every": 0},
    )
    config = write_config(tmp_path / "long.toml", raw)
    before = _digest(frames) | _digest(config)
    run_dir = tmp_path / "runs" / "tiny"
    cmd = [sys.executable, "-m", "afvsr", "train", "-c", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        metrics = run_dir / "metrics.jsonl"
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    stopped = [line for line in err.splitlines() if "stopped at step" in line]
    assert len(stopped) == 1 and stopped[0].endswith("; continue with --resume"), err
    step = int(stopped[0].split("stopped at step ")[1].split(" ")[0])
    meta, tensors = read_checkpoint(run_dir / "checkpoints" / f"step_{step:08d}.safetensors")
    assert meta["step"] == step >= 2
    assert not (run_dir / "model_final.safetensors").exists()
    # The EMA weights at the stop step, as a model file that loads without resuming.
    last = run_dir / "model_last.safetensors"
    with safe_open(last, framework="pt") as f:
        assert f.metadata()["train_step"] == str(step)
    model = load_model(last)
    for name, value in model.state_dict().items():
        assert torch.equal(value, tensors[f"ema/{name}"]), name
        assert not torch.equal(value, tensors[f"model/{name}"]) or "spynet" in name, name
    assert _digest(frames) | _digest(config) == before


# ---------------------------------------------------------------- stale temporary files


def test_stale_temporary_checkpoints_are_removed_by_the_next_run(tmp_path, frames):
    raw = tiny_config(tmp_path, frames, train={"iterations": 2})
    folder = tmp_path / "runs" / "tiny" / "checkpoints"
    folder.mkdir(parents=True)
    stale = folder / ".step_00000006.a1b2c3d4.tmp.safetensors"  # afvsr's pattern, old
    fresh = folder / ".step_00000008.e5f6g7h8.tmp.safetensors"  # afvsr's pattern, this run's age
    others = [
        folder / "notes.tmp",
        folder / ".step_00000006.mine.tmp",
        folder / "x.tmp.safetensors",
    ]
    for path in [stale, fresh, *others]:
        path.write_bytes(b"partial")
    old = time.time() - 3600
    for path in [stale, *others]:
        os.utime(path, (old, old))
    os.utime(fresh, (time.time() + 3600, time.time() + 3600))
    kept = _digest(fresh) | {k: v for p in others for k, v in _digest(p).items()}
    assert train(resolve_config(raw, "t.toml"), source="t.toml") == 0
    assert not stale.exists()
    assert {k: v for p in [fresh, *others] for k, v in _digest(p).items()} == kept
    log = (tmp_path / "runs" / "tiny" / "train.log").read_text()
    assert "removed 1 temporary file(s) left by an earlier, killed run: " + stale.name in log


# ---------------------------------------------------------------- start-up errors


def _start_up_cases(tmp_path: Path, frames: Path) -> dict[str, tuple[dict, str]]:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a model file at all")
    return {
        "bad data root": (
            {"data": {"root": str(tmp_path / "no_such_folder")}},
            str(tmp_path / "no_such_folder"),
        ),
        "patch too large": ({"data": {"patch_size": 64}}, "smaller than patch_size 64"),
        "bad spynet checkpoint": (
            {"train": {"spynet_checkpoint": str(garbage)}},
            f"{garbage}: not a safetensors model file",
        ),
        "missing spynet checkpoint": (
            {"train": {"spynet_checkpoint": str(tmp_path / "none.safetensors")}},
            "[train] spynet_checkpoint: no file",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["bad data root", "patch too large", "bad spynet checkpoint", "missing spynet checkpoint"],
)
def test_start_up_errors_leave_no_run_folder(tmp_path, frames, capsys, case):
    sections, expected = _start_up_cases(tmp_path, frames)[case]
    config = write_config(tmp_path / "bad.toml", tiny_config(tmp_path, frames, **sections))
    before = _digest(frames) | _digest(tmp_path / "garbage.safetensors") | _digest(config)
    code, lines = _run_cli(capsys, "-c", str(config))
    assert code == 2
    assert expected in _one_error_line(lines)
    assert not (tmp_path / "runs").exists()
    assert _digest(frames) | _digest(tmp_path / "garbage.safetensors") | _digest(config) == before


def test_bad_resume_checkpoint_leaves_no_run_folder(tmp_path, frames, capsys):
    config = write_config(tmp_path / "t.toml", tiny_config(tmp_path, frames))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    before = _digest(garbage)
    code, lines = _run_cli(capsys, "-c", str(config), "--resume", str(garbage))
    assert code == 2
    assert f"{garbage}: not a safetensors training checkpoint" in _one_error_line(lines)
    assert not (tmp_path / "runs").exists()
    assert _digest(garbage) == before


# ---------------------------------------------------------------- a corrupt last checkpoint


def _copy_run(src: Path, dst: Path) -> Path:
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dst


def test_corrupt_last_checkpoint_names_or_falls_back_to_the_earlier_one(
    tmp_path, frames, finished, capsys
):
    src, _ = finished
    run_dir = _copy_run(src / "runs" / "tiny", tmp_path / "runs" / "tiny")
    last = run_dir / "checkpoints" / "step_00000004.safetensors"
    earlier = run_dir / "checkpoints" / "step_00000002.safetensors"
    last.write_bytes(last.read_bytes()[: len(last.read_bytes()) // 2])  # cut by a crash
    raw = tiny_config(tmp_path, frames, train={"iterations": 4, "spynet_freeze_iters": 1})
    config = write_config(tmp_path / "tiny.toml", raw)
    before = _digest(run_dir)

    code, lines = _run_cli(capsys, "-c", str(config), "--resume", str(last))
    assert code == 2
    line = _one_error_line(lines)
    assert line.startswith(f"afvsr: error: {last}: ")
    assert line.endswith(f"; resume from the earlier checkpoint {earlier}")
    assert _digest(run_dir) == before

    code, lines = _run_cli(capsys, "-c", str(config), "--resume")
    assert code == 0
    notes = [line for line in lines if "resuming from the earlier checkpoint" in line]
    assert len(notes) == 1 and str(last) in notes[0] and notes[0].endswith(f"{earlier} instead")
    assert any(f"resumed from {earlier} at step 2" in line for line in lines)
    meta, _ = read_checkpoint(last)  # written again, whole, by the resumed run
    assert meta["step"] == 4


# ---------------------------------------------------------------- crafted checkpoints


def _craft(src: Path, dst: Path, *, meta=None, tensors=None) -> Path:
    good_meta, good_tensors = read_checkpoint(src)
    meta = meta(good_meta) if meta else good_meta
    tensors = tensors(good_tensors) if tensors else good_tensors
    text = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(tensors, str(dst), metadata={META_KEY: text})
    return dst


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def _first(tensors: dict, prefix: str) -> str:
    return next(k for k in tensors if k.startswith(prefix))


CRAFTED = {
    "step not an integer": (
        {"meta": lambda m: {**m, "step": "many"}},
        "field 'step': expected an integer >= 0, got 'many'",
    ),
    "no optimizer state": (
        {"meta": lambda m: _without(m, "optimizer")},
        "field 'optimizer': expected the optimizer state, got nothing",
    ),
    "optimizer group of wrong types": (
        {"meta": lambda m: {**m, "optimizer": {"param_groups": [{"params": 3, "lr": "x"}]}}},
        "optimizer group 0: expected params (names), lr and betas",
    ),
    "best of wrong type": ({"meta": lambda m: {**m, "best": [1]}}, "field 'best'"),
    "rng of wrong types": (
        {"meta": lambda m: {**m, "rng": {"python": {}, "numpy": {}}}},
        "field 'rng': not the Python and NumPy RNG states",
    ),
    "config not a table": ({"meta": lambda m: {**m, "config": "x"}}, "field 'config'"),
    "a model too large to build": (
        {
            "meta": lambda m: {
                **m,
                "config": {**m["config"], "model": {"name": "basicvsr", "mid_channels": 10**6}},
            }
        },
        "[model] mid_channels: expected a value <= 1024, got 1000000",
    ),
    "metadata not JSON": ({"meta": lambda m: "{not json"}, "not an afvsr training checkpoint"),
    "no optimizer tensors": (
        {"tensors": lambda t: {k: v for k, v in t.items() if not k.startswith("optim/")}},
        "no optimizer state (tensors 'optim/…') at step 4",
    ),
    "one Adam moment missing": (
        {"tensors": lambda t: _without(t, _first(t, "optim/propagation."))},
        "tensor 'optim/propagation.",
    ),
    "model tensor missing": (
        {"tensors": lambda t: _without(t, "model/reconstruction.conv_last.bias")},
        "tensor 'model/reconstruction.conv_last.bias' is missing",
    ),
    "model tensor of another shape": (
        {"tensors": lambda t: {**t, "model/reconstruction.conv_last.bias": torch.zeros(7)}},
        "tensor 'model/reconstruction.conv_last.bias' has shape [7], this run needs [3]",
    ),
    "unexpected tensor": (
        {"tensors": lambda t: {**t, "model/extra.weight": torch.zeros(2)}},
        "tensor 'model/extra.weight' is not part of this run's model (1 unexpected tensors)",
    ),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_checkpoints_are_one_line_errors_naming_the_file(tmp_path, finished, capsys, case):
    src, _ = finished
    good = src / "runs" / "tiny" / "checkpoints" / "step_00000004.safetensors"
    kwargs, expected = CRAFTED[case]
    crafted = _craft(good, tmp_path / "crafted.safetensors", **kwargs)
    before = _digest(crafted)
    out = tmp_path / "elsewhere"
    code, lines = _run_cli(capsys, "--resume", str(crafted), "--set", f"run.out_dir={out}")
    assert code == 2
    line = _one_error_line(lines)
    assert line.startswith(f"afvsr: error: {crafted}")
    assert expected in line
    assert _digest(crafted) == before
    assert not out.exists()


def test_a_checkpoint_of_the_earlier_config_layout_resumes(tmp_path, finished, capsys):
    # Before each task owned its keys, "not set" paths were stored as null in the checkpoint.
    src, _ = finished
    good = src / "runs" / "tiny" / "checkpoints" / "step_00000004.safetensors"

    def earlier(meta):
        meta["config"]["data"]["lq_root"] = None
        return meta

    old = _craft(good, tmp_path / "old.safetensors", meta=earlier)
    out = tmp_path / "resumed"
    code, lines = _run_cli(
        capsys, "--resume", str(old), "--set", f"run.out_dir={out}", "--set", "train.iterations=5"
    )
    assert code == 0, lines
    assert any(f"resumed from {old} at step 4" in line for line in lines)
    differs = [line for line in lines if "config differs" in line]
    assert differs and "run.out_dir, train.iterations (using" in differs[0]
    assert (
        read_checkpoint(out / "tiny" / "checkpoints" / "step_00000005.safetensors")[0]["step"] == 5
    )
