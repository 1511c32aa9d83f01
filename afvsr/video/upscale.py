"""Upscale a whole video (or a folder of frames) with any model, streaming, keeping its audio.

The pipeline: :class:`~afvsr.video.reader.VideoReader` decodes frames one at a time,
:func:`~afvsr.video.chunking.temporal_chunks` groups them into overlapping chunks, the model
upscales each chunk (optionally in spatial tiles), and the kept frames go straight to the
:mod:`~afvsr.video.writer`, which also remuxes the audio and subtitle packets. Memory depends on
the chunk and frame size, never on the length of the video.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from afvsr.errors import AfvsrError
from afvsr.inference import (
    autocast_context,
    check_precision,
    prepare_for_inference,
    resolve_device,
    resolve_precision,
)
from afvsr.memory import peak_rss, reset_peak_rss, return_large_frees_to_os
from afvsr.video.budget import (
    current_rss,
    format_size,
    memory_budget,
    memory_model,
    plan_chunks,
    stored_sample_bytes,
)
from afvsr.video.chunking import (
    from_uint16,
    pad_to_min_size,
    temporal_chunks,
    to_compact,
    to_dtype,
    upscale_tiled,
)
from afvsr.video.defaults import DEFAULT_CHUNK, DEFAULT_OVERLAP_STEPS, DEFAULT_TILE_OVERLAP
from afvsr.video.reader import VideoReader
from afvsr.video.writer import check_output, is_folder_output, open_output

# Chunk defaults: afvsr.video.defaults (torch-free, for `afvsr upscale --help`) says what they
# mean; docs/upscaling.md, "Streaming: chunks, overlap, tiles", how they were chosen.
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
    from afvsr.checkpoint import default_model_name, load_upscaler

    if isinstance(model, nn.Module):
        net, label = model, type(model).__name__
    else:
        label = default_model_name() if str(model) == "default" else str(model)
        net = load_upscaler(label, map_location=device, scale=scale or 4)
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
    chunk cost propagation, not reconstruction, and no high-resolution memory); AFVSR
    runs in ``sequence`` mode (a few BasicVSR passes per clip; ``window``, as trained, costs
    about 9).
    """
    kwargs = {"mode": "sequence"} if "sequence" in getattr(net, "clip_modes", ()) else {}
    if getattr(net, "takes_frames", False):
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
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Upscale a chunk ``lq (t, 3, h, w)`` and return its kept frames ``(k, 3, s*h, s*w)``:
    float32 in [0, 1], or with ``dtype=torch.uint8`` 8-bit (tiles converted as they come).
    ``lq`` is float in [0, 1] or uint8/uint16 from :func:`~afvsr.video.chunking.to_compact`
    (converted a tile at a time)."""
    if min(lq.shape[-2:]) < MIN_SIZE:
        lq = from_uint16(lq)
    lq, h, w = pad_to_min_size(lq, MIN_SIZE)

    def run(x: Tensor) -> Tensor:  # (t, 3, th, tw) -> (k, 3, s*th, s*tw)
        x = from_uint16(x)
        with amp:
            sr = call(x[None], keep)[0]
        k = len(range(x.shape[0])[keep])
        expected = (k, 3, scale * x.shape[-2], scale * x.shape[-1])
        if sr.shape != expected:
            raise ValueError(f"expected the model to return {(1, *expected)}, got {(1, *sr.shape)}")
        return sr.float()

    if tile:
        sr = upscale_tiled(run, lq, scale=scale, tile=tile, tile_overlap=tile_overlap, dtype=dtype)
    else:
        sr = to_dtype(run(lq), dtype)
    sr = sr[..., : scale * h, : scale * w]
    return sr if dtype == torch.uint8 else sr.clamp_(0, 1)


def to_uint8(frame: Tensor):
    """``(3, h, w)`` float in [0, 1] (or already 8-bit) -> ``(h, w, 3)`` uint8 numpy array."""
    if frame.dtype != torch.uint8:
        frame = frame.mul(255).round_().to(torch.uint8)
    return frame.permute(1, 2, 0).contiguous().cpu().numpy()


def _progress_bar(total: int | None, quiet: bool):
    """Frames done of the whole video's total (container frame count, or duration x rate), with
    frames/s and the ETA averaged over the whole run (``smoothing=0``), not over the last chunk."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit="frame", file=sys.stderr, disable=quiet, dynamic_ncols=True, smoothing=0
    )


@dataclass(frozen=True)
class Split:
    """How a run is cut: ``chunk`` output frames with ``overlap`` context frames each side,
    ``tile`` (None: whole frames) overlapping by ``tile_overlap``; ``budget`` and ``estimate``
    (bytes, None for the onnxruntime backend) the memory budget and the planned peak."""

    chunk: int
    overlap: int
    tile: int | None
    tile_overlap: int
    budget: int | None = None
    estimate: int | None = None
    encoder_options: dict | None = None  # a shorter encoder look-ahead, when the budget needs it

    def summary(self) -> dict:
        """The summary's chunk, overlap, tile, max_memory and memory_estimate."""
        return {
            "chunk": self.chunk,
            "overlap": self.overlap,
            "tile": self.tile,
            "max_memory": self.budget,
            "memory_estimate": self.estimate,
            "encoder_options": self.encoder_options,
        }


def output_format(reader: VideoReader, *, scale: int, codec: str, crf: int, split: Split) -> dict:
    """The writer's arguments: the input's size times ``scale``, its timing, rotation, colour,
    the streams copied unchanged, and the split's encoder options (x264 only)."""
    info = reader.info
    extra = {"encoder_options": split.encoder_options} if codec == "libx264" else {}
    return dict(
        **extra,
        width=scale * info.width,
        height=scale * info.height,
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


def plan_split(
    net: nn.Module,
    width: int,
    height: int,
    *,
    backend: str,
    chunk: int | None,
    overlap: int | None,
    tile: int | None,
    tile_overlap: int,
    budget: int,
    sample_bytes: int = 2,
) -> Split:
    """The chunk and tiles for ``width x height`` frames: from the memory budget (torch), or
    what the exported graph's fixed frame count allows (onnxruntime). ``sample_bytes``: how the
    decoded frames are held (:func:`~afvsr.video.budget.stored_sample_bytes`)."""
    if backend == "onnxruntime":
        overlap, chunk = onnx_chunking(net, overlap, chunk)
        return Split(chunk, overlap, tile, tile_overlap)
    overlap = default_overlap(net) if overlap is None else overlap
    plan = plan_chunks(
        memory_model(net),
        width=width,
        height=height,
        scale=net.scale,
        overlap=overlap,
        budget=budget,
        base=current_rss(),
        chunk=chunk,
        tile=tile,
        tile_overlap=tile_overlap,
        sample_bytes=sample_bytes,
    )
    return Split(
        plan.chunk, overlap, plan.tile, tile_overlap, budget, plan.estimate, plan.encoder_options
    )


def load_for_upscale(
    model: str | os.PathLike | nn.Module,
    scale: int | None,
    dev: torch.device,
    precision: str,
    backend: str,
) -> tuple[nn.Module, str, str]:
    """The model ready to run, its label, and the precision that will run ("auto" resolved)."""
    if backend not in BACKENDS:
        raise ValueError(f"expected backend in {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime" and precision == "auto":
        precision = "fp32"  # the exported graph is fp32
    check_precision(precision, dev)
    precision = resolve_precision(precision, dev)
    if backend == "onnxruntime":
        if precision != "fp32":
            raise AfvsrError(
                "--backend onnxruntime runs the exported fp32 graph: use --precision fp32"
            )
        net, label = resolve_onnx_model(model, scale, dev)
        return net, label, precision
    net, label = resolve_model(model, scale, dev)
    return prepare_for_inference(net, device=dev, precision=precision), label, precision


def check_split_args(
    chunk: int | None, overlap: int | None, tile: int | None, tile_overlap: int
) -> None:
    if (chunk is not None and chunk < 1) or (overlap is not None and overlap < 0):
        raise ValueError(
            f"expected chunk >= 1 and overlap >= 0, got chunk={chunk}, overlap={overlap}"
        )
    if tile is not None and (tile < 1 or not 0 <= tile_overlap < tile):
        raise ValueError(
            f"expected tile >= 1 and 0 <= tile_overlap < tile, got tile={tile}, "
            f"tile_overlap={tile_overlap}"
        )


def write_frames(writer, sr: Tensor, stamps: deque, *, folder_out: bool) -> None:
    """Write a chunk's output ``sr (k, 3, s*h, s*w)`` frame by frame, each with the next stamp
    of ``stamps`` (frames come out in input order). A function of its own so that no loop
    variable outlives it: a frame is a view of the whole chunk's output, and one left behind
    would keep that output in memory while the next chunk runs."""
    for frame in sr:
        stamp = stamps.popleft()
        if folder_out:
            writer.write(to_uint8(frame), name=stamp.name)
        else:
            writer.write(to_uint8(frame), stamp.pts, stamp.duration)


def run_chunks(
    reader: VideoReader,
    writer,
    net: nn.Module,
    split: Split,
    *,
    dev: torch.device,
    amp: contextlib.AbstractContextManager,
    folder_out: bool,
    bar,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[int, int, list[int]]:
    """Upscale every chunk of ``reader`` and write its kept frames to ``writer``, in order.

    Returns (frames written, chunks run, stream indices where a chunk ended at a scene cut).
    """
    call, total = model_call(net), reader.info.num_frames
    done, chunks, cuts = 0, 0, []
    parts = temporal_chunks(
        reader.frames(), chunk=split.chunk, overlap=split.overlap, store=to_compact
    )  # frames held as uint8 (8-bit sources) or uint16: exact, a quarter or half the memory
    for part in parts:
        sr = upscale_frames(
            call,
            part.lq.to(dev),
            part.keep,
            scale=net.scale,
            tile=split.tile,
            tile_overlap=split.tile_overlap,
            amp=amp,
            dtype=torch.uint8,
        )  # (k, 3, s*h, s*w) uint8
        if part.at_cut:
            cuts.append(part.stop)
        del part  # the chunk's frames are not needed while writing
        write_frames(writer, sr, reader.stamps, folder_out=folder_out)
        done, chunks = done + len(sr), chunks + 1
        bar.update(len(sr))
        del sr  # the chunk's output is freed before the next chunk is stacked and run
        if progress is not None:
            progress(done, total)
    return done, chunks, cuts


def upscale_video(
    input: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    model: str | os.PathLike | nn.Module = "default",
    scale: int | None = None,
    device: str | torch.device = "cpu",
    precision: str = "auto",
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
    ignore_errors: bool = False,
    max_memory: int | str | None = None,
) -> dict:
    """Upscale a video file or a folder of frames, streaming; return a summary dict.

    Args:
        input: a video file (mp4, mkv, mov, avi, webm, ...) or a folder of images.
        output: a video file, or a path without extension for a folder of PNG frames
            (default: next to the input, ``<name>_x<scale>.<ext>``).
        model: ``"default"`` (the fastest shipped model within 0.1 dB PSNR-Y of the best), a
            shipped name, ``"bicubic"``, a checkpoint, or an ``nn.Module`` mapping
            ``(b, t, 3, h, w)`` to ``(b, t, 3, s*h, s*w)`` with an integer ``scale``.
        scale: expected upscaling factor; an error if the model's differs (bicubic adapts).
        device: ``"cpu"`` or ``"cuda"``. precision: ``"auto"`` (bf16 where the device has it
            natively, else fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA).
        chunk, overlap: output frames per temporal chunk and context frames on each side.
            Default: overlap 10 recurrent steps (x the largest rate for AFVSR, 0 for bicubic);
            chunk the longest that fits ``max_memory``, at most max(30, 4 x overlap).
        tile, tile_overlap: spatial tiles in input pixels (default: as ``max_memory`` needs).
        max_memory: budget in bytes or e.g. ``"3G"`` (default: min(4 GiB, half the memory
            available)); an explicit chunk/tile that cannot fit it is an error saying what would.
        codec, crf: video encoder and quality (lower crf = better, larger).
        force: overwrite an existing output. quiet: no progress bar on stderr.
        progress: called as ``progress(frames_done, total_or_None)`` after each chunk.
        backend: ``"torch"`` or ``"onnxruntime"`` (``model`` is then a file from ``afvsr export``).
        ignore_errors: upscale a damaged video as far as it decodes; ``damage`` says what was lost.

    Returns:
        input, output, model, precision (the one that ran), scale, frames, input_size,
        output_size, fps, duration, audio_streams, subtitle_streams, seconds,
        frames_per_second, chunk, overlap, tile, max_memory, memory_estimate, encoder_options,
        peak_memory (bytes, None where unknown), chunks (how many ran), cuts (where a chunk
        ended at a scene cut), padded (odd size padded for the codec), damage.

    The output is written to a temporary name and renamed when complete: on any error or
    Ctrl-C nothing is left behind, and the input is only read. On Linux with glibc it sets the
    mmap threshold to 1 MiB (``afvsr.memory``) so that memory stays flat over long videos.
    """
    check_split_args(chunk, overlap, tile, tile_overlap)
    budget = memory_budget(max_memory)
    started = time.perf_counter()
    return_large_frees_to_os()  # chunk after chunk, freed frame tensors go back to the OS
    reset_peak_rss()
    input_path = Path(input)
    if not input_path.exists():
        raise FileNotFoundError(f"input not found: {input_path}")
    dev = resolve_device(device)
    net, model_label, precision = load_for_upscale(model, scale, dev, precision, backend)
    amp, s = autocast_context(dev, precision), net.scale
    output_path = Path(output) if output is not None else default_output(input_path, s)
    model_file = None if isinstance(model, nn.Module) else model
    check_output(output_path, force=force, inputs=[input_path, model_file])
    streamed = stream_upscaled(
        input_path, output_path, net, dev=dev, amp=amp, backend=backend, chunk=chunk,
        overlap=overlap, tile=tile, tile_overlap=tile_overlap, budget=budget, codec=codec,
        crf=crf, quiet=quiet, progress=progress, ignore_errors=ignore_errors, started=started,
    )  # fmt: skip
    labels = {"input": str(input_path), "output": str(output_path), "model": model_label}
    return {**labels, "precision": precision, **streamed}


def stream_upscaled(
    input_path: Path,
    output_path: Path,
    net: nn.Module,
    *,
    dev: torch.device,
    amp: contextlib.AbstractContextManager,
    backend: str,
    chunk: int | None,
    overlap: int | None,
    tile: int | None,
    tile_overlap: int,
    budget: int,
    codec: str,
    crf: int,
    quiet: bool,
    progress: Callable[[int, int | None], None] | None,
    ignore_errors: bool,
    started: float,
) -> dict:
    """Read, upscale and write the whole input (:func:`upscale_video`'s arguments, checked);
    return the summary after ``precision`` (``seconds`` counted from ``started``)."""
    s = net.scale
    with VideoReader(input_path, ignore_errors=ignore_errors) as reader:
        info = reader.info
        split = plan_split(
            net, info.width, info.height, backend=backend, chunk=chunk, overlap=overlap,
            tile=tile, tile_overlap=tile_overlap, budget=budget,
            sample_bytes=stored_sample_bytes(info.pix_fmt),
        )  # fmt: skip
        folder_out = is_folder_output(output_path)
        video_kwargs = output_format(reader, scale=s, codec=codec, crf=crf, split=split)
        with open_output(output_path, **video_kwargs) as writer, torch.inference_mode():
            reader.on_packet = writer.copy_packet
            with _progress_bar(info.num_frames, quiet) as bar:
                done, chunks, cuts = run_chunks(
                    reader, writer, net, split, dev=dev, amp=amp, folder_out=folder_out,
                    bar=bar, progress=progress,
                )  # fmt: skip
            padded = None if folder_out else writer.pad

    seconds = time.perf_counter() - started
    return {
        **stream_summary(info, s, folder_out),
        "frames": done,
        "seconds": seconds,
        "frames_per_second": done / seconds if seconds > 0 else 0.0,
        **split.summary(),
        "peak_memory": peak_rss(),
        "chunks": chunks,
        "cuts": cuts,
        "padded": bool(padded and any(padded)),
        "damage": reader.damage,
    }


def stream_summary(info, scale: int, folder_out: bool) -> dict:
    """The summary's facts about the input and output streams."""
    return {
        "scale": scale,
        "input_size": (info.width, info.height),
        "output_size": (scale * info.width, scale * info.height),
        "fps": float(info.fps),
        "duration": info.duration,
        "audio_streams": 0 if folder_out else info.audio_streams,
        "subtitle_streams": 0 if folder_out else info.subtitle_streams,
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
    split = f"chunk {summary['chunk']}" + (f", tile {summary['tile']}" if summary["tile"] else "")
    if summary.get("peak_memory") is not None:
        split += f", peak memory {format_size(summary['peak_memory'])}"
        if summary.get("max_memory"):
            split += f" of {format_size(summary['max_memory'])}"
    return (
        f"wrote {summary['output']}: {summary['frames']} frames {w}x{h}{padded}, "
        f"x{summary['scale']} with {summary['model']} ({summary['precision']}){kept}, "
        f"in {summary['seconds']:.1f} s ({summary['frames_per_second']:.2f} frames/s; {split})"
    )
