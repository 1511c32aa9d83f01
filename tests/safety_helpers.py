"""Shared checks for the safety tests: what the user sees, and that inputs are left untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from afvsr.evaluation.evaluate import FORMAT_VERSION


def snapshot(*paths: Path) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders), by path: compare before/after."""
    digests = {}
    for root in paths:
        files = sorted(p for p in Path(root).rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            digests[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    assert digests, f"nothing to snapshot under {paths}"
    return digests


def listing(folder: Path) -> list[str]:
    """Every path under ``folder``, hidden ones included (temporary files would show here)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_one_error(err: str, *fragments: str) -> None:
    """Exactly one line on stderr, ``afvsr: error: ...``, containing every fragment."""
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"expected one line, got {err!r}"
    assert lines[0].startswith("afvsr: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def make_sequences(root: Path, *, clips: int = 1, frames: int = 3, size: int = 16) -> Path:
    """A folder of GT sequences for ``afvsr eval --data DIR``: root/clipK/NNNNNNNN.png."""
    rng = np.random.default_rng(0)
    for k in range(clips):
        clip = root / f"clip{k}"
        clip.mkdir(parents=True)
        for i in range(frames):
            rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(clip / f"{i:08d}.png")
    return root


def results_json(path: Path, **overrides) -> Path:
    """A minimal valid `afvsr eval` results file (for `afvsr table`), fields overridable."""
    mean = {"psnr_rgb": 26.0, "ssim_rgb": 0.8, "psnr_y": 27.5, "ssim_y": 0.85, "ms_per_frame": 1.0}
    results = {
        "format_version": FORMAT_VERSION,
        "model": {"name": "bicubic", "source": "bicubic", "kwargs": {}, "params": 0},
        "mode": None,
        "window": None,
        "device": "cpu",
        "dataset": {"spec": "REDS4", "name": "REDS4", "split": None, "num_clips": 4},
        "clips": [],
        "mean": mean,
    }
    results.update(overrides)
    path.write_text(json.dumps(results))
    return path
