"""The streaming defaults of ``afvsr upscale``, without torch (its ``--help`` shows them).

A chunk sees DEFAULT_OVERLAP_STEPS propagation steps of context on each side. A recurrent step
moves one frame in BasicVSR/IconVSR, but ``r`` frames in AFVSR's rate-``r`` stream, so the
overlap in frames is the steps times the model's largest rate. The chunk length comes from the
memory budget (:mod:`afvsr.video.budget`); DEFAULT_CHUNK frames and twice the overlap is the
chunk where no budget applies (the onnxruntime backend's fallback, the export's default frames).
See docs/upscaling.md, "Streaming: chunks, overlap, tiles", and benchmarks/bench_chunk_overlap.py.
"""

from __future__ import annotations

MIN_CHUNK = 30  # a chunk is at least this long when the budget allows (the old fixed default)
DEFAULT_CHUNK = MIN_CHUNK
DEFAULT_OVERLAP_STEPS = 10
DEFAULT_TILE_OVERLAP = 16
