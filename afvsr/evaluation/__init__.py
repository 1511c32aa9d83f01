"""Evaluation: PSNR/SSIM with the field's conventions, model runs over datasets, table, figures.

- ``afvsr.evaluation.metrics``: ``psnr``, ``ssim``, ``frame_metrics``, ``rgb_to_y``, ``quantize``.
- ``afvsr.evaluation.evaluate``: ``evaluate``, ``upscale_clip``, ``window_indices``,
  ``write_results``, ``load_results``.
- ``table``: the comparison table from results files; ``figures``: attention maps, crops and
  training curves as matplotlib figures.
- ``cli``: the `afvsr eval`, `afvsr table` and `afvsr figures` commands (arguments and runs).

The names below are imported on first use, so `afvsr table` does not pay for importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "psnr": "afvsr.evaluation.metrics",
    "ssim": "afvsr.evaluation.metrics",
    "frame_metrics": "afvsr.evaluation.metrics",
    "rgb_to_y": "afvsr.evaluation.metrics",
    "quantize": "afvsr.evaluation.metrics",
    "FORMAT_VERSION": "afvsr.evaluation.evaluate",
    "evaluate": "afvsr.evaluation.evaluate",
    "upscale_clip": "afvsr.evaluation.evaluate",
    "window_indices": "afvsr.evaluation.evaluate",
    "write_results": "afvsr.evaluation.evaluate",
    "load_results": "afvsr.evaluation.evaluate",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'afvsr.evaluation' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
