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

import math
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from torch import Tensor

IMAGES = ("astronaut", "chelsea", "coffee")  # bundled with scikit-image (no download)
SCALE = 4
LABEL_HEIGHT = 18  # pixels above each panel for its name
DEMO_TAG = "afvsr demo"  # the video's comment tag and the PNG's Software chunk: the demo's own


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


def upscale_frames(
    lq: Tensor, work_dir: Path, *, model: str, device: str, quiet: bool
) -> tuple[Tensor, str]:
    """``lq (t, 3, h, w)`` -> ``(sr (t, 3, 4h, 4w), model name)``, through the same streaming
    pipeline as `afvsr upscale`, with PNG folders (lossless) in and out under ``work_dir``."""
    from afvsr.video.upscale import upscale_video

    lr_dir, sr_dir = work_dir / "lr", work_dir / "sr"
    lr_dir.mkdir()
    for i, frame in enumerate(lq):
        to_image(frame).save(lr_dir / f"{i:04d}.png")
    summary = upscale_video(lr_dir, sr_dir, model=model, scale=SCALE, device=device, quiet=quiet)
    return read_png_folder(sr_dir), summary["model"]


def is_demo_video(path: Path) -> bool:
    """Whether ``path`` is a ``side_by_side.mp4`` an earlier demo wrote (its comment tag)."""
    from afvsr.outputs import is_tagged_video

    return is_tagged_video(path, DEMO_TAG)


def is_demo_png(path: Path) -> bool:
    """Whether ``path`` is a ``comparison.png`` an earlier demo wrote (its Software chunk)."""
    from afvsr.outputs import is_tagged_png

    return is_tagged_png(path, DEMO_TAG)


def write_side_by_side(path: Path, clips: list[Tensor], labels: list[str]) -> None:
    """Clips ``(t, 3, H, W)`` side by side under their labels, as a 24 fps video at ``path``."""
    from afvsr.video.writer import open_output

    t, _, h, w = clips[0].shape
    fps = Fraction(24)
    width, height = len(clips) * w, h + LABEL_HEIGHT
    tags = {"comment": DEMO_TAG}
    with open_output(
        path, width=width, height=height, fps=fps, time_base=1 / fps, metadata=tags
    ) as writer:
        for i in range(t):
            writer.write(np.asarray(panel_row([c[i] for c in clips], labels)), i, 1)


def write_comparison(path: Path, lq: Tensor, bicubic: Tensor, sr: Tensor, gt: Tensor, name: str):
    """The middle frame as a PNG: the input (nearest x4), bicubic, ``name``'s output and the
    ground truth, each labelled with its PSNR-Y (dB); doubled in size for frames <= 320 wide."""
    from afvsr.evaluation.metrics import psnr
    from afvsr.io_utils import atomic_path

    mid = gt.shape[0] // 2
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
        zoom=2 if gt.shape[-1] <= 320 else 1,
    )
    tags = PngInfo()
    tags.add_text("Software", DEMO_TAG)
    with atomic_path(path) as tmp:
        comparison.save(tmp, format="PNG", pnginfo=tags)


def make_demo(
    output_dir: str | Path,
    *,
    model: str = "default",
    image: str = "astronaut",
    num_frames: int = 24,
    size: tuple[int, int] = (256, 192),
    device: str = "cpu",
    quiet: bool = False,
    force: bool = False,
) -> dict:
    """Film ``image``, degrade the clip (BI x4), upscale it with ``model``, compare (`afvsr demo`).

    Writes ``side_by_side.mp4`` (bicubic | model | ground truth, ``size`` each) and
    ``comparison.png`` (the middle frame, with the LR input) into ``output_dir``, both tagged
    :data:`DEMO_TAG`: an earlier demo's are replaced, any other file of those names only with
    ``force``.

    Args:
        size: ground-truth ``(width, height)``, each divisible by 4; the LR clip is a quarter.

    Returns:
        ``{"model", "psnr_bicubic", "psnr_model", "video", "comparison", "seconds"}``: the
        model's name, the mean PSNR-Y (dB) of bicubic and of the model, the two files written
        and the wall time.
    """
    from afvsr.evaluation.metrics import psnr
    from afvsr.imresize import bi_degrade
    from afvsr.io_utils import remove_stale_temps
    from afvsr.models import Bicubic
    from afvsr.outputs import Output, check_outputs

    if num_frames < 1:
        raise ValueError(f"expected num_frames >= 1, got {num_frames}")
    w, h = size
    if w < SCALE or h < SCALE or w % SCALE or h % SCALE:
        raise ValueError(f"expected a size divisible by {SCALE}, got {w}x{h}")
    out_dir = Path(output_dir)
    video, comparison_png = out_dir / "side_by_side.mp4", out_dir / "comparison.png"
    outputs = [
        Output(path=video, label="demo output", own=is_demo_video),
        Output(path=comparison_png, label="demo output", own=is_demo_png),
    ]
    check_outputs(outputs, [model], force=force)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, ".demo.", "")  # work folders of an earlier, killed demo
    started = time.perf_counter()

    gt = film(load_photo(image), num_frames, size)  # (t, 3, H, W)
    lq = bi_degrade(gt, scale=SCALE)  # (t, 3, H/4, W/4), 8-bit levels like LR PNGs
    with tempfile.TemporaryDirectory(prefix=".demo.", dir=out_dir) as work:
        sr, name = upscale_frames(lq, Path(work), model=model, device=device, quiet=quiet)
    with torch.inference_mode():
        bicubic = Bicubic(scale=SCALE)(lq[None])[0]
    write_side_by_side(video, [bicubic, sr, gt], ["bicubic", name, "ground truth"])
    write_comparison(comparison_png, lq, bicubic, sr, gt, name)
    return {
        "model": name,
        "psnr_bicubic": psnr(bicubic, gt, y_channel=True).mean().item(),
        "psnr_model": psnr(sr, gt, y_channel=True).mean().item(),
        "video": video,
        "comparison": comparison_png,
        "seconds": time.perf_counter() - started,
    }
