"""The shipped models' recorded figures, and the default model computed from them.

One table, :data:`FIGURES`: per shipped model its validation PSNR-Y (``afvsr eval`` on the
validation split, ``results/validation/*.json``) and its time and memory per frame at 640x272
(``benchmarks/bench_inference.py``, ``results/benchmarks/bench_inference_640x272.json``, on the
CPU kind in :data:`MEASURED_ON`). The default of ``afvsr upscale`` is the fastest model whose
PSNR-Y is within :data:`DEFAULT_TOLERANCE_DB` of the best (:func:`default_model`): quality first,
then speed, never a name written down by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_TOLERANCE_DB = 0.1
FIGURE_SIZE = (640, 272)  # LR width x height of the time and memory figures
# Where the time and memory figures come from: one run of benchmarks/bench_inference.py.
MEASURED_ON = {
    "cpu_capability": "AVX512",
    "avx512_bf16": True,
    "amx": False,
    "threads": 1,
    "precision": "fp32",
    "command": "benchmarks/bench_inference.py --frames 6 --size 640x272 --threads 1",
}


@dataclass(frozen=True)
class Figures:
    """``psnr_y``: validation PSNR-Y (dB); ``s_per_frame``: seconds per frame at 640x272 (fp32,
    one thread); ``mb_per_frame``: memory one more frame of a chunk costs at 640x272 (MB)."""

    psnr_y: float
    s_per_frame: float
    mb_per_frame: float


FIGURES: dict[str, Figures] = {
    "basicvsr-small": Figures(psnr_y=36.93, s_per_frame=3.7, mb_per_frame=55),
    "afvsr-single-small": Figures(psnr_y=36.92, s_per_frame=8.2, mb_per_frame=73),
    "afvsr-rates135-small": Figures(psnr_y=36.90, s_per_frame=8.0, mb_per_frame=74),
    "afvsr-multihead-small": Figures(psnr_y=36.91, s_per_frame=14.5, mb_per_frame=73),
    "iconvsr-small": Figures(psnr_y=36.29, s_per_frame=18.9, mb_per_frame=5),
}


def default_model(available: Iterable[str]) -> str | None:
    """The fastest of ``available`` whose PSNR-Y is within ``DEFAULT_TOLERANCE_DB`` of the best
    of them (models without figures are not candidates); None if none has figures."""
    known = [name for name in available if name in FIGURES]
    if not known:
        return None
    best = max(FIGURES[name].psnr_y for name in known)
    close = [n for n in known if FIGURES[n].psnr_y >= best - DEFAULT_TOLERANCE_DB - 1e-9]
    return min(close, key=lambda n: FIGURES[n].s_per_frame)


def model_table(available: Iterable[str]) -> str:
    """``afvsr upscale --list-models``: one line per model with its figures, the default marked."""
    default = default_model(available)
    w, h = FIGURE_SIZE
    kind = MEASURED_ON["cpu_capability"] + (" + avx512_bf16" if MEASURED_ON["avx512_bf16"] else "")
    lines = [
        f"{'model':<24} {'PSNR-Y (dB)':>11} {'s/frame':>8} {'MB/frame':>9}",
    ]
    for name in available:
        f = FIGURES.get(name)
        if f is None:
            lines.append(f"{name:<24} {'-':>11} {'-':>8} {'-':>9}")
            continue
        mark = "  (default)" if name == default else ""
        lines.append(
            f"{name:<24} {f.psnr_y:>11.2f} {f.s_per_frame:>8.1f} {f.mb_per_frame:>9.0f}{mark}"
        )
    lines.append(
        f"PSNR-Y: validation split (afvsr eval, BI x4). s/frame and MB/frame: {w}x{h} input, "
        f"x4, fp32, {MEASURED_ON['threads']} thread, measured on a {kind} CPU "
        f"({MEASURED_ON['command']}); MB/frame is what one more frame of a chunk costs."
    )
    return "\n".join(lines)
