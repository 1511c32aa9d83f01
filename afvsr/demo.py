"""Demo: film a photo with a virtual camera, degrade the clip (BI x4), upscale it, compare.

Needs nothing but the installed packages: the photo is one of scikit-image's bundled sample
images. A virtual camera pans smoothly over it with a slight zoom (sub-pixel motion, rendered
with antialiased resampling from the full-size photo, so the ground-truth frames are clean);
the frames are shrunk with the standard BI x4 degradation (MATLAB-compatible bicubic), upscaled
with `afvsr upscale`'s pipeline and the default model, and written to the output folder as a
side-by-side video (bicubic | model | ground truth) and a PNG comparison of the middle frame.
The PSNR (luma, the Vid4 convention) of bicubic and of the model is printed.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from afvsr.errors import AfvsrError

IMAGES = ("astronaut", "chelsea", "coffee")  # bundled with scikit-image (no download)
SCALE = 4
LABEL_HEIGHT = 18  # pixels above each panel for its name


def load_photo(name: str) -> Image.Image:
    """A sample photo shipped inside scikit-image (works offline)."""
    import skimage.data

    if name not in IMAGES:
        raise ValueError(f"expected an image in {IMAGES}, got {name!r}")
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def camera_boxes(
    num_frames: int, photo_size: tuple[int, int], frame_size: tuple[int, int]
) -> list[tuple[float, float, float, float]]:
    """Crop boxes ``(left, top, right, bottom)`` in photo pixels for a smooth pan with a zoom-in.

    The view starts showing 90% of the photo's limiting side and ends at 75% (a slight zoom),
    its centre moving diagonally by a quarter of the free room, eased in and out, so the motion
    is sub-pixel and different in every frame.
    """
    pw, ph = photo_size
    fw, fh = frame_size
    fit = min(pw / fw, ph / fh)  # photo pixels per frame pixel with the whole photo in view
    boxes = []
    for i in range(num_frames):
        s = 0.5 - 0.5 * math.cos(math.pi * i / max(num_frames - 1, 1))  # ease 0 -> 1
        zoom = fit * (0.9 - 0.15 * s)
        w, h = fw * zoom, fh * zoom
        cx = pw / 2 + (pw - w) * (0.25 * s - 0.125)
        cy = ph / 2 + (ph - h) * (0.2 * s - 0.1)
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes


def film(photo: Image.Image, num_frames: int, frame_size: tuple[int, int]) -> Tensor:
    """Render the camera move: ``(num_frames, 3, h, w)`` float32 in [0, 1], on 8-bit levels."""
    frames = [
        np.asarray(photo.resize(frame_size, Image.Resampling.LANCZOS, box=box))  # antialiased
        for box in camera_boxes(num_frames, photo.size, frame_size)
    ]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)


def to_image(frame: Tensor) -> Image.Image:
    """``(3, h, w)`` float in [0, 1] -> PIL RGB image."""
    return Image.fromarray(frame.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy())


def panel_row(frames: list[Tensor], labels: list[str], *, zoom: int = 1) -> Image.Image:
    """Frames side by side, each under a one-line label (nearest-neighbour ``zoom``)."""
    images = [to_image(f) for f in frames]
    if zoom > 1:
        images = [
            im.resize((im.width * zoom, im.height * zoom), Image.Resampling.NEAREST)
            for im in images
        ]
    w, h = images[0].size
    label_h = LABEL_HEIGHT * zoom
    row = Image.new("RGB", (w * len(images), h + label_h), "black")
    draw = ImageDraw.Draw(row)
    font = ImageFont.load_default(size=12 * zoom)
    for k, (im, label) in enumerate(zip(images, labels, strict=True)):
        row.paste(im, (k * w, label_h))
        draw.text((k * w + 4 * zoom, 2 * zoom), label, fill="white", font=font)
    return row


def read_png_folder(folder: Path) -> Tensor:
    from afvsr.io_utils import natural_sort_key

    files = sorted(folder.glob("*.png"), key=lambda p: natural_sort_key(p.name))
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 256x192, got {text!r}"
        ) from None
    if w < SCALE or h < SCALE or w % SCALE or h % SCALE:
        raise argparse.ArgumentTypeError(f"expected a size divisible by {SCALE}, got {text!r}")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output-dir", default="demo_output", help="default: demo_output")
    parser.add_argument(
        "--model",
        default="default",
        help="model name or checkpoint (default: the best shipped model, else bicubic)",
    )
    parser.add_argument("--image", default="astronaut", choices=IMAGES, help="default: astronaut")
    parser.add_argument("--frames", type=int, default=24, help="clip length (default: 24)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(256, 192),
        metavar="WxH",
        help="ground-truth frame size, divisible by 4 (default: 256x192; LR is a quarter)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from afvsr.evaluation.metrics import psnr
    from afvsr.imresize import bi_degrade
    from afvsr.io_utils import remove_stale_temps
    from afvsr.models import Bicubic
    from afvsr.outputs import Output, check_outputs
    from afvsr.video.upscale import upscale_video
    from afvsr.video.writer import open_output

    if args.frames < 1:
        raise AfvsrError(f"expected --frames >= 1, got {args.frames}")
    out_dir = Path(args.output_dir)
    video, comparison_png = out_dir / "side_by_side.mp4", out_dir / "comparison.png"
    outputs = [
        Output(path=video, label="demo output"),
        Output(path=comparison_png, label="demo output"),
    ]
    check_outputs(outputs, [args.model], force=True)  # each run replaces its own two files
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, ".demo.", "")  # work folders of an earlier, killed demo
    started = time.perf_counter()

    gt = film(load_photo(args.image), args.frames, args.size)  # (t, 3, H, W)
    lq = bi_degrade(gt, scale=SCALE)  # (t, 3, H/4, W/4), 8-bit levels like LR PNGs
    with tempfile.TemporaryDirectory(prefix=".demo.", dir=out_dir) as work:
        lr_dir = Path(work) / "lr"
        lr_dir.mkdir()
        for i, frame in enumerate(lq):
            to_image(frame).save(lr_dir / f"{i:04d}.png")
        summary = upscale_video(
            lr_dir,
            Path(work) / "sr",
            model=args.model,
            scale=SCALE,
            device=args.device,
            quiet=args.quiet,
        )  # the same streaming pipeline as `afvsr upscale`, PNG folder in and out (lossless)
        sr = read_png_folder(Path(work) / "sr")
    with torch.inference_mode():
        bicubic = Bicubic(scale=SCALE)(lq[None])[0]

    psnr_bicubic = psnr(bicubic, gt, y_channel=True).mean().item()
    psnr_model = psnr(sr, gt, y_channel=True).mean().item()
    name = summary["model"]

    w, h = args.size
    labels = ["bicubic", name, "ground truth"]
    row_h = h + LABEL_HEIGHT
    fps = Fraction(24)
    with open_output(video, width=3 * w, height=row_h, fps=fps, time_base=1 / fps) as writer:
        for i in range(args.frames):
            row = panel_row([bicubic[i], sr[i], gt[i]], labels)
            writer.write(np.asarray(row), i, 1)
    mid = args.frames // 2
    lr_nearest = lq[mid].repeat_interleave(SCALE, -1).repeat_interleave(SCALE, -2)
    frame_psnr = [psnr(x[mid], gt[mid], y_channel=True).item() for x in (bicubic, sr)]
    comparison = panel_row(
        [lr_nearest, bicubic[mid], sr[mid], gt[mid]],
        [
            f"input (x{SCALE} nearest)",
            f"bicubic {frame_psnr[0]:.2f} dB",
            f"{name} {frame_psnr[1]:.2f} dB",
            "ground truth",
        ],
        zoom=2 if w <= 320 else 1,
    )
    from afvsr.io_utils import atomic_path

    with atomic_path(comparison_png) as tmp:
        comparison.save(tmp, format="PNG")

    seconds = time.perf_counter() - started
    if name == "bicubic":
        print("note: no trained weights are shipped in this install; the default model is bicubic")
    print(
        f"demo: {args.frames} frames of '{args.image}', {w // SCALE}x{h // SCALE} -> {w}x{h} "
        f"(BI x{SCALE}); PSNR-Y bicubic {psnr_bicubic:.2f} dB, {name} {psnr_model:.2f} dB "
        f"({psnr_model - psnr_bicubic:+.2f} dB); wrote {video} and {comparison_png} "
        f"in {seconds:.1f} s"
    )
    sys.stdout.flush()
    return 0
