"""How much chunked upscaling costs against whole-clip upscaling, as a function of the overlap.

    .venv/bin/python benchmarks/bench_chunk_overlap.py --model NAME|CKPT
        [--clip basketballpass] [--frames 100] [--chunk 30] [--overlaps 0 2 4 6 8 10 15 20]

Real frames from the shared development data (``../shared/data``; default: all 100 frames of
BasketballPass, 416x240) are degraded with BI x4 (104x60 LR). The model upscales the whole clip
in one pass (the reference: what recurrent propagation over the entire video gives), then chunk
by chunk exactly as ``afvsr upscale`` does (``temporal_chunks`` + ``upscale_frames``), for each
overlap. For each overlap it reports:

- ``psnr_vs_whole``: PSNR (RGB, 8-bit) between chunked and whole-clip output, over the whole
  clip as one image (``inf``: identical) — how different;
- ``frames_changed``: output frames with any 8-bit pixel different from the whole-clip output;
- ``delta_psnr_y``: PSNR-Y against the ground truth, chunked minus whole-clip (dB) — what the
  chunking costs in quality (the default must cost less than 0.05 dB).

The measurement only means something for trained weights: random weights propagate nothing
useful. ``--allow-untrained`` (with ``--model basicvsr:MIDxBLOCKS``) exists to test the script.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from report import emit, machine

from afvsr.checkpoint import load_model
from afvsr.data.shared import shared_data_root
from afvsr.evaluation.metrics import psnr
from afvsr.imresize import bi_degrade, mod_crop
from afvsr.io_utils import natural_sort_key
from afvsr.models import BasicVSR
from afvsr.video.chunking import temporal_chunks
from afvsr.video.upscale import model_call, upscale_frames


def load_clip(folder: Path, frames: int) -> torch.Tensor:
    """The first ``frames`` frames of a folder: ``(t, 3, h, w)`` float in [0, 1]."""
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg")),
        key=lambda p: natural_sort_key(p.name),
    )[:frames]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def run_chunked(call, lq: torch.Tensor, *, scale: int, chunk: int, overlap: int) -> torch.Tensor:
    parts = [
        upscale_frames(call, part.lq, part.keep, scale=scale, tile=None, tile_overlap=0,
                       amp=contextlib.nullcontext())
        for part in temporal_chunks(iter(lq), chunk=chunk, overlap=overlap)
    ]  # fmt: skip
    return torch.cat(parts)


def as_one_image(frames: torch.Tensor) -> torch.Tensor:
    """``(t, 3, h, w)`` → ``(3, t·h, w)``: the frames stacked vertically, scored as one image."""
    return frames.permute(1, 0, 2, 3).flatten(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="shipped name or checkpoint")
    parser.add_argument("--clip", default="basketballpass", help="folder under ../shared/data")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=30)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 2, 4, 6, 8, 10, 15, 20])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--allow-untrained", action="store_true", help="basicvsr:MIDxBLOCKS")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = shared_data_root()
    if root is None or not (root / args.clip).is_dir():
        raise SystemExit(f"shared data clip {args.clip!r} not found (../shared/data)")
    if args.model.startswith("basicvsr:"):
        if not args.allow_untrained:
            raise SystemExit("random weights measure nothing; pass --allow-untrained to test")
        mid, blocks = (int(v) for v in args.model.split(":")[1].split("x"))
        model = BasicVSR(mid_channels=mid, num_blocks=blocks).eval()
    else:
        model = load_model(args.model)
    call = model_call(model)
    scale = model.scale

    gt = mod_crop(load_clip(root / args.clip, args.frames), scale)
    lq = bi_degrade(gt, scale=scale)
    results = []
    with torch.inference_mode():
        t = time.perf_counter()
        whole = upscale_frames(call, lq, slice(None), scale=scale, tile=None, tile_overlap=0,
                               amp=contextlib.nullcontext())  # fmt: skip
        whole_s = time.perf_counter() - t
        psnr_whole = psnr(whole, gt, y_channel=True).mean().item()
        for overlap in args.overlaps:
            t = time.perf_counter()
            chunked = run_chunked(call, lq, scale=scale, chunk=args.chunk, overlap=overlap)
            results.append({
                "overlap": overlap,
                "psnr_vs_whole": psnr(as_one_image(chunked), as_one_image(whole)).item(),
                "frames_changed": int((psnr(chunked, whole) < float("inf")).sum()),
                "delta_psnr_y": psnr(chunked, gt, y_channel=True).mean().item() - psnr_whole,
                "seconds": time.perf_counter() - t,
            })  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
    result = {
        "benchmark": "chunk_overlap",
        "model": args.model,
        "model_kwargs": getattr(model, "kwargs", {}),
        "clip": args.clip,
        "frames": int(lq.shape[0]),
        "lr_size": [int(lq.shape[-1]), int(lq.shape[-2])],
        "chunk": args.chunk,
        "whole_clip": {"psnr_y": psnr_whole, "seconds": whole_s},
        "overlaps": results,
        "machine": machine(),
    }
    emit(result, args.output)


if __name__ == "__main__":
    main()
