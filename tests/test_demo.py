"""`afvsr demo` at a tiny size: it films a bundled photo, upscales the clip and compares."""

from __future__ import annotations

import re

import av
import numpy as np
import torch
from PIL import Image

from afvsr.cli import main
from afvsr.demo import camera_boxes, film, load_photo


def test_demo_writes_video_comparison_and_psnr(tmp_path, capsys):
    out = tmp_path / "demo_output"
    argv = ["demo", "-o", str(out), "--frames", "3", "--size", "32x24", "--model", "bicubic"]
    assert main([*argv, "--quiet"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.search(r"PSNR-Y bicubic ([\d.]+) dB, bicubic ([\d.]+) dB", line)
    assert found and found.group(1) == found.group(2)  # the same model twice: equal scores
    assert sorted(p.name for p in out.iterdir()) == ["comparison.png", "side_by_side.mp4"]
    with av.open(str(out / "side_by_side.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (3 * 32, 24 + 18)
    assert Image.open(out / "comparison.png").size == (4 * 32 * 2, (24 + 18) * 2)


def test_camera_moves_smoothly_by_subpixel_steps():
    boxes = np.array(camera_boxes(24, (512, 512), (256, 192)))
    steps = np.abs(np.diff(boxes, axis=0)).max(axis=1)
    assert (steps > 0).all() and steps.max() < 8  # every frame moves, never by a jump
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 512).all()  # inside the photo
    clip = film(load_photo("astronaut"), 2, (32, 24))
    assert clip.shape == (2, 3, 24, 32) and not torch.equal(clip[0], clip[1])
