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
  afvsr upscale big.mp4 --max-memory 3G       # chunks (and tiles) chosen to fit 3 GiB
  afvsr upscale clip.mp4 --threads 1          # one CPU thread: faster on a busy machine
  afvsr upscale --list-models                 # shipped models: PSNR-Y, time, memory
"""

from __future__ import annotations

import argparse
import sys

from afvsr.errors import AfvsrError
from afvsr.threads import add_threads_argument, cpu_threads
from afvsr.video.defaults import DEFAULT_CHUNK, DEFAULT_OVERLAP_STEPS, DEFAULT_TILE_OVERLAP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``afvsr upscale``, in the order ``--help`` lists them."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_input_arguments(parser)
    add_model_arguments(parser)
    add_streaming_arguments(parser)
    add_output_arguments(parser)


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """INPUT, ``--list-models`` and ``--output``."""
    parser.add_argument(
        "input",
        metavar="INPUT",
        nargs="?",
        help="video file (mp4, mkv, mov, avi, webm) or folder of frames",
    )
    parser.add_argument(
        "--list-models",
        action="store_true",
        help="print each shipped model with its validation PSNR-Y, time and memory per frame, "
        "and exit",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="video file, or a path without extension for a folder of PNG frames "
        "(default: next to INPUT, <name>_x<scale>.<ext>)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """What runs and how: ``--model``, ``--scale``, ``--device``, ``--precision``,
    ``--threads``."""
    parser.add_argument(
        "--model",
        default="default",
        metavar="NAME|CKPT",
        help="shipped model name, checkpoint file, or 'bicubic' (default: the fastest shipped "
        "model within 0.1 dB PSNR-Y of the best; see --list-models)",
    )
    parser.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help="check that the model upscales by this factor"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default: cpu")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="model arithmetic: auto (default: bf16 where the device has it natively, i.e. CUDA "
        "with bf16 or a CPU with AVX-512 BF16 or AMX; fp32 elsewhere), fp32, bf16 (CPU or "
        "CUDA autocast), fp16 (CUDA)",
    )
    add_threads_argument(parser)


def add_streaming_arguments(parser: argparse.ArgumentParser) -> None:
    """Chunks, memory and tiles: ``--chunk``, ``--max-memory``, ``--overlap``, ``--tile``,
    ``--tile-overlap`` (defaults in :mod:`afvsr.video.defaults`)."""
    parser.add_argument(
        "--chunk",
        type=int,
        metavar="N",
        help=f"frames per temporal chunk; memory grows with N + 2K (default: the longest "
        f"that fits --max-memory, at most the larger of {DEFAULT_CHUNK} and 4K)",
    )
    parser.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget, e.g. 3G or 1500M; chunk length and tiles are chosen to fit it "
        "(default: the smaller of 4G and half the memory available at start)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        metavar="K",
        help=f"context frames on each side of a chunk, dropped at joins (default: "
        f"{DEFAULT_OVERLAP_STEPS} recurrent steps: {DEFAULT_OVERLAP_STEPS} frames, times the "
        "largest frame rate for AFVSR)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        metavar="T",
        help="process frames in T x T input-pixel tiles (default: whole frames, or the largest "
        "tiles that fit --max-memory)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_TILE_OVERLAP,
        metavar="P",
        help=f"overlap of neighbouring tiles in input pixels (default: {DEFAULT_TILE_OVERLAP})",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Encoding and the rest: ``--codec``, ``--crf``, ``--backend``, ``--force``,
    ``--ignore-errors``, ``--quiet``."""
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
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output file, or a folder holding only PNG frames",
    )
    parser.add_argument(
        "--ignore-errors",
        action="store_true",
        help="a damaged video (decode errors, fewer frames than declared): write the frames "
        "that decode and warn, instead of failing",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from afvsr.video.upscale import summary_line, upscale_video

    if args.list_models:
        import torch

        from afvsr.checkpoint import available_models
        from afvsr.shipped import model_table

        print(model_table(available_models()[:-1], torch.backends.cpu.get_cpu_capability()))
        return 0
    if args.input is None:
        raise AfvsrError("the following arguments are required: INPUT")
    with cpu_threads(args.threads):
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
            ignore_errors=args.ignore_errors,
            max_memory=args.max_memory,
        )
    if summary["damage"]:
        print(f"afvsr: warning: {summary['input']}: {summary['damage']}", file=sys.stderr)
    print(summary_line(summary))
    return 0
