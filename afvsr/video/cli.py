"""Upscale a video file or a folder of frames, streaming, keeping audio, subtitles and timing.

Frames are decoded, upscaled in overlapping temporal chunks (and spatial tiles if asked) and
encoded as they go, so memory does not grow with the length of the video. The output has the
input's frame count, timestamps (constant or variable frame rate), rotation, and its audio and
subtitle streams copied unchanged. It is written to a temporary file and renamed only when
complete; an existing output is kept unless --force. Progress goes to stderr, a summary line to
stdout.

examples:
  afvsr upscale clip.mp4                      # -> clip_x4.mp4 with the default model
  afvsr upscale clip.mkv -o big.mkv --model basicvsr-small --precision bf16
  afvsr upscale frames/ -o frames_x4          # a folder of PNGs in, a folder of PNGs out
"""

from __future__ import annotations

import argparse

from afvsr.video.upscale import DEFAULT_CHUNK, DEFAULT_OVERLAP_STEPS, DEFAULT_TILE_OVERLAP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "input", metavar="INPUT", help="video file (mp4, mkv, mov, avi, webm) or folder of frames"
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="video file, or a path without extension for a folder of PNG frames "
        "(default: next to INPUT, <name>_x<scale>.<ext>)",
    )
    parser.add_argument(
        "--model",
        default="default",
        metavar="NAME|CKPT",
        help="shipped model name, checkpoint file, or 'bicubic' (default: the best shipped model)",
    )
    parser.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help="check that the model upscales by this factor"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default: cpu")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="model arithmetic: fp32 (default), bf16 (CPU or CUDA autocast), fp16 (CUDA)",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        metavar="N",
        help=f"frames per temporal chunk; memory grows with N + 2K "
        f"(default: the larger of {DEFAULT_CHUNK} and 2K)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        metavar="K",
        help=f"context frames on each side of a chunk, dropped at joins (default: "
        f"{DEFAULT_OVERLAP_STEPS} recurrent steps: {DEFAULT_OVERLAP_STEPS} frames, times the "
        "largest frame rate for the fusion model)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        metavar="T",
        help="process frames in T x T input-pixel tiles (default: whole frames); for large frames",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_TILE_OVERLAP,
        metavar="P",
        help=f"overlap of neighbouring tiles in input pixels (default: {DEFAULT_TILE_OVERLAP})",
    )
    parser.add_argument("--codec", default="libx264", help="video encoder (default: libx264)")
    parser.add_argument(
        "--crf",
        type=int,
        default=18,
        help="quality for x264/x265/VP9/AV1, lower is better (default: 18)",
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "onnxruntime"),
        help="torch (default) or onnxruntime (--model is then an .onnx file from 'afvsr export')",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from afvsr.video.upscale import summary_line, upscale_video

    summary = upscale_video(
        args.input,
        args.output,
        model=args.model,
        scale=args.scale,
        device=args.device,
        precision=args.precision,
        chunk=args.chunk,
        overlap=args.overlap,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        codec=args.codec,
        crf=args.crf,
        force=args.force,
        quiet=args.quiet,
        backend=args.backend,
    )
    print(summary_line(summary))
    return 0
