"""Run a model over every frame of every clip of a dataset and score it; read and write results.

Averaging: metrics are computed per frame (every frame, the first and last included), averaged
per clip, then the per-clip means are averaged over clips (the headline number). Timings are
the model's forward passes only (no data loading, no scoring), in milliseconds per output frame.

Results are a JSON-serialisable dict (``FORMAT_VERSION`` 1)::

    {"format_version": 1, "afvsr_version", "created",
     "model": {"name", "source", "kwargs", "params", "scale"},
     "mode", "window", "border", "max_frames", "device",
     "dataset": {"spec", "name", "split", "num_clips", "num_frames"},
     "clips": [{"key", "num_frames", "psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y", "ms_per_frame",
                "frames": {"psnr_rgb": [...], ...}}],
     "mean": {"psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y", "ms_per_frame"},
     "peak_memory": {"rss_mb", "cuda_max_allocated_mb"}}

A PSNR of identical images is ``inf``, written as ``Infinity`` (Python's and JavaScript's
spelling; strict JSON has none).
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from afvsr import windows
from afvsr.errors import AfvsrError
from afvsr.evaluation.metrics import METRIC_NAMES, frame_metrics, mean_metric
from afvsr.inference import autocast_context, check_precision, resolve_precision
from afvsr.io_utils import atomic_path

FORMAT_VERSION = 1
CSV_COLUMNS = (
    "model",
    "source",
    "params",
    "mode",
    "window",
    "dataset",
    "split",
    "clip",
    "num_frames",
    *METRIC_NAMES,
    "ms_per_frame",
    "peak_rss_mb",
    "peak_cuda_mb",
)


def window_indices(t: int, num_frames: int, window: int) -> list[int]:
    """The ``window`` frame indices centred on reference frame ``t``, mirrored at the clip's ends
    (``afvsr.windows.window_indices``, AFVSR's rule for its groups, so windowed
    BasicVSR and the method see the same frames): ``window_indices(0, 10, 5) == [2, 1, 0, 1, 2]``."""
    return windows.window_indices(t, num_frames, window)


def accepts_mode(model: nn.Module) -> bool:
    """Whether ``model(lq, mode=...)`` is accepted (AFVSR's ``window``/``sequence``): the
    model's declared ``clip_modes`` (see :mod:`afvsr.models`), empty for a model without any."""
    return bool(getattr(model, "clip_modes", ()))


def model_name(model: nn.Module) -> str:
    """The model's family name (a key of ``afvsr.models.MODELS``), or its class name."""
    from afvsr.checkpoint import model_family

    try:
        return model_family(model)
    except ValueError:
        return type(model).__name__.lower()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def upscale_clip(
    model: nn.Module,
    lq: Tensor,
    *,
    mode: str | None = None,
    window: int | None = None,
    window_batch: int = 4,
    precision: str = "auto",
) -> Tensor:
    """Every frame of one clip through ``model``.

    Args:
        lq: ``(t, 3, h, w)`` on the model's device.
        mode: passed as ``model(lq, mode=mode)`` (AFVSR); None for other models.
        window: if set (odd), each reference frame t is rebuilt from the ``window`` frames centred
            on it alone (mirrored at the ends, see ``window_indices``), taking the output at the
            window's centre; ``window_batch`` windows run as one batch. None: the whole clip at once.
        precision: ``"auto"`` (bf16 where the device has it natively, else fp32), ``"fp32"``,
            or ``"bf16"`` / ``"fp16"`` (CUDA) under autocast; the output is float32 either way.

    Returns:
        ``(t, 3, scale*h, scale*w)`` float in [0, 1].
    """
    kwargs = {} if mode is None else {"mode": mode}
    t = lq.shape[0]
    with torch.inference_mode(), autocast_context(lq.device, precision):
        if window is None:
            return model(lq[None], **kwargs)[0].float().clamp(0, 1)
        outs = []
        for start in range(0, t, window_batch):
            refs = range(start, min(start + window_batch, t))
            idx = torch.tensor([window_indices(r, t, window) for r in refs], device=lq.device)
            clips = lq[idx]  # (n, window, 3, h, w)
            outs.append(model(clips, **kwargs)[:, window // 2].float())  # (n, 3, s*h, s*w)
        return torch.cat(outs, dim=0).clamp(0, 1)


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where it cannot be read)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / (1024 * 1024)


def save_frames(frames: Tensor, folder: Path) -> None:
    """Write ``frames (t, 3, h, w)`` in [0, 1] as ``folder/00000000.png …`` (8-bit, atomically)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arr = torch.round(frames.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    for i, frame in enumerate(arr):
        with atomic_path(folder / f"{i:08d}.png") as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")


def _check_clip(sample: dict, index: int, scale: int) -> tuple[str, Tensor, Tensor]:
    key = str(sample.get("key", index))
    lq, gt = sample.get("lq"), sample.get("gt")
    if gt is None:
        raise AfvsrError(f"clip '{key}' has no ground truth; evaluation needs GT frames")
    if lq is None or lq.ndim != 4 or gt.ndim != 4 or lq.shape[0] != gt.shape[0]:
        raise AfvsrError(
            f"clip '{key}': expected lq (t, 3, h, w) and gt (t, 3, H, W) with the same t, got "
            f"{None if lq is None else tuple(lq.shape)} and {tuple(gt.shape)}"
        )
    if lq.shape[0] == 0:
        raise AfvsrError(f"clip '{key}' has no frames")
    h, w = lq.shape[-2:]
    if tuple(gt.shape[-2:]) != (h * scale, w * scale):
        raise AfvsrError(
            f"clip '{key}': the model upscales x{scale} but the data is "
            f"{w}x{h} -> {gt.shape[-1]}x{gt.shape[-2]} (not x{scale}); use a model or --scale "
            "that matches the data"
        )
    return key, lq, gt


def evaluate(
    model: nn.Module,
    dataset: Sequence[dict],
    *,
    mode: str | None = None,
    window: int | None = None,
    border: int = 0,
    max_frames: int | None = None,
    precision: str = "auto",
    save_frames_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
    on_clip: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Score ``model`` on every clip of ``dataset``; returns the results dict (see module doc).

    Args:
        model: maps ``(b, t, 3, h, w) → (b, t, 3, s*h, s*w)``; has ``scale`` (and ``kwargs``).
            It is run on the device its parameters are on (CPU for a model without any).
        dataset: ``len(dataset)`` and ``dataset[i] → {"lq": (t, 3, h, w), "gt": (t, 3, s*h, s*w),
            "key": str}`` in [0, 1].
        mode: ``"window"`` / ``"sequence"`` for a model whose forward takes ``mode``
            (AFVSR); must be None for other models.
        window: restrict a recurrent model (BasicVSR, IconVSR) to ``window`` frames centred on
            each reference frame (odd; mirrored at the clip's ends). Not for AFVSR,
            whose groups are part of it.
        border: pixels cropped from each side before scoring.
        max_frames: score only the first ``max_frames`` frames of each clip (quick checks).
        precision: ``"auto"`` (default: bf16 where the device has it natively, else fp32),
            ``"fp32"``, ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA): the model's arithmetic
            under autocast (see ``afvsr.inference``); the one that ran is recorded in the results.
        save_frames_dir: write every output frame as ``DIR/<clip key>/00000000.png …``.
        progress: called with one-line progress messages.
        on_clip: called with each clip's result as soon as it is scored.
    """
    mode = check_evaluate_args(model, dataset, mode=mode, window=window, max_frames=max_frames)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    check_precision(precision, device)
    precision = resolve_precision(precision, device)  # "auto" -> what runs, for the results
    scale = int(model.scale)
    was_training = model.training
    model.eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        clips = score_clips(
            model, dataset, device=device, scale=scale, mode=mode, window=window, border=border,
            max_frames=max_frames, precision=precision, save_frames_dir=save_frames_dir,
            progress=progress, on_clip=on_clip,
        )  # fmt: skip
    finally:
        model.train(was_training)
    return results_dict(
        model, dataset, clips, device=device, scale=scale, mode=mode, window=window,
        border=border, max_frames=max_frames, precision=precision,
    )  # fmt: skip


def check_evaluate_args(
    model: nn.Module,
    dataset: Sequence[dict],
    *,
    mode: str | None,
    window: int | None,
    max_frames: int | None,
) -> str | None:
    """Raise AfvsrError for arguments of :func:`evaluate` that do not fit together; return the
    mode that runs (the model's ``default_mode`` when it takes one and none is given)."""
    if len(dataset) == 0:
        raise AfvsrError(f"dataset {getattr(dataset, 'name', '')!r} has no clips (empty split?)")
    takes_mode = accepts_mode(model)
    if mode is not None and not takes_mode:
        raise AfvsrError(
            f"--mode applies to AFVSR only, not to {model_name(model)} "
            "(use --window N to restrict a recurrent model to a window)"
        )
    if mode is not None and mode not in ("window", "sequence"):
        raise AfvsrError(f"expected mode 'window' or 'sequence', got {mode!r}")
    if window is not None and takes_mode:
        raise AfvsrError(
            "--window restricts BasicVSR/IconVSR to a window; AFVSR's groups are "
            "fixed by its checkpoint (use --mode window|sequence)"
        )
    if window is not None and (window < 1 or window % 2 == 0):
        raise AfvsrError(f"expected an odd window of at least 1 frame, got {window}")
    if max_frames is not None and max_frames < 1:
        raise AfvsrError(f"expected --max-frames >= 1, got {max_frames}")
    if takes_mode and mode is None:
        mode = getattr(model, "default_mode", None)
    return mode


def score_clips(
    model: nn.Module,
    dataset: Sequence[dict],
    *,
    device: torch.device,
    scale: int,
    mode: str | None,
    window: int | None,
    border: int,
    max_frames: int | None,
    precision: str,
    save_frames_dir: str | os.PathLike | None,
    progress: Callable[[str], None] | None,
    on_clip: Callable[[dict], None] | None,
) -> list[dict[str, Any]]:
    """Each clip's result (key, frames, mean and per-frame metrics, time), in dataset order;
    the model already in eval mode on ``device`` (see :func:`evaluate` for the arguments)."""
    clips: list[dict[str, Any]] = []
    for i in range(len(dataset)):
        if max_frames is not None and hasattr(dataset, "load"):
            sample = dataset.load(i, stop=max_frames)  # ClipDataset: reads only those frames
        else:
            sample = dataset[i]
        key, lq, gt = _check_clip(sample, i, scale)
        if max_frames is not None:
            lq, gt = lq[:max_frames], gt[:max_frames]
        t = lq.shape[0]
        if progress:
            progress(f"[{i + 1}/{len(dataset)}] {key}: {t} frames {lq.shape[-1]}x{lq.shape[-2]}")
        lq = lq.to(device, torch.float32)
        _sync(device)
        start = time.perf_counter()
        out = upscale_clip(model, lq, mode=mode, window=window, precision=precision)
        _sync(device)
        ms_per_frame = (time.perf_counter() - start) * 1000.0 / t
        scores = frame_metrics(out, gt.to(out.device), border=border)
        frames = {name: [float(v) for v in scores[name].cpu()] for name in METRIC_NAMES}
        clip = {
            "key": key,
            "num_frames": t,
            **{name: mean_metric(frames[name]) for name in METRIC_NAMES},
            "ms_per_frame": ms_per_frame,
            "frames": frames,
        }
        clips.append(clip)
        if save_frames_dir is not None:
            save_frames(out, Path(save_frames_dir) / key)
        if on_clip:
            on_clip(clip)
    return clips


def results_dict(
    model: nn.Module,
    dataset: Sequence[dict],
    clips: list[dict[str, Any]],
    *,
    device: torch.device,
    scale: int,
    mode: str | None,
    window: int | None,
    border: int,
    max_frames: int | None,
    precision: str,
) -> dict[str, Any]:
    """The results dict of :func:`evaluate` (see the module doc) from its clips' results."""
    from afvsr import __version__

    cuda_peak = (
        torch.cuda.max_memory_allocated(device) / (1024 * 1024) if device.type == "cuda" else None
    )
    return {
        "format_version": FORMAT_VERSION,
        "afvsr_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": model_name(model),
            "source": None,
            "kwargs": dict(getattr(model, "kwargs", {})),
            "params": count_parameters(model),
            "scale": scale,
        },
        "mode": mode,
        "window": window,
        "border": border,
        "max_frames": max_frames,
        "precision": precision,
        "device": str(device),
        "dataset": {
            "spec": None,
            "name": getattr(dataset, "name", None),
            "split": None,
            "num_clips": len(clips),
            "num_frames": sum(c["num_frames"] for c in clips),
        },
        "clips": clips,
        "mean": {
            **{name: mean_metric([c[name] for c in clips]) for name in METRIC_NAMES},
            # Total model time over total frames (long clips weigh more, as in a benchmark).
            "ms_per_frame": math.fsum(c["ms_per_frame"] * c["num_frames"] for c in clips)
            / sum(c["num_frames"] for c in clips),
        },
        "peak_memory": {"rss_mb": peak_rss_mb(), "cuda_max_allocated_mb": cuda_peak},
    }


def csv_path_for(json_path: str | os.PathLike) -> Path:
    """``results.json`` → ``results.csv`` (next to it)."""
    return Path(json_path).with_suffix(".csv")


def write_results(results: dict[str, Any], json_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``results`` as JSON at ``json_path`` and as CSV beside it (one row per clip, then a
    ``mean`` row), each atomically. Returns both paths."""
    json_path = Path(json_path)
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    model, ds, mem = results["model"], results["dataset"], results["peak_memory"]
    common = {
        "model": model["name"],
        "source": model["source"],
        "params": model["params"],
        "mode": results["mode"],
        "window": results["window"],
        "dataset": ds["name"],
        "split": ds["split"],
        "peak_rss_mb": mem["rss_mb"],
        "peak_cuda_mb": mem["cuda_max_allocated_mb"],
    }
    rows = [{**common, "clip": c["key"], **c} for c in results["clips"]]
    rows.append({**common, "clip": "mean", "num_frames": ds["num_frames"], **results["mean"]})
    csv_path = csv_path_for(json_path)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})
    return json_path, csv_path


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results JSON written by ``write_results``; one-line AfvsrError if it is not one."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no results file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AfvsrError(f"{path}: not a JSON results file ({exc})") from None
    version = results.get("format_version") if isinstance(results, dict) else None
    if version != FORMAT_VERSION:
        raise AfvsrError(
            f"{path}: unknown results format_version {version!r} (this afvsr reads "
            f"{FORMAT_VERSION}); re-run `afvsr eval` with this version"
        )
    return results


def format_metrics(m: dict[str, float]) -> str:
    """``psnr_rgb=NN.NN ssim_rgb=0.NNNN psnr_y=NN.NN ssim_y=0.NNNN``."""
    return (
        f"psnr_rgb={m['psnr_rgb']:.2f} ssim_rgb={m['ssim_rgb']:.4f} "
        f"psnr_y={m['psnr_y']:.2f} ssim_y={m['ssim_y']:.4f}"
    )
