"""Export BasicVSR or AFVSR (the method) to ONNX, for onnxruntime and other ONNX runtimes.

The unit is a chunk of a fixed number of frames N (--frames, stored in the file's metadata);
height and width stay dynamic. The graph maps lq (1, N, 3, h, w), float32 RGB in [0, 1], to
sr (1, N, 3, scale*h, scale*w): what the model computes on the chunk (AFVSR in sequence
mode), with group fusion and reconstruction one frame at a time. Shorter clips are run
mirror-padded to N frames and cropped back (afvsr.video.onnx_backend.OnnxModel does this).

The default N = 50 is one `afvsr upscale` chunk with its context at that command's defaults for
BasicVSR (30 frames plus 10 on each side), so the ONNX backend sees the context PyTorch sees.
The graph is unrolled over the N frames (and over every rate and phase for AFVSR), so
export time, file size and session start-up grow with N: full-size BasicVSR at N = 50 is 23k
nodes and 31 MB. The file is written atomically; an existing one is kept unless --force.

examples:
  afvsr export basicvsr-small --onnx basicvsr.onnx
  afvsr export runs/afvsr_single_cpu/model_best.safetensors --onnx afvsr.onnx --frames 30
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from afvsr.checkpoint import model_family
from afvsr.io_utils import atomic_path
from afvsr.models import AFVSR, BasicVSR
from afvsr.models.common import check_lq, reconstruct_frames

DEFAULT_OPSET = 17  # GridSample needs >= 16
MIN_OPSET = 16
DEFAULT_FRAMES = 50  # = afvsr upscale's chunk + 2 * overlap for BasicVSR (a test checks)
INPUT_NAME, OUTPUT_NAME = "lq", "sr"
# The example clip the graph is traced with; any h, w works later.
TRACE_SIZE = (16, 24)
METADATA_PREFIX = "afvsr."


class SequenceChunk(nn.Module):
    """The exported computation: ``lq (1, N, 3, h, w) → (1, N, 3, s*h, s*w)``, as ``model(lq)``.

    The same calls as the model's own forward (``sequence`` mode for AFVSR), except
    that group fusion and reconstruction run one frame at a time: the models pick how many frames to
    batch from h and w, which a fixed graph cannot; one frame at a time bounds the HR memory.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if type(model) not in (BasicVSR, AFVSR):
            raise ValueError(
                f"expected a BasicVSR or AFVSR model to export, got {type(model).__name__}"
            )
        self.model = model
        self.scale = model.scale

    def forward(self, lq: Tensor) -> Tensor:
        """``lq (b, t, 3, h, w)`` → ``(b, t, 3, scale*h, scale*w)``."""
        check_lq(lq)
        m = self.model
        if isinstance(m, AFVSR):
            return m.fuse_and_reconstruct(m.sequence_features(lq), lq, max_pixels=1)
        return reconstruct_frames(m.reconstruction, m.propagate(lq), lq, max_pixels=1)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    num_frames: int = DEFAULT_FRAMES,
    opset: int = DEFAULT_OPSET,
    source: str | None = None,
) -> Path:
    """Write ``model`` (BasicVSR or AFVSR) to ``path`` as ONNX, atomically.

    Args:
        model: the model, on any device (it is exported from a CPU copy in eval mode).
        path: the ``.onnx`` file to write (replaced if it exists).
        num_frames: N, the fixed number of frames per call; height and width are dynamic.
        opset: ONNX opset, >= 16 (GridSample).
        source: where the model came from (a shipped name or checkpoint path), for the metadata.

    Returns:
        ``path`` as a ``Path``. The graph has one input ``lq (1, N, 3, h, w)`` and one output
        ``sr (1, N, 3, scale*h, scale*w)``; metadata keys ``afvsr.model``, ``afvsr.kwargs``,
        ``afvsr.scale``, ``afvsr.num_frames``, ``afvsr.mode``, ``afvsr.source``.
    """
    import onnx

    if not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"expected num_frames >= 1, got {num_frames!r}")
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"expected an ONNX opset >= {MIN_OPSET} (GridSample), got {opset!r}")
    family = model_family(model)
    # Trace a CPU float32 copy in eval mode so the caller's model is left as it was.
    chunk = SequenceChunk(copy.deepcopy(model).to("cpu", torch.float32).eval())
    example = torch.rand(1, num_frames, 3, *TRACE_SIZE, generator=torch.Generator().manual_seed(0))

    buffer = io.BytesIO()
    threads = torch.get_num_threads()
    # Tracing runs the model once on a tiny clip, where more threads only add synchronisation
    # (on a busy 2-core machine, 40x slower per conv with 2 threads than with 1).
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer warns at every Python branch on a shape. The ones left in the models
            # only check inputs or depend on the frame count, which is fixed; the export tests
            # run the graph at other sizes than the example's to catch any that would matter.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # "legacy TorchScript-based ONNX export": see docs/export.md.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(
                chunk,
                (example,),
                buffer,
                dynamo=False,  # TorchScript exporter: no extra dependency, dynamic h, w by axes
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {3: "h", 4: "w"}, OUTPUT_NAME: {3: "sh", 4: "sw"}},
                do_constant_folding=True,
            )
    finally:
        torch.set_num_threads(threads)
    proto = onnx.load_model_from_string(buffer.getvalue())
    meta = {
        "format_version": "1",
        "model": family,
        "kwargs": json.dumps(model.kwargs),
        "scale": str(model.scale),
        "num_frames": str(num_frames),
        "mode": "sequence",
        "source": "" if source is None else str(source),
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value
    proto.producer_name = "afvsr"
    onnx.checker.check_model(proto)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path
