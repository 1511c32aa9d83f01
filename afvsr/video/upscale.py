"""Upscale a whole video (or a folder of frames) with any model, streaming, keeping its audio.

The pipeline: :class:`~afvsr.video.reader.VideoReader` decodes frames one at a time,
:func:`~afvsr.video.chunking.temporal_chunks` groups them into overlapping chunks, the model
upscales each chunk (optionally in spatial tiles), and the kept frames go straight to the
:mod:`~afvsr.video.writer`, which also remuxes the audio and subtitle packets. Memory depends on
the chunk and frame size, never on the length of the video.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from afvsr.errors import AfvsrError
from afvsr.inference import autocast_context, prepare_for_inference, resolve_device
from afvsr.memory import return_large_frees_to_os
from afvsr.video.chunking import pad_to_min_size, temporal_chunks, upscale_tiled
from afvsr.video.reader import VideoReader
from afvsr.video.writer import check_output, is_folder_output, open_output

# Chunk defaults (see README.md, "Streaming", and benchmarks/bench_chunk_overlap.py): a chunk sees
# DEFAULT_OVERLAP_STEPS propagation steps of context on each side. A recurrent step moves one
# frame in BasicVSR/IconVSR, but ``r`` frames in the fusion model's rate-``r`` stream, so the
# overlap in frames is the steps times the model's largest rate. A chunk is at least
# DEFAULT_CHUNK frames and twice the overlap (so context costs at most 2x the work).
DEFAULT_CHUNK = 30
DEFAULT_OVERLAP_STEPS = 10
DEFAULT_TILE_OVERLAP = 16
MIN_SIZE = 16  # smaller frames are edge-padded before the model, the output cropped back
# Containers that take H.264 and keep the input's audio as is; other inputs become .mkv.
KEPT_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi")


def default_output(input_path: Path, scale: int) -> Path:
    """``clip.mp4 -> clip_x4.mp4`` next to the input; a frame folder ``frames -> frames_x4``."""
    if input_path.is_dir():
        return input_path.with_name(f"{input_path.name}_x{scale}")
    suffix = input_path.suffix.lower() if input_path.suffix.lower() in KEPT_SUFFIXES else ".mkv"
    return input_path.with_name(f"{input_path.stem}_x{scale}{suffix}")


def resolve_model(
    model: str | os.PathLike | nn.Module, scale: int | None, device: torch.device
) -> tuple[nn.Module, str]:
    """A model name, checkpoint path or module -> (module in eval mode on ``device``, its label).

    ``scale`` (if given) must match the model's; only the parameter-free ``bicubic`` adapts.
    """
    from afvsr.checkpoint import default_model_name, load_model

    if isinstance(model, nn.Module):
        net, label = model, type(model).__name__
    else:
        label = default_model_name() if str(model) == "default" else str(model)
        net = load_model(label, map_location=device, scale=scale or 4)
    if not isinstance(getattr(net, "scale", None), int):
        raise ValueError(
            f"expected a model with an integer attribute 'scale', got {type(net).__name__}"
        )
    if scale is not None and net.scale != scale:
        raise AfvsrError(f"the model upscales x{net.scale}, but --scale {scale} was asked for")
    return net.to(device).eval(), label


BACKENDS = ("torch", "onnxruntime")


def resolve_onnx_model(
    model: str | os.PathLike | nn.Module, scale: int | None, device: torch.device
) -> tuple[nn.Module, str]:
    """An ``.onnx`` file from ``afvsr export`` → (OnnxModel, its label)."""
    from afvsr.video.onnx_backend import OnnxModel

    if isinstance(model, nn.Module) or not str(model).endswith(".onnx"):
        raise AfvsrError(
            f"--backend onnxruntime needs an .onnx file from 'afvsr export', got {model}"
        )
    net = OnnxModel(model, device=device.type)
    if scale is not None and net.scale != scale:
        raise AfvsrError(f"the model upscales x{net.scale}, but --scale {scale} was asked for")
    return net, Path(model).name


def onnx_chunking(net: nn.Module, overlap: int | None, chunk: int | None) -> tuple[int, int]:
    """Overlap and chunk that fit the exported graph's fixed N frames, scene-cut slack included
    (chunk + chunk//4 + 2*overlap <= N)."""
    n = net.num_frames
    if overlap is None:
        overlap = min(default_overlap(net), n // 4)
    if chunk is None:
        chunk = max(1, (n - 2 * overlap) * 4 // 5)
    return overlap, chunk


def default_overlap(net: nn.Module) -> int:
    """Context frames per side: DEFAULT_OVERLAP_STEPS recurrent steps of the model's widest stride
    (0 for bicubic, which looks at one frame at a time)."""
    from afvsr.models import Bicubic

    if isinstance(net, Bicubic):
        return 0
    rates = getattr(net, "rates", None) or (1,)
    return DEFAULT_OVERLAP_STEPS * max(rates)


def default_chunk(overlap: int) -> int:
    return max(DEFAULT_CHUNK, 2 * overlap)


def model_call(net: nn.Module) -> Callable[[Tensor, slice], Tensor]:
    """``(lq (b, t, 3, h, w), keep) -> (b, k, 3, s*h, s*w)``, the k output frames in ``keep``.

    A model whose forward takes ``frames`` reconstructs only those (the context frames of a
    chunk cost propagation, not reconstruction, and no high-resolution memory); the fusion model
    runs in ``sequence`` mode (a few BasicVSR passes per clip; ``window``, as trained, costs
    about 9).
    """
    params = inspect.signature(net.forward).parameters
    kwargs = {"mode": "sequence"} if "mode" in params else {}
    if "frames" in params:
        return lambda lq, keep: net(lq, frames=keep, **kwargs)
    return lambda lq, keep: net(lq, **kwargs)[:, keep]


def upscale_frames(
    call: Callable[[Tensor, slice], Tensor],
    lq: Tensor,
    keep: slice,
    *,
    scale: int,
    tile: int | None,
    tile_overlap: int,
    amp: contextlib.AbstractContextManager,
) -> Tensor:
    """Upscale a chunk ``lq (t, 3, h, w)`` and return its kept frames ``(k, 3, s*h, s*w)`` in [0, 1]."""
    lq, h, w = pad_to_min_size(lq, MIN_SIZE)

    def run(x: Tensor) -> Tensor:  # (t, 3, th, tw) -> (k, 3, s*th, s*tw)
        with amp:
            sr = call(x[None], keep)[0]
        k = len(range(x.shape[0])[keep])
        expected = (k, 3, scale * x.shape[-2], scale * x.shape[-1])
        if sr.shape != expected:
            raise ValueError(f"expected the model to return {(1, *expected)}, got {(1, *sr.shape)}")
        return sr.float()

    if tile:
        sr = upscale_tiled(run, lq, scale=scale, tile=tile, tile_overlap=tile_overlap)
    else:
        sr = run(lq)
    return sr[..., : scale * h, : scale * w].clamp_(0, 1)


def to_uint8(frame: Tensor):
    """``(3, h, w)`` float in [0, 1] -> ``(h, w, 3)`` uint8 numpy array."""
    return frame.mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def _progress_bar(total: int | None, quiet: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, unit="frame", file=sys.stderr, disable=quiet, dynamic_ncols=True, smoothing=0.1
    )


def upscale_video(
    input: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    model: str | os.PathLike | nn.Module = "default",
    scale: int | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    chunk: int | None = None,
    overlap: int | None = None,
    tile: int | None = None,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    codec: str = "libx264",
    crf: int = 18,
    force: bool = False,
    quiet: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    backend: str = "torch",
) -> dict:
    """Upscale a video file or a folder of frames, streaming; return a summary dict.

    Args:
        input: a video file (mp4, mkv, mov, avi, webm, ...) or a folder of images.
        output: a video file, or a path without extension for a folder of PNG frames. Default:
            next to the input, ``<name>_x<scale>.<ext>``.
        model: ``"default"`` (the best shipped weights), a shipped name, ``"bicubic"``, a
            checkpoint path, or an ``nn.Module`` mapping ``(b, t, 3, h, w)`` to
            ``(b, t, 3, s*h, s*w)`` with an integer ``scale`` attribute.
        scale: expected upscaling factor; an error if the model's differs (bicubic adapts).
        device: ``"cpu"`` or ``"cuda"``. precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA).
        chunk, overlap: frames per temporal chunk and context frames on each side of it.
            Default (None): overlap 10 recurrent steps (10 frames for BasicVSR, 10 x the largest
            rate for the fusion model, 0 for bicubic), chunk max(30, 2 x overlap).
        tile, tile_overlap: spatial tile size and overlap in input pixels (None: whole frames).
        codec, crf: video encoder and quality (lower crf = better, larger).
        force: overwrite an existing output. quiet: no progress bar on stderr.
        progress: called as ``progress(frames_done, total_or_None)`` after each chunk.
        backend: ``"torch"`` or ``"onnxruntime"`` (``model`` is then a file from ``afvsr export``).

    Returns:
        A dict: input, output, model, scale, frames, input_size, output_size, fps, duration,
        audio_streams, subtitle_streams, seconds, frames_per_second, chunk, overlap, chunks
        (how many were run), cuts (frame indices where a chunk boundary was moved to a scene
        cut), padded (odd output size padded by one pixel for the codec).

    The output is written to a temporary file and renamed when complete: on any error or
    Ctrl-C nothing is left behind, and the input is only ever read. On Linux with glibc it sets
    the process's mmap threshold to 1 MiB (``afvsr.memory``), so that memory stays flat over
    long videos.
    """
    if (chunk is not None and chunk < 1) or (overlap is not None and overlap < 0):
        raise ValueError(
            f"expected chunk >= 1 and overlap >= 0, got chunk={chunk}, overlap={overlap}"
        )
    if tile is not None and (tile < 1 or not 0 <= tile_overlap < tile):
        raise ValueError(
            f"expected tile >= 1 and 0 <= tile_overlap < tile, got tile={tile}, "
            f"tile_overlap={tile_overlap}"
        )
    started = time.perf_counter()
    return_large_frees_to_os()  # chunk after chunk, freed frame tensors go back to the OS
    input_path = Path(input)
    if not input_path.exists():
        raise FileNotFoundError(f"input not found: {input_path}")
    dev = resolve_device(device)
    amp = autocast_context(dev, precision)
    if backend not in BACKENDS:
        raise ValueError(f"expected backend in {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime":
        if precision != "fp32":
            raise AfvsrError(
                "--backend onnxruntime runs the exported fp32 graph: use --precision fp32"
            )
        net, model_label = resolve_onnx_model(model, scale, dev)
        overlap, chunk = onnx_chunking(net, overlap, chunk)
    else:
        net, model_label = resolve_model(model, scale, dev)
        net = prepare_for_inference(net, device=dev, precision=precision)
        overlap = default_overlap(net) if overlap is None else overlap
        chunk = default_chunk(overlap) if chunk is None else chunk
    s = net.scale
    output_path = Path(output) if output is not None else default_output(input_path, s)
    if output_path.resolve() == input_path.resolve():
        raise AfvsrError(f"output {output_path} is the input; choose another output path")
    check_output(output_path, force=force)
    call = model_call(net)

    with VideoReader(input_path) as reader:
        info = reader.info
        folder_out = is_folder_output(output_path)
        video_kwargs = dict(
            width=s * info.width,
            height=s * info.height,
            fps=info.fps,
            time_base=info.time_base,
            codec=codec,
            crf=crf,
            rotation=info.rotation,
            sample_aspect_ratio=info.sample_aspect_ratio,
            copy_streams=reader.copied_streams,
            color_primaries=info.color_primaries,
            color_trc=info.color_trc,
        )
        done, chunks, cuts = 0, 0, []
        with open_output(output_path, **video_kwargs) as writer, torch.inference_mode():
            reader.on_packet = writer.copy_packet
            bar = _progress_bar(info.num_frames, quiet)
            try:
                for part in temporal_chunks(reader.frames(), chunk=chunk, overlap=overlap):
                    sr = upscale_frames(
                        call,
                        part.lq.to(dev),
                        part.keep,
                        scale=s,
                        tile=tile,
                        tile_overlap=tile_overlap,
                        amp=amp,
                    )  # (k, 3, s*h, s*w)
                    for frame in sr:
                        stamp = reader.stamps.popleft()  # frames come out in input order
                        if folder_out:
                            writer.write(to_uint8(frame), name=stamp.name)
                        else:
                            writer.write(to_uint8(frame), stamp.pts, stamp.duration)
                    done += len(sr)
                    chunks += 1
                    if part.at_cut:
                        cuts.append(part.stop)
                    bar.update(len(sr))
                    if progress is not None:
                        progress(done, info.num_frames)
            finally:
                bar.close()
            padded = None if folder_out else writer.pad

    seconds = time.perf_counter() - started
    return {
        "input": str(input_path),
        "output": str(output_path),
        "model": model_label,
        "scale": s,
        "frames": done,
        "input_size": (info.width, info.height),
        "output_size": (s * info.width, s * info.height),
        "fps": float(info.fps),
        "duration": info.duration,
        "audio_streams": 0 if folder_out else info.audio_streams,
        "subtitle_streams": 0 if folder_out else info.subtitle_streams,
        "seconds": seconds,
        "frames_per_second": done / seconds if seconds > 0 else 0.0,
        "chunk": chunk,
        "overlap": overlap,
        "chunks": chunks,
        "cuts": cuts,
        "padded": bool(padded and any(padded)),
    }


def summary_line(summary: dict) -> str:
    """One line for stdout: what was written, how big, how fast."""
    w, h = summary["output_size"]
    streams = []
    if summary["audio_streams"]:
        streams.append(f"{summary['audio_streams']} audio")
    if summary["subtitle_streams"]:
        streams.append(f"{summary['subtitle_streams']} subtitle")
    kept = f", kept {' + '.join(streams)} stream(s)" if streams else ""
    padded = " (padded by 1 px to an even size)" if summary["padded"] else ""
    return (
        f"wrote {summary['output']}: {summary['frames']} frames {w}x{h}{padded}, "
        f"x{summary['scale']} with {summary['model']}{kept}, in {summary['seconds']:.1f} s "
        f"({summary['frames_per_second']:.2f} frames/s)"
    )
