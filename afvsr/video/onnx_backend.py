"""Run a model exported by ``afvsr export`` with onnxruntime, behind the PyTorch model interface.

``OnnxModel(path)(lq)`` maps ``lq (b, t, 3, h, w)`` to ``(b, t, 3, scale*h, scale*w)`` like the
PyTorch models, so ``upscale_video(model=OnnxModel(path))`` works unchanged. The exported graph
takes a fixed number of frames N (its ``afvsr.num_frames`` metadata): a shorter clip is
mirror-padded to N frames (the reflection AFVSR uses at clip ends) and the output
cropped back; a longer one runs as overlapping N-frame windows, each output frame taken from the
window in which it lies farthest from an edge (``afvsr upscale`` should pick chunks that fit, so
this is a fallback).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from afvsr.errors import AfvsrError
from afvsr.models.common import check_lq
from afvsr.names import current_name
from afvsr.windows import mirror_index, owned_ranges, span_starts

METADATA_PREFIX = "afvsr."
DEVICES = ("auto", "cpu", "cuda")


def window_starts(t: int, n: int) -> list[int]:
    """Starts of the fewest N-frame windows covering ``t > n`` frames, neighbours overlapping
    by at least ``n // 4`` frames, spread evenly (``afvsr.windows.span_starts``)."""
    return span_starts(t, n, n // 4)


class OnnxModel(nn.Module):
    """An exported BasicVSR or AFVSR model run by onnxruntime; no parameters on the torch side.

    Args:
        path: the ``.onnx`` file written by ``afvsr export``.
        device: ``"cpu"`` (CPU provider), ``"cuda"`` (CUDA provider, an error if onnxruntime has
            none), or ``"auto"`` (CUDA when onnxruntime offers it, else CPU).
        threads: onnxruntime intra-op threads (default: its own choice, the physical cores).

    Attributes: ``scale``, ``num_frames`` (N), ``family`` (``"basicvsr"`` or ``"afvsr"``),
    ``rates`` (AFVSR's frame rates, None for BasicVSR), ``metadata`` (the file's
    ``afvsr.*`` metadata, prefix removed), ``providers``.
    """

    # How it runs over a clip, declared as the PyTorch models do (afvsr.models): the exported
    # graph has no ``mode`` and rebuilds every frame it is given.
    clip_modes: tuple[str, ...] = ()
    default_mode: str | None = None
    takes_frames = False

    def __init__(
        self, path: str | os.PathLike, *, device: str = "auto", threads: int | None = None
    ) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise AfvsrError(
                "the onnxruntime backend needs the 'onnxruntime' package: pip install 'afvsr[onnx]'"
            ) from None
        if device not in DEVICES:
            raise ValueError(f"expected device in {DEVICES}, got {device!r}")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise AfvsrError(
                "device cuda was asked for, but onnxruntime has no CUDA provider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu"
            )
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types for unreadable files
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise AfvsrError(f"{path}: not a loadable ONNX model ({first_line})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {
            k[len(METADATA_PREFIX) :]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)
        }
        try:
            self.scale = int(self.metadata["scale"])
            self.num_frames = int(self.metadata["num_frames"])
        except (KeyError, ValueError):
            raise AfvsrError(
                f"{path}: expected an ONNX file written by `afvsr export` (metadata "
                f"afvsr.scale and afvsr.num_frames), got metadata keys {sorted(props)}"
            ) from None
        self.family = current_name(self.metadata.get("model", ""))  # "fusion" before the rename
        rates = json.loads(self.metadata.get("kwargs", "{}")).get("rates")
        self.rates = tuple(rates) if rates else None
        self.providers = self.session.get_providers()
        self.input_name = self.session.get_inputs()[0].name
        self.kwargs = {"path": str(path), "device": device}
        self.path = path
        self._warned_long = False

    def extra_repr(self) -> str:
        return (
            f"path={str(self.path)!r}, num_frames={self.num_frames}, scale={self.scale}, "
            f"providers={self.providers}"
        )

    def run_chunk(self, lq: np.ndarray) -> np.ndarray:
        """One call of the graph: ``(1, N, 3, h, w)`` float32 → ``(1, N, 3, s*h, s*w)``."""
        return self.session.run(None, {self.input_name: lq})[0]

    def run_clip(self, clip: np.ndarray) -> np.ndarray:
        """``clip (t, 3, h, w)`` float32, any t >= 1 → ``(t, 3, s*h, s*w)``."""
        t, n = clip.shape[0], self.num_frames
        if t <= n:
            idx = [mirror_index(i, t) for i in range(n)]  # 0..t-1, then t-2, t-3, ... (mirror)
            return self.run_chunk(np.ascontiguousarray(clip[idx])[None])[0, :t]
        if not self._warned_long:
            warnings.warn(
                f"{self.path.name} takes {n} frames per call; clips of {t} frames run as "
                f"overlapping windows (choose chunks of at most {n} frames with their context)",
                stacklevel=3,
            )
            self._warned_long = True
        starts = window_starts(t, n)
        out = None
        for s, (lo, hi) in zip(starts, owned_ranges(starts, n, t), strict=True):
            sr = self.run_chunk(np.ascontiguousarray(clip[s : s + n])[None])[0]  # (n, 3, sh, sw)
            if out is None:
                out = np.empty((t, *sr.shape[1:]), dtype=sr.dtype)
            out[lo:hi] = sr[lo - s : hi - s]  # the frames this window owns
        return out

    def forward(self, lq: Tensor) -> Tensor:
        """``lq (b, t, 3, h, w)`` in [0, 1] → ``(b, t, 3, scale*h, scale*w)`` float32, on lq's device."""
        check_lq(lq)
        clips = lq.detach().to("cpu", torch.float32).numpy()
        out = np.stack([self.run_clip(clip) for clip in clips])
        return torch.from_numpy(out).to(lq.device)
